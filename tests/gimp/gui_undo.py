# Runs INSIDE the full GIMP 3 under Xvfb (tests/gimp/screenshot.py --undo): protects the open image's
# layer, then waits while screenshot.py presses Ctrl+Z in the image window, and records whether ONE
# undo removed the protected layer and left the original exactly as it was. libgimp 3.0 has no call
# that performs an undo, so this needs the real UI.
import json
import os
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

OUT = os.environ["ARTCLOAK_SHOT_OUT"]


def pixels(layer):
    w, h = layer.get_width(), layer.get_height()
    return bytes(layer.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "R'G'B'A u8",
                                        Gegl.AbyssPolicy.CLAMP))


def note(**values):
    with open(os.path.join(OUT, "undo.json.part"), "w") as f:
        json.dump(values, f)
    os.replace(os.path.join(OUT, "undo.json.part"), os.path.join(OUT, "undo.json"))


image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.environ["ARTCLOAK_SHOT_IMAGE"]))
Gimp.Display.new(image)
layer = image.get_layers()[0]
before = pixels(layer)
proc = Gimp.get_pdb().lookup_procedure("python-fu-protect-from-ai")
cfg = proc.create_config()
cfg.set_property("image", image)
cfg.set_core_object_array("drawables", [layer])
cfg.set_property("quality", "fast")
status = proc.run(cfg).index(0).value_nick
Gimp.displays_flush()
after_protect = [x.get_name() for x in image.get_layers()]
note(stage="protected", status=status, layers_after_protect=after_protect)
end = time.time() + 90
while time.time() < end and len(image.get_layers()) > 1:
    time.sleep(0.5)
time.sleep(1)  # a second undo would show up here as a changed original
names = [x.get_name() for x in image.get_layers()]
note(stage="done", status=status, layers_after_protect=after_protect, layers_after_undo=names,
     original_identical=pixels(image.get_layers()[0]) == before)
image.clean_all()
