"""The `artcloak` command: protect files, verify a protection, list the surrogate models.

    artcloak protect IN... (-o OUT | --out-dir DIR) [--intensity ...] [--quality ...] [--json] ...
    artcloak verify ORIGINAL PROTECTED [--json] [--figure PNG]
    artcloak models [--json]
    artcloak doctor [--json]

Exit codes: 0 all done, 1 some file failed (the others are written), 2 bad usage.
With --json, `protect` prints one JSON object per input file, one per line, as each finishes;
`verify` and `models` print one JSON object. Progress goes to stderr, only on a terminal.

One module per command (protect, verify, models, doctor), each adding its own subcommand; common.py
holds what they share.
"""
from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import doctor, models, protect, verify
from .common import EXIT_USAGE, Parser, UsageError

COMMANDS = (protect, verify, models, doctor)


def build_parser() -> argparse.ArgumentParser:
    top = Parser(prog="artcloak",
                 description="Protect artwork from AI style mimicry, and measure the protection.")
    top.add_argument("--version", action="version", version=f"artcloak {__version__}")
    sub = top.add_subparsers(dest="command", metavar="{protect,verify,models,doctor}", parser_class=Parser)

    for command in COMMANDS:
        command.add_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args)
    except UsageError as e:
        parser.print_usage(sys.stderr)
        print(f"artcloak: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
