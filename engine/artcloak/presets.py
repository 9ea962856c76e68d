"""What the named presets mean in numbers (chosen by measurement with bench/bench_protect.py).

`intensity` sets how much change the eye may see: a PSNR the budget map is scaled to, an L-inf cap
on textured areas and the cap on flat areas (where a 7x7 neighbourhood varies by less than 2/255).
`quality` sets how long to search: optimisation steps and the crop each step looks at.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    psnr: float  # dB the saturated budget map is scaled to
    linf: float  # L-inf cap on textured areas, [0, 1] units
    flat: float  # cap where the image is flat, [0, 1] units (1/255 is the visibility limit we promise)
    min_ssim: float  # shrink the budget until a random-sign perturbation of it keeps this SSIM
    chroma: float = 0.35  # the part of the change that differs between channels, as a fraction of the cap


@dataclass(frozen=True)
class Search:
    steps: int
    crop: int  # side of the square crop each step encodes (working-resolution pixels)
    lr: float  # first step, as a fraction of the local budget (cosine-decayed to ~0)
    quant_steps: int  # last steps optimised through the output's rounding
    views: int = 8  # distinct trainer views (level, crop, flip) the steps cycle through


INTENSITY = {
    "low": Budget(psnr=37.0, linf=8 / 255, flat=0.75 / 255, min_ssim=0.975),
    "default": Budget(psnr=34.0, linf=12 / 255, flat=1.0 / 255, min_ssim=0.955),
    "high": Budget(psnr=31.5, linf=16 / 255, flat=1.0 / 255, min_ssim=0.93),
}

QUALITY = {
    "fast": Search(steps=8, crop=320, lr=1.0, quant_steps=2),
    "default": Search(steps=24, crop=384, lr=1.0, quant_steps=4),
    "max": Search(steps=120, crop=512, lr=0.6, quant_steps=12),
}

# Trainers resize to a short side of 512-1024; the perturbation lives at this working resolution.
WORK_SHORT = 1024
LEVELS = (0.5, 0.625, 0.75, 0.875)  # fractions of the working short side, plus 1.0
MIN_LEVEL = 128
