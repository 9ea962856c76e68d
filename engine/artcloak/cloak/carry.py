"""The optimizer's change, made at the working resolution, brought to the full-size image a band of
rows at a time.

Why bands: a 4000 x 3000 canvas is 144 MB per float RGB copy, and bringing the change up whole
(upsample, caps, colour limit, clip) made five of them at once. A band of BAND rows costs a few MB,
and the budget fit (protect.fit_to_budget) asks for the rows it measures, as often as it needs them.
"""
from __future__ import annotations

import numpy as np
import torch

from ..pixels import Work, bands
from . import presets, shaping

BAND = 256  # rows per band (the fit's bands carry more temporaries than metrics')


def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Bilinear resampling along one axis, half-pixel centres (F.interpolate's align_corners=False):
    (lower index, upper index, weight of the upper) per output position; None when the sizes match."""
    if n_in == n_out:
        return None
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (src - lo).astype(np.float32)


class Carry:
    """The change of `delta` (working resolution, h x w x 3 float32) on the full-size image of
    `work`, any rows at a time: upsampled bilinearly, held to the full-size caps (the L-inf cap on
    textured areas, the flat allowance where `flat`, the colour share), kept inside [0, 1] and off
    pixels that may not change. At full size already, only the last two apply."""

    def __init__(self, work: Work, delta: np.ndarray, flat: np.ndarray, budget: presets.Budget):
        self.work, self.delta, self.flat, self.budget = work, delta, flat, budget
        self.height, self.width = work.rgb.shape[:2]
        self.at_full = delta.shape[:2] == (self.height, self.width)
        self._rows = _axis(delta.shape[0], self.height)
        self._cols = _axis(delta.shape[1], self.width)

    def rows(self, rows: slice) -> np.ndarray:
        """The change on work.rgb[rows] (len x W x 3 float32, a new array)."""
        index = np.arange(self.height)[rows]
        d = self.delta
        if self._rows is None:
            d = d[index]
        else:
            lo, hi, t = (a[index] for a in self._rows)
            t = t[:, None, None]
            d = d[lo] * (1 - t) + d[hi] * t
        if self._cols is not None:
            lo, hi, t = self._cols
            t = t[None, :, None]
            d = d[:, lo] * (1 - t) + d[:, hi] * t
        d = np.ascontiguousarray(d, np.float32)
        if not self.at_full:
            b = self.budget
            cap = np.where(self.flat[rows], np.float32(b.flat), np.float32(b.linf))[..., None]
            np.clip(d, -cap, cap, out=d)
            t = torch.from_numpy(d).permute(2, 0, 1)[None]
            d = shaping.limit_chroma(t, torch.from_numpy(cap).permute(2, 0, 1)[None], b.chroma)
            d = np.ascontiguousarray(d[0].permute(1, 2, 0).numpy())
        rgb = self.work.rgb[rows]
        d = np.clip(rgb + d, 0.0, 1.0) - rgb
        d *= self.work.editable[rows][..., None]
        return d

    def full(self) -> np.ndarray:
        """The whole change (H x W x 3 float32): for callers that want it in one array."""
        out = np.empty((self.height, self.width, 3), np.float32)
        for band in bands(self.height, BAND):
            out[band] = self.rows(band)
        return out
