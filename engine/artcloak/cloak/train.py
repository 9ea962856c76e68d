"""Training the instant cloak (cloak/instant.py): patterns that protect any image they are mixed into.

Each step draws an image, a trainer view of it (a bucket resize to 1/2-1 of the working size, a crop
anywhere, JPEG 75-95 most of the time) and a fresh random placement of the patterns (turns, offsets,
weight fields: what instant.mix draws per image), scales the mix by the product's own budget map to
the preset's PSNR, and pushes: the primary f8 family's decoded copy away from the clean image's (the
figure the bench judges), and every other encoder's latents away from the clean ones. Because the
placement is random on every step, each pattern must work alone and in any mix: what makes a
per-image secret mix as strong as the trained one.

Reproducible: the same images, arguments, seed and torch (and thread count) give the same file.
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import pixels as px
from ..models.registry import MODELS, primary_of
from . import instant, presets, shaping, transforms


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2500
    patterns: int = 8  # K
    side: int = 64  # P: each pattern's side (px at the working resolution)
    crop: int = 256  # the trainer view's side each step encodes
    lr: float = 0.02  # Adam's, on the patterns (values in [-1, 1])
    intensity: str = "default"  # the budget the mix is scaled to while training
    jpeg: float = 0.7  # share of steps whose view is JPEG-compressed (quality 75-95)
    latent_weight: float = 0.5  # weight of each latents-only encoder's push (the copy term has 1)
    seed: int = 0


def _budget_maps(images: list[np.ndarray], budget: presets.Budget) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(image, budget map) at the working resolution, as the optimizer makes them."""
    out = []
    for img in images:
        x = px.to_nchw(px.to_float_rgb(img), torch.device("cpu"))
        size = presets.work_size(*x.shape[-2:])
        if size != tuple(x.shape[-2:]):
            x = transforms.resize(x, size).clamp(0, 1)
        with torch.no_grad():
            m = shaping.budget_map(x, torch.ones_like(x[:, :1]), budget)
        out.append((x, m))
    return out


def _view(img: torch.Tensor, crop: int, quality: int) -> torch.Tensor:
    """The trainer's view of a crop region: resized to `crop` px, then JPEG at `quality` (0: none)."""
    side = crop // 32 * 32
    v = transforms.resize(img.clamp(0, 1), (side, side))
    return transforms.jpeg(v, quality) if quality else v


def train(images: list[np.ndarray], models: list[str], config: TrainConfig,
          progress: Callable[[int, float, float], None] | None = None) -> tuple[instant.Cloak, dict]:
    """Train a cloak on `images` (H x W x 3 uint8 or float) against `models`; return it and its
    figures (mean copy dB over the last tenth of the steps, seconds)."""
    from .optimize import _Encoders, device_and_dtype

    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    dev, dtype = device_and_dtype()
    budget = presets.INTENSITY[config.intensity]
    data = _budget_maps(images, budget)
    encs = _Encoders(models, dev, dtype, {}, decoders=True)
    first = primary_of(models)
    theta = (torch.randn(config.patterns, 3, config.side, config.side, generator=gen) * 0.3).to(dev)
    theta.requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=config.lr)
    rms = 10 ** (-budget.psnr / 20)
    seen: list[float] = []
    start = time.perf_counter()
    for step in range(config.steps):
        x, bmap = data[rng.randrange(len(data))]
        h, w = x.shape[-2:]
        scale = rng.uniform(0.5, 1.0)  # the bucket's short side / the working one
        side = min(h, w, round(config.crop / scale))
        top, left = rng.randrange(h - side + 1), rng.randrange(w - side + 1)
        xc = x[..., top: top + side, left: left + side]
        mc = bmap[..., top: top + side, left: left + side]
        placement = instant.place(config.patterns, config.side, side, side, gen)
        d = mc * instant.mix(theta.clamp(-1, 1), side, side, placement)
        d = d * (rms / d.square().mean().sqrt().clamp_min(1e-8))
        d = d.clamp(-budget.linf, budget.linf)
        quality = rng.randint(75, 95) if rng.random() < config.jpeg else 0
        v1 = _view(xc + d, config.crop, quality)
        with torch.no_grad():
            v0 = _view(xc, config.crop, quality)
        loss = 0.0
        for name in models:
            z = encs.encode(name, v1)
            with torch.no_grad():
                z0 = encs.encode(name, v0)
            if name == first and name in encs.decoders:
                with torch.no_grad():
                    c0 = encs.decode(name, z0)
                mse = F.mse_loss(encs.decode(name, z), c0) + 1e-9
                loss = loss - torch.log(mse)
                seen.append(float(-10 * torch.log10(mse.detach())))
            else:
                weight = config.latent_weight * (1.0 if MODELS[name].f32 else 0.2)
                moved = F.mse_loss(z, z0) / z0.square().mean().clamp_min(1e-8)
                loss = loss - weight * torch.log(moved + 1e-9)
        opt.zero_grad()
        loss.backward()
        opt.step()
        for group in opt.param_groups:  # cosine decay to a tenth
            group["lr"] = config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step + 1) / config.steps)))
        with torch.no_grad():
            theta.clamp_(-1, 1)
        if progress is not None:
            progress(step, float(loss.detach()), seen[-1] if seen else float("nan"))
    tail = seen[-max(1, len(seen) // 10):]
    figures = {"train_copy_db_last_tenth": round(float(np.mean(tail)), 3) if tail else None,
               "seconds": round(time.perf_counter() - start, 1), "config": asdict(config),
               "models": models, "precision": str(dtype).replace("torch.", "")}
    return instant.Cloak(theta.detach().clamp(-1, 1).cpu().numpy()), figures
