# Runs INSIDE gimp-console-3 (GIMP 3.0 or 3.2; python-fu-eval batch interpreter), started by
# tests/gimp/gimp_harness.py:
# what a user would type in Filters > Python-Fu > Console, for each scenario the job file names.
# It records what happened (statuses, layer stacks, raw pixel dumps, reports) in the job's folder;
# the pytest side (test_gimp3.py) judges. One failing scenario does not stop the others.
#
#   env ARTCLOAK_GIMP_JOB = path of a JSON file {"out": folder, "scenarios": [[name, {args}], ...]}
import json
import os
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

# Gimp.Metadata's tag methods come from GExiv2: 0.10 in GIMP 3.0, 0.16 in GIMP 3.2 (Gimp loaded it)
for _version in ("0.16", "0.10"):
    try:
        gi.require_version("GExiv2", _version)
        break
    except ValueError:
        continue
from gi.repository import GExiv2  # noqa: E402, F401

JOB = json.load(open(os.environ["ARTCLOAK_GIMP_JOB"]))
OUT = JOB["out"]
PDB = Gimp.get_pdb()
RESULTS = {"gimp": Gimp.version(), "scenarios": {}}


def load(path):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))


def dump(drawable, name, fmt):
    """Write the drawable's pixels as raw `fmt` bytes to OUT/name; return [w, h]."""
    w, h = drawable.get_width(), drawable.get_height()
    data = drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, fmt, Gegl.AbyssPolicy.CLAMP)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes(data))
    return [w, h]


def stack(image):
    return [{"name": layer.get_name(), "id": layer.get_id(), "pos": image.get_item_position(layer),
             "offsets": list(layer.get_offsets()[1:]), "size": [layer.get_width(), layer.get_height()],
             "alpha": layer.has_alpha()} for layer in image.get_layers()]


def call(name, image=None, drawables=None, **args):
    """Run a PDB procedure like the console does; return (status nick, [return values], error)."""
    proc = PDB.lookup_procedure(name)
    if proc is None:
        raise RuntimeError(name + " is not registered (plug-in path, exec bit, import error?)")
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    if image is not None:
        cfg.set_property("image", image)
    if drawables is not None:
        cfg.set_core_object_array("drawables", drawables)
    for key, value in args.items():
        cfg.set_property(key.replace("_", "-"), value)
    result = proc.run(cfg)
    status = result.index(0)
    values = [result.index(i) for i in range(1, result.length())]
    err = None
    if status != Gimp.PDBStatusType.SUCCESS:
        err = str(PDB.get_last_error())
    return status.value_nick, values, err


def metadata_tags(image):
    md = image.get_metadata()
    if md is None:
        return {}
    out = {}
    for tag in ("Xmp.plus.DataMining", "Xmp.plus.OtherConstraints", "Xmp.tdm.reservation"):
        try:
            out[tag] = GExiv2.Metadata.try_get_tag_string(md, tag)  # unbound: Gimp.Metadata lacks them
        except Exception as e:  # record why, the test shows it
            out[tag] = "ERROR " + str(e)
    return out


def export_png(image, path):
    """GIMP's own PNG export, with XMP on (as the export dialog's "Save XMP data")."""
    proc = PDB.lookup_procedure("file-png-export")
    cfg = proc.create_config()
    for key, value in (("run-mode", Gimp.RunMode.NONINTERACTIVE), ("image", image),
                       ("file", Gio.File.new_for_path(path)), ("include-xmp", True), ("compression", 1)):
        cfg.set_property(key, value)
    if proc.run(cfg).index(0) != Gimp.PDBStatusType.SUCCESS:
        raise RuntimeError("export failed: " + path)


# ---- scenarios ----------------------------------------------------------------------------------

def protect(rec, path, fmt, select=None, feather=0.0, precision=None, params=None, export=None, copies=0):
    """Load `path`, optionally convert/select/add offset copies of the layer, protect every layer.

    Dumps NAME.before.raw for each layer before, NAME.orig.raw and NAME.new.raw (its protected copy)
    after, NAME being the source layer's name.
    """
    image = load(path)
    if precision:
        image.convert_precision(getattr(Gimp.Precision, precision))
    rec["precision"] = image.get_precision().value_nick
    for i in range(copies):  # more layers, each protected on its own
        top = image.get_layers()[0].copy()
        image.insert_layer(top, None, 0)
        top.set_name(f"Copy {i + 1}")
        top.set_offsets(6 * (i + 1), 4 * (i + 1))
    sources = image.get_layers()
    for layer in sources:
        dump(layer, layer.get_name() + ".before.raw", fmt)
    if select:
        image.select_rectangle(Gimp.ChannelOps.REPLACE, *select)
        if feather:
            Gimp.Selection.feather(image, feather)
        dump(image.get_selection(), "selection.raw", "Y float")
    rec["stack_before"] = stack(image)
    t = time.time()
    rec["status"], values, rec["error"] = call("python-fu-protect-from-ai", image, sources, **(params or {}))
    rec["run_s"] = round(time.time() - t, 2)
    rec["stack_after"] = stack(image)
    rec["metadata"] = metadata_tags(image)
    by_name = {layer.get_name(): layer for layer in image.get_layers()}
    for layer in sources:
        dump(layer, layer.get_name() + ".orig.raw", fmt)
        new = by_name.get(layer.get_name() + " (protected)")
        if new is not None:
            dump(new, layer.get_name() + ".new.raw", fmt)
    if rec["status"] != "success":
        return image
    rec["report"] = json.loads(values[0])
    rec["report_text"] = values[1]
    par = image.get_layers()[0].get_parasite("artcloak-report")
    rec["parasite"] = json.loads(bytes(par.get_data()).decode()) if par else None
    if export:
        export_png(image, os.path.join(OUT, export))
    return image


def s_rgb(rec, path, select, feather, quality):
    image = protect(rec, path, "R'G'B'A u8", select, feather, params={"quality": quality}, export="rgb.png")
    layers = image.get_layers()
    t = time.time()
    rec["verify_status"], values, rec["verify_error"] = call(
        "python-fu-verify-protection", image, [layers[0]], original=layers[1], protected=layers[0])
    rec["verify_s"] = round(time.time() - t, 2)
    if rec["verify_status"] == "success":
        rec["verify"] = json.loads(values[0])
        rec["verify_text"] = values[1]
    # undo: the plug-in closed its group (a further end has nothing to close)
    rec["undo_enabled"] = image.undo_is_enabled()


def s_u16(rec, path, quality):
    protect(rec, path, "Y' u16", params={"quality": quality}, copies=1)


def s_linear(rec, path, quality, select=None):
    """A linear-light 8-bit image: goes to the engine as perceptual float (not run by the tests)."""
    protect(rec, path, "RGBA u8", select=select, precision="U8_LINEAR", params={"quality": quality})


def s_batch(rec, inputs, out_dir, quality):
    t = time.time()
    rec["status"], values, rec["error"] = call(
        "python-fu-protect-from-ai-batch", inputs=inputs, output_folder=out_dir, quality=quality)
    rec["run_s"] = round(time.time() - t, 2)
    if rec["status"] == "success":
        rec["done"], rec["failed"], rec["report"] = values[0], values[1], json.loads(values[2])


def s_broken(rec, path):
    protect(rec, path, "R'G'B'A u8")


def s_indexed(rec, path):
    image = load(path)
    image.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16, False, False, "")
    rec["stack_before"] = stack(image)
    rec["status"], _values, rec["error"] = call("python-fu-protect-from-ai", image, [image.get_layers()[0]])
    rec["stack_after"] = stack(image)


def s_pdb(rec):
    rec["menu"] = list(PDB.lookup_procedure("python-fu-protect-from-ai").get_menu_paths())
    rec["verify_menu"] = list(PDB.lookup_procedure("python-fu-verify-protection").get_menu_paths())
    rec["args"] = [p.name for p in PDB.lookup_procedure("python-fu-protect-from-ai").get_arguments()]


SCENARIOS = {"rgb": s_rgb, "u16": s_u16, "linear": s_linear, "batch": s_batch, "broken": s_broken,
             "indexed": s_indexed, "pdb": s_pdb}

for name, args in JOB["scenarios"]:
    rec = RESULTS["scenarios"][name] = {}
    OUT = os.path.join(JOB["out"], name)
    os.makedirs(OUT, exist_ok=True)
    try:
        SCENARIOS[name](rec, **args)
    except Exception:
        rec["exception"] = traceback.format_exc()
    with open(os.path.join(JOB["out"], "results.json"), "w") as f:
        json.dump(RESULTS, f, indent=1, default=str)
