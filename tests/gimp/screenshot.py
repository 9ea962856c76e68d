"""Take docs/dialog.png: the real "Protect from AI training..." dialog of GIMP 3 under Xvfb.

    sudo apt-get install xvfb imagemagick xdotool      # host tools (not needed by the tests)
    ARTCLOAK_MODELS=... .venv/bin/python tests/gimp/screenshot.py [docs/dialog.png]
    ARTCLOAK_MODELS=... .venv/bin/python tests/gimp/screenshot.py --undo   # one Ctrl+Z check

--undo: protect in the open image, press Ctrl+Z once in its window and print whether the protected
layer is gone and the original unchanged (libgimp has no undo call: this is the UI check).

Starts Xvfb, runs the full GIMP (chroot or host, as tests/gimp/gimp_harness.py does) with an image
open, invokes the procedure in interactive mode, waits for the dialog window, captures it with
ImageMagick's `import`, optionally also with the "Advanced settings" expander open, then presses
Escape (Cancel) so GIMP quits.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))
import gimp_harness as harness  # noqa: E402

DISPLAY = ":77"
TITLE = "Protect from AI training"
ADVANCED_Y = 131  # where the "Advanced settings" expander is in the folded dialog (see docs/dialog.png)


def sample_image(path: Path) -> None:
    """A small colourful 'artwork' for the canvas behind the dialog."""
    w, h = 640, 420
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 200 // w + 30, y * 180 // h + 40, 200 - x * 120 // w], -1).astype(np.uint8)
    img = Image.fromarray(base)
    d = ImageDraw.Draw(img)
    for i, c in enumerate([(240, 200, 60), (200, 60, 90), (60, 160, 200), (250, 250, 240)]):
        d.ellipse([60 + i * 130, 90 + (i % 2) * 80, 200 + i * 130, 230 + (i % 2) * 80], fill=c)
    img.save(path)


def window(name: str, timeout: float) -> str | None:
    end = time.time() + timeout
    while time.time() < end:
        r = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", name], capture_output=True,
                           text=True, env={**os.environ, "DISPLAY": DISPLAY})
        if r.stdout.strip():
            return r.stdout.split()[-1]
        time.sleep(1)
    return None


def undo_check(g: harness.Gimp3) -> int:
    """Protect, press Ctrl+Z once in the image window, report what GIMP did."""
    import json

    out = g.work / "undo"
    out.mkdir()
    env = {"DISPLAY": DISPLAY, "ARTCLOAK_SHOT_IMAGE": str(g.work / "artwork.png"),
           "ARTCLOAK_SHOT_OUT": str(out)}
    result = {}
    script = Path(__file__).with_name("gui_undo.py")
    t = threading.Thread(target=lambda: result.setdefault("p", g.run(
        script, env, timeout=400, gui=True, binds=("/tmp/.X11-unix",))))
    t.start()
    note = out / "undo.json"
    end = time.time() + 360
    while time.time() < end and not note.exists():
        time.sleep(1)
    print("after protect:", note.read_text() if note.exists() else "nothing")
    xenv = {**os.environ, "DISPLAY": DISPLAY}
    ids = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "."], capture_output=True,
                         text=True, env=xenv).stdout.split()
    names = {i: subprocess.run(["xdotool", "getwindowname", i], capture_output=True, text=True,
                               env=xenv).stdout.strip() for i in ids}
    print("windows:", names)
    for i, n in names.items():  # the first-start welcome dialog would take the key press
        if n.startswith("Welcome"):
            subprocess.run(["xdotool", "windowfocus", "--sync", i], env=xenv)
            subprocess.run(["xdotool", "key", "Escape"], env=xenv)
            time.sleep(2)
    wid = next((i for i, n in names.items() if n.endswith("GIMP")), None)
    if wid is None:
        return 1
    subprocess.run(["xdotool", "windowfocus", "--sync", wid], env=xenv)
    subprocess.run(["xdotool", "key", "ctrl+z"], env=xenv)
    t.join(150)
    print("after one Ctrl+Z:", note.read_text())
    return 0 if json.loads(note.read_text()).get("layers_after_undo") == ["Background"] else 1


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--undo"]
    out = Path(args[0] if args else harness.REPO / "docs" / "dialog.png").resolve()
    xvfb = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", "1400x1000x24", "-nolisten", "tcp"])
    g = harness.Gimp3()
    try:
        time.sleep(2)
        sample_image(g.work / "artwork.png")
        if "--undo" in sys.argv:
            return undo_check(g)
        env = {"DISPLAY": DISPLAY, "ARTCLOAK_SHOT_IMAGE": str(g.work / "artwork.png")}
        result = {}
        script = Path(__file__).with_name("gui_dialog.py")
        t = threading.Thread(target=lambda: result.setdefault("p", g.run(
            script, env, timeout=300, gui=True, binds=("/tmp/.X11-unix",))))
        t.start()
        wid = window(TITLE, 240)
        if wid is None:
            debug = str(out.with_suffix(".debug.png"))
            subprocess.run(["import", "-display", DISPLAY, "-window", "root", debug])
            print("dialog never appeared; the screen is in", out.with_suffix(".debug.png"))
            return 1
        time.sleep(2)  # let GTK finish drawing
        xenv = {**os.environ, "DISPLAY": DISPLAY}
        subprocess.run(["import", "-window", wid, str(out)], check=True, env=xenv)
        print("wrote", out)
        # unfold "Advanced settings" (the expander sits left, under the presets) and shoot again
        label = subprocess.run(["xdotool", "getwindowgeometry", wid], capture_output=True, text=True,
                               env=xenv).stdout
        print(label.strip())
        subprocess.run(["xdotool", "mousemove", "--window", wid, "60", str(ADVANCED_Y), "click", "1"],
                       env=xenv)
        time.sleep(2)
        wid2 = window(TITLE, 10) or wid
        advanced = out.with_name(out.stem + "-advanced.png")
        subprocess.run(["import", "-window", wid2, str(advanced)], check=True, env=xenv)
        print("wrote", advanced)
        wid = wid2
        subprocess.run(["xdotool", "key", "--window", wid, "Escape"], env=xenv)
        t.join(120)
        p = result.get("p")
        if p is not None and p.returncode != 0:
            print(p.stderr[-3000:])
        return 0
    finally:
        xvfb.terminate()
        xvfb.wait()
        g.cleanup()


if __name__ == "__main__":
    sys.exit(main())
