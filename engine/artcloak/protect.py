"""The one engine call every front uses: protect(pixels, params, progress, cancel) -> Result."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from . import pixels as px
from . import runtime
from .cloak import presets, shaping, targets
from .cloak.carry import BAND, Carry
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
    runtime.release_memory()  # the steps' freed memory, before the full-size passes
    report_progress(0.86, "checking visibility after rounding")
    seen: dict[str, float] = {}
    flat = metrics.flat_mask(work.rgb)  # once: the fit and the report judge the same flat areas
    out = fit_to_budget(work, delta, budget, check_lpips=report, seen=seen, flat=flat)
    check_cancel()
    if not report:
        report_progress(1.0, "done")
        return Result(out, {})
    report_progress(0.92, "measuring the protection")
    figures = metrics.measure(work.rgb, px.lazy_colour(out), models, seed=params.seed, lpips=True,
                             copy_views=metrics.REPORT_COPY_VIEWS, copy_side=search.report_window,
                             known=seen, quick=search.quick_report, flat=flat)
    figures["models_used"] = models
    figures["runtime"] = runtime.choose().to_dict()
    figures["params"] = params.to_dict()
    figures["text"] = report_text.render(figures)  # with what ran, now that the report says it
    report_progress(1.0, "done")
    return Result(out, figures)


def fit_to_budget(work: px.Work, delta: np.ndarray, budget: presets.Budget,
                  check_lpips: bool = True, seen: dict[str, float] | None = None,
                  flat: np.ndarray | None = None) -> np.ndarray:
    """Spend the preset's visibility budget, measured on the output in its own format.

    The optimizer's change (at its working resolution, or at full size: carry.Carry brings it up a
    band of rows at a time) is scaled, on flat areas to the preset's mean flat allowance and elsewhere
    to its PSNR (up or down: a map's caps and pruning leave a run below its budget), then shrunk while
    SSIM or LPIPS say more than the preset allows. Rounding to the output format is measured, not
    assumed. `seen`, when given, receives the SSIM and LPIPS measured on the returned output (the
    report then need not measure them again). `flat`: the original's metrics.flat_mask, when the
    caller has it (protect's report uses the same)."""
    rgb = work.rgb
    editable = work.editable > 0
    carry = Carry(work, delta, metrics.flat_mask(rgb) if flat is None else flat, budget)
    flat = carry.flat & editable
    textured = ~flat & editable
    # the gains are found on every k-th row of a large image (means over a few megapixels are exact
    # to ~0.01 dB); the whole output is then made and checked a band at a time
    k = max(1, int(np.ceil(flat.size / FIT_SEARCH_PIXELS)))
    rows = slice(None, None, k)
    sample = px.Work(rgb[rows], work.editable[rows], work.grey, work.source[rows])
    at_sample = (np.arange(rgb.shape[0])[rows][:, None], np.arange(rgb.shape[1])[None])  # its pixels' y, x
    d_sample, flat_sample = carry.rows(rows), flat[rows]
    # the starting gains from the sample's sums, scaled to the whole image
    grey = d_sample.mean(2, keepdims=True) if work.grey else d_sample
    f, share = flat_sample, rgb.size / max(d_sample.size, 1)
    sum_flat = share * float(np.square(grey[f], dtype=np.float64).sum())
    sum_tex = share * float(np.square(grey[textured[rows]], dtype=np.float64).sum())
    mean_flat = float(np.abs(grey).mean(2)[f].mean()) if f.any() else 0.0
    s_tex, s_flat = shaping.spend_gains(mean_flat, sum_flat, sum_tex, rgb.size, budget)

    def on_sample(st: float, sf: float) -> tuple[np.ndarray, float, float]:
        out = _apply(sample, d_sample, flat_sample, st, sf, budget, at_sample)
        return (out, *_Sums.of(sample.rgb, out, flat_sample).figures())

    def whole(st: float, sf: float) -> tuple[np.ndarray, float, float]:
        if k == 1:
            return on_sample(st, sf)
        out, sums = np.empty_like(work.source), _Sums()
        for band in px.bands(rgb.shape[0], BAND):
            part = px.Work(rgb[band], work.editable[band], work.grey, work.source[band])
            where = (np.arange(band.start, band.stop)[:, None], at_sample[1])
            out[band] = _apply(part, carry.rows(band), flat[band], st, sf, budget, where)
            sums.add(_Sums.of(part.rgb, out[band], flat[band]))
        return (out, *sums.figures())

    # a sampled search aims a little inside the budget: the whole image is checked below
    aim_psnr, aim_flat = budget.psnr + (0.03 if k > 1 else 0.0), budget.flat * (0.985 if k > 1 else 1.0)
    flat_cap = (0.5 * rgb.size * 10 ** (-budget.psnr / 10) / sum_flat) ** 0.5 if sum_flat > 0 else 0.0
    s_flat = _fit_flat(sample, d_sample, flat_sample, at_sample, s_flat, min(presets.MAX_GAIN, flat_cap),
                       aim_flat, budget)
    out, psnr, flat_change = on_sample(s_tex, s_flat)
    for _ in range(4):  # clipping and rounding move the PSNR: correct from what was measured
        if aim_psnr <= psnr < aim_psnr + 0.15 or s_tex == 0 or not np.isfinite(psnr):
            break
        s_tex = min(presets.MAX_GAIN, s_tex * 10 ** ((psnr - aim_psnr - 0.05) / 20))
        out, psnr, flat_change = on_sample(s_tex, s_flat)
    if k > 1:  # (at k = 1 the sample is the whole image, measured just above)
        out, psnr, flat_change = whole(s_tex, s_flat)
    # never more visible than promised (PSNR, flat areas, SSIM, LPIPS), yet spent: an SSIM/LPIPS miss
    # is shrunk along the measured slope (clipping at the caps makes the response anything but
    # proportional) until one scale passes, then the largest passing scale is bracketed by bisection
    tried: list[tuple[float, float]] = []  # (log scale, log over-ratio) of SSIM/LPIPS misses
    scale, passed, failed = 0.0, None, None  # log scales: current, largest within, smallest over
    best, best_figures = None, {}
    for attempt in range(12):
        if psnr < budget.psnr or flat_change > budget.flat * 1.001:  # rounding at full size moved them
            if psnr < budget.psnr:  # the whole change a little smaller
                shrink = 10 ** ((psnr - budget.psnr - 0.02) / 20) if attempt < 3 else 0.92
                s_tex, s_flat = s_tex * shrink, s_flat * shrink
            if flat_change > budget.flat * 1.001:  # only the flat areas' part
                s_flat *= 0.97
            passed, failed, tried = None, None, []
            out, psnr, flat_change = whole(s_tex, s_flat)
            continue
        figures: dict[str, float] = {}
        over = _over(rgb, out, budget, check_lpips, figures)
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
        out, psnr, flat_change = whole(s_tex, s_flat)
    if best is not None:
        out = best
        if seen is not None:
            seen.update(best_figures)
    return out


def _fit_flat(work: px.Work, d: np.ndarray, flat: np.ndarray, where: tuple[np.ndarray, np.ndarray],
              start: float, most: float, aim: float, budget: presets.Budget) -> float:
    """The largest flat-area gain (at most `most`) whose output, rounded to its format, changes flat
    areas by at most `aim` on average. Rounding makes that mean a staircase in the gain (many flat
    pixels sit at the same cap and round up or down together), so it is bracketed and bisected on
    the flat pixels alone, not scaled in proportion: a proportional step from 1.15/255 jumped to
    0.62/255 on a flat illustration and left 1.8 dB of its PSNR budget unspent."""
    if start <= 0 or not flat.any():
        return start
    part = px.Work(work.rgb[flat][:, None], work.editable[flat][:, None], work.grey,
                   work.source[flat][:, None])
    d_flat, on = d[flat][:, None], np.ones((int(flat.sum()), 1), bool)
    fy, fx = np.nonzero(flat)
    at = tuple(np.broadcast_to(w, flat.shape)[fy, fx][:, None] for w in where)

    def change(gain: float) -> float:
        out = _apply(part, d_flat, on, 0.0, gain, budget, at)
        return float(np.abs(px.colour(out) - part.rgb).mean(dtype=np.float64))

    lo, hi = 0.0, None  # the largest gain known within, the smallest known over
    gain = min(start, most)
    for _ in range(14):
        c = change(gain)
        if c <= aim:
            lo = gain
            if c > 0.97 * aim or gain >= most:
                break
            gain = min(most, gain * aim / c if c > 0 else gain * 2) if hi is None else (lo + hi) / 2
        else:
            hi = gain
            gain = (lo + hi) / 2 if lo > 0 else gain * min(aim / c, 0.995)  # (a float mean's last bit)
        if hi is not None and hi - lo < 0.01 * hi:
            break
    return lo


def _apply(work: px.Work, d: np.ndarray, flat: np.ndarray, s_tex: float, s_flat: float,
           budget: presets.Budget, where: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """work's pixels with the change d scaled (s_flat on flat areas, s_tex elsewhere) and capped
    (FLAT_PEAK x the flat allowance, the L-inf cap), in the source's own format. On flat areas an
    integer format is rounded with an ordered dither (`where`: the pixels' rows and columns in the
    image), so the mean change there follows the gain instead of jumping as the many pixels at one
    cap round up or down together."""
    gain = np.where(flat, np.float32(s_flat), np.float32(s_tex))[..., None]
    peak = np.where(flat, np.float32(presets.FLAT_PEAK * budget.flat), np.float32(budget.linf))[..., None]
    d = np.clip(d * gain, -peak, peak)
    if work.source.dtype != np.float32 and flat.any():
        if work.grey:
            d = np.repeat(d.mean(2, keepdims=True), 3, axis=2)
        threshold = np.modf(where[0] * DITHER[0] + where[1] * DITHER[1])[0]  # R2 sequence, in [0, 1)
        target = np.floor((work.rgb + d) * work.scale + np.broadcast_to(threshold, flat.shape)[..., None])
        d = np.where(flat[..., None], (target / work.scale - work.rgb).astype(np.float32), d)
    return px.merge(work, d)


DITHER = (0.7548776662466927, 0.5698402909980532)  # Roberts' R2 low-discrepancy steps (rows, columns)


@dataclass
class _Sums:
    """What the PSNR and the flat-area change of an output are made of, summed band by band."""

    squares: float = 0.0
    values: int = 0
    flat_abs: float = 0.0
    flat_pixels: int = 0

    @classmethod
    def of(cls, rgb: np.ndarray, out: np.ndarray, flat: np.ndarray) -> _Sums:
        diff = px.colour(out) - rgb
        return cls(float(np.square(diff, dtype=np.float64).sum()), diff.size,
                   float(np.abs(diff).mean(2)[flat].sum(dtype=np.float64)), int(flat.sum()))

    def add(self, other: _Sums) -> None:
        self.squares += other.squares
        self.values += other.values
        self.flat_abs += other.flat_abs
        self.flat_pixels += other.flat_pixels

    def figures(self) -> tuple[float, float]:
        """(PSNR in dB, mean |change| on flat areas in [0, 1] units)."""
        mse = self.squares / max(self.values, 1)
        return (10 * np.log10(1 / mse) if mse > 0 else float("inf")), (
            self.flat_abs / self.flat_pixels if self.flat_pixels else 0.0)


def _slope_step(tried: list[tuple[float, float]]) -> float:
    """The next log-scale step after SSIM/LPIPS misses (log scale, log over-ratio), none passing yet:
    along the slope the last two misses measured (1 until there are two), at most x0.6 per step."""
    slope = 1.0
    if len(tried) > 1:
        (s0, o0), (s1, o1) = tried[-2:]
        if s1 != s0 and o1 != o0:
            slope = (o1 - o0) / (s1 - s0)
    return float(np.clip(-(tried[-1][1] + 0.01) / max(slope, 0.3), np.log(0.6), np.log(0.97)))


def _over(orig: np.ndarray, out: np.ndarray, budget: presets.Budget, check_lpips: bool,
          figures: dict[str, float]) -> float:
    """How far the output's SSIM or LPIPS exceed the preset (1-SSIM or LPIPS over its limit; <= 1:
    within); `figures` receives the SSIM and LPIPS it measured."""
    prot = px.lazy_colour(out)  # converted where read: SSIM's tiles, LPIPS's crop (no 12 MP float copy)
    figures["ssim"] = metrics.ssim(orig, prot)
    over = (1 - figures["ssim"]) / max(1 - budget.min_ssim, 1e-9)
    if over <= 1.0 and check_lpips and budget.max_lpips < 1.0:
        from .measure import lpips

        value = lpips.distance(orig, prot)
        if value is not None:
            figures["lpips"] = value
            over = max(over, value / budget.max_lpips)
    return over
