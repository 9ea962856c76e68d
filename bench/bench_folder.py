"""A folder of images protected in one CLI run, as an artist posting a series does (#19's target:
40 images of 1024 x 1024 with `--quality instant` in at most 3 minutes, engine start included).

    ARTCLOAK_MODELS=../shared/models/taesd .venv/bin/python bench/bench_folder.py
        [--count 40] [--quality instant] [--avx2] [--families two|six]

The images are 1024 px crops of the bench images at several positions and scales (PNG). "six"
registers bench/standins.py's stand-ins for the four families whose weights are absent here.
Prints the wall time of the whole run (from the process start), the per-file seconds the CLI
reports, and the peak memory.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def make_images(folder: Path, count: int) -> list[Path]:
    import bench_images
    import numpy as np
    from PIL import Image

    sources = [bench_images.load(n, 2048) for n in ("astronaut", "coffee", "illustration", "lineart",
                                                    "painting", "chelsea", "rocket")]
    paths = []
    for i in range(count):
        img = sources[i % len(sources)]
        h, w = img.shape[:2]
        rng = np.random.default_rng(i)
        side = int(rng.integers(1024, min(h, w) + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(img[top: top + side, left: left + side]).resize((1024, 1024), Image.BICUBIC)
        paths.append(folder / f"image_{i:02d}.png")
        crop.save(paths[-1])
    return paths


def main() -> None:
    from bench_install import AVX2_ENV
    from bench_protect import machine_header

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--quality", default="instant")
    ap.add_argument("--avx2", action="store_true", help="play an AVX2-only CPU (bench_install's --avx2)")
    ap.add_argument("--families", default="two", choices=("two", "six"))
    a = ap.parse_args()
    print(machine_header(), flush=True)
    with tempfile.TemporaryDirectory(prefix="artcloak-bench-folder-") as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        paths = make_images(tmp / "in", a.count)
        env = {**os.environ, **(AVX2_ENV if a.avx2 else {})}
        standins = ""
        if a.families == "six":
            import standins as st

            standins = str(tmp / "standins")
            st.write(Path(standins))  # the stand-in weight files, registered in the child
        cmd = [sys.executable, str(HERE / "bench_install.py"), "--child", standins, "protect",
               *map(str, paths), "--out-dir", str(tmp / "out"), "--quality", a.quality, "--json"]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        last = json.loads(done.stdout.strip().splitlines()[-1])
        per_file = [r["seconds"] for r in last["records"] if r.get("ok")]
        if len(per_file) != a.count:
            raise SystemExit(f"only {len(per_file)} of {a.count} files were protected: {last['records']}")
        played = ", AVX2 played" if a.avx2 else ""
        print(f"{a.count} images of 1024 x 1024, --quality {a.quality}, {a.families} families{played}: "
              f"{wall:.1f} s in all (engine start included); per file {min(per_file):.2f}-"
              f"{max(per_file):.2f} s; peak {last['rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
