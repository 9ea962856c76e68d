"""The full GIMP 3 user interface on a virtual X display (Xvfb), driven with xdotool.

Used where libgimp has no call for what a user does: pressing Ctrl+Z (undo) and seeing the dialog.
Host tools: Xvfb and xdotool (tests/gimp/ensure_gimp.sh installs them); GIMP inside the chroot reaches
the display through a bind mount of /tmp/.X11-unix.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import gimp_harness as harness

DISPLAY = ":77"
HERE = Path(__file__).parent


def available() -> bool:
    return all(shutil.which(t) for t in ("Xvfb", "xdotool"))


class Screen:
    """A running Xvfb; `xdo(...)` runs xdotool on it."""

    def __enter__(self) -> Screen:
        self.proc = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", "1400x1000x24", "-nolisten", "tcp"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.env = {**os.environ, "DISPLAY": DISPLAY}
        end = time.time() + 10
        while not Path(f"/tmp/.X11-unix/X{DISPLAY[1:]}").exists() and time.time() < end:
            time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait()

    def xdo(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], capture_output=True, text=True, env=self.env).stdout.strip()

    def windows(self) -> dict[str, str]:
        """{window id: title} of the visible windows."""
        ids = self.xdo("search", "--onlyvisible", "--name", ".").split()
        return {i: self.xdo("getwindowname", i) for i in ids}

    def wait_window(self, match, timeout: float) -> str | None:
        end = time.time() + timeout
        while time.time() < end:
            for wid, title in self.windows().items():
                if match(title):
                    return wid
            time.sleep(1)
        return None

    def grab(self, wid: str):
        """The window's ("root": the screen's) pixels as an H x W x 3 uint8 array (Pillow's X11
        capture; no window manager runs, so the geometry is the window's place on the screen)."""
        import numpy as np
        from PIL import ImageGrab

        if wid == "root":
            return np.asarray(ImageGrab.grab(xdisplay=DISPLAY).convert("RGB"))
        geo = dict(line.split("=", 1) for line in self.xdo("getwindowgeometry", "--shell", wid).split())
        x, y, w, h = (int(geo[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        return np.asarray(ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=DISPLAY).convert("RGB"))

    def dismiss_welcome(self) -> None:
        """GIMP's first-start welcome dialog would take key presses meant for the image."""
        for wid, title in self.windows().items():
            if title.startswith("Welcome"):
                self.xdo("windowfocus", "--sync", wid)
                self.xdo("key", "Escape")
                time.sleep(1)


def start_gimp(g: harness.Gimp3, script: str, env: dict[str, str],
               timeout: float) -> tuple[threading.Thread, dict]:
    """Run the full GIMP with `script` (a file beside this one) in a thread; returns (thread, result)."""
    result: dict = {}
    env = {"DISPLAY": DISPLAY, **env}

    def run() -> None:
        result["proc"] = g.run(HERE / script, env, timeout=timeout, gui=True, binds=("/tmp/.X11-unix",))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def undo_once(g: harness.Gimp3, image: Path, timeout: float = 480) -> dict:
    """Protect `image` in the UI, press Ctrl+Z once in its window; return what gui_undo.py saw."""
    out = g.work / "undo"
    out.mkdir(exist_ok=True)
    note = out / "undo.json"
    with Screen() as screen:
        t, result = start_gimp(g, "gui_undo.py", {"ARTCLOAK_SHOT_IMAGE": str(image),
                                                  "ARTCLOAK_SHOT_OUT": str(out)}, timeout)
        end = time.time() + timeout - 60
        while time.time() < end and not note.exists() and t.is_alive():
            time.sleep(1)
        if not note.exists():
            t.join(5)
            proc = result.get("proc")
            return {"error": "GIMP never finished protecting", "log": proc.stderr[-3000:] if proc else ""}
        first = json.loads(note.read_text())
        screen.dismiss_welcome()
        wid = screen.wait_window(lambda title: title.endswith("GIMP"), 10)
        if wid is None:
            return {"error": "no image window", "windows": screen.windows(), **first}
        screen.xdo("windowfocus", "--sync", wid)
        screen.xdo("key", "ctrl+z")
        t.join(120)
        return json.loads(note.read_text())


PROTECT_TITLE = "Protect from AI training"


def _trace_lines(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def wait_trace(path: Path, want, timeout: float) -> list[dict]:
    """The preview trace's lines once `want(lines)` holds (or whatever is there after `timeout`)."""
    end = time.time() + timeout
    while time.time() < end and not want(_trace_lines(path)):
        time.sleep(0.25)
    return _trace_lines(path)


def preview_dialog(g: harness.Gimp3, image: Path, timeout: float = 400) -> dict:
    """Open "Protect from AI training..." on `image` in the UI, wait for the live preview (the
    plug-in's ARTCLOAK_PREVIEW_TRACE), capture the dialog; press Alt+X ("Show the change x10"),
    capture again; press Alt+I, Down (the next intensity) and wait for a new preview; then
    Escape (Cancel). Returns the trace lines, both captures and the image's layers afterwards."""
    trace = g.work / "preview-trace.jsonl"
    trace.unlink(missing_ok=True)
    after = g.work / "preview-dialog.json"
    env = {"ARTCLOAK_SHOT_IMAGE": str(image), "ARTCLOAK_PREVIEW_TRACE": str(trace),
           "ARTCLOAK_SHOT_OUT": str(after)}
    with Screen() as screen:
        t, result = start_gimp(g, "gui_dialog.py", env, timeout)
        wid = screen.wait_window(lambda title: title == PROTECT_TITLE, timeout / 2)
        if wid is None:
            t.join(5)
            return {"error": "no dialog", "windows": screen.windows()}
        rec = {"first": wait_trace(trace, lambda ls: ls, 180)}
        time.sleep(0.5)  # the picture is set; let GTK draw it
        rec["before"] = screen.grab(wid)
        screen.xdo("windowfocus", "--sync", wid)
        screen.xdo("key", "alt+x")
        wait_trace(trace, lambda ls: any(x["mode"] == "change" for x in ls), 20)
        time.sleep(0.5)
        rec["after"] = screen.grab(wid)
        screen.xdo("key", "alt+i")  # the mnemonic focuses the intensity box; Down picks the next value
        time.sleep(0.5)
        screen.xdo("key", "Down")
        rec["trace"] = wait_trace(trace, lambda ls: any(x["request"] > 0 for x in ls), 120)
        screen.xdo("windowfocus", "--sync", wid)
        screen.xdo("key", "Escape")
        t.join(120)
        proc = result.get("proc")
        rec["log"] = proc.stderr[-3000:] if proc else ""
        rec["layers"] = json.loads(after.read_text())["layers"] if after.exists() else None
        return rec
