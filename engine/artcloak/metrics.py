"""The measurements of ARCHITECTURE.md: how far the models' latents moved, and what a person sees.

All images are H x W x 3 float32 numpy arrays in [0, 1]. `latent_shift`, `noise_ratio` and
`amplification` are computed on an evaluation view (the whole image up to EVAL_SIDE, else its centre
crop, so huge canvases cost bounded memory) after each transform T; perceptual figures use the whole
image at full resolution.
"""
from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .models import load_decoder, load_encoder

EVAL_SIDE = 1280
FLAT_STD = 2 / 255


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()


def _np(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).clamp(0, 1).numpy()


# ---- transforms a trainer or platform applies (real, not differentiable) -------------------------

def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(np.rint(img * 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255


def resize_short(img: np.ndarray, short: int) -> np.ndarray:
    """Antialiased bicubic resize so the short side is `short` (as training data loaders do)."""
    h, w = img.shape[:2]
    s = short / min(h, w)
    size = (max(1, round(h * s)), max(1, round(w * s)))
    return _np(F.interpolate(_t(img), size=size, mode="bicubic", antialias=True, align_corners=False))


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "jpeg75": lambda im: jpeg(im, 75),
    "resize512": lambda im: resize_short(im, 512),
}


# ---- perceptual figures ------------------------------------------------------------------------

def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def _gauss_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over the three channels (Gaussian window 11, sigma 1.5, as Wang et al.)."""
    x, y = _t(a).double(), _t(b).double()
    g = _gauss_window().double()
    c = x.shape[1]
    kx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kx, groups=c), ky, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def flat_mask(img: np.ndarray) -> np.ndarray:
    """True where the 7x7 neighbourhood's standard deviation (mean over channels) is under 2/255."""
    x = _t(img).double()
    m = F.avg_pool2d(F.pad(x, (3, 3, 3, 3), mode="replicate"), 7, 1)
    m2 = F.avg_pool2d(F.pad(x * x, (3, 3, 3, 3), mode="replicate"), 7, 1)
    std = (m2 - m * m).clamp_min(0).sqrt().mean(1)[0]
    return (std < FLAT_STD).numpy()


def perceptual(orig: np.ndarray, prot: np.ndarray) -> dict[str, float]:
    """psnr (dB), ssim, linf and flat_change (0-255 units) of prot against orig."""
    diff = np.abs(prot.astype(np.float64) - orig)
    flat = flat_mask(orig)
    return {
        "psnr": round(float(psnr(orig, prot)), 3),
        "ssim": round(ssim(orig, prot), 5),
        "linf": round(float(diff.max()) * 255, 3),
        "flat_change": round(float(diff.mean(2)[flat].mean()) * 255, 4) if flat.any() else 0.0,
        "flat_fraction": round(float(flat.mean()), 4),
    }


# ---- model figures -----------------------------------------------------------------------------

def eval_view(img: np.ndarray, side: int = EVAL_SIDE) -> np.ndarray:
    """The whole image when it fits in side x side, else its centre crop (bounded memory)."""
    h, w = img.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return img[top: top + side, left: left + side]


def random_sign(delta: np.ndarray, seed: int) -> np.ndarray:
    """delta with each value's sign drawn at random: the same visibility, no optimisation."""
    signs = np.random.default_rng(seed).integers(0, 2, delta.shape).astype(np.float32) * 2 - 1
    return np.abs(delta) * signs


@torch.no_grad()
def _encode(enc: torch.nn.Module, img: np.ndarray) -> torch.Tensor:
    return enc(_t(img))


def model_figures(name: str, orig: np.ndarray, prot: np.ndarray, transforms: dict[str, Callable] | None = None,
                  seed: int = 0) -> dict[str, float]:
    """latent_shift, noise_ratio and amplification (where a decoder exists) for one model, clean and
    after each transform (keys `after.<name>.<figure>`)."""
    enc, dec = load_encoder(name), load_decoder(name)
    delta = prot.astype(np.float32) - orig
    rms_delta = float(np.sqrt(np.mean(delta.astype(np.float64) ** 2)))
    noisy = np.clip(orig + random_sign(delta, seed), 0, 1).astype(np.float32)
    views = {"": lambda im: eval_view(im)}
    for tname, fn in (transforms if transforms is not None else TRANSFORMS).items():
        views[f"after.{tname}."] = fn
    out: dict[str, float] = {}
    for prefix, fn in views.items():
        z0, z1, zn = (_encode(enc, fn(im)) for im in (orig, prot, noisy))
        moved = float((z1 - z0).norm())
        out[prefix + "latent_shift"] = round(moved / max(float(z0.norm()), 1e-12), 5)
        out[prefix + "noise_ratio"] = round(moved / max(float((zn - z0).norm()), 1e-12), 4)
        if dec is not None and rms_delta > 0:
            with torch.no_grad():
                seen = float(torch.sqrt(torch.mean((dec(z1) - dec(z0)) ** 2)))
            out[prefix + "amplification"] = round(seen / rms_delta, 4)
    return out


def measure(orig: np.ndarray, prot: np.ndarray, models: list[str], seed: int = 0,
            transforms: dict[str, Callable] | None = None) -> dict:
    """The report of ARCHITECTURE.md: {"perceptual": {...}, "models": {name: {...}}}."""
    return {
        "perceptual": perceptual(orig, prot),
        "models": {m: model_figures(m, orig, prot, transforms, seed) for m in models},
    }
