"""The live preview in the GIMP 3 "Protect from AI training" dialog (issue #19).

What it shows: the engine's instant cloak of the first selected layer's area (a centre crop of at most
PREVIEW_SIDE px at 100 %: the cloak is a fine texture, so it must be seen at 100 %, and the crop keeps an
update near a second where a whole 4000 px layer would take many), or 0.5 + 10 x the change when
"Show the change x10" is on. The engine runs as one worker for the dialog's life
(artcloak_client.PreviewSession); each change of a dialog value sends one small request, and a 100 ms
GLib timer polls for the newest finished preview, so the dialog never waits for the engine.

The preview reads the layer and never writes it: no layer, no undo step. If the engine cannot start,
the dialog works as before and the preview's label says why.

Diagnostics: with ARTCLOAK_PREVIEW_TRACE set to a file, one JSON line per picture shown is appended to
it (request, mode, size, seconds since the dialog opened): how the GUI tests see the preview arrive,
and how the issue's "first image within 2 s" is measured in the real dialog.
"""
import json
import os
import sys
import time

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
import artcloak_client as client  # noqa: E402
import artcloak_gimp_pixels as pixels  # noqa: E402
from gi.repository import GdkPixbuf, GLib, Gtk  # noqa: E402

PREVIEW_SIDE = 512  # the largest crop previewed (px, at 100 %): about 1 s per update on two cores
VIEW_SIDE = 320  # the scrolled view's size in the dialog (px); the crop scrolls inside it
POLL_MS = 100
IGNORED = ("quality",)  # the preview is always the instant cloak (artcloak.protect.preview)
UPDATING = "preview: instant cloak, updating\u2026"


def preview_rect(rect, side=PREVIEW_SIDE):
    """(x, y, w, h): the centre crop of `rect` (the area a protect would send) of at most side x side."""
    x, y, w, h = rect
    cw, ch = min(w, side), min(h, side)
    return x + (w - cw) // 2, y + (h - ch) // 2, cw, ch


class Source:
    """What the preview shows: the crop of a layer, read once when the dialog opens."""

    def __init__(self, layer, babl, fmt, channels, rect):
        self.name = layer.get_name()
        self.rect = preview_rect(rect)
        self.fmt, self.channels = fmt, channels
        self.data = pixels.read(layer, self.rect, babl)


class PreviewPanel:
    """The preview widgets (a scrolled picture, the x10 toggle, a status line) and their session."""

    def __init__(self, source, config, params_of):
        self.source, self.config, self.params_of = source, config, params_of
        self.session = self.frame = self.timer = self.handler = self.last = None
        self.opened = time.time()
        self.widget = self._build()

    # ---- widgets ----
    def _build(self):
        _x, _y, w, h = self.source.rect
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
        frame = Gtk.Frame(label=f"Preview: {self.source.name} ({w}x{h} at 100 %)")
        scroll = Gtk.ScrolledWindow()
        scroll.set_size_request(min(w, VIEW_SIDE), min(h, VIEW_SIDE))
        scroll.set_policy(Gtk.PolicyType.AUTOMATIC, Gtk.PolicyType.AUTOMATIC)
        self.image = Gtk.Image()
        scroll.add(self.image)
        frame.add(scroll)
        self.toggle = Gtk.CheckButton.new_with_mnemonic("Show the change _x10")
        self.toggle.set_tooltip_text("0.5 + 10 x (protected - original): mid-grey where nothing changes")
        self.toggle.connect("toggled", lambda _button: self._show())
        self.label = Gtk.Label(label=UPDATING, xalign=0.0)
        self.label.set_line_wrap(True)
        self.label.set_max_width_chars(60)
        for child, expand in ((frame, True), (self.toggle, False), (self.label, False)):
            box.pack_start(child, expand, expand, 0)
        box.set_border_width(12)
        return box

    def _say(self, text):
        self.label.set_text(text)

    # ---- session ----
    def start(self):
        """Start the engine and ask for the first preview; a failure leaves a working dialog."""
        _x, _y, w, h = self.source.rect
        try:
            src = self.source
            self.session = client.PreviewSession(src.data, w, h, src.channels, src.fmt)
            self.last = self._params()
            self.session.start(self.last)
        except client.EngineError as e:
            self._no_preview(e.message)
            return
        except Exception as e:  # e.g. no room for the job folder: the dialog works on without preview
            self._no_preview(f"{type(e).__name__}: {e}")
            return
        self.handler = self.config.connect("notify", self._on_change)
        self.timer = GLib.timeout_add(POLL_MS, self._tick)

    def _no_preview(self, why):
        if self.session is not None:
            self.session.close()
        self.session = None
        self.toggle.set_sensitive(False)
        self._say(f"No preview: {why}")

    def _params(self):
        params = self.params_of(self.config)
        return dict((k, v) for k, v in params.items() if k not in IGNORED)

    def _on_change(self, _config, _pspec):
        params = self._params()
        if params == self.last or self.session is None:
            return
        self.last = params
        if self.session.request(params) is not None:
            self._say(UPDATING)

    def _tick(self):
        """The GLib timer: show a finished preview; stop when the session has ended."""
        if self.session is None:
            return False
        frame = self.session.poll()
        if frame is not None:
            self.frame = frame
            self._show()
        if self.session.error is not None:
            self._say(f"No preview: {self.session.error.message}")
        elif frame is not None and frame.request == self.session.latest_request:
            self._say(f"preview: instant cloak ({frame.seconds:.1f} s); OK protects at the chosen quality")
        if self.session.ended:
            self.timer = None
            return False
        return True

    def _show(self):
        frame = self.frame
        if frame is None:
            return
        change = self.toggle.get_active()
        data = GLib.Bytes.new(frame.change if change else frame.display)
        pixbuf = GdkPixbuf.Pixbuf.new_from_bytes(data, GdkPixbuf.Colorspace.RGB, False, 8, frame.width,
                                                 frame.height, frame.width * 3)
        self.image.set_from_pixbuf(pixbuf)
        self._trace(frame, "change" if change else "picture")

    def _trace(self, frame, mode):
        path = os.environ.get("ARTCLOAK_PREVIEW_TRACE")
        if not path:
            return
        line = {"request": frame.request, "mode": mode, "width": frame.width, "height": frame.height,
                "engine_seconds": frame.seconds, "since_open": round(time.time() - self.opened, 3)}
        try:
            with open(path, "a") as f:
                f.write(json.dumps(line) + "\n")
        except OSError as e:
            print(f"artcloak: cannot write the preview trace {path}: {e}", file=sys.stderr)

    def close(self):
        """Stop the timer, forget the config, end the engine (before a protect needs the CPU)."""
        if self.timer is not None:
            GLib.source_remove(self.timer)
            self.timer = None
        if self.handler is not None:
            self.config.disconnect(self.handler)
            self.handler = None
        if self.session is not None:
            self.session.close()
