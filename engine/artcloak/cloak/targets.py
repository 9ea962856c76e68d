"""What the models should see instead of the artwork: built-in textures made in code, or a user image.

Built-in targets are generated procedurally (no third-party images) as high-contrast, high-frequency
patterns: the surrogate encoders map them far from any natural artwork, so pulling an image's latents
toward them moves what a trainer's model learns.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..params import BUILTIN_TARGETS


def _palette(rng: np.random.Generator, n: int) -> np.ndarray:
    """Saturated colours: every channel near 0 or 1 with a little spread."""
    base = rng.integers(0, 2, (n, 3)).astype(np.float32)
    return np.clip(base * 0.85 + rng.uniform(0, 0.15, (n, 3)), 0, 1).astype(np.float32)


def mosaic(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Random coloured cells of 16 px with dark seams, each 16 px row band's cell boundaries shifted
    by a random offset (an irregular brick pattern): busy, with edges everywhere."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    cell = 16
    ys = np.arange(h)[:, None] // cell
    # jitter the cell boundaries of each row band so the grid is irregular
    shift = rng.integers(0, cell, (h // cell + 2,))
    xs = (np.arange(w)[None, :] + shift[ys]) // cell
    ids = (ys * 7919 + xs * 104729) % 4096
    colours = _palette(rng, 4096)
    img[:] = colours[ids]
    seam = ((np.arange(h)[:, None] % cell) < 2) | (((np.arange(w)[None, :] + shift[ys]) % cell) < 2)
    img[seam] *= 0.15
    return img


def stripes(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Diagonal stripes in three colours, 6 px wide."""
    rng = np.random.default_rng(seed)
    colours = _palette(rng, 3)
    band = ((np.arange(h)[:, None] + np.arange(w)[None, :]) // 6) % 3
    return colours[band]


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Colour noise in 4 px blocks (survives a 2x downscale better than pixel noise)."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 1, ((h + 3) // 4, (w + 3) // 4, 3)).astype(np.float32)
    return np.repeat(np.repeat(small, 4, 0), 4, 1)[:h, :w]


def checker(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A two-colour checkerboard of 8 px squares."""
    rng = np.random.default_rng(seed)
    a, b = _palette(rng, 2)
    cells = ((np.arange(h)[:, None] // 8) + (np.arange(w)[None, :] // 8)) % 2
    return np.where(cells[..., None] == 0, a, b).astype(np.float32)


MAKERS = {"mosaic": mosaic, "stripes": stripes, "noise": noise, "checker": checker}  # params.BUILTIN_TARGETS


def _open(path: str | Path):
    """The user's target image, opened lazily: an image file within the engine's pixel limit."""
    from PIL import UnidentifiedImageError

    from ..files import imageio

    p = Path(path)
    if not p.is_file():
        raise InputError(f"target {str(path)!r} is neither a built-in texture ({', '.join(BUILTIN_TARGETS)}) "
                         "nor an image file")
    try:
        return imageio.open_image(p, what=f"the target image {p.name}")
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"cannot read the target image {str(path)!r}: {e}") from e


def check(name: str) -> None:
    """Refuse a target that cannot be used before any work starts: a name that is neither a built-in
    texture nor a readable image, or an image over the pixel limit (read from its header)."""
    if name not in MAKERS:
        _open(name).close()


def load_image(path: str | Path, h: int, w: int) -> np.ndarray:
    """A user's target image, converted to RGB and tiled (not stretched) to h x w."""
    try:
        with _open(path) as im:
            im.thumbnail((max(w, 64), max(h, 64)))
            arr = np.asarray(im.convert("RGB"), np.float32) / 255
    except OSError as e:
        raise InputError(f"cannot read the target image {str(path)!r}: {e}") from e
    reps = (-(-h // arr.shape[0]), -(-w // arr.shape[1]), 1)
    return np.ascontiguousarray(np.tile(arr, reps)[:h, :w])


def make_target(name: str, h: int, w: int, seed: int = 0) -> np.ndarray:
    """The target as H x W x 3 float32 in [0, 1]: a built-in texture by name, else an image path."""
    if name in MAKERS:
        return np.ascontiguousarray(MAKERS[name](h, w, seed), dtype=np.float32)
    return load_image(name, h, w)
