"""`artcloak doctor`: which device, precision and thread count protections run with here, and why."""
from __future__ import annotations

import argparse

from .common import EXIT_OK, emit


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("doctor", help="say which device, precision and threads protections run with")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Which device, precision and thread count protections run with on this machine, and why."""
    from .. import runtime

    info = runtime.describe()
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
    return EXIT_OK
