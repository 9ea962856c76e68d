"""The robustness suite behind `artcloak verify`: how strong is a protection, and what survives.

Every transform below is something a trainer, a platform or a "robust mimicry" attacker (Hönig et
al., ICLR 2025) applies before a model sees the image; each is measured with the figures of
metrics.model_figures for every available surrogate. Transforms are deterministic (fixed noise
seeds), so T(protected) - T(original) is the perturbation's effect alone.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch.nn.functional as F

from .. import filters
from .. import pixels as px
from ..errors import InputError
from ..files import imageio, metadata
from ..models import resolve_models, runners
from . import metrics, report_text

Progress = Callable[[float, str], None]
VERIFY_SIDE = 512  # evaluation view: the transformed image, or its centre crop of this side


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    r = max(1, int(3 * sigma + 0.5))
    t = F.pad(px.to_nchw(img), (r, r, r, r), mode="reflect")
    return px.to_hwc(filters.separable(t, filters.gaussian_kernel(sigma, r)), clamp=True)


def gaussian_noise(img: np.ndarray, sigma: float, seed: int = 1234) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, img.shape).astype(np.float32)
    return np.clip(img + noise, 0, 1)


def centre_crop(img: np.ndarray, fraction: float) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    return img[top: top + ch, left: left + cw]


def _at_most(img: np.ndarray, short: int) -> np.ndarray:
    return metrics.resize_short(img, short) if min(img.shape[:2]) > short else img


def noisy_upscale(img: np.ndarray, sigma: float = 0.1, factor: int = 4) -> np.ndarray:
    """Hönig et al.'s noisy upscaling, with a bicubic stand-in for their learned x4 upscaler: add
    noise, shrink by `factor` (antialiased, which averages the noise away), upscale back."""
    h, w = img.shape[:2]
    small = metrics.resize_to(gaussian_noise(img, sigma, seed=4321),
                              max(8, h // factor), max(8, w // factor))
    return metrics.resize_to(small, h, w)


SUITE: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "train512": ("trainer view: short side resized to 576 px, centre crop 512 x 512, JPEG quality 88 "
                 "(measured whole)", metrics.TRANSFORMS["train512"]),
    "jpeg95": ("JPEG quality 95", metrics.local(lambda im: metrics.jpeg(im, 95))),
    "jpeg85": ("JPEG quality 85", metrics.local(lambda im: metrics.jpeg(im, 85))),
    "jpeg75": ("JPEG quality 75", metrics.local(lambda im: metrics.jpeg(im, 75))),
    "resize1024": ("downscale to 1024 px on the short side", lambda im: metrics.resize_short(im, 1024)),
    "resize768": ("downscale to 768 px on the short side", lambda im: metrics.resize_short(im, 768)),
    "resize512": ("downscale to 512 px on the short side", lambda im: metrics.resize_short(im, 512)),
    "crop80": ("centre crop of 80% of each side, downscaled to 512 px if larger (a training crop)",
               lambda im: _at_most(centre_crop(im, 0.8), 512)),
    "blur": ("Gaussian blur, sigma 1 px", metrics.local(lambda im: gaussian_blur(im, 1.0))),
    "noise": ("Gaussian noise, sigma 0.05", metrics.local(lambda im: gaussian_noise(im, 0.05))),
    "noisyupscale": ("noisy upscaling: noise sigma 0.1, shrink x1/4, bicubic upscale x4", noisy_upscale),
}
QUICK = (*metrics.TRANSFORMS, "resize512")  # protect's report (train512, jpeg75) and resize512


def transforms_for(names: list[str] | None = None) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The named transforms of SUITE (all when None); unknown names are an InputError."""
    names = list(SUITE) if names is None else names
    bad = [n for n in names if n not in SUITE]
    if bad:
        raise InputError(f"unknown transform(s) {', '.join(bad)}; known: {', '.join(SUITE)}")
    return {n: SUITE[n][1] for n in names}


def _skip_upscales(img: np.ndarray, names: list[str]) -> list[str]:
    """Downscales to a size the image already is below are not what a trainer does: leave them out."""
    short = min(img.shape[:2])
    return [n for n in names if not (n.startswith("resize") and int(n[6:]) >= short)]


def summary(models: dict[str, dict]) -> dict:
    """Per model: the weakest noise_ratio over all views and where, and a one-word verdict; for a
    model with a decoder also the headline `copy_psnr` and `copy_over_noise` after the trainer view
    (report_text.HEADLINE_VIEW, else clean) and that view's name."""
    out = {}
    for name, figs in models.items():
        ratios = {("clean" if k == "noise_ratio" else k[len("after."): -len(".noise_ratio")]): v
                  for k, v in figs.items() if k.endswith("noise_ratio")}
        worst = min(ratios, key=ratios.get)
        r = ratios[worst]
        verdict = "strong" if r >= 2 else "moderate" if r >= 1.4 else "weak" if r >= 1.1 else "none"
        out[name] = {"weakest_view": worst, "weakest_noise_ratio": r, "verdict": verdict}
        head = report_text.headline({"models": {name: figs}})
        if head is not None:
            out[name].update(copy_view=head["view"], copy_psnr=head["copy_psnr"],
                             copy_over_noise=head["copy_over_noise"])
    return out


def verify_arrays(orig: np.ndarray, prot: np.ndarray, models: list[str] | None = None,
                  transforms: list[str] | None = None, progress: Progress | None = None, seed: int = 0,
                  side: int = VERIFY_SIDE, lpips: bool = True) -> dict:
    """The full report for two pixel arrays of the same shape (any format protect() takes):
    perceptual figures, and per model the figures clean and after every transform of the suite."""
    if orig.shape[:2] != prot.shape[:2]:
        raise InputError(f"the images differ in size ({orig.shape[1]}x{orig.shape[0]} and "
                         f"{prot.shape[1]}x{prot.shape[0]}): compare a protected image with its own original")
    report_progress = progress or (lambda f, m: None)
    a, b = px.to_float_rgb(orig), px.to_float_rgb(prot)
    names = _skip_upscales(a, list(SUITE) if transforms is None else transforms)
    chosen = transforms_for(names)
    used = resolve_models(models or [])
    t0 = time.time()
    report_progress(0.02, "perceptual figures")
    report: dict = {"perceptual": metrics.perceptual(a, b, lpips=lpips), "models": {}}
    weights = [4.0 if runners.nets(n).decode is not None else 1.0 for n in used]  # rough cost
    done, noisy = 0.0, metrics.twin(a, b, seed)
    for name, weight in zip(used, weights):
        def step(i: int, n: int, name: str = name, base: float = done, weight: float = weight) -> None:
            view = "clean" if i == 0 else names[i - 1]
            report_progress(0.1 + 0.88 * (base + weight * i / n) / sum(weights), f"{name}: {view}")

        report["models"][name] = metrics.model_figures(name, a, b, chosen, seed, side, on_view=step,
                                                       noisy=noisy)
        done += weight
    report["summary"] = summary(report["models"])
    report["headline"] = report_text.headline(report)  # the first decoder model's copy after train512
    report["models_used"] = used
    report["transforms"] = {n: SUITE[n][0] for n in names}
    report["eval_side"] = side
    report["backend"] = {n: runners.nets(n).backend for n in used}
    report["seconds"] = round(time.time() - t0, 2)
    report["text"] = report_text.render(report)
    report_progress(1.0, "done")
    return report


def verify_files(original: str | Path, protected: str | Path, **kwargs) -> dict:
    """verify_arrays for two image files, plus the "do not train" metadata the protected file carries."""
    a, _ = imageio.read(original)
    b, info = imageio.read(protected)
    report = verify_arrays(a, b, **kwargs)
    report["metadata"] = metadata.read_do_not_train(info.xmp)
    report["files"] = {"original": str(original), "protected": str(protected), "format": info.format}
    return report
