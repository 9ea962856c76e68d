"""The filters and rules the cloak and the measurements share, each written once.

- `gaussian_kernel` and `separable`: every Gaussian blur and SSIM window of the engine (the
  differentiable blur of cloak.transforms, verify's real blur, both SSIMs) is built from these.
- The flat-area rule: a pixel is flat where the standard deviation of its FLAT_SIDE x FLAT_SIDE
  neighbourhood (edges replicated), averaged over the channels, is under FLAT_STD. The report's
  `flat_change` (measure.metrics.flat_mask, numpy) and the optimizer's budget (cloak.shaping.flat,
  torch) both apply it.
- The SSIM of Wang et al.: a Gaussian window of SSIM_SIDE taps, sigma SSIM_SIGMA, constants SSIM_C1
  and SSIM_C2; measured in numpy (measure.metrics.ssim, the report) and in torch
  (cloak.shaping, the budget calibration).
tests/test_twins.py checks that the numpy and torch twins agree on the same image.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

FLAT_STD = 2 / 255
FLAT_SIDE = 7
SSIM_SIDE, SSIM_SIGMA = 11, 1.5
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2


def gaussian_kernel(sigma: float, radius: int, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """The normalised 1-D Gaussian of 2 * radius + 1 taps."""
    t = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_window(dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """SSIM's Gaussian window (SSIM_SIDE taps, sigma SSIM_SIGMA)."""
    return gaussian_kernel(SSIM_SIGMA, SSIM_SIDE // 2, dtype, device)


def separable(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """x (N x C x H x W) filtered by the 1-D kernel g along the rows, then the columns, each channel
    on its own; no padding (pad first for a same-size result)."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
