"""Layer pixels in any supported format <-> the float RGB the optimizer works on, and back; and that
float RGB (H x W x C numpy) <-> the 1 x C x H x W layout the networks take (to_nchw, to_hwc, nchw).

Supported: H x W x C with C = 1 (grey), 2 (grey+alpha), 3 (RGB), 4 (RGBA); uint8, uint16 or float32.
Alpha is carried through untouched and fully transparent pixels are never changed.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .errors import InputError

MIN_SIDE = 32  # the f32 encoders need at least one latent pixel
MAX_PIXELS = 400_000_000  # ~20000 x 20000; beyond this the float copies alone exceed a laptop's memory
DTYPES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


@dataclass
class Work:
    """What the optimizer needs: RGB in [0, 1], where it may change pixels, and how to go back."""

    rgb: np.ndarray  # H x W x 3 float32 in [0, 1]
    editable: np.ndarray  # H x W float32: 0 where alpha is 0, else 1 (read-only: copy to edit)
    grey: bool  # the perturbation must be the same in all three channels
    source: np.ndarray  # the caller's array, untouched

    @property
    def scale(self) -> float:
        return DTYPES[self.source.dtype]


def validate(pixels: np.ndarray) -> None:
    """Raise InputError with a message a user understands for anything we cannot protect."""
    if not isinstance(pixels, np.ndarray):
        raise InputError(f"pixels must be a numpy array, not {type(pixels).__name__}")
    if pixels.ndim == 2:
        raise InputError("pixels must be H x W x C; add a channel axis for a grey image (pixels[..., None])")
    if pixels.ndim != 3 or not 1 <= pixels.shape[2] <= 4:
        raise InputError(f"pixels must be H x W x C with C from 1 to 4, got shape {pixels.shape}")
    if pixels.dtype not in DTYPES:
        raise InputError(f"unsupported sample format {pixels.dtype}; use uint8, uint16 or float32 "
                         "(indexed images must be converted to RGB or greyscale first)")
    h, w = pixels.shape[:2]
    if h == 0 or w == 0:
        raise InputError("the image is empty (0 pixels)")
    if h < MIN_SIDE or w < MIN_SIDE:
        raise InputError(f"the image is {w}x{h} pixels; artcloak needs at least {MIN_SIDE}x{MIN_SIDE}")
    check_size(w, h)
    if pixels.dtype == np.float32 and not np.isfinite(pixels).all():
        raise InputError("the image contains NaN or infinite values")


def check_size(width: int, height: int, what: str = "the image") -> None:
    """The engine's one pixel-count limit (MAX_PIXELS), with its one message: checked on the array,
    and earlier wherever the size is known before the pixels (a file's header, a worker job, a target
    image), so an image too large is refused before it is decoded or any work starts."""
    if width * height > MAX_PIXELS:
        raise InputError(f"{what} is {width}x{height} = {width * height:,} pixels; the limit is "
                         f"{MAX_PIXELS:,} pixels ({MAX_PIXELS / 1e6:.0f} megapixels)",
                         "Scale it down, or protect it in parts.")


def bands(height: int, band: int) -> Iterator[slice]:
    """Consecutive row slices of at most `band` rows covering 0..height: how a huge canvas is worked
    without whole-image float copies (cloak.carry, the budget fit, measure.metrics)."""
    for top in range(0, height, band):
        yield slice(top, min(height, top + band))


class Rows:
    """An H x W x 3 float32 image made on demand from its rows (`make(rows)`: those rows, whole width):
    what the measures read of a huge canvas (the output's colour, its random-sign twin) without a
    whole-image float copy. Indexing with a row slice (and a column slice) makes just those rows;
    anything else, and np.asarray, makes the whole image."""

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, shape: tuple[int, int, int], make: Callable[[slice], np.ndarray]):
        self.shape, self._make = shape, make

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __getitem__(self, key):
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if not isinstance(rows, slice):
            return np.asarray(self)[key]
        start, stop, step = rows.indices(self.shape[0])
        part = self._make(slice(start, max(start, stop))) if step == 1 else np.asarray(self)[rows]
        return part[(slice(None), *rest)] if rest else part

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self._make(slice(0, self.shape[0]))
        return whole if dtype is None else whole.astype(dtype)


def lazy_colour(pixels: np.ndarray) -> Rows:
    """colour(pixels), made a band of rows at a time as it is read (see Rows)."""
    return Rows((*pixels.shape[:2], 3), lambda rows: colour(pixels[rows]))


def colour(pixels: np.ndarray) -> np.ndarray:
    """The colour of any supported layout as H x W x 3 float32 in [0, 1] (grey repeated, alpha
    dropped, not validated): split's, and the preview pictures' (display.py)."""
    c = pixels.shape[2]
    rgb = pixels[..., : 1 if c <= 2 else 3].astype(np.float32) / DTYPES[pixels.dtype]
    if c <= 2:
        rgb = np.repeat(rgb, 3, axis=2)
    return np.clip(rgb, 0.0, 1.0)


def split(pixels: np.ndarray) -> Work:
    """Validate and convert to the optimizer's view (a copy; the input is never written)."""
    validate(pixels)
    c = pixels.shape[2]
    rgb = colour(pixels)
    if c in (2, 4):
        editable = (pixels[..., -1] > 0).astype(np.float32)
    else:
        editable = np.broadcast_to(np.float32(1.0), pixels.shape[:2])  # read-only, no memory (12 MP: 48 MB)
    return Work(rgb=np.ascontiguousarray(rgb), editable=editable, grey=c <= 2, source=pixels)


def merge(work: Work, delta: np.ndarray) -> np.ndarray:
    """Apply a perturbation (H x W x 3, [0, 1] units) to the source in its own format.

    Integer formats are rounded; alpha and fully transparent pixels are copied unchanged.
    """
    src = work.source
    c = src.shape[2]
    d = delta.mean(axis=2, keepdims=True) if work.grey else delta
    d = d * work.editable[..., None]
    ncol = 1 if c <= 2 else 3
    colour = src[..., :ncol].astype(np.float32) / work.scale + d
    if src.dtype == np.float32:
        new = colour  # no rounding, and out-of-range (HDR) values stay as they were
    else:
        new = np.clip(np.rint(colour * work.scale), 0, work.scale)
    out = src.copy()
    out[..., :ncol] = new.astype(src.dtype)
    return out


def to_float_rgb(pixels: np.ndarray) -> np.ndarray:
    """Any supported array -> H x W x 3 float32 in [0, 1] (for metrics and verify)."""
    return split(pixels).rgb


def to_nchw(img: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """H x W x C (or H x W) numpy -> a 1 x C x H x W (or 1 x 1 x H x W) float32 torch view of it."""
    t = torch.from_numpy(np.ascontiguousarray(img, np.float32))
    t = t.permute(2, 0, 1)[None] if t.ndim == 3 else t[None, None]
    return t if device is None else t.to(device)


def to_hwc(t: torch.Tensor, clamp: bool = False) -> np.ndarray:
    """1 x C x H x W torch -> H x W x C numpy; `clamp`: clipped to [0, 1], as a C-contiguous copy."""
    if clamp:
        return np.ascontiguousarray(t[0].permute(1, 2, 0).clamp(0, 1).numpy())
    return t[0].permute(1, 2, 0).cpu().numpy()


def nchw(img: np.ndarray) -> np.ndarray:
    """H x W x C numpy -> 1 x C x H x W float32 numpy (what the measuring runners take)."""
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], np.float32)
