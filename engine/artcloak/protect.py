"""The one engine call every front uses: protect(pixels, params, progress, cancel) -> Result."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import metrics, presets, runtime, shaping
from . import pixels as px
from .errors import Cancelled
from .models import resolve_models
from .optimize import optimize
from .params import Params

Progress = Callable[[float, str], None]
Cancel = Callable[[], bool]


@dataclass
class Result:
    pixels: np.ndarray  # same shape and dtype as the input
    report: dict = field(default_factory=dict)  # what `artcloak verify --json` would say


def protect(pixels: np.ndarray, params: Params | None = None, progress: Progress | None = None,
            cancel: Cancel | None = None) -> Result:
    """Add a protective perturbation to `pixels`; the input array is never modified.

    Raises InputError for unusable pixels or parameters, ModelError when no surrogate is installed,
    Cancelled when `cancel()` returned true (no result is produced then).
    """
    params = params or Params()
    params.validate()
    report_progress = progress or (lambda f, m: None)
    should_stop = cancel or (lambda: False)
    work = px.split(pixels)
    models = resolve_models(params.model_list)

    def check_cancel() -> None:
        if should_stop():
            raise Cancelled("protection cancelled; nothing was changed")

    delta = optimize(work, params, models, lambda f, m: report_progress(0.85 * f, m), check_cancel)
    check_cancel()
    report_progress(0.86, "checking visibility after rounding")
    out = fit_to_budget(work, delta, presets.INTENSITY[params.intensity])
    check_cancel()
    report_progress(0.92, "measuring the protection")
    report = metrics.measure(work.rgb, px.to_float_rgb(out), models, seed=params.seed)
    report["models_used"] = models
    report["runtime"] = runtime.choose().to_dict()
    report["params"] = params.to_dict()
    report_progress(1.0, "done")
    return Result(out, report)


def fit_to_budget(work: px.Work, delta: np.ndarray, budget: presets.Budget, tries: int = 4) -> np.ndarray:
    """Quantise to the output format; shrink the perturbation if rounding pushed PSNR or the flat-area
    change past the preset's promise (rare: the optimizer already saw its own rounding)."""
    import torch

    rgb = torch.from_numpy(work.rgb).permute(2, 0, 1)[None]
    flat = (shaping.local_std(rgb) < shaping.FLAT_STD)[0, 0].numpy()
    out = px.merge(work, delta)
    for _ in range(tries):
        diff = px.to_float_rgb(out) - work.rgb
        mse = float(np.mean(np.square(diff, dtype=np.float32)))
        flat_change = float(np.abs(diff).mean(2)[flat].mean()) if flat.any() else 0.0
        psnr = 10 * np.log10(1 / mse) if mse > 0 else float("inf")
        if psnr >= budget.psnr - PSNR_SLACK and flat_change <= budget.flat + 1e-6:
            break
        delta = delta * 0.85
        out = px.merge(work, delta)
    return out


PSNR_SLACK = 0.75  # dB below the preset's PSNR that rounding may cost before we shrink
