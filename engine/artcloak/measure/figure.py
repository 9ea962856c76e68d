"""The picture of a verification: what a person sees next to what each model sees.

Row 1: original, protected, and the difference amplified. Then, for each surrogate with a decoder,
what a model trained on the image would learn: its copies D(E(T(x))) and D(E(T(x'))) after the
trainer view T = train512 (metrics.train_view: the whole 512 x 512 crop a trainer's model sees),
labelled with their copy_psnr next to the PSNR a person sees, and their difference. Then one row per
surrogate: its reconstruction of the original, of the protected image, and their difference
amplified by the same factor as row 1, so a model that "sees" more change than a person shows a
brighter third panel. Encoder-only surrogates show where their latents moved instead. Every panel
is at 1:1 (a downscaled whole image would hide the perturbation): a centre crop of PANEL px, and the
trainer view's own 512 px.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .. import pixels as px
from ..files import imageio
from ..models import runners
from . import metrics

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


Row = tuple[str, list[tuple[str, np.ndarray]]]  # (title line or "", panels)


def _decode(net: runners.Nets, img: np.ndarray) -> np.ndarray:
    z = net.encode(px.nchw(img))
    return np.clip(net.decode(z)[0].transpose(1, 2, 0), 0, 1)[: img.shape[0], : img.shape[1]]


def copy_rows(orig: np.ndarray, prot: np.ndarray, models: list[str], gain: float) -> list[Row]:
    """Per model with a decoder: its copy of the original and of the protected image after the
    trainer view (what a model trained on it would learn), with their PSNR, and their difference."""
    rows: list[Row] = []
    seen = metrics.psnr(orig, prot)
    t0, t1 = metrics.train_view(orig), metrics.train_view(prot)
    for name in models:
        net = runners.nets(name)
        if net.decode is None:
            continue
        c0, c1 = _decode(net, t0), _decode(net, t1)
        copy = metrics.psnr(c0, c1)
        title = (f"What a model trained on this image would learn ({name}, trainer view 512: short side "
                 f"{metrics.TRAIN_SHORT} px, crop {metrics.TRAIN_CROP}, JPEG q{metrics.TRAIN_JPEG}): "
                 f"its copy changes by {copy:.1f} dB PSNR (lower = stronger); you see {seen:.1f} dB")
        rows.append((title, [(f"{name}'s copy of the original", c0),
                             (f"{name}'s copy of the protected: {copy:.1f} dB", c1),
                             (f"copies' difference x{gain:.0f}", _diff(c0, c1, gain))]))
    return rows


def render(orig: np.ndarray, prot: np.ndarray, models: list[str], side: int = PANEL,
           report: dict | None = None) -> Image.Image:
    """The figure as a Pillow image; orig/prot are H x W x 3 float32 in [0, 1]."""
    a, b = metrics.eval_view(orig, side), metrics.eval_view(prot, side)
    h, w = a.shape[:2]
    delta = b - a
    rms = float(np.sqrt(np.mean(delta.astype(np.float64) ** 2)))
    gain = float(np.clip(0.15 / max(rms, 1e-6), 1, 50))  # the difference fills a visible range
    rows: list[Row] = [("", [("original", a), ("protected", b),
                             (f"difference x{gain:.0f}", _diff(a, b, gain))])]
    rows += copy_rows(orig, prot, models, gain)
    for name in models:
        net = runners.nets(name)
        z0, z1 = (net.encode(px.nchw(im)) for im in (a, b))
        figs = (report or {}).get("models", {}).get(name, {})
        extra = f" (amplification {figs['amplification']:.2f})" if "amplification" in figs else ""
        if net.decode is not None:
            r0, r1 = (np.clip(net.decode(z)[0].transpose(1, 2, 0), 0, 1)[:h, :w] for z in (z0, z1))
            rows.append(("", [(f"{name} sees the original", r0), (f"{name} sees the protected", r1),
                              (f"{name}: difference x{gain:.0f}{extra}", _diff(r0, r1, gain))]))
        else:
            ratio = f" (noise ratio {figs['noise_ratio']:.2f})" if "noise_ratio" in figs else ""
            rows.append(("", [(f"{name}: where its latents moved{ratio}", _heat((z1 - z0)[0], a))]))
    font = _font()
    width = max(sum(img.shape[1] + 8 for _, img in panels) for _, panels in rows) + 8
    height = 8 + sum((LABEL_H if title else 0) + LABEL_H + max(img.shape[0] for _, img in panels) + 8
                     for title, panels in rows)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    y = 8
    for title, panels in rows:
        if title:
            draw.text((8, y), title, fill="black", font=font)
            y += LABEL_H
        x = 8
        for label, img in panels:
            draw.text((x, y), label, fill="black", font=font)
            canvas.paste(_u8(img), (x, y + LABEL_H))
            x += img.shape[1] + 8
        y += LABEL_H + max(img.shape[0] for _, img in panels) + 8
    return canvas


def save(path: str | Path, orig: np.ndarray, prot: np.ndarray, models: list[str],
         report: dict | None = None) -> None:
    """Write the figure as a PNG (atomically)."""
    import io

    buf = io.BytesIO()
    render(orig, prot, models, report=report).save(buf, "PNG")
    imageio.write_atomic(path, buf.getvalue())
