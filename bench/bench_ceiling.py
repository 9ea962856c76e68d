"""Ceiling runs: how low can taef2's copy go at a preset's budget when the attack knows everything?

    ARTCLOAK_MODELS=../shared/models/taesd .venv/bin/python bench/bench_ceiling.py
        [--image astronaut] [--intensity default] [--steps 30] [--crop 384] [--mode eot|exact]

Not the product: a white-box attack on taef2's own encoder and decoder, to say whether the strength
targets are out of reach or only out of the product optimizer's reach. Loss: -log MSE between
D(E(T(x + d))) and D(E(T(x))), the copy a model fitted to the image would learn. T is
  eot:   a trainer view drawn per step: short side 512-1024 px, a random `--crop` square, a flip,
         JPEG quality 75-95 (differentiable, straight-through rounding);
  exact: the headline's own train512 view (short side 576, centre 512, JPEG 88), every step.
Steps are L2-normalised gradient steps; after each, d is cut to the preset's per-pixel caps (flat
areas: its flat allowance, elsewhere its L-inf) and projected onto the L2 ball of its PSNR, so the
whole budget is spent. Then protect.fit_to_budget applies the preset's SSIM/LPIPS/flat limits, and
the result is measured like bench_protect.py: taef2's copy_psnr after train512 and after other
trainer views (short side 512/640/768/1024, centre crop 512, JPEG 88) and after noise sigma 0.05.
A run costs ~10 s per step on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

OTHER_SIDES = (512, 640, 768, 1024)


def _view(img: torch.Tensor, g: tuple) -> torch.Tensor:
    """Resize to (lh, lw), crop size x size at (top, left), maybe flip, JPEG at quality."""
    from artcloak.cloak import transforms

    lh, lw, top, left, size, flip, quality = g
    v = transforms.resize(img, (lh, lw))[..., top: top + size, left: left + size]
    v = torch.flip(v, dims=[-1]) if flip else v
    return transforms.jpeg(v.clamp(0, 1), quality)


def attack(x: torch.Tensor, caps: torch.Tensor, radius: float, steps: int, crop: int, mode: str,
           seed: int) -> torch.Tensor:
    """The white-box perturbation (1 x 3 x H x W) within `caps` and the L2 `radius`."""
    from artcloak.models import load_decoder, load_encoder

    enc, dec = load_encoder("taef2"), load_decoder("taef2")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    d = (torch.rand_like(x) * 2 - 1) * caps * 0.1
    h, w = x.shape[-2:]
    for step in range(steps):
        t0 = time.time()
        if mode == "exact":
            short, size, top, left, flip, quality = 576, 512, None, None, False, 88
        else:
            short, size = rng.randint(512, 1024), crop
            top = left = -1
            flip, quality = rng.random() < 0.5, rng.randint(75, 95)
        s = short / min(h, w)
        lh, lw = max(size, round(h * s)), max(size, round(w * s))
        top = (lh - size) // 2 if top is None else rng.randrange(0, lh - size + 1)
        left = (lw - size) // 2 if left is None else rng.randrange(0, lw - size + 1)

        g = (lh, lw, top, left, size, flip, quality)

        with torch.no_grad():
            c0 = dec(enc(_view(x, g)))
        d.requires_grad_(True)
        loss = -(F.mse_loss(dec(enc(_view((x + d).clamp(0, 1), g))), c0) + 1e-10).log()
        (grad,) = torch.autograd.grad(loss, d)
        lr = 0.3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        with torch.no_grad():
            d = d - lr * radius * grad / grad.norm().clamp_min(1e-30)
            d = torch.maximum(torch.minimum(d, caps), -caps)
            d = d * min(1.0, radius / float(d.norm()))
            d = (x + d).clamp(0, 1) - x
        print(f"  step {step + 1}/{steps}  copy dB {float(loss.detach()) * 10 / math.log(10):6.2f}  "
              f"{time.time() - t0:.1f} s", flush=True)
    return d.detach()


def main() -> None:
    import bench_images
    from artcloak import Params
    from artcloak import pixels as px
    from artcloak.cloak import presets, shaping
    from artcloak.measure import metrics, verify
    from artcloak.protect import fit_to_budget

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="astronaut")
    ap.add_argument("--intensity", default="default")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--crop", type=int, default=384)
    ap.add_argument("--mode", choices=("eot", "exact"), default="eot")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", metavar="NPY", help="also save the attack's perturbation (before the fit)")
    args = ap.parse_args()

    torch.set_num_threads(max(1, torch.get_num_threads()))
    img = bench_images.load(args.image, 1024)
    work = px.split(img)
    budget, _ = presets.resolve(Params(intensity=args.intensity))
    x = px.to_nchw(work.rgb)
    flat = shaping.flat(x)
    caps = torch.where(flat, torch.full_like(flat, budget.flat, dtype=x.dtype),
                       torch.full_like(flat, budget.linf, dtype=x.dtype)).expand_as(x)
    radius = math.sqrt(x.numel() * 10 ** (-budget.psnr / 10))
    print(f"{args.image} {args.intensity} {args.mode}: {args.steps} steps, crop {args.crop}, "
          f"PSNR budget {budget.psnr}, L-inf {budget.linf * 255:.1f}/255, flat {budget.flat * 255:.2f}/255")
    t0 = time.time()
    d = attack(x, caps, radius, args.steps, args.crop, args.mode, args.seed)
    if args.save:
        np.save(args.save, px.to_hwc(d))
    out = fit_to_budget(work, px.to_hwc(d), budget)
    views = {"train512": metrics.TRANSFORMS["train512"],
             **{f"short{s}": metrics.whole(partial(metrics.train_view, short=s)) for s in OTHER_SIDES},
             "noise_train512": metrics.whole(lambda im: metrics.train_view(verify.gaussian_noise(im, 0.05)))}
    rep = metrics.measure(work.rgb, px.to_float_rgb(out), ["taef2"], seed=args.seed, transforms=views,
                          lpips=True, side=4096, copy_views=tuple(views))
    p, f = rep["perceptual"], rep["models"]["taef2"]
    print(f"done in {time.time() - t0:.0f} s: PSNR {p['psnr']:.2f}  SSIM {p['ssim']:.4f}  "
          f"LPIPS {p.get('lpips', float('nan')):.4f}  flat {p['flat_change']:.2f}/255")
    for name in views:
        print(f"  {name:<15} copy {f[f'after.{name}.copy_psnr']:6.2f}  "
              f"c/n {f[f'after.{name}.copy_over_noise']:5.2f}")


if __name__ == "__main__":
    main()
