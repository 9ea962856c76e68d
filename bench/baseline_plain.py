"""The plain robust attack of issue #21: the textbook recipe the product must beat, as a bench baseline.

All of it: a free change u in +-16/255, applied as m * u, where m is a texture map (the local luminance
standard deviation over 7x7, divided by 0.04, clamped to [0.1, 1]); 20 sign steps of 2/255 on u (from a
small random start of +-2/255: the copy's MSE has no gradient at u = 0), each maximising the MSE
between taef2's decoded copy of a random trainer view of x + m * u and of x (antialiased bicubic resize
to a short side drawn from {512, 576, 640, 768, 896, 1024}, a random 384 crop); no target latents, no
taesana; then one scale factor on m * u, found by bisection, so that the rounded output has a given
PSNR. No other limit (SSIM, LPIPS, flat areas) is enforced: the bench prints them beside the product's.
"""
from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F

SHORT_SIDES = (512, 576, 640, 768, 896, 1024)


def texture_map(x: torch.Tensor) -> torch.Tensor:
    """m: the local luminance standard deviation (7 x 7) / 0.04, clamped to [0.1, 1] (1 x 1 x H x W)."""
    from artcloak.cloak import shaping, transforms

    luma = transforms.rgb_to_ycc(x)[:, :1]
    return (shaping.local_std(luma) / 0.04).clamp(0.1, 1.0)


def plain_attack(rgb: np.ndarray, steps: int = 20, eps: float = 16 / 255, alpha: float = 2 / 255,
                 crop: int = 384, seed: int = 0) -> np.ndarray:
    """The recipe's change m * u (H x W x 3 float32, before the PSNR fit) for rgb (H x W x 3 in [0, 1])."""
    from artcloak import pixels as px
    from artcloak.cloak.optimize import device_and_dtype
    from artcloak.models import load_decoder, load_encoder

    dev, dtype = device_and_dtype()
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    enc, dec = load_encoder("taef2").to(dev), load_decoder("taef2").to(dev)
    x = px.to_nchw(rgb, dev)
    m = texture_map(x)
    # a start of +-alpha: the copy's MSE has no gradient at u = 0, and a start spread over the whole
    # +-eps would leave noise in u that the PSNR fit pays for
    u = ((torch.rand(x.shape, generator=gen) * 2 - 1) * alpha).to(dev)
    h, w = x.shape[-2:]

    def copy(img: torch.Tensor) -> torch.Tensor:
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
            return dec(enc(img)).float()

    for _ in range(steps):
        s = rng.choice(SHORT_SIDES) / min(h, w)
        lh, lw = max(crop, round(h * s)), max(crop, round(w * s))
        top, left = rng.randrange(0, lh - crop + 1), rng.randrange(0, lw - crop + 1)

        geometry = (lh, lw, top, left, crop)
        with torch.no_grad():
            c0 = copy(_view(x, geometry))
        u.requires_grad_(True)
        loss = F.mse_loss(copy(_view((x + m * u).clamp(0, 1), geometry)), c0)
        (grad,) = torch.autograd.grad(loss, u)
        with torch.no_grad():
            u = (u + alpha * grad.sign()).clamp(-eps, eps)
    return px.to_hwc((x + m * u.detach()).clamp(0, 1) - x)


def _view(img: torch.Tensor, geometry: tuple[int, int, int, int, int]) -> torch.Tensor:
    """The trainer view: resize to (lh, lw), then the crop x crop square at (top, left)."""
    from artcloak.cloak import transforms

    lh, lw, top, left, crop = geometry
    return transforms.resize(img, (lh, lw))[..., top: top + crop, left: left + crop]


def fit_psnr(src: np.ndarray, delta: np.ndarray, psnr: float, iters: int = 30,
             budget=None) -> np.ndarray:
    """src (uint8 H x W x 3) + s * delta, rounded, with s found by bisection so its PSNR is `psnr`
    (the largest s whose rounded output stays at or above it). With a presets.Budget, s also keeps
    the output within its SSIM, LPIPS and flat-area limits (the recipe held to the product's rules)."""
    from artcloak.measure import lpips, metrics

    x = src.astype(np.float32) / 255
    flat = metrics.flat_mask(x)

    def out(s: float) -> np.ndarray:
        return np.clip(np.rint((x + s * delta) * 255), 0, 255).astype(np.uint8)

    def within(s: float, limits: bool) -> bool:
        y = out(s).astype(np.float32) / 255
        if not limits:
            return metrics.psnr(x, y) >= psnr
        if flat.any() and np.abs(y - x).mean(2)[flat].mean() > budget.flat:
            return False
        if metrics.ssim(x, y) < budget.min_ssim:
            return False
        value = lpips.distance(x, y)
        return value is None or value <= budget.max_lpips

    def largest(lo: float, hi: float, limits: bool, n: int) -> float:
        for _ in range(n):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if within(mid, limits) else (lo, mid)
        return lo

    hi = 1.0
    while within(hi, False) and hi < 64:
        hi *= 2
    s = largest(0.0, hi, False, iters)
    if budget is not None and not within(s, True):
        s = largest(0.0, s, True, 12)
    return out(s)
