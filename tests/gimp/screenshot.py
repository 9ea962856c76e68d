"""Take docs/dialog.png (+ docs/dialog-advanced.png): the real dialog of GIMP 3 under Xvfb.

    sudo apt-get install xvfb xdotool     # ensure_gimp.sh installs them
    ARTCLOAK_MODELS=... .venv/bin/python tests/gimp/screenshot.py [docs/dialog.png]

Runs the full GIMP (chroot or host, as the tests do) with an image open, invokes "Protect from AI
training..." in interactive mode (tests/gimp/gui_dialog.py), waits for the live preview (the plug-in's
ARTCLOAK_PREVIEW_TRACE), captures the dialog (Pillow's X11 capture), unfolds "Advanced settings" and
captures again, then presses Escape (Cancel): GIMP quits.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))
import gimp_gui  # noqa: E402
import gimp_harness as harness  # noqa: E402

TITLE = "Protect from AI training"
PREVIEW_WAIT = 180  # seconds for the first preview (a fresh engine cache measures its precision first)
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


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else harness.REPO / "docs" / "dialog.png").resolve()
    g = harness.Gimp3()
    try:
        sample_image(g.work / "artwork.png")
        with gimp_gui.Screen() as screen:
            trace = g.work / "preview-trace.jsonl"
            env = {"ARTCLOAK_SHOT_IMAGE": str(g.work / "artwork.png"), "ARTCLOAK_PREVIEW_TRACE": str(trace)}
            t, _result = gimp_gui.start_gimp(g, "gui_dialog.py", env, 300)
            wid = screen.wait_window(lambda title: title == TITLE, 240)
            if wid is None:
                Image.fromarray(screen.grab("root")).save(out.with_suffix(".debug.png"))
                print("no dialog; the screen is in", out.with_suffix(".debug.png"), screen.windows())
                return 1
            if not gimp_gui.wait_trace(trace, lambda lines: lines, PREVIEW_WAIT):
                print(f"no preview within {PREVIEW_WAIT} s: the picture shows the dialog without it")
            time.sleep(2)  # let GTK finish drawing
            Image.fromarray(screen.grab(wid)).save(out)
            print("wrote", out)
            screen.xdo("mousemove", "--window", wid, "60", str(ADVANCED_Y), "click", "1")
            time.sleep(2)
            advanced = out.with_name(out.stem + "-advanced.png")
            Image.fromarray(screen.grab(wid)).save(advanced)
            print("wrote", advanced)
            screen.xdo("windowfocus", "--sync", wid)
            screen.xdo("key", "Escape")
            t.join(120)
        return 0
    finally:
        g.cleanup()


if __name__ == "__main__":
    sys.exit(main())
