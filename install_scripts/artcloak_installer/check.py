"""`--check`: protect a tiny image through the installed engine, the way the plug-ins call it."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from .common import APP, CONFIG_NAME


def check(base: Path) -> int:
    """Say what the installed engine has (`artcloak doctor`: device, onnxruntime, the LPIPS weights, the
    surrogates, what a missing part costs), then protect a tiny image through it the way the plug-ins do."""
    cfg_path = base / CONFIG_NAME
    if not cfg_path.is_file():
        print(f"No engine configuration at {cfg_path}: run the installer first.")
        return 1
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    w, h, c = 48, 32, 3
    pixels = bytes((x * 5 + y * 3 + k * 40) % 256 for y in range(h) for x in range(w) for k in range(c))
    env = dict(os.environ)
    if cfg.get("models"):
        env.setdefault("ARTCLOAK_MODELS", cfg["models"])
    print(f"The installed engine ({cfg['python']}):", flush=True)
    doctor = subprocess.run([cfg["python"], "-m", APP, "doctor"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, text=True)
    print("  " + doctor.stdout.strip().replace("\n", "\n  "))
    if doctor.returncode != 0:
        print("FAILED: the engine's `artcloak doctor` failed (above)")
        return 1
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="artcloak-check-") as tmp:
        Path(tmp, "in.raw").write_bytes(pixels)
        job = {"op": "protect", "dir": tmp, "input": "in.raw", "output": "out.raw", "width": w, "height": h,
               "channels": c, "format": "u8", "params": {"quality": "fast"}}
        print(f"Protecting a {w}x{h} test image with {cfg['python']} (quality fast)...", flush=True)
        proc = subprocess.Popen([cfg["python"], "-m", "artcloak.worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=env, universal_newlines=True)
        out, _ = proc.communicate(json.dumps(job) + "\n")
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        last = events[-1] if events else {}
        if last.get("event") != "done":
            print(f"FAILED: {last.get('message', 'the engine gave no result')} {last.get('hint', '')}")
            return 1
        size = Path(tmp, last["output"]).stat().st_size
        if size != len(pixels):
            print(f"FAILED: the engine wrote {size} bytes, expected {len(pixels)}")
            return 1
        used = last.get("report", {}).get("models_used", [])
    print("OK: the engine works (models: {}; {:.0f} s). In GIMP: Filters > AI Protection.".format(
        ", ".join(used) or "?", time.time() - start))
    return 0

