"""The one engine call every front uses: protect(pixels, params, progress, cancel) -> Result."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from . import pixels as px
from . import runtime
from .cloak import presets, shaping, targets
from .cloak.optimize import optimize
from .errors import Cancelled
from .measure import metrics, report_text
from .models import resolve_models
from .params import Params

Progress = Callable[[float, str], None]
Cancel = Callable[[], bool]
FIT_SEARCH_PIXELS = 2_000_000  # fit_to_budget's scale search measures at most about this many pixels
FIT_CLOSE = 0.9  # an SSIM/LPIPS fit stops once the binding figure spends this much of its allowance
FIT_TOLERANCE = 0.05  # ... or once the largest passing and smallest failing scales are this close (log)


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
    return _run(pixels, params or Params(), progress, cancel, report=True)


def preview(pixels: np.ndarray, params: Params | None = None, cancel: Cancel | None = None) -> np.ndarray:
    """What the dialog shows: the instant cloak of `pixels` (a layer, or a crop of it at 100 %) at
    params' intensity, fitted to its PSNR, flat-area and SSIM limits, without the report and without
    the LPIPS check (half a preview's time; the protection itself keeps it, so where LPIPS binds, a
    painting's fine texture, the result is a little fainter than its preview). Raises like protect."""
    return _run(pixels, replace(params or Params(), quality="instant"), None, cancel, report=False).pixels


def _run(pixels: np.ndarray, params: Params, progress: Progress | None, cancel: Cancel | None,
         report: bool) -> Result:
    """protect's work; `report=False` (preview's): no measurements, no LPIPS check in the fit."""
    report_progress = progress or (lambda f, m: None)
    should_stop = cancel or (lambda: False)
    work = px.split(pixels)
    targets.check(params.target)  # before the models load: a bad target image must not cost a run
    models = resolve_models(params.model_list)

    def check_cancel() -> None:
        if should_stop():
            raise Cancelled("protection cancelled; nothing was changed")

    budget, search = presets.resolve(params)  # once: the optimizer and the fit spend the same budget
    delta = optimize(work, params, models, lambda f, m: report_progress(0.85 * f, m), check_cancel,
                     preset=(budget, search))
    check_cancel()
    report_progress(0.86, "checking visibility after rounding")
    seen: dict[str, float] = {}
    out = fit_to_budget(work, delta, budget, check_lpips=report, seen=seen)
    check_cancel()
    if not report:
        report_progress(1.0, "done")
        return Result(out, {})
    report_progress(0.92, "measuring the protection")
    figures = metrics.measure(work.rgb, px.to_float_rgb(out), models, seed=params.seed, lpips=True,
                             copy_views=metrics.REPORT_COPY_VIEWS, copy_side=search.report_window,
                             known=seen, quick=search.quick_report)
    figures["models_used"] = models
    figures["runtime"] = runtime.choose().to_dict()
    figures["params"] = params.to_dict()
    figures["text"] = report_text.render(figures)  # with what ran, now that the report says it
    report_progress(1.0, "done")
    return Result(out, figures)


def fit_to_budget(work: px.Work, delta: np.ndarray, budget: presets.Budget,
                  check_lpips: bool = True, seen: dict[str, float] | None = None) -> np.ndarray:
    """Spend the preset's visibility budget, measured on the output in its own format.

    The optimizer's change is scaled, on flat areas to the preset's mean flat allowance and elsewhere
    to its PSNR (up or down: a map's caps and pruning leave a run below its budget), then shrunk while
    SSIM or LPIPS say more than the preset allows. Rounding to the output format is measured, not
    assumed. `seen`, when given, receives the SSIM and LPIPS measured on the returned output (the
    report then need not measure them again)."""
    rgb = work.rgb
    editable = work.editable > 0
    flat = metrics.flat_mask(rgb) & editable
    textured = ~flat & editable
    d = delta.astype(np.float32)
    grey = d.mean(2, keepdims=True) if work.grey else d
    mean_flat = float(np.abs(grey).mean(2)[flat].mean()) if flat.any() else 0.0
    sum_flat = float(np.square(grey[flat], dtype=np.float64).sum()) if flat.any() else 0.0
    sum_tex = float(np.square(grey[textured], dtype=np.float64).sum()) if textured.any() else 0.0
    s_tex, s_flat = shaping.spend_gains(mean_flat, sum_flat, sum_tex, rgb.size, budget)

    def output(st: float, sf: float) -> np.ndarray:
        gain = np.where(flat, sf, st).astype(np.float32)[..., None]
        scaled = d * gain
        peak = np.where(flat, presets.FLAT_PEAK * budget.flat, budget.linf).astype(np.float32)[..., None]
        return px.merge(work, np.clip(scaled, -peak, peak))

    def measured(out: np.ndarray) -> tuple[float, float]:
        diff = px.to_float_rgb(out) - rgb
        mse = float(np.mean(np.square(diff, dtype=np.float64)))
        flat_change = float(np.abs(diff).mean(2)[flat].mean()) if flat.any() else 0.0
        return (10 * np.log10(1 / mse) if mse > 0 else float("inf")), flat_change

    # the scale search measures every k-th row of a large image (means over a few megapixels are
    # exact to ~0.01 dB); the check below measures the whole output
    k = max(1, int(np.ceil(flat.size / FIT_SEARCH_PIXELS)))
    full = (work, d, flat, rgb)
    if k > 1:
        work = px.Work(rgb[::k], work.editable[::k], work.grey, work.source[::k])
        d, flat, rgb = d[::k], flat[::k], rgb[::k]
    # a sampled search aims a little inside the budget: the whole image is checked below
    aim_psnr, aim_flat = budget.psnr + (0.03 if k > 1 else 0.0), budget.flat * (0.985 if k > 1 else 1.0)
    out = output(s_tex, s_flat)
    for _ in range(4):  # clipping and rounding move the figures: correct from what was measured
        psnr, flat_change = measured(out)
        ok_psnr = aim_psnr <= psnr < aim_psnr + 0.15
        ok_flat = 0.9 * aim_flat < flat_change <= aim_flat
        if (ok_psnr or s_tex == 0) and (ok_flat or s_flat == 0 or flat_change > aim_flat):
            break
        if flat_change > aim_flat or (flat_change > 0 and not ok_flat and s_flat < presets.MAX_GAIN):
            s_flat = min(presets.MAX_GAIN, s_flat * aim_flat / max(flat_change, 1e-9))
        if np.isfinite(psnr) and s_tex > 0:
            s_tex = min(presets.MAX_GAIN, s_tex * 10 ** ((psnr - aim_psnr - 0.05) / 20))
        out = output(s_tex, s_flat)
    if k > 1:
        work, d, flat, rgb = full
        out = output(s_tex, s_flat)
    # never more visible than promised (PSNR, flat areas, SSIM, LPIPS), yet spent: an SSIM/LPIPS miss
    # is shrunk along the measured slope (clipping at the caps makes the response anything but
    # proportional) until one scale passes, then the largest passing scale is bracketed by bisection
    tried: list[tuple[float, float]] = []  # (log scale, log over-ratio) of SSIM/LPIPS misses
    scale, passed, failed = 0.0, None, None  # log scales: current, largest within, smallest over
    best, best_figures = None, {}
    for attempt in range(12):
        psnr, flat_change = measured(out)
        if psnr < budget.psnr or flat_change > budget.flat * 1.001:  # rounding at full size moved them
            shrink = 10 ** (min(0.0, psnr - budget.psnr - 0.02) / 20) if attempt < 3 else 0.92
            s_tex *= shrink
            s_flat *= min(shrink, 0.97) if flat_change > budget.flat * 1.001 else shrink
            out, passed, failed, tried = output(s_tex, s_flat), None, None, []
            continue
        figures: dict[str, float] = {}
        over = _over(rgb, px.to_float_rgb(out), budget, check_lpips, figures)
        if over <= 1.0:
            passed, best, best_figures = scale, out, figures
            if failed is None or over >= FIT_CLOSE or failed - passed < FIT_TOLERANCE:
                break
        else:
            failed = scale
            tried.append((scale, np.log(over)))
        step = (passed + failed) / 2 - scale if passed is not None else _slope_step(tried)
        scale += step
        s_tex, s_flat = s_tex * np.exp(step), s_flat * np.exp(step)
        out = output(s_tex, s_flat)
    if best is not None:
        out = best
        if seen is not None:
            seen.update(best_figures)
    return out


def _slope_step(tried: list[tuple[float, float]]) -> float:
    """The next log-scale step after SSIM/LPIPS misses (log scale, log over-ratio), none passing yet:
    along the slope the last two misses measured (1 until there are two), at most x0.6 per step."""
    slope = 1.0
    if len(tried) > 1:
        (s0, o0), (s1, o1) = tried[-2:]
        if s1 != s0 and o1 != o0:
            slope = (o1 - o0) / (s1 - s0)
    return float(np.clip(-(tried[-1][1] + 0.01) / max(slope, 0.3), np.log(0.6), np.log(0.97)))


def _over(orig: np.ndarray, prot: np.ndarray, budget: presets.Budget, check_lpips: bool,
          figures: dict[str, float]) -> float:
    """How far SSIM or LPIPS exceed the preset (1-SSIM or LPIPS over its limit; <= 1: within);
    `figures` receives the SSIM and LPIPS it measured."""
    figures["ssim"] = metrics.ssim(orig, prot)
    over = (1 - figures["ssim"]) / max(1 - budget.min_ssim, 1e-9)
    if over <= 1.0 and check_lpips and budget.max_lpips < 1.0:
        from .measure import lpips

        value = lpips.distance(orig, prot)
        if value is not None:
            figures["lpips"] = value
            over = max(over, value / budget.max_lpips)
    return over
