"""The measurements of docs/CONTRACTS.md (Metrics): how far the models' latents moved, and what a person sees.

All images are H x W x 3 float32 numpy arrays in [0, 1]. `latent_shift`, `noise_ratio`,
`amplification`, `copy_psnr` and `copy_over_noise` are computed on an evaluation view after each
transform T: the transformed image when it fits in EVAL_SIDE x EVAL_SIDE, else its centre crop, so
that a protection report costs the same few seconds whatever the canvas size. The trainer view
`train512` is the exception: its whole 512 x 512 crop is measured, because that is what a trainer's
model sees. Perceptual figures use the whole image at full resolution. The forwards run on
onnxruntime when it is installed (see models.runners), else torch.

The trainer view `train512` (train_view): what a LoRA / DreamBooth data loader shows the model.
  1. antialiased bicubic resize so the short side is TRAIN_SHORT = 576 px (up or down; bucketing
     trainers resize to 512-640 px on the short side for 512 training, 576 is the middle),
  2. centre crop of TRAIN_CROP = 512 x 512 px,
  3. a JPEG re-save at quality TRAIN_JPEG = 88 through Pillow (4:2:0 chroma; scraped data sets
     and trainers' caches commonly re-save at 85-90).
A source with a long side over twice its short side is first cut to its centre 2:1 part (the
crop only ever uses the centre, and memory stays bounded).
"""
from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .. import filters
from .. import pixels as px
from ..models import runners
from ..models.registry import MODELS, primary_of
from .report_text import HEADLINE_VIEW, TRAIN_CROP_SIDE, headline, render

EVAL_SIDE = 256  # protect's report: the views other than train512 (a few seconds per model)
# protect's report: the families other than the primary share this many pixels per view (report_sides)
SECONDARY_PIXELS = 2 * 192 * 192
SECONDARY_MIN = 96


# ---- transforms a trainer or platform applies (real, not differentiable) -------------------------

def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """A real JPEG round trip through Pillow (4:2:0 chroma, as most platforms re-encode)."""
    buf = io.BytesIO()
    Image.fromarray(np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255


# pixels: up to this an image is resized, and made (a px.Rows output or twin), whole and once; a larger
# one is worked a band of rows at a time (no whole-image float copy)
RESIZE_WHOLE = 4_000_000


def _whole_at_once(img: np.ndarray | px.Rows) -> bool:
    return img.shape[0] * img.shape[1] <= RESIZE_WHOLE


def _bicubic(img: np.ndarray, h: int, w: int) -> torch.Tensor:
    return F.interpolate(px.to_nchw(img), size=(h, w), mode="bicubic", antialias=True, align_corners=False)


def resize_to(img: np.ndarray | px.Rows, h: int, w: int) -> np.ndarray:
    """Bicubic resize, antialiased when shrinking (as training data loaders do). A huge canvas (or a
    px.Rows) is resized across each band of rows first, then down the narrow result: the kernel is
    separable and, along an axis kept at its size, the identity, so the pixels are the same (to float
    rounding) without a whole-image float copy."""
    height, width = img.shape[:2]
    if (h, w) == (height, width):
        return np.asarray(img)
    if isinstance(img, np.ndarray) and _whole_at_once(img):
        return px.to_hwc(_bicubic(img, h, w), clamp=True)
    across = np.concatenate([px.to_hwc(_bicubic(img[rows], rows.stop - rows.start, w))
                             for rows in px.bands(height, BAND)])
    return px.to_hwc(_bicubic(across, h, w), clamp=True)


def resize_short(img: np.ndarray, short: int) -> np.ndarray:
    """Antialiased bicubic resize so the short side is `short` (as training data loaders do)."""
    h, w = img.shape[:2]
    s = short / min(h, w)
    return resize_to(img, max(1, round(h * s)), max(1, round(w * s)))


def local(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Mark a transform that works on each neighbourhood alone (JPEG blocks, noise, blur): the
    evaluation view is cut first and only it is transformed (a 24 MP image costs no more)."""
    fn.local = True  # type: ignore[attr-defined]
    return fn


def whole(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Mark a transform whose output is itself the view a model sees (a trainer's crop): it is
    measured whole, never cut to the evaluation side."""
    fn.whole = True  # type: ignore[attr-defined]
    return fn


TRAIN_SHORT, TRAIN_CROP, TRAIN_JPEG = 576, TRAIN_CROP_SIDE, 88


CROP_AT = {"centre": (0.5, 0.5), "top-left": (0.0, 0.0), "top-right": (0.0, 1.0),
           "bottom-left": (1.0, 0.0), "bottom-right": (1.0, 1.0)}  # (top, left) as fractions of the slack


def train_view(img: np.ndarray, short: int = TRAIN_SHORT, at: str = "centre",
               quality: int = TRAIN_JPEG) -> np.ndarray:
    """The `train512` trainer view (see the module docstring): short side resized to 576 px, centre
    crop 512 x 512, JPEG quality 88. Always TRAIN_CROP x TRAIN_CROP x 3. `short` (>= TRAIN_CROP),
    `at` (a CROP_AT position) and `quality`: the same recipe at another bucket size, crop position
    and re-save, for the several trainer views of copy_over_views."""
    h, w = img.shape[:2]
    if h > 2 * w:  # only the middle 2:1 part is ever used at these sizes: cut to it (bounded memory)
        img = img[(h - 2 * w) // 2: (h - 2 * w) // 2 + 2 * w]
    elif w > 2 * h:
        img = img[:, (w - 2 * h) // 2: (w - 2 * h) // 2 + 2 * h]
    im = resize_short(img, short)
    h, w = im.shape[:2]
    fy, fx = CROP_AT[at]
    top, left = int((h - TRAIN_CROP) * fy), int((w - TRAIN_CROP) * fx)  # the centre: (h - crop) // 2
    return jpeg(im[top: top + TRAIN_CROP, left: left + TRAIN_CROP], quality)


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "train512": whole(train_view),
    "jpeg75": local(lambda im: jpeg(im, 75)),
}  # protect's report (time-bound); verify's SUITE adds resize512 and the rest
_QUICK_TRANSFORMS = {HEADLINE_VIEW: TRANSFORMS[HEADLINE_VIEW]}  # a quick report's one view (measure)
REPORT_COPY_VIEWS = (HEADLINE_VIEW,)  # where protect's report runs the decoders (time)


# ---- perceptual figures ------------------------------------------------------------------------

BAND = 512  # rows at a time where a whole-image figure would otherwise copy a huge canvas


def mean_square(a: np.ndarray, b: np.ndarray | None = None) -> float:
    """The mean of (a - b)^2 (of a^2 without b), summed in float64 a band of rows at a time."""
    total = 0.0
    for rows in px.bands(a.shape[0], BAND):
        d = a[rows].astype(np.float32)
        if b is not None:
            d -= b[rows]
        total += float(np.square(d, dtype=np.float64).sum())
    return total / max(a.size, 1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = mean_square(a, b)
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def _gauss_window() -> np.ndarray:
    """SSIM's window (filters.ssim_window), float64 normalised, then float32."""
    return filters.ssim_window(torch.float64).numpy().astype(np.float32)


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable symmetric filter over axes 0 and 1, keeping only the fully covered ('valid')
    region; pairs of taps with equal weight share one multiplication."""
    n, (h, w) = len(g), x.shape[:2]
    m = n // 2
    acc = g[m] * x[:, m: m + w - n + 1]
    for k in range(m):
        acc += g[k] * (x[:, k: k + w - n + 1] + x[:, n - 1 - k: n - 1 - k + w - n + 1])
    out = g[m] * acc[m: m + h - n + 1]
    for k in range(m):
        out += g[k] * (acc[k: k + h - n + 1] + acc[n - 1 - k: n - 1 - k + h - n + 1])
    return out


SSIM_MAX_PIXELS = 4_000_000


def _ssim_sums(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> tuple[float, int]:
    """Sum and count of the SSIM map over the valid region, channel by channel (memory)."""
    c1, c2 = filters.SSIM_C1, filters.SSIM_C2
    total, count = 0.0, 0
    for ch in range(a.shape[2]):
        off = np.float32(a[..., ch].mean())
        x, y = a[..., ch:ch + 1].astype(np.float32) - off, b[..., ch:ch + 1].astype(np.float32) - off
        mx, my = _filter_valid(x, g), _filter_valid(y, g)
        vx = _filter_valid(x * x, g) - mx * mx
        vy = _filter_valid(y * y, g) - my * my
        cxy = _filter_valid(x * y, g) - mx * my
        del x, y
        mx += off
        my += off
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        total += float(s.sum(dtype=np.float64))
        count += s.size
    return total, count


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over the three channels (filters' window: Gaussian 11, sigma 1.5, as Wang et al.; the same
    as scikit-image with gaussian_weights=True). Float32 on differences from the image mean
    (agrees with float64 to ~1e-6 at a third of the cost). Above SSIM_MAX_PIXELS, the mean is
    taken over 256 px tiles on a regular grid spread over the whole image (bounded time)."""
    g = _gauss_window()
    h, w = a.shape[:2]
    if min(h, w) < len(g):
        return 1.0 if np.array_equal(a, b) else float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    if h * w <= SSIM_MAX_PIXELS:
        total, count = _ssim_sums(np.asarray(a), np.asarray(b), g)
        return total / count
    tile, pad = 256, len(g) - 1
    step = tile * int(np.ceil(np.sqrt(h * w / SSIM_MAX_PIXELS)))
    total, count = 0.0, 0
    for top in range(0, h - tile - pad + 1, step):
        for left in range(0, w - tile - pad + 1, step):
            window = (slice(top, top + tile + pad), slice(left, left + tile + pad))
            t, c = _ssim_sums(a[window], b[window], g)
            total, count = total + t, count + c
    return total / count


def _box_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)^2 neighbourhood with replicated edges (separable running sums: short
    float32 sums, so no precision is lost on mean-free data)."""
    n = 2 * r + 1
    p = np.pad(x, ((r, r), (r, r), (0, 0)), mode="edge")
    h, w = x.shape[:2]
    rows = p[:, 0:w].copy()
    for k in range(1, n):
        rows += p[:, k: k + w]
    out = rows[0:h].copy()
    for k in range(1, n):
        out += rows[k: k + h]
    return out / (n * n)


def flat_mask(img: np.ndarray, side: int = filters.FLAT_SIDE) -> np.ndarray:
    """True where the 7x7 neighbourhood's standard deviation (mean over channels) is under 2/255
    (filters' flat-area rule; cloak.shaping.flat is its torch twin). Computed on bands of rows with
    their neighbours above and below, so a 12-megapixel image costs a few MB of float copies.
    `side`: another neighbourhood (the bench's outline margin: flat at 3x3, not at 7x7)."""
    r = side // 2
    h = img.shape[0]
    means = [float(img[..., ch].mean(dtype=np.float64)) for ch in range(img.shape[2])]
    out = np.empty(img.shape[:2], bool)
    for rows in px.bands(h, BAND):
        top, bottom = rows.start, rows.stop
        lo, hi = max(0, top - r), min(h, bottom + r)  # the band and its neighbours (edges replicated)
        std_sum = np.zeros((hi - lo, img.shape[1]), np.float32)
        for ch in range(img.shape[2]):
            x = img[lo:hi, :, ch:ch + 1].astype(np.float32)
            x -= means[ch]  # mean-free: the running sums keep their precision
            m, m2 = _box_mean(x, r), _box_mean(x * x, r)
            std_sum += np.sqrt(np.clip(m2 - m * m, 0, None))[..., 0]
        out[top:bottom] = std_sum[top - lo: top - lo + bottom - top] / img.shape[2] < filters.FLAT_STD
    return out


def perceptual(orig: np.ndarray, prot: np.ndarray, lpips: bool = False,
               known: dict[str, float] | None = None, flat: np.ndarray | None = None) -> dict[str, float]:
    """psnr (dB), ssim, linf and flat_change (0-255 units) of prot against orig; `lpips`
    (shift-tolerant LPIPS, AlexNet) when its weights are installed and `lpips` is true. `known`:
    ssim / lpips already measured on this very pair (protect.fit_to_budget's last check), not redone;
    `flat`: orig's flat_mask, when the caller has it."""
    known = known or {}
    flat = flat_mask(orig) if flat is None else flat
    linf = flat_abs = 0.0
    for rows in px.bands(orig.shape[0], BAND):  # no whole-image copies of a huge canvas
        diff = np.abs(change(orig[rows], prot[rows]))
        linf = max(linf, float(diff.max()))
        flat_abs += float(diff.mean(2)[flat[rows]].sum(dtype=np.float64))
    n_flat = int(flat.sum())
    out = {
        "psnr": round(psnr(orig, prot), 3),
        "ssim": round(known["ssim"] if "ssim" in known else ssim(orig, prot), 5),
        "linf": round(linf * 255, 3),
        "flat_change": round(flat_abs / n_flat * 255, 4) if n_flat else 0.0,
        "flat_fraction": round(n_flat / flat.size, 4),
    }
    if lpips:
        from . import lpips as lp

        value = known["lpips"] if "lpips" in known else lp.distance(orig, prot)
        if value is not None:
            out["lpips"] = round(value, 5)
    return out


# ---- model figures -----------------------------------------------------------------------------

def eval_view(img: np.ndarray, side: int = EVAL_SIDE) -> np.ndarray:
    """The whole image when it fits in side x side, else its centre crop (bounded time and memory)."""
    h, w = img.shape[:2]
    # offsets on the 16 px grid of JPEG blocks: a local transform gives the same pixels on the crop
    top, left = max(0, (h - side) // 32 * 16), max(0, (w - side) // 32 * 16)
    return img[top: top + side, left: left + side]


def random_sign(delta: np.ndarray, seed: int | np.random.Generator) -> np.ndarray:
    """delta with each value's sign drawn at random: the same visibility, no optimisation."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    bits = np.unpackbits(rng.integers(0, 256, (delta.size + 7) // 8, dtype=np.uint8))  # 8 signs a draw
    flip = bits[: delta.size].reshape(delta.shape).view(bool)
    out = np.abs(delta)
    np.negative(out, out=out, where=flip)
    return out


def change(orig: np.ndarray, prot: np.ndarray) -> np.ndarray:
    """The perturbation delta = x' - x (float32) that every figure is about."""
    return prot.astype(np.float32) - orig


def twin_rows(orig: np.ndarray, prot: np.ndarray | px.Rows, seed: int) -> px.Rows:
    """The random-sign twin x + delta~ of a protected image x + delta (see random_sign), made as it is
    read (px.Rows): each band of BAND rows draws its signs from its own generator (seed, band), so
    any rows read are the same whatever was read before, and a huge canvas needs no float copy."""
    h = orig.shape[0]

    def make(rows: slice) -> np.ndarray:
        out = np.empty((rows.stop - rows.start, *orig.shape[1:]), np.float32)
        for band in range(rows.start // BAND, -(-rows.stop // BAND)):
            top, bottom = max(rows.start, band * BAND), min(rows.stop, (band + 1) * BAND, h)
            whole = slice(band * BAND, min(h, (band + 1) * BAND))
            signs = np.random.default_rng([seed, band])
            noisy = orig[whole] + random_sign(change(orig[whole], prot[whole]), signs)
            np.clip(noisy[top - whole.start: bottom - whole.start], 0, 1,
                    out=out[top - rows.start: bottom - rows.start])
        return out

    return px.Rows(orig.shape, make)


def twin(orig: np.ndarray, prot: np.ndarray | px.Rows, seed: int) -> np.ndarray:
    """twin_rows as one array."""
    return np.asarray(twin_rows(orig, prot, seed))


def _twin_for_views(orig: np.ndarray, prot: np.ndarray | px.Rows, seed: int) -> np.ndarray | px.Rows:
    """The twin the model figures read several views of: one array up to RESIZE_WHOLE pixels (made
    once), made as read beyond (a huge canvas: no float copy, a few more passes)."""
    lazy = twin_rows(orig, prot, seed)
    return np.asarray(lazy) if _whole_at_once(orig) else lazy


def _norm(a: np.ndarray) -> float:
    return float(np.sqrt(np.sum(a.astype(np.float64) ** 2)))


def views_of(transforms: dict[str, Callable] | None, side: int = EVAL_SIDE,
             whole_side: int | None = None) -> dict[str, Callable]:
    """Key prefix -> view function: "" for the clean view, "after.<name>." for each transform (the
    ones measured whole cut to a centre window of `whole_side` when given)."""
    views: dict[str, Callable] = {"": lambda im: eval_view(im, side)}
    for tname, fn in (transforms if transforms is not None else TRANSFORMS).items():
        if getattr(fn, "whole", False):
            views[f"after.{tname}."] = fn if whole_side is None else (
                lambda im, fn=fn: eval_view(fn(im), whole_side))
        elif getattr(fn, "local", False):
            views[f"after.{tname}."] = lambda im, fn=fn: fn(eval_view(im, side))
        else:
            views[f"after.{tname}."] = lambda im, fn=fn: eval_view(fn(im), side)
    return views


def _copy_psnr(copy: np.ndarray, ref: np.ndarray) -> float:
    """PSNR of one decoded copy against another, both as displayed (clipped to [0, 1])."""
    return psnr(np.clip(copy, 0, 1), np.clip(ref, 0, 1))


def copy_over_noise(copy_prot: float, copy_noise: float) -> float:
    """copy_psnr of the random-sign twin minus that of the protected image (dB); 0 when neither
    copy changed at all."""
    if copy_prot == copy_noise:  # also both infinite: no change, nothing gained
        return 0.0
    return copy_noise - copy_prot


def model_figures(name: str, orig: np.ndarray, prot: np.ndarray,
                  transforms: dict[str, Callable] | None = None,
                  seed: int = 0, side: int = EVAL_SIDE, backend: str = "onnxruntime",
                  on_view: Callable[[int, int], None] | None = None,
                  copy_views: tuple[str, ...] | None = None,
                  noisy: np.ndarray | None = None, whole_side: int | None = None) -> dict[str, float]:
    """latent_shift and noise_ratio for one model, plus amplification, copy_psnr and copy_over_noise
    where a decoder exists; clean and after each transform (keys `after.<name>.<figure>`).
    Transforms must be deterministic (the same noise for every image they see), so that
    T(x') - T(x) is the perturbation's effect alone. `copy_views` ("clean" and transform names)
    limits the decoder's figures to those views (None: every view). `noisy`: the random-sign twin,
    when the caller measures several models (twin(orig, prot, seed)). `whole_side`: cut
    the views measured whole (train512) to their centre window of this side (None: whole)."""
    net = runners.nets(name, backend)
    rms_delta = float(np.sqrt(mean_square(prot, orig)))
    if noisy is None:
        noisy = _twin_for_views(orig, prot, seed)
    out: dict[str, float] = {}
    views = views_of(transforms, side, whole_side)
    for i, (prefix, view) in enumerate(views.items()):
        if on_view is not None:
            on_view(i, len(views))
        z0, z1, zn = (net.encode(px.nchw(view(im))) for im in (orig, prot, noisy))
        moved = _norm(z1 - z0)
        out[prefix + "latent_shift"] = round(moved / max(_norm(z0), 1e-12), 5)
        out[prefix + "noise_ratio"] = round(moved / max(_norm(zn - z0), 1e-12), 4)
        view_name = prefix[len("after."):-1] if prefix else "clean"
        if net.decode is None or (copy_views is not None and view_name not in copy_views):
            continue
        d0, d1 = net.decode(z0), net.decode(z1)
        if rms_delta > 0:
            seen = float(np.sqrt(np.mean((d1 - d0).astype(np.float64) ** 2)))
            out[prefix + "amplification"] = round(seen / rms_delta, 4)
        c1 = _copy_psnr(d1, d0)
        cn = _copy_psnr(net.decode(zn), d0) if rms_delta > 0 else c1
        out[prefix + "copy_psnr"] = round(c1, 3)
        out[prefix + "copy_over_noise"] = round(copy_over_noise(c1, cn), 3)
    return out


def report_sides(models: list[str], side: int, copy_side: int) -> dict[str, tuple[int, int | None]]:
    """Each model's (evaluation side, side of the trainer view's window) in protect's report, primary
    first: the primary family (registry.PRIMARY, the headline) at `side` with its trainer view's copy
    on `copy_side` (its whole crop at TRAIN_CROP); the others share SECONDARY_PIXELS between them, so
    the report costs the same however many families are installed."""
    first = primary_of(models)
    rest = [m for m in models if m != first]
    small = max(SECONDARY_MIN, int(np.sqrt(SECONDARY_PIXELS / max(1, len(rest)))) // 32 * 32)
    sides = {} if first is None else {first: (side, None if copy_side >= TRAIN_CROP else copy_side)}
    sides.update({m: (min(side, small), min(small, copy_side)) for m in rest})
    return sides


# #19's several trainer views (short side, crop position, JPEG quality): every bucket size a 512-1024
# trainer uses, the crop at the centre and at each corner, a re-save from 75 to 95
TRAIN_VIEWS: tuple[tuple[int, str, int], ...] = (
    (512, "centre", 88), (640, "top-left", 75), (768, "bottom-right", 95), (1024, "centre", 80),
    (512, "top-right", 90), (640, "centre", 85), (768, "bottom-left", 78), (1024, "top-left", 92),
)


def copy_over_views(orig: np.ndarray, prot: np.ndarray, models: tuple[str, ...] = ("taef2", "taesana"),
                    views: tuple[tuple[int, str, int], ...] = TRAIN_VIEWS, seed: int = 0,
                    cache: dict | None = None) -> dict[str, dict[str, float]]:
    """The protection judged over several trainer views (#19) instead of one: a trainer's model
    learns whichever view its loader drew, so one lucky geometry says little.

    Per model: `copy_psnr` median (the headline), mean and worst (the highest) over the views where
    a decoder exists, and `latent_shift` / `noise_ratio` medians after the views (the change an
    encoder without decoder, e.g. taesana, sees). `cache`: a dict kept between calls on the same
    original, which then encodes and decodes it once."""
    cache = {} if cache is None else cache
    noisy = _twin_for_views(orig, prot, seed)
    out: dict[str, dict[str, float]] = {}
    for name in models:
        net = runners.nets(name)
        copies, shifts, ratios = [], [], []
        for view in views:
            key = (name, view)
            if key not in cache:
                z0 = net.encode(px.nchw(train_view(orig, *view)))
                cache[key] = (z0, net.decode(z0) if net.decode is not None else None)
            z0, d0 = cache[key]
            z1, zn = (net.encode(px.nchw(train_view(im, *view))) for im in (prot, noisy))
            moved = _norm(z1 - z0)
            shifts.append(moved / max(_norm(z0), 1e-12))
            ratios.append(moved / max(_norm(zn - z0), 1e-12))
            if d0 is not None:
                copies.append(_copy_psnr(net.decode(z1), d0))
        figs = {"latent_shift": float(np.median(shifts)), "noise_ratio": float(np.median(ratios))}
        if copies:
            figs.update(copy_psnr=float(np.median(copies)), copy_mean=float(np.mean(copies)),
                        copy_worst=float(np.max(copies)))
        out[name] = {k: round(v, 4) for k, v in figs.items()}
    return out


def _report_plan(model: str, first: str | None,
                 transforms: dict[str, Callable] | None) -> tuple[dict[str, Callable] | None, str]:
    """The views and backend protect's report measures `model` with: every view on onnxruntime for the
    primary and the f32 family (taesana); for the other f8 families only the views measured whole
    (train512, their copy: each view costs three encodes, whatever their number) on torch (opening an
    onnxruntime session for a small window costs more time, and keeps more memory, than it saves)."""
    if model == first or MODELS[model].f32:
        return transforms, "onnxruntime"
    chosen = TRANSFORMS if transforms is None else transforms
    return {k: fn for k, fn in chosen.items() if getattr(fn, "whole", False)}, "torch"


def measure(orig: np.ndarray, prot: np.ndarray | px.Rows, models: list[str], seed: int = 0,
            transforms: dict[str, Callable] | None = None, lpips: bool = False,
            side: int = EVAL_SIDE, copy_views: tuple[str, ...] | None = None,
            copy_side: int = TRAIN_CROP, known: dict[str, float] | None = None, quick: bool = False,
            flat: np.ndarray | None = None) -> dict:
    """The protection report of docs/CONTRACTS.md: {"perceptual": {...}, "models": {name: {...}}, "headline":
    report_text.headline(), "text": the report in words (report_text.render)}.

    Sized for protect()'s report (report_sides): the primary model's figures on a view of at most
    `side` px and train512 on its whole 512 px crop (or a `copy_side` window of it: fast's report),
    the other installed families on small windows, so the cost does not grow with them; no LPIPS
    unless asked (it costs 1-3 s). For a benchmark's exact figures pass side=4096 (the whole image
    up to that size) and lpips=True; `artcloak verify` measures every model at side 512. `known`:
    perceptual figures already measured on this pair (perceptual's); `flat`: orig's flat_mask.
    `quick` (the instant preset's report): the trainer view alone, every side at `copy_side`, and
    only the primary family and the f32 ones (cheap); the other f8 families are left to
    `artcloak verify`."""
    if isinstance(prot, px.Rows) and _whole_at_once(prot):
        prot = np.asarray(prot)  # small enough: converted once, not again for every view
    if quick:
        first = primary_of(models)
        models = [m for m in models if m == first or MODELS[m].f32]
        transforms, side = _QUICK_TRANSFORMS, copy_side
    noisy = _twin_for_views(orig, prot, seed)  # one twin for every model
    sides = report_sides(models, side, copy_side)
    plans = {m: _report_plan(m, primary_of(models), transforms) for m in sides}
    report: dict = {
        "perceptual": perceptual(orig, prot, lpips=lpips, known=known, flat=flat),
        "models": {m: model_figures(m, orig, prot, plans[m][0], seed, s, copy_views=copy_views, noisy=noisy,
                                    whole_side=w, backend=plans[m][1])
                   for m, (s, w) in sides.items()},
        "eval_side": side,
        "windows": {m: {"side": s, "copy_side": w or TRAIN_CROP} for m, (s, w) in sides.items()},
    }
    report["headline"] = headline(report)
    report["text"] = render(report)
    return report
