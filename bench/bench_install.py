"""The install as users have it: the CLI with the installer's defaults, two families or all six.

    ARTCLOAK_MODELS=../shared/models/taesd .venv/bin/python bench/bench_install.py
        [--images astronaut,illustration] [--standins different|clone] [--backends onnxruntime,torch]
        [--cases default,fast,large] [--precision auto]

Each row is one `artcloak protect IN -o OUT --quality Q --json` in a fresh process, as a user runs
it (engine start included in "wall s"; the report's own "seconds" excludes it), with:
- "two": the weights on this machine (taef2 encoder + decoder, taesana encoder), what the older
  bench measured;
- "six": every family a user with network gets. Those absent here stand in (bench/standins.py,
  labelled): taef2's architecture with perturbed weights ("different", the pessimistic case for
  taef2's figures) or its own weights ("clone", cost only); taesana's decoder with random weights.
Before the table, one small run per family set and backend exports the stand-ins to ONNX and probes
the precision (what a user's first run does once). Backends: "onnxruntime" is the default install;
"torch" (ARTCLOAK_BACKEND=torch) is an install made with the installer's opt-out of onnxruntime.
Cases: default, fast and instant at 1024 x 1024, default and instant at 4000 x 3000 (an upscaled
photo). "copy" is the
report's headline (taef2's copy after train512; fast decodes a 256 px window of it, as its report
says), "c/n" its copy_over_noise.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CASES = {"default": ("default", None), "fast": ("fast", None), "large": ("default", (4000, 3000)),
         "instant": ("instant", None), "instant-large": ("instant", (4000, 3000))}


def child(argv: list[str]) -> None:
    """Run the CLI in this process (stand-ins registered first when a folder is given) and print one
    JSON line: the CLI's record, wall seconds from before `import artcloak`, peak RSS."""
    t0 = time.perf_counter()
    standin_dir, cli_args = argv[0], argv[1:]
    if standin_dir:
        import standins

        standins.register(Path(standin_dir))
    from artcloak.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(cli_args)
    records = [json.loads(line) for line in out.getvalue().strip().splitlines() if line.startswith("{")]
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"code": code, "record": records[-1], "records": records,
                      "wall": time.perf_counter() - t0,
                      "rss_mb": kb / 1024 if sys.platform != "darwin" else kb / 2**20}))


def _image(name: str, size: tuple[int, int] | None, folder: Path) -> Path:
    import bench_images
    import numpy as np
    from PIL import Image

    img = bench_images.load(name, 1024)
    if size is None:  # 1024 x 1024: the centre square
        h, w = img.shape[:2]
        s = min(h, w)
        img = img[(h - s) // 2:][:s, (w - s) // 2:][:, :s]
        if s != 1024:
            img = np.asarray(Image.fromarray(img).resize((1024, 1024), Image.BICUBIC))
    else:
        img = np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC))
    path = folder / f"{name}_{img.shape[1]}x{img.shape[0]}.png"
    if not path.exists():
        Image.fromarray(img).save(path)
    return path


# An AVX2-only laptop CPU, as far as this one can play it: torch's own kernels (ATen) and oneDNN's
# convolutions limited to AVX2, fp32 (onnxruntime's kernels still use what the CPU has)
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "ARTCLOAK_PRECISION": "fp32"}


def run(inp: Path, out: Path, quality: str, standin_dir: str, backend: str, precision: str,
        avx2: bool = False) -> dict:
    env = {**os.environ, "ARTCLOAK_PRECISION": precision, **(AVX2_ENV if avx2 else {})}
    if backend == "torch":
        env["ARTCLOAK_BACKEND"] = "torch"
    else:
        env.pop("ARTCLOAK_BACKEND", None)
    cmd = [sys.executable, __file__, "--child", standin_dir, "protect", str(inp), "-o", str(out),
           "--quality", quality, "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def row(label: str, r: dict) -> str:
    rep = r["record"]["report"]
    p, h = rep["perceptual"], rep["headline"] or {}
    lpips = p.get("lpips")
    return (f"| {label} | {r['wall']:.1f} | {r['record']['seconds']:.1f} | {r['rss_mb']:.0f} "
            f"| {p['psnr']:.2f} "
            f"| {p['ssim']:.4f} | {'n/a' if lpips is None else f'{lpips:.4f}'} | {p['flat_change']:.2f} "
            f"| {h.get('copy_psnr', float('nan')):.2f} | {h.get('copy_over_noise', float('nan')):.2f} "
            f"| {len(rep['models_used'])} |")


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", default="astronaut,illustration")
    ap.add_argument("--standins", default="different", choices=("different", "clone"))
    ap.add_argument("--backends", default="onnxruntime,torch")
    ap.add_argument("--cases", default="default,fast,large")
    ap.add_argument("--families", default="two,six")
    ap.add_argument("--avx2", action="store_true",
                    help="play an AVX2-only CPU: torch and oneDNN kernels limited to AVX2, fp32")
    ap.add_argument("--precision", default="auto",
                    help="ARTCLOAK_PRECISION for every run (auto: the engine's choice)")
    args = ap.parse_args()
    import standins
    from artcloak import runtime

    info = runtime.describe()
    print(f"CPU: {info['cpu']}, {info['physical_cores']} cores, flags {' '.join(info['cpu_flags'])}; "
          f"torch {info['torch']}; "
          f"precision {'fp32, AVX2 kernels (--avx2)' if args.avx2 else args.precision} "
          f"(auto here: {info['precision']}, {info['reason']})")
    with tempfile.TemporaryDirectory(prefix="artcloak-bench-install-") as tmp:
        tmp = Path(tmp)
        made = standins.write(tmp / "standins", args.standins)
        print("six families: " + "; ".join(f"{k}: {v}" for k, v in made.items()))
        warm = _image("astronaut", (256, 256), tmp)  # once per set: ONNX exports and the precision probe
        for backend in args.backends.split(","):
            for fam in args.families.split(","):
                run(warm, tmp / "warm.png", "fast", str(tmp / "standins") if fam == "six" else "", backend,
                    args.precision, args.avx2)
        print("| run | wall s | report s | RSS MB | PSNR | SSIM | LPIPS | flat | copy | c/n | models |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for case in args.cases.split(","):
            quality, size = CASES[case]
            images = args.images.split(",") if size is None else ["coffee"]
            for name in images:
                inp = _image(name, size, tmp)
                for backend in args.backends.split(","):
                    for fam in args.families.split(","):
                        folder = str(tmp / "standins") if fam == "six" else ""
                        r = run(inp, tmp / f"out_{case}_{name}_{fam}_{backend}.png", quality, folder, backend,
                                args.precision, args.avx2)
                        label = f"{name} {inp.stem.split('_')[-1]} {quality}, {fam} families, {backend}"
                        print(row(label, r), flush=True)


if __name__ == "__main__":
    main()
