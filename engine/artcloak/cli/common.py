"""What every `artcloak` command shares: exit codes, the parser, the progress bar, JSON output, errors
in words, and the protection parameters as options (generated from params.schema, declared once there)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import MEMORY_HINT, InputError, kind_of
from ..params import Params, schema

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command line: exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 as well; keep its message style
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class Bar:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, enabled: bool, prefix: str = ""):
        self.enabled, self.prefix, self.last = enabled, prefix, 0.0

    def __call__(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and fraction < 1):
            return
        self.last = now
        width = 24
        done = int(max(0.0, min(1.0, fraction)) * width)
        line = f"\r{self.prefix} [{'#' * done}{'.' * (width - done)}] {fraction * 100:3.0f}% {message}"
        sys.stderr.write(line[:150].ljust(min(150, len(line) + 10)))
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 150 + "\r")
            sys.stderr.flush()


def emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=jsonable) + "\n")
    sys.stdout.flush()


def jsonable(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def hint(e: BaseException) -> str:
    """What to do about a failure: the error's own hint, or the worker's for a lack of memory."""
    return MEMORY_HINT if kind_of(e) == "memory" else getattr(e, "hint", "")


def print_error(text: str, hint: str) -> None:
    """A failure as every command prints it on stderr: `artcloak: ...`, then what to do about it."""
    print(f"artcloak: {text}" + (f"\n  hint: {hint}" if hint else ""), file=sys.stderr, flush=True)


def add_param_options(p: argparse.ArgumentParser) -> None:
    """One option per Params field, generated from params.schema() (declared once, there)."""
    group = p.add_argument_group("protection parameters")
    for entry in schema():
        kind = {"int": int, "str": str}[entry["type"]]
        help_text = entry["help"]
        if entry["default"] != "":
            help_text += f" (default: {entry['default']})"
        closed = entry["kind"] == "choice"
        metavar = "|".join(entry["choices"]) if closed else entry["name"].upper()
        group.add_argument(f"--{entry['name'].replace('_', '-')}", dest=f"param_{entry['name']}", type=kind,
                           default=None, metavar=metavar, help=help_text)


def params_from(args: argparse.Namespace) -> Params:
    values = {e["name"]: getattr(args, f"param_{e['name']}") for e in schema()}
    try:
        return Params(**{k: v for k, v in values.items() if v is not None})
    except InputError as e:
        raise UsageError(str(e)) from None
