"""Where the eye tolerates change: a per-pixel budget from local texture (texture masking).

Flat areas (filters' flat-area rule: the 7x7 neighbourhood varies by less than 2/255, the same rule
the report's `flat_change` uses) get at most `Budget.flat`; textured areas get a budget that grows with their
local contrast, scaled so a perturbation that fills it has the preset's PSNR, capped at `Budget.linf`
and shrunk until a random-sign fill keeps the preset's SSIM.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import filters
from .presets import MAX_GAIN, Budget

# budget ~ (sigma^2 + C)^(GAMMA/2): SSIM tolerates change in proportion to local contrast plus a floor
C_FLOOR = (4 / 255) ** 2
GAMMA = 1.0
ERODE = 2  # px


def local_std(x: torch.Tensor) -> torch.Tensor:
    """The flat-area rule's standard deviation (filters.FLAT_SIDE square, averaged over channels;
    N x 1 x H x W): the torch twin of measure.metrics.flat_mask's."""
    r = filters.FLAT_SIDE // 2
    xp = F.pad(x, (r, r, r, r), mode="replicate")
    m = F.avg_pool2d(xp, filters.FLAT_SIDE, 1)
    m2 = F.avg_pool2d(xp * xp, filters.FLAT_SIDE, 1)
    return (m2 - m * m).clamp_min(0).sqrt().mean(1, keepdim=True)


def flat(x: torch.Tensor | None = None, sigma: torch.Tensor | None = None) -> torch.Tensor:
    """Where x (N x 3 x H x W) is flat (filters' flat-area rule), N x 1 x H x W bool; from its
    local_std `sigma` when the caller has it."""
    return (local_std(x) if sigma is None else sigma) < filters.FLAT_STD


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM over the valid region (filters' window and constants), for budget calibration: the
    torch twin of measure.metrics.ssim."""
    g = filters.ssim_window(x.dtype, x.device)

    def blur(a: torch.Tensor) -> torch.Tensor:
        return filters.separable(a, g)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = filters.SSIM_C1, filters.SSIM_C2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


def _scaled(shape: torch.Tensor, flat: torch.Tensor, editable: torch.Tensor, k: float,
            b: Budget) -> torch.Tensor:
    out = (k * shape).clamp(max=b.linf)
    out = torch.where(flat, out.clamp(max=b.flat), out)
    return out * editable


def budget_map(x: torch.Tensor, editable: torch.Tensor, b: Budget, seed: int = 0,
               sigma: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel L-inf budget (1 x 1 x H x W, [0, 1] units) for image x (1 x 3 x H x W); `sigma`:
    x's local_std, when the caller has it (the optimizer, which also takes its flat areas)."""
    sigma = local_std(x) if sigma is None else sigma
    is_flat = flat(sigma=sigma)
    # texture masks change only where every nearby SSIM window is busy: erode, so flat colour next to
    # an outline gets no halo
    activity = -F.max_pool2d(-sigma, 2 * ERODE + 1, 1, ERODE) if ERODE else sigma
    shape = (activity**2 + C_FLOOR) ** (GAMMA / 2)
    target_rms = 10 ** (-b.psnr / 20)
    # the PSNR scale, by bisection on a subsample (rms is a mean: a stride-2 grid estimates it well)
    sub = (shape[..., ::2, ::2], is_flat[..., ::2, ::2], editable[..., ::2, ::2])

    def rms(k: float) -> float:
        return float(_scaled(*sub[:2], sub[2], k, b).square().mean().sqrt())

    lo, hi = 0.0, b.linf / float(shape.min().clamp_min(1e-6))  # beyond hi every pixel is at its cap
    for _ in range(24):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if rms(mid) < target_rms else (lo, mid)
    k = lo
    # then the SSIM scale: a random-sign fill of the budget must keep min_ssim (centre crop, bounded cost)
    gen = torch.Generator().manual_seed(seed)
    xs, ss, fs, es = _subsample(x, shape, is_flat, editable)
    signs = torch.randint(0, 2, xs.shape, generator=gen).to(xs) * 2 - 1

    def ssim_at(k: float) -> float:
        return float(ssim_map(xs, (xs + _scaled(ss, fs, es, k, b) * signs).clamp(0, 1)).mean())

    if ssim_at(k) < b.min_ssim:
        lo, hi = k / 64, k
        for _ in range(7):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if ssim_at(mid) >= b.min_ssim else (lo, mid)
        k = lo if ssim_at(lo) >= b.min_ssim else 0.0
    return _scaled(shape, is_flat, editable, k, b)


def _subsample(x: torch.Tensor, *maps: torch.Tensor, side: int = 384):
    """A centre crop of at most side x side: SSIM calibration costs the same on any image size."""
    h, w = x.shape[-2:]
    t, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return tuple(a[..., t: t + side, left: left + side] for a in (x, *maps))


def spend_gains(mean_flat: float, sum_flat: float, sum_tex: float, values: int,
                b: Budget) -> tuple[float, float]:
    """(textured, flat) scale factors that make a change spend budget b: flat areas to their mean
    allowance (at most half the PSNR budget), the rest to the PSNR, each capped at MAX_GAIN.

    mean_flat: mean |change| on flat pixels; sum_flat / sum_tex: sums of squared change there; values:
    how many values the PSNR is taken over. A factor is 0.0 where it is undefined (no change there).
    Used by the optimizer before its last steps and by protect.fit_to_budget on the output."""
    allowed = values * 10 ** (-b.psnr / 10)  # total squared change at the preset's PSNR
    s_flat = min(MAX_GAIN, b.flat / mean_flat) if mean_flat > 0 else 0.0
    if sum_flat > 0:
        s_flat = min(s_flat, (0.5 * allowed / sum_flat) ** 0.5)
    rest = max(allowed - s_flat**2 * sum_flat, 0.0)
    s_tex = min(MAX_GAIN, (rest / sum_tex) ** 0.5) if sum_tex > 0 else 0.0
    return s_tex, s_flat


def limit_chroma(d: torch.Tensor, cap: torch.Tensor, frac: float) -> torch.Tensor:
    """Keep the colour part of a change (what differs between channels) under frac x the local cap.

    The eye sees a colour fringe on a black outline long before it sees the same change in brightness.
    """
    if d.shape[1] == 1:
        return d
    luma = d.mean(1, keepdim=True)
    chroma = d - luma
    peak = chroma.abs().amax(1, keepdim=True)
    # scale the colour vector rather than clip each channel: its mean stays 0, so brightness is kept
    return luma + chroma * torch.clamp(cap * frac / peak.clamp_min(1e-12), max=1.0)
