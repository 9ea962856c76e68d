"""Seconds to the dialog's first preview and per update, through the real worker and client.

    ARTCLOAK_CLOAK=... ARTCLOAK_MODELS=... python bench/bench_preview.py [--side 1024] [--crop 512]
                                                                          [--updates 4]

A side x side RGB image (default 1024, the issue's target case); the preview gets its centre crop of at
most --crop px (what the GIMP 3 dialog sends: artcloak_gimp_preview.PREVIEW_SIDE), or the whole image
with --crop 0. Prints the CPU, the engine's start (process start to its "ready" event: Python, torch,
the engine's modules), the first preview (from start(), what the dialog waits for), and each update
(request() to its frame, intensities alternating so every update computes anew). Targets (issue #19):
first preview <= 2 s, updates <= 1 s.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugin" / "common"))
import artcloak_client as client  # noqa: E402

INTENSITIES = ("low", "high", "default")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def artwork(side: int) -> np.ndarray:
    """Gradients, soft shapes and fine texture: flat and textured areas, as a painting has."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    rng = np.random.default_rng(0)
    texture = rng.normal(0, 12, (side, side))
    rgb = np.stack([60 + 150 * x, 40 + 160 * y, 128 + 70 * np.sin(9 * x) * np.cos(7 * y) + texture], -1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def centre(img: np.ndarray, crop: int) -> np.ndarray:
    h, w = img.shape[:2]
    if crop <= 0:
        return img
    ch, cw = min(h, crop), min(w, crop)
    return np.ascontiguousarray(img[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw])


def wait(session: client.PreviewSession, number: int | None, events: dict) -> client.PreviewFrame:
    """Poll as the dialog's 100 ms timer does (finer here, 10 ms, to time it); note when 'ready' came."""
    while True:
        frame = session.poll()
        if session.ready and "ready" not in events:
            events["ready"] = time.time()
        if session.error is not None:
            raise SystemExit(f"engine error: {session.error}")
        if frame is not None and (number is None or frame.request == number):
            return frame
        time.sleep(0.01)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=1024)
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--updates", type=int, default=4)
    args = ap.parse_args()
    os.environ.setdefault("ARTCLOAK_ENGINE_PYTHON", sys.executable)
    pixels = centre(artwork(args.side), args.crop)
    h, w = pixels.shape[:2]
    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical CPUs; ARTCLOAK_THREADS="
          f"{os.environ.get('ARTCLOAK_THREADS', 'unset')}); load average {os.getloadavg()[0]:.2f}")
    print(f"image {args.side}x{args.side} u8 RGB, previewed: {w}x{h}")
    session = client.PreviewSession(pixels.tobytes(), w, h, 3, "u8")
    events: dict = {}
    start = time.time()
    session.start({"intensity": "default"})
    try:
        first = wait(session, 0, events)
        done = time.time()
        print(f"engine start (process to 'ready'): {events.get('ready', done) - start:.2f} s")
        print(f"first preview: {done - start:.2f} s after start() (engine's own time {first.seconds:.2f} s)")
        times = []
        for i in range(args.updates):
            t = time.time()
            number = session.request({"intensity": INTENSITIES[i % len(INTENSITIES)]})
            frame = wait(session, number, events)
            times.append(time.time() - t)
            print(f"update {i + 1} ({INTENSITIES[i % len(INTENSITIES)]}): {times[-1]:.2f} s "
                  f"(engine {frame.seconds:.2f} s)")
        if times:
            print(f"updates: median {float(np.median(times)):.2f} s, max {max(times):.2f} s")
    finally:
        session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
