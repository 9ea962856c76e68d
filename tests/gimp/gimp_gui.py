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
