"""The picture of a verification: what a person sees next to what each model sees.

Row 1: original, protected, and the difference amplified. Then one row per surrogate: its
reconstruction of the original, of the protected image, and their difference amplified by the
same factor, so a model that "sees" more change than a person shows a brighter third panel.
Encoder-only surrogates show where their latents moved instead. All panels show the same centre
crop at 1:1 (a downscaled whole image would hide the perturbation).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import imageio, metrics, onnx_backend

PANEL = 384
LABEL_H = 22


def _u8(img: np.ndarray) -> Image.Image:
    return Image.fromarray(np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8))


def _diff(a: np.ndarray, b: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(0.5 + (b - a) * gain, 0, 1)


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1 without FreeType sizes
        return ImageFont.load_default()


def _heat(z: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Per-position latent change, normalised, as a warm overlay on the image in grey."""
    h, w = base.shape[:2]
    m = np.sqrt((z**2).sum(0))
    m = m / max(float(m.max()), 1e-12)
    m = np.asarray(Image.fromarray(np.rint(m * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR),
                   np.float32)[..., None] / 255
    grey = np.repeat(base.mean(2, keepdims=True), 3, axis=2)
    warm = np.concatenate([m, 0.7 * m**2, 0.15 * (1 - m)], axis=2)
    return np.clip(0.45 * grey + 0.75 * warm, 0, 1)


def render(orig: np.ndarray, prot: np.ndarray, models: list[str], side: int = PANEL,
           report: dict | None = None) -> Image.Image:
    """The figure as a Pillow image; orig/prot are H x W x 3 float32 in [0, 1]."""
    a, b = metrics.eval_view(orig, side), metrics.eval_view(prot, side)
    h, w = a.shape[:2]
    delta = b - a
    rms = float(np.sqrt(np.mean(delta.astype(np.float64) ** 2)))
    gain = float(np.clip(0.15 / max(rms, 1e-6), 1, 50))  # the difference fills a visible range
    rows: list[list[tuple[str, np.ndarray]]] = [[
        ("original", a), ("protected", b), (f"difference x{gain:.0f}", _diff(a, b, gain))]]
    for name in models:
        net = onnx_backend.nets(name)
        z0, z1 = (net.encode(np.ascontiguousarray(im.transpose(2, 0, 1)[None])) for im in (a, b))
        figs = (report or {}).get("models", {}).get(name, {})
        extra = f" (amplification {figs['amplification']:.2f})" if "amplification" in figs else ""
        if net.decode is not None:
            r0, r1 = (np.clip(net.decode(z)[0].transpose(1, 2, 0), 0, 1)[:h, :w] for z in (z0, z1))
            rows.append([(f"{name} sees the original", r0), (f"{name} sees the protected", r1),
                         (f"{name}: difference x{gain:.0f}{extra}", _diff(r0, r1, gain))])
        else:
            ratio = f" (noise ratio {figs['noise_ratio']:.2f})" if "noise_ratio" in figs else ""
            rows.append([(f"{name}: where its latents moved{ratio}", _heat((z1 - z0)[0], a))])
    font = _font()
    canvas = Image.new("RGB", (3 * w + 4 * 8, len(rows) * (h + LABEL_H + 8) + 8), "white")
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        y = 8 + r * (h + LABEL_H + 8)
        for c, (label, img) in enumerate(row):
            x = 8 + c * (w + 8)
            draw.text((x, y), label, fill="black", font=font)
            canvas.paste(_u8(img), (x, y + LABEL_H))
    return canvas


def save(path: str | Path, orig: np.ndarray, prot: np.ndarray, models: list[str],
         report: dict | None = None) -> None:
    """Write the figure as a PNG (atomically)."""
    import io

    buf = io.BytesIO()
    render(orig, prot, models, report=report).save(buf, "PNG")
    imageio.write_atomic(path, buf.getvalue())
