"""The benchmark's test images: scikit-image's bundled photos, and a flat-colour illustration, a
line-art page and a painting-like image made here."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def illustration(size: int = 1024, seed: int = 0) -> np.ndarray:
    """Flat-colour shapes with dark outlines and a flat background: the hard case for a cloak."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (size, size), (236, 228, 210))
    d = ImageDraw.Draw(im)
    s = size / 1024
    d.rectangle([0, int(700 * s), size, size], fill=(120, 170, 90), outline=(30, 30, 30),
                width=max(1, int(6 * s)))
    d.ellipse([int(650 * s), int(80 * s), int(900 * s), int(330 * s)], fill=(250, 200, 60),
              outline=(40, 30, 20), width=max(1, int(6 * s)))
    for _ in range(9):
        x0, y0 = rng.integers(0, int(850 * s)), rng.integers(int(200 * s), int(850 * s))
        w, h = rng.integers(int(80 * s), int(260 * s)), rng.integers(int(80 * s), int(260 * s))
        col = tuple(int(c) for c in rng.integers(40, 240, 3))
        shape = rng.integers(0, 3)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        if shape == 0:
            d.rectangle(box, fill=col, outline=(20, 20, 20), width=max(1, int(5 * s)))
        elif shape == 1:
            d.ellipse(box, fill=col, outline=(20, 20, 20), width=max(1, int(5 * s)))
        else:
            d.polygon([(box[0], box[3]), ((box[0] + box[2]) // 2, box[1]), (box[2], box[3])], fill=col,
                      outline=(20, 20, 20), width=max(1, int(5 * s)))
    for _ in range(6):  # hand-drawn-like strokes
        pts = [(int(v[0]), int(v[1])) for v in rng.integers(0, size, (4, 2))]
        d.line(pts, fill=(25, 25, 25), width=max(1, int(3 * s)), joint="curve")
    return np.asarray(im)


def lineart(size: int = 1024, seed: int = 1) -> np.ndarray:
    """Black ink outlines on white paper (a comic page's inks): almost all flat, the outlines the only
    place change can hide."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(im)
    s = size / 1024
    ink = (15, 15, 15)
    for _ in range(7):  # outlined shapes
        x0, y0 = (int(v) for v in rng.integers(0, int(800 * s), 2))
        w, h = (int(v) for v in rng.integers(int(100 * s), int(300 * s), 2))
        box = [x0, y0, x0 + w, y0 + h]
        if rng.integers(0, 2):
            d.ellipse(box, outline=ink, width=max(1, int(4 * s)))
        else:
            d.rectangle(box, outline=ink, width=max(1, int(4 * s)))
    for _ in range(8):  # pen strokes of varying weight
        pts = [(int(v[0]), int(v[1])) for v in rng.integers(0, size, (3, 2))]
        d.line(pts, fill=ink, width=max(1, int(rng.integers(2, 7) * s)), joint="curve")
    for _ in range(3):  # hatching
        x0, y0 = (int(v) for v in rng.integers(0, int(850 * s), 2))
        for k in range(12):
            o = int(k * 9 * s)
            d.line([(x0 + o, y0), (x0 + o + int(60 * s), y0 + int(120 * s))], fill=ink,
                   width=max(1, int(2 * s)))
    return np.asarray(im)


def painting(size: int = 1024) -> np.ndarray:
    """A digital painting stand-in: scikit-image's chelsea through an oil-paint-like mode filter (flat
    brush patches with soft, irregular edges and little fine texture), then a faint canvas grain."""
    from PIL import ImageFilter
    from skimage import data

    img = Image.fromarray(data.chelsea())
    img = img.resize((size, round(size * img.height / img.width)), Image.LANCZOS)
    img = img.filter(ImageFilter.ModeFilter(9)).filter(ImageFilter.SMOOTH)
    grain = np.random.default_rng(3).normal(0, 1.5, (img.height, img.width, 1))
    return np.clip(np.asarray(img, np.float32) + grain, 0, 255).round().astype(np.uint8)


def load(name: str, long_side: int = 1024) -> np.ndarray:
    """A benchmark image as H x W x 3 uint8 with its long side resized to `long_side`."""
    if name == "illustration":
        return illustration(long_side)
    if name == "lineart":
        return lineart(long_side)
    if name == "painting":
        return painting(long_side)
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    img = img[..., :3]
    h, w = img.shape[:2]
    f = long_side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return np.asarray(Image.fromarray(img).resize(size, Image.LANCZOS))
