"""The worker's preview session (op "preview"): one process answers a dialog's every parameter change.

A protect job is one process per job, which costs torch's start (1-2 s) each time; a dialog wants a new
preview within a second of a slider move. So the dialog starts one worker with the pixels to preview
(a layer, or a crop of it at 100 %) and then sends one small JSON line per change:

    job line:   {"op": "preview", "dir": D, "input": "in.raw", "width", "height", "channels",
                 "format", "params": {...}}            (params optional: a first preview at once)
    then:       {"request": N, "params": {...}}        (one per change; N optional, echoed)

Events: "progress" while the engine starts, {"event": "ready"} once it is loaded, then per preview
{"event": "preview", "request": N, "output": "preview-K.raw" (the input's layout, like protect's
output), "display": "preview-K.rgb", "change": "change-K.rgb" (RGB u8, width x height, for the eye;
display.py), "width", "height", "seconds"}. Requests that arrive while a preview runs are
coalesced: only the newest is run, and the running one is abandoned (no event) at its next cancel
check. A request that fails gets the usual error event with its "request" number and
the session goes on; an error without "request" (an unreadable job) ends it, as for a protect job.
Closing stdin ends the session (exit 0); the client reads and removes each frame's files, and the
worker removes the frames still there when it ends (the client removes the folder).
"""
from __future__ import annotations

import itertools
import json
import os
import threading
import time
import traceback
from typing import IO, Any

import numpy as np

from . import display
from .errors import ArtcloakError, InputError

IDLE_CHECK = 0.25  # seconds between checks that the client is still alive while no request waits


class Inbox:
    """The newest request not yet run: one that arrives while a preview runs replaces the one waiting
    (a dialog wants the preview of its current values, not of every value a slider passed)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._newest: dict | None = None
        self.closed = False
        self.dropped = 0  # requests replaced before they ran

    def put(self, request: dict) -> None:
        with self._cond:
            if self._newest is not None:
                self.dropped += 1
            self._newest = request
            self._cond.notify()

    def waiting(self) -> bool:
        """Whether a newer request waits (the running preview is then no longer wanted)."""
        with self._cond:
            return self._newest is not None

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify()

    def take(self, timeout: float) -> dict | None:
        """The newest request (removed from the inbox), or None after `timeout` or once closed."""
        with self._cond:
            if self._newest is None and not self.closed:
                self._cond.wait(timeout)
            request, self._newest = self._newest, None
            return request


def parse_request(line: str, number: int) -> dict:
    """{"request": N, "params": {...}} from one stdin line; InputError (naming `number`) otherwise."""
    try:
        value = json.loads(line)
    except ValueError as e:
        raise InputError(f"preview request {number} is not valid JSON: {e}") from e
    if not isinstance(value, dict) or not isinstance(value.get("params", {}), dict):
        raise InputError(f"preview request {number} must be a JSON object with 'params' an object")
    request = value.get("request", number)
    if not isinstance(request, int) or isinstance(request, bool):
        raise InputError(f"preview request field 'request' must be an integer, not {request!r}")
    return {"request": request, "params": value.get("params", {})}


def read_requests(stream: IO[str], inbox: Inbox, events: Any) -> threading.Thread:
    """Feed the inbox from stdin in a thread (a bad line is answered at once and skipped); closing
    stdin closes the inbox, which ends the session."""
    from .worker import error_event

    numbers = itertools.count(1)

    def read() -> None:
        try:
            for line in iter(stream.readline, ""):
                if not line.strip():
                    continue
                number = next(numbers)
                try:
                    inbox.put(parse_request(line, number))
                except InputError as e:
                    events.send("error", request=number, **error_event(e))
        except (OSError, ValueError):
            pass  # stdin broken: nothing more can come
        finally:
            inbox.close()

    thread = threading.Thread(target=read, name="preview-requests", daemon=True)
    thread.start()
    return thread


class Frames:
    """The files of the previews sent. The client reads and removes each; whatever is left when the
    session ends is removed here, so a session adds nothing lasting to the folder."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.count = 0
        self.written: list[str] = []

    def write(self, original: np.ndarray, protected: np.ndarray) -> dict[str, str]:
        from .worker import write_raw

        self.count += 1
        names = {"output": f"preview-{self.count}.raw", "display": f"preview-{self.count}.rgb",
                 "change": f"change-{self.count}.rgb"}
        pictures = {"display": display.picture(protected), "change": display.change(original, protected)}
        for key, name in names.items():
            data = protected if key == "output" else np.frombuffer(pictures[key], np.uint8)
            write_raw(data, os.path.join(self.folder, name))
            self.written.append(name)
        return names

    def remove_all(self) -> None:
        for name in self.written:
            try:
                os.unlink(os.path.join(self.folder, name))
            except OSError:
                pass  # read and removed by the client already


def answer(request: dict, original: np.ndarray, frames: Frames, events: Any,
           superseded: Any = None) -> None:
    """Run one preview and send its event, or the error event naming the request. `superseded()`
    true (a newer request waits) abandons it: nothing is sent, the newer one runs next."""
    from .errors import Cancelled
    from .params import Params
    from .protect import preview
    from .worker import error_event

    number = request["request"]
    try:
        params = Params.from_dict(request["params"])
        start = time.monotonic()
        try:
            out = preview(original, params, cancel=superseded)
        except Cancelled:
            return
        names = frames.write(original, out)
        h, w = original.shape[:2]
        events.send("preview", request=number, width=w, height=h,
                    seconds=round(time.monotonic() - start, 3), **names)
    except Exception as e:  # the session goes on: the next values may well work
        if not isinstance(e, ArtcloakError):
            traceback.print_exc()
        events.send("error", request=number, **error_event(e))


def run_session(job: dict, stdin: IO[str], events: Any, watch: Any) -> int:
    """Answer preview requests until stdin closes or the client dies; return the exit code (0).
    An unreadable job raises, as a protect job's does (the worker turns it into an error event)."""
    from .worker import read_raw

    original = read_raw(job, "input")
    inbox = Inbox()
    if job.get("params") is not None:
        inbox.put(parse_request(json.dumps({"params": job["params"], "request": 0}), 0))
    read_requests(stdin, inbox, events)
    from . import protect  # noqa: F401  (torch: seconds; the requests queue up meanwhile)

    events.send("ready", width=original.shape[1], height=original.shape[0])
    frames = Frames(job["dir"])
    try:
        while not watch():
            request = inbox.take(IDLE_CHECK)
            if request is not None:
                answer(request, original, frames, events, superseded=inbox.waiting)
            elif inbox.closed:
                break
    finally:
        frames.remove_all()
    return 0
