"""The `artcloak` command: protect files, verify a protection, list the surrogate models.

    artcloak protect IN... (-o OUT | --out-dir DIR) [--intensity ...] [--quality ...] [--json] ...
    artcloak verify ORIGINAL PROTECTED [--json] [--figure PNG]
    artcloak models [--json]

Exit codes: 0 all done, 1 some file failed (the others are written), 2 bad usage.
With --json, `protect` prints one JSON object per input file, one per line, as each finishes;
`verify` and `models` print one JSON object. Progress goes to stderr, only on a terminal.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__
from .errors import MEMORY_HINT, ArtcloakError, InputError, ModelError, kind_of
from .measure import report_text
from .params import Params, schema

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
OUT_FORMATS = {"keep": None, "png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "tiff": "TIFF"}


class UsageError(Exception):
    """Bad command line: exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 as well; keep its message style
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# ---- output helpers ------------------------------------------------------------------------------

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


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=_jsonable) + "\n")
    sys.stdout.flush()


def _jsonable(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _hint(e: BaseException) -> str:
    """What to do about a failure: the error's own hint, or the worker's for a lack of memory."""
    return MEMORY_HINT if kind_of(e) == "memory" else getattr(e, "hint", "")


def _print_error(text: str, hint: str) -> None:
    """A failure as every command prints it on stderr: `artcloak: ...`, then what to do about it."""
    print(f"artcloak: {text}" + (f"\n  hint: {hint}" if hint else ""), file=sys.stderr, flush=True)


# ---- protect ---------------------------------------------------------------------------------

def _add_param_options(p: argparse.ArgumentParser) -> None:
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


def _params_from(args: argparse.Namespace) -> Params:
    values = {e["name"]: getattr(args, f"param_{e['name']}") for e in schema()}
    try:
        return Params(**{k: v for k, v in values.items() if v is not None})
    except InputError as e:
        raise UsageError(str(e)) from None


def _outputs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    inputs = [Path(p) for p in args.inputs]
    if (args.output is None) == (args.out_dir is None):
        raise UsageError("give either -o OUT (one input) or --out-dir DIR")
    fmt = OUT_FORMATS[args.format]
    if args.output is not None:
        if len(inputs) != 1:
            raise UsageError(f"-o names one output file but {len(inputs)} inputs were given; use --out-dir")
        out = Path(args.output)
        if out.is_dir():
            raise UsageError(f"{out} is a folder; use --out-dir {out}")
        from .files.imageio import FORMATS

        if fmt is None and out.suffix.lower() not in FORMATS:
            raise UsageError(f"cannot tell the format from {out.name!r}; "
                             "end it with .png, .jpg, .webp or .tif")
        return [(inputs[0], out)]
    from .files.imageio import EXTENSION

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

    from . import pixels as px
    from .files import imageio, metadata
    from .measure import metrics
    from .protect import protect

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
        raise InputError(f"{src.name} has an alpha channel and JPEG has none",
                         "Write it as PNG or WebP (--format png).")
    if not os.access(dst.parent if dst.parent != Path("") else Path("."), os.W_OK):
        raise InputError(f"cannot write into {dst.parent}", "Check that the folder exists and is writable.")
    result = protect(pixels, params, progress)
    progress(0.97, "writing")
    notes = info.notes + imageio.write(dst, result.pixels, info, out_fmt, do_not_train, notice)
    record: dict = {"input": str(src), "output": str(dst), "ok": True, "format": out_fmt, "notes": notes,
                    "metadata": {"do_not_train": do_not_train}, "report": result.report}
    # the file as it will be read back: its pixels (for a lossy format) and the metadata it really carries
    # (an old Pillow, say, writes a JPEG without the XMP it was handed)
    written, written_info = imageio.read(dst)
    if not imageio.is_exact(out_fmt, result.pixels, info):
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


def _summary_line(rec: dict) -> str:
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


def cmd_protect(args: argparse.Namespace) -> int:
    params = _params_from(args)
    pairs = _outputs(args)
    fmt = OUT_FORMATS[args.format]
    tty = sys.stderr.isatty() and not args.json
    seen: dict[Path, Path] = {}
    failed = 0
    if args.out_dir is not None:
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    for i, (src, dst) in enumerate(pairs):
        bar = Bar(tty, f"[{i + 1}/{len(pairs)}] {src.name}")
        try:
            key = dst.resolve()
            if key in seen:
                raise InputError(f"{dst} would overwrite the result of {seen[key]} (same file name)",
                                 "Protect files with the same name into different folders.")
            seen[key] = src
            rec = protect_file(src, dst, params, fmt, not args.no_metadata, args.notice, bar)
            bar.close()
            if args.json:
                _emit(rec)
            else:
                print(_summary_line(rec), flush=True)
        except KeyboardInterrupt:
            bar.close()
            print("interrupted; finished files are kept", file=sys.stderr)
            return 130
        except (ArtcloakError, MemoryError, Exception) as e:  # one bad file must not stop the batch
            bar.close()
            failed += 1
            msg = str(e) or type(e).__name__
            msg = msg[len(src.name) + 2:] if msg.startswith(src.name + ": ") else msg
            rec = {"input": str(src), "output": str(dst), "ok": False, "error": msg,
                   "hint": _hint(e), "kind": kind_of(e)}
            if rec["kind"] == "internal":
                rec["error"] = f"{type(e).__name__}: {e}"
            if args.json:
                _emit(rec)
            else:
                _print_error(f"{src}: {rec['error']}", rec["hint"])
            if isinstance(e, ModelError):  # every other file would fail the same way
                for src2, dst2 in pairs[i + 1:]:
                    failed += 1
                    rest = dict(rec, input=str(src2), output=str(dst2))
                    if args.json:
                        _emit(rest)
                    else:
                        print(f"artcloak: {src2}: skipped (no models)", file=sys.stderr)
                break
    if not args.json and len(pairs) > 1:
        print(f"{len(pairs) - failed} of {len(pairs)} files protected", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


# ---- verify ---------------------------------------------------------------------------------

def cmd_verify(args: argparse.Namespace) -> int:
    from .measure import verify

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
            from . import pixels as px
            from .files import imageio
            from .measure import figure

            bar(0.99, "drawing the figure")
            a, b = (px.to_float_rgb(imageio.read(f)[0]) for f in (args.original, args.protected))
            figure.save(args.figure, a, b, rep["models_used"], rep)
            rep["figure"] = str(args.figure)
    except (ArtcloakError, MemoryError, OSError) as e:
        bar.close()
        if args.json:
            _emit({"ok": False, "error": str(e), "hint": _hint(e), "kind": kind_of(e)})
        else:
            _print_error(str(e), _hint(e))
        return EXIT_FAILED
    bar.close()
    if args.json:
        _emit(rep)
    else:
        print(report_text.table(rep))
        if args.figure:
            print(f"\nfigure written to {args.figure}")
    return EXIT_OK


# ---- models ---------------------------------------------------------------------------------

def models_report() -> list[dict]:
    from .models import MODELS, find_file

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


def cmd_models(args: argparse.Namespace) -> int:
    from .models import search_path

    rep = models_report()
    if args.json:
        _emit({"models": rep, "search_path": [str(p) for p in search_path()]})
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


# ---- doctor -----------------------------------------------------------------------------------

def cmd_doctor(args: argparse.Namespace) -> int:
    """Which device, precision and thread count protections run with on this machine, and why."""
    from . import runtime

    info = runtime.describe()
    if args.json:
        _emit(info)
        return EXIT_OK
    flags = " ".join(info["cpu_flags"]) or "none reported"
    print(f"CPU:       {info['cpu']} ({info['physical_cores']} physical cores; flags: {flags})")
    print(f"torch:     {info['torch']}")
    print(f"device:    {info['device']}")
    print(f"precision: {info['precision']} ({info['reason']})")
    print(f"threads:   {info['threads']}")
    print("override with ARTCLOAK_PRECISION=auto|fp32|bf16|fp16 and ARTCLOAK_THREADS=N")
    return EXIT_OK


# ---- entry point ------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    top = Parser(prog="artcloak",
                 description="Protect artwork from AI style mimicry, and measure the protection.")
    top.add_argument("--version", action="version", version=f"artcloak {__version__}")
    sub = top.add_subparsers(dest="command", metavar="{protect,verify,models,doctor}", parser_class=Parser)

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
    _add_param_options(p)
    p.set_defaults(func=cmd_protect)

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
    v.set_defaults(func=cmd_verify)

    m = sub.add_parser("models", help="list the surrogate models and whether their weights are installed")
    m.add_argument("--json", action="store_true", help="print one JSON object")
    m.set_defaults(func=cmd_models)

    d = sub.add_parser("doctor", help="say which device, precision and threads protections run with")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(func=cmd_doctor)
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
