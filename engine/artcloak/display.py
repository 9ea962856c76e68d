"""8-bit RGB pictures for a dialog's preview, made where numpy is (the worker), not in GIMP's Python.

A plug-in shows a GdkPixbuf (RGB, 8 bits); a layer may be grey, have alpha, be 16-bit or float. GIMP's
Python has no numpy, so the conversion (and the magnified change, which must be taken before the
output is rounded to 8 bits or a 16-bit layer's change would vanish) is done by the engine. These
pictures are for the eye only: nothing here touches the pixels that are protected.
"""
from __future__ import annotations

import numpy as np

from .pixels import DTYPES
from .pixels import colour as _colour

CHECKER = 8  # side of the checkerboard squares behind transparent pixels (as GIMP's canvas shows them)
CHECKER_GREYS = (0.6, 0.8)
CHANGE_GAIN = 10.0  # the change shown magnified: 0.5 + gain * (protected - original)


def colour(pixels: np.ndarray) -> np.ndarray:
    """H x W x 3 float32 in [0, 1] of any supported layout (grey is repeated; alpha dropped)."""
    return np.nan_to_num(_colour(pixels))  # clipped to [0, 1] there; a NaN becomes 0


def alpha(pixels: np.ndarray) -> np.ndarray | None:
    """H x W x 1 float32 opacity in [0, 1], or None for a layout without alpha."""
    if pixels.shape[2] not in (2, 4):
        return None
    a = pixels[..., -1:].astype(np.float32) / DTYPES[pixels.dtype]
    return np.clip(np.nan_to_num(a), 0.0, 1.0)


def _checkerboard(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    odd = ((y // CHECKER + x // CHECKER) % 2).astype(bool)
    board = np.where(odd, CHECKER_GREYS[1], CHECKER_GREYS[0]).astype(np.float32)
    return board[..., None]


def _to_u8(rgb: np.ndarray) -> bytes:
    return np.ascontiguousarray(np.rint(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)).tobytes()


def picture(pixels: np.ndarray) -> bytes:
    """The layer as an artist sees it: RGB u8 bytes, transparent parts over a checkerboard."""
    rgb = colour(pixels)
    a = alpha(pixels)
    if a is not None:
        rgb = rgb * a + _checkerboard(*rgb.shape[:2]) * (1.0 - a)
    return _to_u8(rgb)


def change(original: np.ndarray, protected: np.ndarray, gain: float = CHANGE_GAIN) -> bytes:
    """Where the cloak goes: RGB u8 bytes of 0.5 + gain * (protected - original), clipped (mid-grey =
    no change), from the samples at their own precision."""
    return _to_u8(0.5 + gain * (colour(protected) - colour(original)))
