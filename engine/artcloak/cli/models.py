"""`artcloak models`: the surrogate models and whether their weights are installed."""
from __future__ import annotations

import argparse
import os
import sys

from .common import EXIT_FAILED, EXIT_OK, emit


def add_parser(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("models", help="list the surrogate models and whether their weights are installed")
    m.add_argument("--json", action="store_true", help="print one JSON object")
    m.set_defaults(func=run)


def models_report() -> list[dict]:
    """Per registered model: its encoder and decoder files, found where, hash checked, what was ignored."""
    from ..models import MODELS, find_file

    out = []
    for name, spec in MODELS.items():
        entry: dict = {"name": name, "serves": spec.serves, "latent_channels": spec.latent_channels}
        for part, wf in (("encoder", spec.encoder), ("decoder", spec.decoder)):
            f = find_file(wf)
            entry[part] = {"file": wf.filename, "found": f.path is not None,
                           "path": str(f.path) if f.path else None, "hash_ok": f.verified,
                           "problem": f.problem or None, "rejected": list(f.rejected), "url": wf.url}
        entry["usable"] = entry["encoder"]["hash_ok"]
        out.append(entry)
    return out


def run(args: argparse.Namespace) -> int:
    """`artcloak models`: each surrogate's files, where they were found and whether their hashes match."""
    from ..models import search_path

    rep = models_report()
    if args.json:
        emit({"models": rep, "search_path": [str(p) for p in search_path()]})
        return EXIT_OK

    def state(part: dict) -> str:
        if not part["found"]:
            return "not installed"
        return f"ok  {part['path']}" if part["hash_ok"] else f"HASH MISMATCH  {part['path']}"

    for e in rep:
        print(f"{e['name']:<8} {e['serves']}")
        print(f"  encoder: {state(e['encoder'])}")
        print(f"  decoder: {state(e['decoder'])}")
        for part in ("encoder", "decoder"):
            if e[part]["hash_ok"]:
                for problem in e[part]["rejected"]:
                    print(f"  {part}: IGNORED  {problem}")
    print("searched: " + os.pathsep.join(str(p) for p in search_path()))
    if not any(e["usable"] for e in rep):
        print("no model is installed: run the installer (install_scripts/install.sh or install.ps1)",
              file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
