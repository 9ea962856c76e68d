"""The one engine call every front uses: protect(pixels, params, progress, cancel) -> Result."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import metrics, pixels as px
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

    delta = optimize(work, params, models, lambda f, m: report_progress(0.9 * f, m), check_cancel)
    out = px.merge(work, delta)
    check_cancel()
    report_progress(0.92, "measuring the protection")
    report = metrics.measure(work.rgb, px.to_float_rgb(out), models, seed=params.seed)
    report["models_used"] = models
    report["params"] = params.to_dict()
    report_progress(1.0, "done")
    return Result(out, report)
