"""`artcloak doctor`: which device, precision and thread count protections run with here, and which parts
of the product are installed (onnxruntime, the LPIPS weights, the surrogate families), with what a missing
one costs. The installer's `--check` prints the same."""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util

from .common import EXIT_OK, emit

# What leaving each optional part out costs the user (README's Install section says the same)
COST_ONNXRUNTIME = ("measuring (the report after each protection, `verify`, the optimiser's checks) runs on "
                    "torch instead, about 1.5-2x slower")
COST_LPIPS = ("the presets' LPIPS bound is not checked: outputs are fitted to the pixel bounds only, and "
              "reports and `verify` leave LPIPS out")
INSTALL_HINT = "run the installer again without --minimal (install_scripts/install.sh or install.ps1)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("doctor", help="say which device, precision and threads protections run with, "
                       "and which parts are installed")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(func=run)


def onnxruntime_part() -> dict:
    """Whether onnxruntime is importable here (without importing it: its first session writes a device id)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return {"installed": False, "version": None, "cost": COST_ONNXRUNTIME, "hint": INSTALL_HINT}
    try:
        version = importlib.metadata.version("onnxruntime")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    from ..models.runners import torch_forced

    forced = torch_forced()
    return {"installed": True, "version": version, "used": not forced,
            "cost": COST_ONNXRUNTIME + " (ARTCLOAK_BACKEND=torch is set)" if forced else None}


def lpips_part() -> dict:
    """Whether the LPIPS weight file is there and matches its pinned sha256 (the check lpips.load makes)."""
    from ..measure import lpips

    path = lpips.weights_path()
    if path is None:
        return {"found": False, "path": None, "hash_ok": False, "cost": COST_LPIPS, "hint": INSTALL_HINT}
    ok = lpips.verified(path)
    return {"found": True, "path": str(path), "hash_ok": ok,
            "cost": None if ok else COST_LPIPS + " (the weight file fails its pinned sha256: reinstall it)"}


def models_part() -> dict:
    """The surrogate families whose encoder is installed and verified, and the ones missing."""
    from .models import models_report

    rep = models_report()
    installed = [{"name": e["name"], "serves": e["serves"]} for e in rep if e["usable"]]
    missing = [{"name": e["name"], "serves": e["serves"]} for e in rep if not e["usable"]]
    cost = None
    if missing:
        cost = ("protections are neither optimised nor measured against the missing families' encoders "
                "(" + ", ".join(f"{m['name']}: {m['serves']}" for m in missing) + ")")
        if not installed:
            cost = "no surrogate is installed: nothing can be protected. " + INSTALL_HINT
    return {"installed": installed, "missing": missing, "cost": cost}


def parts() -> dict:
    """Which parts of the product this engine has, each with its cost when missing (None when present)."""
    return {"onnxruntime": onnxruntime_part(), "lpips": lpips_part(), "models": models_part()}


def parts_lines(p: dict) -> list[str]:
    """parts() in words, one line per part, then what each missing part costs."""
    ort, lp, mo = p["onnxruntime"], p["lpips"], p["models"]
    lines = [f"onnxruntime: {ort['version']}" if ort["installed"] else "onnxruntime: NOT INSTALLED"]
    if not lp["found"]:
        lines.append("LPIPS:       weights NOT INSTALLED (stlpips-pytorch)")
    else:
        lines.append(f"LPIPS:       {'ok' if lp['hash_ok'] else 'HASH MISMATCH'}  {lp['path']}")
    names = ", ".join(f"{m['name']} ({m['serves']})" for m in mo["installed"]) or "NONE"
    lines.append(f"surrogates: {names}")
    if mo["missing"]:
        lines.append("missing:     " + ", ".join(m["name"] for m in mo["missing"]))
    for label, part in (("onnxruntime", ort), ("LPIPS", lp), ("surrogates", mo)):
        if part["cost"]:
            lines.append(f"  cost of the missing {label}: {part['cost']}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Which device, precision and thread count protections run with on this machine, and why; which parts
    are installed."""
    from .. import runtime

    info = runtime.describe()
    info["parts"] = parts()
    if args.json:
        emit(info)
        return EXIT_OK
    flags = " ".join(info["cpu_flags"]) or "none reported"
    print(f"CPU:       {info['cpu']} ({info['physical_cores']} physical cores; flags: {flags})")
    print(f"torch:     {info['torch']}")
    print(f"device:    {info['device']}")
    print(f"precision: {info['precision']} ({info['reason']})")
    print(f"threads:   {info['threads']}")
    print("override with ARTCLOAK_PRECISION=auto|fp32|bf16|fp16 and ARTCLOAK_THREADS=N")
    for line in parts_lines(info["parts"]):
        print(line)
    return EXIT_OK
