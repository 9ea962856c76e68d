"""Differentiable stand-ins for what trainers and platforms do to an image (Expectation over Transformation).

Every function takes and returns N x 3 x H x W float tensors in [0, 1] and lets gradients through, so
the optimizer can make a perturbation that survives a downscale to training resolution, a crop, a flip,
JPEG, mild noise and blur. `sample_view` draws one such chain, restricted to `Params.robustness`.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import filters

# JPEG's example quantisation tables (ITU T.81 Annex K), in natural (row-major) order.
_LUMA_Q = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]
_CHROMA_Q = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
] + [99] * 32


def _dct_matrix(n: int = 8) -> torch.Tensor:
    """Orthonormal DCT-II basis: D @ block @ D.T is the 2-D DCT of a block."""
    k = torch.arange(n, dtype=torch.float32)[:, None]
    i = torch.arange(n, dtype=torch.float32)[None, :]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d


_DCT = _dct_matrix()


def quant_table(quality: int, chroma: bool) -> torch.Tensor:
    """The 8x8 table libjpeg uses at `quality` (1-100)."""
    q = max(1, min(100, int(quality)))
    scale = 5000 / q if q < 50 else 200 - 2 * q
    base = torch.tensor(_CHROMA_Q if chroma else _LUMA_Q, dtype=torch.float32).view(8, 8)
    return torch.clamp(torch.floor((base * scale + 50) / 100), 1, 255)


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    """Exact rounding forward, identity backward: the loss sees the real quantisation."""
    return x + (torch.round(x) - x).detach()


def rgb_to_ycc(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 0.5
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 0.5
    return torch.cat([y, cb, cr], 1)


def ycc_to_rgb(x: torch.Tensor) -> torch.Tensor:
    y, cb, cr = x[:, 0:1], x[:, 1:2] - 0.5, x[:, 2:3] - 0.5
    return torch.cat([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)


def _blockwise(ch: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Quantise one channel (N x 1 x H x W, 0-255 units, H and W multiples of 8) in the DCT domain."""
    n, _, h, w = ch.shape
    blocks = (ch - 128).reshape(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    d = _DCT.to(ch.device, ch.dtype)
    coef = d @ blocks @ d.T
    t = table.to(ch.device, ch.dtype)
    coef = _round_ste(coef / t) * t
    out = d.T @ coef @ d
    return out.permute(0, 1, 3, 2, 4).reshape(n, 1, h, w) + 128


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG compression with 4:2:0 chroma, as PIL/libjpeg do it, with straight-through rounding."""
    n, _, h, w = x.shape
    ph, pw = (-h) % 16, (-w) % 16
    xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
    ycc = rgb_to_ycc(xp) * 255
    y = _blockwise(ycc[:, :1], quant_table(quality, False))
    chroma = F.avg_pool2d(ycc[:, 1:], 2)
    cb = _blockwise(chroma[:, :1], quant_table(quality, True))
    cr = _blockwise(chroma[:, 1:], quant_table(quality, True))
    chroma = F.interpolate(torch.cat([cb, cr], 1), scale_factor=2, mode="bilinear", align_corners=False)
    out = ycc_to_rgb(torch.cat([y, chroma], 1) / 255)
    return out[:, :, :h, :w].clamp(0, 1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(2.5 * sigma)))
    g = filters.gaussian_kernel(sigma, radius, x.dtype, x.device)
    return filters.separable(F.pad(x, (radius, radius, radius, radius), mode="replicate"), g)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize (what PIL and torchvision loaders do), differentiable."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)


@dataclass
class View:
    """One trainer/platform view of the image: which level, which crop, and what happens to it."""

    level: int  # index into the optimizer's list of rescaled levels
    top: int
    left: int
    size: tuple[int, int]
    flip: bool = False
    jpeg_quality: int = 0  # 0 = no JPEG
    noise: float = 0.0
    blur: float = 0.0


def sample_geometry(rng: random.Random, levels: list[tuple[int, int]], crop: int, robustness: list[str],
                    align: int = 32) -> View:
    """Draw the geometric part of a view: a level (a resize), a crop aligned to `align`, a flip."""
    if "resize" in robustness:
        level = rng.randrange(len(levels))
    else:
        level = len(levels) - 1  # the working resolution itself
    h, w = levels[level]
    ch, cw = min(crop, h) // align * align or h, min(crop, w) // align * align or w
    if "crop" in robustness or ch < h or cw < w:
        top = rng.randrange(0, h - ch + 1) // align * align if h > ch else 0
        left = rng.randrange(0, w - cw + 1) // align * align if w > cw else 0
    else:
        top = left = 0
    return View(level, top, left, (ch, cw), flip="flip" in robustness and rng.random() < 0.5)


def with_degradation(rng: random.Random, geometry: View, robustness: list[str]) -> View:
    """A copy of `geometry` with fresh pixel-level transforms (JPEG, noise, blur) drawn."""
    view = View(geometry.level, geometry.top, geometry.left, geometry.size, geometry.flip)
    if "jpeg" in robustness and rng.random() < 0.6:
        view.jpeg_quality = rng.randint(70, 95)
    if "noise" in robustness and rng.random() < 0.3:
        view.noise = rng.uniform(0.002, 0.015)
    if "blur" in robustness and rng.random() < 0.25:
        view.blur = rng.uniform(0.3, 0.9)
    return view


def sample_view(rng: random.Random, levels: list[tuple[int, int]], crop: int, robustness: list[str],
                align: int = 32) -> View:
    """Draw one view: a level (a resize), a crop aligned to `align`, then the enabled transforms."""
    return with_degradation(rng, sample_geometry(rng, levels, crop, robustness, align), robustness)


def degrade(x: torch.Tensor, view: View, gen: torch.Generator) -> torch.Tensor:
    """The pixel-level part of a view (blur, noise, JPEG), applied after the geometric part."""
    if view.blur:
        x = gaussian_blur(x, view.blur)
    if view.noise:
        n = torch.randn(x.shape, generator=gen, device="cpu").to(x.device, x.dtype)
        x = (x + view.noise * n).clamp(0, 1)
    if view.jpeg_quality:
        x = jpeg(x.clamp(0, 1), view.jpeg_quality)
    return x
