"""Train the instant cloak that ships with the engine (engine/artcloak/cloak/data/instant-v1.npz).

    ARTCLOAK_MODELS=../shared/models/taesd python bench/train_cloak.py --threads 1

(the shipped file: 2500 steps, 8 patterns of 64 px, seed 0; 29 min on one thread of the bf16 Xeon
below, shared with other work; its sidecar records the command, data, families and figures)

Data, all built offline and none of it a bench image (astronaut, coffee, chelsea, rocket and the
bench's illustration/line-art/painting seeds are held out for judging): scikit-image's other sample
images (photos, micrographs, textures, a logo; grey ones tinted), flat-colour illustrations and
line-art pages drawn with other seeds, gradients with shapes, and a painting-like filter of a photo.
Families: every installed one (`artcloak models`), the primary's decoded copy as the objective.
On a GPU (a `device` session): the same command runs there with `--steps` raised tenfold.
A user's own style: `--images DIR` adds every image in DIR to the data (then copy the result over
the shipped file and its pin, or point ARTCLOAK_CLOAK at it: see README, "Instant protection").
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_images  # noqa: E402

HELD_OUT = set(bench_images.PHOTOS)
SAMPLES = ("hubble_deep_field", "immunohistochemistry", "retina", "stereo_motorcycle", "colorwheel",
           "logo", "camera", "moon", "brick", "grass", "gravel", "cell", "coins", "clock")


def _rgb(img: np.ndarray, tint: int) -> np.ndarray:
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:  # grey: tinted, so the patterns also meet colour
        t = np.array([(1.0, 0.9, 0.75), (0.8, 0.9, 1.0), (1.0, 1.0, 1.0)][tint % 3])
        img = np.clip(img[..., None] * t, 0, 255).astype(np.uint8)
    if img.shape[2] == 4:  # over white paper
        a = img[..., 3:4].astype(np.float32) / 255
        img = (img[..., :3] * a + 255 * (1 - a)).astype(np.uint8)
    return img[..., :3]


def _gradient(seed: int, size: int = 768) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    c0, c1 = rng.integers(0, 255, 3), rng.integers(0, 255, 3)
    t = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) % 1.0
    img = Image.fromarray((c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(5):
        x0, y0 = (int(v) for v in rng.integers(0, size - 200, 2))
        d.ellipse([x0, y0, x0 + int(rng.integers(60, 200)), y0 + int(rng.integers(60, 200))],
                  fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return np.asarray(img)


def training_images(extra: Path | None = None) -> list[tuple[str, np.ndarray]]:
    """The named training images (H x W x 3 uint8, long side <= 1024)."""
    from skimage import data

    out: list[tuple[str, np.ndarray]] = []
    for i, name in enumerate(SAMPLES):
        assert name not in HELD_OUT
        img = getattr(data, name)()
        img = img[0] if isinstance(img, tuple) else img
        out.append((name, _rgb(img, i)))
    for seed in range(100, 106):
        out.append((f"illustration-{seed}", bench_images.illustration(1024, seed)))
    for seed in range(100, 103):
        out.append((f"lineart-{seed}", bench_images.lineart(1024, seed)))
    for seed in range(3):
        out.append((f"gradient-{seed}", _gradient(seed)))
    moto = Image.fromarray(data.stereo_motorcycle()[0]).filter(ImageFilter.ModeFilter(7))
    out.append(("motorcycle-painted", np.asarray(moto.filter(ImageFilter.SMOOTH))))
    if extra is not None:
        for path in sorted(p for p in extra.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"}):
            out.append((path.name, np.asarray(Image.open(path).convert("RGB"))))
    resized = []
    for name, img in out:
        h, w = img.shape[:2]
        f = min(1.0, 1024 / max(h, w))
        if f < 1.0:
            img = np.asarray(Image.fromarray(img).resize((round(w * f), round(h * f)), Image.LANCZOS))
        resized.append((name, img))
    return resized


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--patterns", type=int, default=8)
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: the runtime's choice)")
    ap.add_argument("--images", type=Path, help="a folder of your own images to add to the data")
    ap.add_argument("--out", type=Path, help="where to write the cloak (default: the shipped file)")
    args = ap.parse_args()
    import torch
    from artcloak.cloak import instant, train
    from artcloak.models import available_models

    if args.threads:
        torch.set_num_threads(args.threads)
    images = training_images(args.images)
    models = available_models()
    config = train.TrainConfig(steps=args.steps, patterns=args.patterns, side=args.side, seed=args.seed)
    t0 = time.time()

    def progress(step: int, loss: float, copy_db: float) -> None:
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:5d}/{args.steps}  loss {loss:8.3f}  copy {copy_db:6.2f} dB  "
                  f"{time.time() - t0:7.0f} s", flush=True)

    print(f"{len(images)} images, models {', '.join(models)}", flush=True)
    cloak, figures = train.train([img for _, img in images], models, config, progress)
    out = args.out or instant.CLOAK_FILE
    provenance = {
        "command": "python bench/train_cloak.py " + " ".join(sys.argv[1:]),
        "data": [name for name, _ in images],
        "data_sha256": hashlib.sha256(b"".join(img.tobytes() for _, img in images)).hexdigest(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.processor()
        or platform.machine(), **figures,
    }
    digest = instant.save(cloak, out, provenance)
    print(json.dumps({"file": str(out), "sha256": digest, "bytes": out.stat().st_size, **figures}))


if __name__ == "__main__":
    main()
