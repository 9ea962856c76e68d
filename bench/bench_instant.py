"""The instant preset (#19) beside the default, and what the known-pattern attack leaves of it.

    ARTCLOAK_MODELS=../shared/models/taesd .venv/bin/python bench/bench_instant.py
        [--images astronaut,illustration,lineart,painting] [--size 1024] [--presets default/default]
        [--reference-cache DIR] [--json out.json]

Per image: the reference preset's row (default/default) and instant's (same intensity), each judged
over metrics.TRAIN_VIEWS (taef2's copy median and worst, dB, lower is stronger; taesana's latent
change), plus for instant: its random-sign twin (noise of the same visibility: "over noise" is the
twin's median copy minus instant's), and the known-pattern attack (measure/pattern_attack.py) with one
global fit ("attack") and a fit per 96 px block ("attack/96"): "over noise" of what the attacker keeps
is the same twin's copy minus the attacked image's. Seconds: protect() whole (report included), in
this process after one warm-up run (engine start and model loading stated separately).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    import bench_images
    from bench_protect import machine_header
    from bench_strength import HEADER, judge, row, run_product

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="astronaut,illustration,lineart,painting")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--presets", default="default/default", help="reference intensity/quality pairs")
    ap.add_argument("--reference-cache", help="keep the reference rows here (they do not depend on instant)")
    ap.add_argument("--json", help="write every figure here")
    a = ap.parse_args()
    from artcloak import Params, protect
    from artcloak import pixels as px
    from artcloak.cloak import instant
    from artcloak.measure import metrics, pattern_attack

    print(machine_header(), flush=True)
    t0 = time.time()
    protect(bench_images.load("astronaut", 256), Params(quality="instant"))
    print(f"engine warm-up (models, cloak, onnxruntime sessions): {time.time() - t0:.1f} s", flush=True)
    print(HEADER, flush=True)
    results: dict = {}
    cloak = instant.shipped()
    for name in a.images.split(","):
        img = bench_images.load(name, a.size)
        orig = px.to_float_rgb(img)
        cache: dict = {}
        results[name] = {}
        for pair in a.presets.split(","):
            intensity, quality = pair.split("/")
            saved = Path(a.reference_cache) / f"{name}_{a.size}_{intensity}_{quality}.json" \
                if a.reference_cache else None
            if saved is not None and saved.is_file():
                r = json.loads(saved.read_text())
            else:
                out, seconds = run_product(img, intensity, quality, None)
                r = judge(img, out, seconds, cache)
                if saved is not None:
                    saved.parent.mkdir(parents=True, exist_ok=True)
                    saved.write_text(json.dumps(r))
            results[name][pair] = r
            print(row(f"{name} {pair}", r), flush=True)
        intensity = a.presets.split(",")[0].split("/")[0]
        out, seconds = run_product(img, intensity, "instant", None)
        r = results[name]["instant"] = judge(img, out, seconds, cache)
        print(row(f"{name} {intensity}/instant", r), flush=True)
        twin = metrics.twin(orig, px.to_float_rgb(out), 0)
        noise = metrics.copy_over_views(orig, twin, models=("taef2",), cache=cache)["taef2"]["copy_psnr"]
        copies = {"instant": r["views"]["taef2"]["copy_psnr"]}
        for label, blocks in (("attack", 0), ("attack/96", 96)):
            t1 = time.time()
            attacked = pattern_attack.attack(out, cloak, blocks=blocks, intensity=intensity)
            ra = results[name][label] = judge(img, attacked, time.time() - t1, cache)
            print(row(f"{name} {label}", ra), flush=True)
            copies[label] = ra["views"]["taef2"]["copy_psnr"]
        ref = results[name][a.presets.split(",")[0]]["views"]["taef2"]["copy_psnr"]
        results[name]["summary"] = {"noise_copy": noise, **{f"{k}_over_noise": round(noise - v, 2)
                                                             for k, v in copies.items()},
                                    "instant_minus_reference": round(copies["instant"] - ref, 2)}
        print(f"{'':<30}   noise twin copy {noise:.2f}; over noise: " + ", ".join(
            f"{k} {noise - v:+.2f}" for k, v in copies.items()) +
            f"; instant - {a.presets.split(',')[0]}: {copies['instant'] - ref:+.2f} dB", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
