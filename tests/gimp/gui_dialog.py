# Runs INSIDE the full GIMP 3 (python-fu-eval batch interpreter) under Xvfb, started by
# tests/gimp/screenshot.py: opens an image in a window and calls "Protect from AI training..."
# interactively, as the menu does. The dialog stays up until screenshot.py has taken its picture
# and closes it (Escape = Cancel); then GIMP quits.
import os

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.environ["ARTCLOAK_SHOT_IMAGE"]))
Gimp.Display.new(image)
Gimp.displays_flush()
proc = Gimp.get_pdb().lookup_procedure(os.environ.get("ARTCLOAK_SHOT_PROC", "python-fu-protect-from-ai"))
cfg = proc.create_config()
cfg.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
cfg.set_property("image", image)
cfg.set_core_object_array("drawables", image.get_selected_layers())
proc.run(cfg)
if os.environ.get("ARTCLOAK_SHOT_OUT"):  # what the dialog left behind: a preview must add no layer
    import json

    with open(os.environ["ARTCLOAK_SHOT_OUT"], "w") as f:
        json.dump({"layers": [x.get_name() for x in image.get_layers()]}, f)
