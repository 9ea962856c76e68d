"""The process the GIMP plug-ins talk to: `python -m artcloak.worker` (protocol in docs/CONTRACTS.md).

One JSON job line on stdin; JSON event lines on stdout (progress..., then done or error); pixels as
raw files in the private folder the job names. One job per process, except op "preview": a session
(preview_session.py) that keeps reading parameter lines until stdin closes, so that a dialog gets a new
preview within a second instead of paying torch's start for each slider move. Running as a separate
process keeps torch out of GIMP's Python, and lets the plug-in cancel by ending the process.

If the client dies (GIMP ends a plug-in whose progress was cancelled), the worker notices (it is
re-parented on POSIX, or its stdout pipe breaks), stops, and removes the client's job folder itself
when the folder is named like the client's ("artcloak-*").
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from .errors import MEMORY_HINT, ArtcloakError, InputError, kind_of
from .files import destination

FORMATS = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2"), "float": np.dtype("<f4")}
MIN_INTERVAL = 0.05  # seconds between progress events (GIMP redraws its bar on each)
CLIENT_PREFIX = "artcloak-"  # artcloak_client's temp folders: tempfile.mkdtemp(prefix="artcloak-")


class Events:
    """Writes protocol events to the real stdout, one flushed JSON line each."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.broken = False  # the client stopped reading (it died): events go nowhere from then on
        self._last = (-1.0, None, 0.0)
        self._lock = threading.Lock()  # the job and the answer to a request while busy write lines

    def send(self, event: str, **fields: Any) -> None:
        with self._lock:
            if self.broken:
                return
            try:
                self.stream.write(json.dumps({"event": event, **fields}) + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                self.broken = True
                self.stream = open(os.devnull, "w")  # the dead pipe is replaced for good

    def progress(self, fraction: float, message: str) -> None:
        """Forward progress, skipping repeats closer than MIN_INTERVAL apart."""
        last_fraction, last_message, last_time = self._last
        now = time.monotonic()
        if message == last_message and fraction < 1.0 and now - last_time < MIN_INTERVAL:
            return
        if fraction == last_fraction and message == last_message:
            return
        self._last = (fraction, message, now)
        self.send("progress", fraction=round(float(fraction), 4), message=message)


def _name(job: dict, key: str) -> str:
    """A plain file name inside the job's folder (never a path that leaves it)."""
    value = job.get(key)
    if not isinstance(value, str) or not value or os.path.basename(value) != value or value in (".", ".."):
        raise InputError(f"job field {key!r} must be a plain file name, not {value!r}")
    return os.path.join(job["dir"], value)


def _int(job: dict, key: str) -> int:
    value = job.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(f"job field {key!r} must be a positive integer, not {value!r}")
    return value


def read_raw(job: dict, key: str) -> np.ndarray:
    """Read the H x W x C raw file the job names, checking its size against the job's geometry."""
    from .pixels import check_size

    w, h, c = _int(job, "width"), _int(job, "height"), _int(job, "channels")
    check_size(w, h)  # before a pixel is read: the engine's one limit, with its one message
    fmt = job.get("format")
    if fmt not in FORMATS:
        raise InputError(f"job field 'format' must be one of {', '.join(FORMATS)}, not {fmt!r}")
    path = _name(job, key)
    dtype = FORMATS[fmt]
    need = w * h * c * dtype.itemsize
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise InputError(f"cannot read the pixel file {path}: {e.strerror}") from e
    if size != need:
        raise InputError(f"the pixel file {os.path.basename(path)} has {size} bytes; "
                         f"{w}x{h}x{c} {fmt} needs {need}")
    arr = np.fromfile(path, dtype=dtype).reshape(h, w, c)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def write_raw(arr: np.ndarray, path: str) -> None:
    """Write little-endian raw samples under a temporary name, then rename: never a partial output."""
    part = path + ".part"
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes())
        os.replace(part, path)
    except OSError as e:  # a full disk or a size limit: said in words, the part file removed
        try:
            os.unlink(part)
        except OSError:
            pass
        raise destination.write_failure(e, os.path.basename(path)) from None


def _check_dir(job: Any) -> dict:
    """The job as a dict whose folder exists: every file it names is looked for there."""
    if not isinstance(job, dict):
        raise InputError("the job must be a JSON object")
    if not isinstance(job.get("dir"), str) or not os.path.isdir(job["dir"]):
        raise InputError(f"job field 'dir' must name an existing folder, not {job.get('dir')!r}")
    return job


class ClientWatch:
    """A cancel check that turns true when the process that started us has died (POSIX: we get
    re-parented). GIMP ends a plug-in whose progress is cancelled; its worker must not run on."""

    def __init__(self, events: Events) -> None:
        self.parent = os.getppid()
        self.events = events
        self.gone = False

    def __call__(self) -> bool:
        if self.events.broken or (os.name != "nt" and os.getppid() != self.parent):
            self.gone = True
        return self.gone


def remove_orphaned_folder(folder: str) -> None:
    """The client that made the job folder is dead and cannot remove it: do it for it (only folders
    named like the client's mkdtemp, so a hand-made job folder is never deleted)."""
    if os.path.basename(os.path.normpath(folder)).startswith(CLIENT_PREFIX):
        shutil.rmtree(folder, ignore_errors=True)


def run_protect(job: dict, progress: Callable[[float, str], None], cancel: Callable[[], bool]) -> dict:
    from .params import Params
    from .protect import protect

    params = job.get("params") or {}
    if not isinstance(params, dict):
        raise InputError("job field 'params' must be a JSON object")
    p = Params.from_dict(params)
    out_path = _name(job, "output")
    pixels = read_raw(job, "input")
    result = protect(pixels, p, progress, cancel)
    write_raw(result.pixels, out_path)
    return {"output": os.path.basename(out_path), "report": result.report,
            "report_text": _text_of(result.report)}


def _text_of(report: dict) -> str:
    """The report in words (measure.report_text): the plug-ins show the engine's own text, so the
    CLI and GIMP say the same."""
    from .measure import report_text

    return report_text.text_of(report)


def run_verify(job: dict, progress: Callable[[float, str], None]) -> dict:
    """measure.verify's report on the job's two images (a verify is not cancelled: the client ends
    the process)."""
    from .measure.verify import verify_arrays

    orig, prot = read_raw(job, "original"), read_raw(job, "protected")
    report = verify_arrays(orig, prot, progress=progress)
    return {"report": report, "report_text": _text_of(report)}


OPS = {"protect": lambda job, events, watch: run_protect(job, events.progress, watch),
       "verify": lambda job, events, watch: run_verify(job, events.progress)}
SESSIONS = ("preview",)  # ops that keep reading stdin after the job line (preview_session.py)


def error_event(e: BaseException) -> dict:
    """The protocol's error event for an exception: message, hint and kind (errors.kind_of)."""
    kind = kind_of(e)
    if kind == "memory":
        return {"message": f"not enough memory to protect this image ({e or 'MemoryError'})",
                "hint": MEMORY_HINT, "kind": kind}
    if isinstance(e, ArtcloakError):
        return {"message": str(e), "hint": e.hint, "kind": kind}
    return {"message": f"internal error: {type(e).__name__}: {e}",
            "hint": "This is a bug in artcloak; please report it with this message and the engine output.",
            "kind": "internal"}


def _read_job(stream: IO[str]) -> dict:
    """The one job line, parsed and with an existing folder; anything else is an InputError, so
    that the client gets an error event saying what was wrong with the job rather than a crash."""
    line = stream.readline()
    if not line.strip():
        raise InputError("no job: expected one JSON line on stdin")
    try:
        job = json.loads(line)
    except ValueError as e:
        raise InputError(f"the job is not valid JSON: {e}") from e
    return _check_dir(job)


BUSY = "this worker runs one job and is busy with it; the request was not run"
BUSY_HINT = "Start another `python -m artcloak.worker` for each job."


def answer_while_busy(stream: IO[str], events: Events) -> threading.Thread:
    """Answer every further line on stdin with a `refused` event while the job runs (one job per
    process): a second request is never silently dropped."""
    def read() -> None:
        try:
            for line in iter(stream.readline, ""):
                if line.strip():
                    events.send("refused", message=BUSY, hint=BUSY_HINT, kind="input")
        except (OSError, ValueError):
            pass  # stdin closed: nothing more can come

    thread = threading.Thread(target=read, name="busy", daemon=True)
    thread.start()
    return thread


def _op_of(job: dict) -> Callable | None:
    """The job's operation from OPS (None for a session op), checked before any work starts (a typo
    must not load torch)."""
    op = OPS.get(job.get("op"))
    if op is None and job.get("op") not in SESSIONS:
        raise InputError(f"job field 'op' must be one of {', '.join((*OPS, *SESSIONS))}, "
                         f"not {job.get('op')!r}")
    return op


def main(stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Run one job (or one preview session); return the exit code (0 done, 1 error)."""
    out = stdout or sys.stdout
    if stdout is None:
        sys.stdout = sys.stderr  # stray prints from libraries must not corrupt the event stream
    events = Events(out)
    watch = ClientWatch(events)
    folder = None
    try:
        job = _read_job(stdin or sys.stdin)
        folder = job["dir"]
        op = _op_of(job)
        if op is None:  # a session reads its own further lines (only "preview" today)
            from .preview_session import run_session

            events.progress(0.0, "starting the engine")
            return run_session(job, stdin or sys.stdin, events, watch)
        answer_while_busy(stdin or sys.stdin, events)
        events.progress(0.0, "starting the engine")  # torch takes seconds to load: show life at once
        events.send("done", **op(job, events, watch))
        return 0
    except KeyboardInterrupt:
        events.send("error", message="protection cancelled; nothing was changed", hint="", kind="cancelled")
        return 1
    except Exception as e:  # every failure must become an error event
        if not isinstance(e, ArtcloakError):
            traceback.print_exc(file=sys.stderr)
        events.send("error", **error_event(e))
        return 1
    finally:
        if folder and watch():
            remove_orphaned_folder(folder)
        if stdout is None:
            sys.stdout = out


if __name__ == "__main__":
    sys.exit(main())
