"""`artcloak protect IN... (-o OUT | --out-dir DIR)`: protect image files, each into its own format."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..errors import ArtcloakError, InputError, ModelError, OutputError, kind_of
from ..measure import report_text
from ..params import Params
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    Bar,
    UsageError,
    add_param_options,
    emit,
    hint,
    params_from,
    print_error,
)

OUT_FORMATS = {"keep": None, "png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "tiff": "TIFF"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("protect", help="protect image files",
                       description="Protect image files. Each output keeps its input's format "
                       "(PNG stays PNG, "
                       "16-bit stays 16-bit) unless --format says otherwise; one bad file is reported and "
                       "skipped. Exit code 0: all done, 1: some failed, 2: bad usage.")
    p.add_argument("inputs", nargs="+", metavar="IN", help="image files (PNG, JPEG, WebP, TIFF)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", metavar="OUT", help="output file (one input only)")
    out.add_argument("--out-dir", metavar="DIR", help="folder for the outputs (same file names)")
    p.add_argument("--format", choices=list(OUT_FORMATS), default="keep",
                   help="output format (default: keep each input's, or as the -o name says)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per file (one per line), no bar")
    p.add_argument("--no-metadata", action="store_true", help="do not add the 'do not train' XMP metadata")
    p.add_argument("--notice", metavar="TEXT",
                   help="the free-text 'do not train' notice written into the XMP")
    add_param_options(p)
    p.set_defaults(func=run)


def _outputs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    from ..files.imageio import EXTENSION, FORMATS

    inputs = [Path(p) for p in args.inputs]
    if (args.output is None) == (args.out_dir is None):
        raise UsageError("give either -o OUT (one input) or --out-dir DIR")
    fmt = OUT_FORMATS[args.format]
    if args.output is not None:
        if len(inputs) != 1:
            raise UsageError(f"-o names one output file but {len(inputs)} inputs were given; use --out-dir")
        out = Path(args.output)
        if os.path.isdir(out):  # (Path.is_dir raises for a name too long; it is checked later, in words)
            raise UsageError(f"{out} is a folder; use --out-dir {out}")
        named = FORMATS.get(out.suffix.lower())
        if fmt is None and named is None:
            raise UsageError(f"cannot tell the format from {out.name!r}; "
                             "end it with .png, .jpg, .webp or .tif")
        if fmt is not None and named is not None and named != fmt:
            raise UsageError(f"--format {args.format} writes {fmt} but the name {out.name!r} says {named}; "
                             f"name it {out.stem}{EXTENSION[fmt]}, or leave --format out")
        return [(inputs[0], out)]
    folder = Path(args.out_dir)
    pairs = []
    for src in inputs:
        name = src.name if fmt is None else src.stem + EXTENSION[fmt]
        pairs.append((src, folder / name))
    return pairs


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def protect_file(src: Path, dst: Path, params: Params, fmt: str | None, do_not_train: bool,
                 notice: str | None, progress: Bar) -> dict:
    """Protect one file into `dst` (atomically); returns the per-file record."""

    from .. import pixels as px
    from ..files import destination, imageio, metadata
    from ..measure import metrics
    from ..protect import protect

    t0 = time.time()
    if _same_file(src, dst):
        raise InputError(f"{dst} is the input file itself; artcloak never overwrites its input",
                         "Choose another output name or folder.")
    pixels, info = imageio.read(src)
    out_fmt = fmt or imageio.format_for(dst, info.format)
    if out_fmt not in imageio.EXTENSION:
        raise InputError(f"{src.name}: writing {out_fmt} files is not supported",
                         "Use --format png (or name the output .png).")
    if out_fmt == "JPEG" and pixels.shape[2] in (2, 4):
        what = "a transparent colour (PNG tRNS)" if info.colour_key else "an alpha channel"
        raise InputError(f"{src.name} has {what} and JPEG has no alpha",
                         "Write it as PNG or WebP (--format png).")
    destination.check_name(dst)
    result = protect(pixels, params, progress)
    progress(0.97, "writing")
    notes = info.notes + imageio.write(dst, result.pixels, info, out_fmt, do_not_train, notice)
    record: dict = {"input": str(src), "output": str(dst), "ok": True, "format": out_fmt, "notes": notes,
                    "metadata": {"do_not_train": do_not_train}, "report": result.report}
    # the file as it will be read back: its pixels (for a lossy format) and the metadata it really carries
    # (an old Pillow, say, writes a JPEG without the XMP it was handed)
    exact = imageio.is_exact(out_fmt, result.pixels, info)
    written, written_info = imageio.read(dst, pixels=not exact)  # exact: its metadata is enough
    if not exact:
        # a lossy format (or fewer bits): measure what the written file keeps
        progress(0.98, "measuring the written file")
        models = result.report.get("models_used") or list(result.report.get("models", {}))
        record["as_written"] = metrics.measure(px.to_float_rgb(pixels), px.to_float_rgb(written), models,
                                               seed=params.seed, transforms={}, lpips=False)
    record["metadata"] = metadata.read_do_not_train(written_info.xmp)
    if do_not_train and not record["metadata"]["do_not_train"]:
        record["notes"].append(f"the 'do not train' metadata is missing from the written {out_fmt} file "
                               "(this Pillow cannot write it there; the engine needs Pillow 11 or newer)")
    record["seconds"] = round(time.time() - t0, 2)
    return record


def summary_line(rec: dict) -> str:
    """What is printed per protected file: where it went and how long it took, then the report in
    words (the report's "text": the same as the GIMP message), what the written file keeps when its
    format loses some of it, and the notes."""
    lines = [f"{rec['input']} -> {rec['output']}  ({rec['seconds']:.0f} s)"]
    lines += ["    " + line for line in report_text.text_of(rec["report"]).splitlines()]
    if "as_written" in rec:
        lines.append(f"    as written ({rec['format']}):")
        lines += ["      " + line for line in report_text.text_of(rec["as_written"]).splitlines()]
    lines += [f"    note: {note}" for note in rec.get("notes", [])]
    return "\n".join(lines)


def _check_options(args: argparse.Namespace, params: Params) -> None:
    """What the options alone decide, before any file is read: a usage error (exit 2) now rather than
    a failure after the work."""
    from ..cloak import targets
    from ..files import metadata

    if args.no_metadata and args.notice is not None:
        raise UsageError("--notice is the text of the metadata that --no-metadata leaves out; "
                         "give one of them")
    try:
        metadata.check_notice(args.notice)
        targets.check(params.target)
    except InputError as e:
        raise UsageError(f"{e}. {e.hint}" if e.hint else str(e)) from None
    if not params.robustness_list:
        print("artcloak: note: --robustness is empty: the protection is not made to survive any "
              "transform (JPEG, resizing, ...)", file=sys.stderr)


def _check_destinations(args: argparse.Namespace, pairs: list[tuple[Path, Path]]) -> dict[int, Exception]:
    """Each output's problem that is known before any work (the folder cannot be made or written,
    the name is too long, two inputs would write one file), by its index: those files are reported
    and skipped at once, so none fails at its end for a reason that was there from the start."""
    from ..files import destination

    problems: dict[int, Exception] = {}
    folder_problem = None
    if args.out_dir is not None:
        try:
            destination.make_folder(args.out_dir)
        except OutputError as e:
            folder_problem = e
    seen: dict[Path, Path] = {}
    for i, (src, dst) in enumerate(pairs):
        try:
            if folder_problem is not None:
                raise folder_problem
            destination.check_name(dst)
            key = dst.resolve()
            if key in seen:
                raise InputError(f"{dst} would overwrite the result of {seen[key]} (same file name)",
                                 "Protect files with the same name into different folders.")
            seen[key] = src
        except (InputError, OutputError) as e:
            problems[i] = e
    return problems


def _failure(args: argparse.Namespace, src: Path, dst: Path, e: BaseException) -> dict:
    """Report one file's failure (a --json record, or the error in words) and return its record."""
    msg = str(e) or type(e).__name__
    for named in (f"{src}: ", f"{src.name}: "):  # the file is named once, in front of the line
        msg = msg[len(named):] if msg.startswith(named) else msg
    rec = {"input": str(src), "output": str(dst), "ok": False, "error": msg, "hint": hint(e),
           "kind": kind_of(e)}
    if rec["kind"] == "internal":
        rec["error"] = f"{type(e).__name__}: {e}"
    if args.json:
        emit(rec)
    else:
        print_error(f"{src}: {rec['error']}", rec["hint"])
    return rec


def run(args: argparse.Namespace) -> int:
    """`artcloak protect`: each input in turn; one bad file is reported and the batch goes on."""
    params = params_from(args)
    pairs = _outputs(args)
    _check_options(args, params)
    fmt = OUT_FORMATS[args.format]
    tty = sys.stderr.isatty() and not args.json
    problems = _check_destinations(args, pairs)
    for i, e in problems.items():
        _failure(args, *pairs[i], e)
    failed = len(problems)
    for i, (src, dst) in enumerate(pairs):
        if i in problems:
            continue
        bar = Bar(tty, f"[{i + 1}/{len(pairs)}] {src.name}")
        try:
            rec = protect_file(src, dst, params, fmt, not args.no_metadata, args.notice, bar)
            bar.close()
            if args.json:
                emit(rec)
            else:
                print(summary_line(rec), flush=True)
        except KeyboardInterrupt:
            bar.close()
            print("interrupted; finished files are kept", file=sys.stderr)
            return 130
        except (ArtcloakError, MemoryError, Exception) as e:  # one bad file must not stop the batch
            bar.close()
            failed += 1
            rec = _failure(args, src, dst, e)
            if isinstance(e, ModelError):  # every other file would fail the same way
                for j, (src2, dst2) in enumerate(pairs[i + 1:], start=i + 1):
                    if j in problems:
                        continue
                    failed += 1
                    rest = dict(rec, input=str(src2), output=str(dst2))
                    if args.json:
                        emit(rest)
                    else:
                        print(f"artcloak: {src2}: skipped (no models)", file=sys.stderr)
                break
    if not args.json and len(pairs) > 1:
        print(f"{len(pairs) - failed} of {len(pairs)} files protected", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK
