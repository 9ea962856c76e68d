"""Try an optimizer variant: run optimize() with a Tuning (and Params) on benchmark images, print the figures.

    ARTCLOAK_MODELS=../shared/models/taesd .venv/bin/python bench/bench_tuning.py \\
        [--images astronaut,illustration] [--size 1024] [--tuning '{"prune": 0.3}'] \\
        [--params '{"robustness": ""}'] [--models taef2,taesana]

One line per image: optimize time, PSNR, SSIM, flat_change, taef2 latent_shift, then noise_ratio and
amplification clean / after jpeg75 / after resize512 (the figures bench_protect.py tabulates), over the
whole image.
The issue notes' experiment tables were made with this.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from artcloak import pixels as px  # noqa: E402
from artcloak.cloak.optimize import Tuning, optimize  # noqa: E402
from artcloak.measure import metrics  # noqa: E402
from artcloak.params import Params  # noqa: E402
from bench_images import load  # noqa: E402
from bench_protect import EXACT_SIDE, by_view  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", default="astronaut,illustration")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--tuning", default="{}", help="Tuning fields as JSON")
    ap.add_argument("--params", default="{}", help="Params fields as JSON")
    ap.add_argument("--models", default="taef2,taesana", help="the surrogates the optimizer attacks")
    a = ap.parse_args()
    tuning, params = Tuning(**json.loads(a.tuning)), Params(**json.loads(a.params))
    models = a.models.split(",")
    for name in a.images.split(","):
        work = px.split(load(name, a.size))
        t = time.time()
        delta = optimize(work, params, models, lambda f, m: None, lambda: None, tuning)
        spent = time.time() - t
        out = px.merge(work, delta)
        r = metrics.measure(work.rgb, px.to_float_rgb(out), ["taef2", "taesana"], side=EXACT_SIDE)
        p, m = r["perceptual"], r["models"]
        f2, sana = m["taef2"], m["taesana"]
        print(f"{name:12s} {spent:5.1f}s psnr {p['psnr']:.2f} ssim {p['ssim']:.4f} "
              f"flat {p['flat_change']:.2f} | taef2 shift {f2['latent_shift']:.3f} "
              f"nr {by_view(f2, 'noise_ratio')} amp {by_view(f2, 'amplification')} "
              f"| taesana nr {by_view(sana, 'noise_ratio')}", flush=True)


if __name__ == "__main__":
    main()
