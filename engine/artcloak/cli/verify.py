"""`artcloak verify ORIGINAL PROTECTED`: how strong a protection is, in a table, JSON or a figure."""
from __future__ import annotations

import argparse
import sys

from ..errors import ArtcloakError, kind_of
from ..measure import report_text
from .common import EXIT_FAILED, EXIT_OK, Bar, UsageError, emit, hint, print_error


def add_parser(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("verify", help="measure how strong a protection is",
                       description="Compare a protected image with its original: what a person sees, "
                       "and what "
                       "each surrogate model sees, clean and after JPEG, downscaling, crops, blur, noise and "
                       "noisy upscaling.")
    v.add_argument("original")
    v.add_argument("protected")
    v.add_argument("--json", action="store_true", help="print one JSON object")
    v.add_argument("--figure", metavar="PNG", help="also write a PNG figure of what the models see")
    v.add_argument("--models", metavar="A,B", help="surrogates to use (default: every installed one)")
    v.add_argument("--quick", action="store_true",
                   help="only train512, jpeg75 (as protect's report) and resize512")
    v.add_argument("--transforms", metavar="A,B", help="transforms to run (default: all)")
    v.add_argument("--side", type=int, default=512, help="evaluation view size in px (default 512; "
                   "larger is slower and closer to the whole image)")
    v.add_argument("--seed", type=int, default=0, help="seed of the random-sign noise reference")
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """`artcloak verify`: the table (or JSON) of verify.verify_files, and the figure when asked."""
    from ..measure import verify

    models = [m.strip() for m in (args.models or "").split(",") if m.strip()]
    names = list(verify.QUICK) if args.quick else None
    if args.transforms:
        names = [t.strip() for t in args.transforms.split(",") if t.strip()]
    if args.side < 64:
        raise UsageError("--side must be at least 64 (pixels)")
    bar = Bar(sys.stderr.isatty() and not args.json, "verify")
    try:
        if names is not None:
            verify.transforms_for(names)
        rep = verify.verify_files(args.original, args.protected, models=models, transforms=names,
                                  progress=bar, seed=args.seed, side=args.side)
        if args.figure:
            from .. import pixels as px
            from ..files import imageio
            from ..measure import figure

            bar(0.99, "drawing the figure")
            a, b = (px.to_float_rgb(imageio.read(f)[0]) for f in (args.original, args.protected))
            figure.save(args.figure, a, b, rep["models_used"], rep)
            rep["figure"] = str(args.figure)
    except (ArtcloakError, MemoryError, OSError) as e:
        bar.close()
        if args.json:
            emit({"ok": False, "error": str(e), "hint": hint(e), "kind": kind_of(e)})
        else:
            print_error(str(e), hint(e))
        return EXIT_FAILED
    bar.close()
    if args.json:
        emit(rep)
    else:
        print(report_text.table(rep))
        if args.figure:
            print(f"\nfigure written to {args.figure}")
    return EXIT_OK
