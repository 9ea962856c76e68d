#!/usr/bin/env python3
"""artcloak for GIMP 3: Filters > AI Protection > Protect from AI training... / Verify protection...

GIMP's Python never imports torch: the pixels go to the artcloak engine, a separate Python process,
through artcloak_client (found beside this file, else in ../../common when run from the repository).

Procedures (usable from Filters > Python-Fu > Console and `gimp-console-3.0 -b`):
  python-fu-protect-from-ai        image + selected layers -> a protected copy above each layer
  python-fu-protect-from-ai-batch  files and/or folders -> protected files in an output folder
  python-fu-verify-protection      original + protected layer -> the engine's verification report
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
for _folder in (HERE, os.path.normpath(os.path.join(HERE, "..", "..", "common"))):
    if os.path.isfile(os.path.join(_folder, "artcloak_client.py")):
        if _folder not in sys.path:
            sys.path.insert(0, _folder)
        break
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
import artcloak_client as client  # noqa: E402
import artcloak_gimp_batch as batch  # noqa: E402
import artcloak_gimp_metadata as metadata  # noqa: E402
import artcloak_gimp_pixels as pixels  # noqa: E402
from gi.repository import Gimp, GLib, GObject  # noqa: E402

PROTECT = "python-fu-protect-from-ai"
BATCH = "python-fu-protect-from-ai-batch"
VERIFY = "python-fu-verify-protection"
MENU = "<Image>/Filters/AI Protection"
REPORT_PARASITE = "artcloak-report"
SUFFIX = " (protected)"
RW = GObject.ParamFlags.READWRITE


# ---- parameters: declared once in the engine, read from params.json -----------------------------

def _arg_name(name):
    return name.replace("_", "-")


def add_engine_arguments(procedure):
    """One GIMP argument per engine parameter; closed choices (the schema's kind "choice") become
    choice boxes."""
    for p in client.load_schema():
        name, label, help_ = _arg_name(p["name"]), "_" + p["label"], p["help"]  # "_": the dialog's mnemonic
        if p["type"] == "int":
            lo = int(p["min"]) if p.get("min") is not None else -2**31
            hi = int(p["max"]) if p.get("max") is not None else 2**31 - 1
            procedure.add_int_argument(name, label, help_, lo, hi, int(p["default"]), RW)
        elif p.get("kind") == "choice":
            choice = Gimp.Choice.new()
            for i, value in enumerate(p["choices"]):
                choice.add(value, i, value.capitalize(), "")
            procedure.add_choice_argument(name, label, help_, choice, p["default"], RW)
        else:
            procedure.add_string_argument(name, label, help_, str(p["default"]), RW)


def engine_params(config):
    """{engine name: value} from a procedure config."""
    out = {}
    for p in client.load_schema():
        value = config.get_property(_arg_name(p["name"]))
        out[p["name"]] = int(value) if p["type"] == "int" else ("" if value is None else str(value))
    return out


def show_dialog(procedure, config, title, intro, preview_source=None):
    """The ProcedureDialog: presets first, the rest in a folded "Advanced settings" box; below them the
    live preview of `preview_source` (an artcloak_gimp_preview.Source) when given."""
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init(procedure.get_name())
    dialog = GimpUi.ProcedureDialog.new(procedure, config, title)
    schema = client.load_schema()
    presets = [_arg_name(p["name"]) for p in schema if not p.get("advanced")]
    advanced = [_arg_name(p["name"]) for p in schema if p.get("advanced")]
    names = []
    if intro:
        dialog.get_label("intro", intro, False, False)
        names.append("intro")
    names += presets
    if advanced:
        dialog.get_label("advanced-title", "Advanced settings", False, False)
        dialog.fill_box("advanced-box", advanced)
        dialog.fill_expander("advanced", "advanced-title", False, "advanced-box")
        names.append("advanced")
    dialog.fill(names)
    panel = _add_preview(dialog, config, preview_source)
    try:
        ok = dialog.run()
    finally:
        if panel is not None:
            panel.close()  # the engine's preview process ends before a protect needs the CPU
    dialog.destroy()
    return ok


def _add_preview(dialog, config, source):
    """The preview panel under the dialog's values, its engine started (None without a source)."""
    if source is None:
        return None
    try:
        import artcloak_gimp_preview as preview

        panel = preview.PreviewPanel(source, config, engine_params)
    except Exception as e:  # a preview must never stop the dialog
        print(f"artcloak: no preview: {type(e).__name__}: {e}", file=sys.stderr)
        return None
    dialog.get_content_area().pack_start(panel.widget, True, True, 0)
    panel.widget.show_all()
    panel.start()
    return panel


def _preview_source(jobs):
    """The first layer's preview crop, or None when it cannot be read (the dialog goes without)."""
    layer, babl, fmt, channels, rect = jobs[0]
    try:
        import artcloak_gimp_preview as preview

        return preview.Source(layer, babl, fmt, channels, rect)
    except Exception as e:  # a preview must never stop the dialog
        print(f"artcloak: no preview: {type(e).__name__}: {e}", file=sys.stderr)
        return None


# ---- helpers -----------------------------------------------------------------------------------

def error(procedure, message):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def engine_error_text(e):
    text = e.message
    if e.hint:
        text += "\n\n" + e.hint
    return text


def success(procedure, *values):
    """SUCCESS with the procedure's return values (GTypes in declaration order) filled in."""
    ret = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
    for i, (gtype, value) in enumerate(values, start=1):
        ret.remove(i)
        ret.insert(i, GObject.Value(gtype, value))
    return ret


class Progress:
    """GIMP's progress bar over `total` engine jobs; follows the engine's fraction and message."""

    def __init__(self, total, title):
        self.total, self.index, self.prefix, self.last = max(1, total), 0, "", None
        Gimp.progress_init(title)

    def start(self, index, prefix):
        self.index, self.prefix = index, prefix
        self(0.0, "starting the engine")

    def __call__(self, fraction, message):
        Gimp.progress_update(min(1.0, (self.index + max(0.0, min(1.0, fraction))) / self.total))
        text = f"{self.prefix}: {message}" if self.prefix else message
        if text != self.last:
            self.last = text
            Gimp.progress_set_text(text)

    def end(self):
        Gimp.progress_update(1.0)
        Gimp.progress_end()


def attach_report(item, reports):
    data = json.dumps(reports).encode("utf-8")
    item.attach_parasite(Gimp.Parasite.new(REPORT_PARASITE, Gimp.PARASITE_PERSISTENT, list(data)))


# ---- Protect from AI training... ----------------------------------------------------------------

def _layers_to_protect(drawables):
    layers = []
    for d in drawables:
        if not isinstance(d, Gimp.Layer) or isinstance(d, Gimp.LayerMask):
            raise pixels.PixelError("Select layers to protect (channels and masks cannot be protected).")
        if d.is_group():
            raise pixels.PixelError(f'"{d.get_name()}" is a layer group: select the layers inside it.')
        if d.is_floating_sel():
            raise pixels.PixelError("Anchor or turn the floating selection into a layer first.")
        layers.append(d)
    if not layers:
        raise pixels.PixelError("Select at least one layer to protect.")
    return layers


def run_protect(procedure, run_mode, image, drawables, config, run_data):
    """Protect each selected layer into a new layer above it; change nothing on any failure."""
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    try:
        layers = _layers_to_protect(drawables)
        jobs = []
        for layer in layers:
            babl, fmt, channels = pixels.transfer(image, layer)
            rect = pixels.region(layer)
            if rect is None:
                raise pixels.PixelError(f'The selection does not touch layer "{layer.get_name()}".')
            jobs.append((layer, babl, fmt, channels, rect))
    except pixels.PixelError as e:
        return error(procedure, str(e))

    if interactive:
        intro = ("Adds a protected copy above each selected layer; the original stays untouched.\n"
                 "With a selection, only the selected area is protected.")
        if not show_dialog(procedure, config, "Protect from AI training", intro, _preview_source(jobs)):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    params = engine_params(config)

    # 1. every engine run first: an error or a cancel (GIMP kills this process) leaves the image as it was
    progress = Progress(len(jobs), "Protecting from AI training")
    results = []
    try:
        for i, (layer, babl, fmt, channels, rect) in enumerate(jobs):
            progress.start(i, layer.get_name())
            data = pixels.read(layer, rect, babl)
            out, report = client.protect_pixels(data, rect[2], rect[3], channels, fmt, params, progress)
            results.append((out, report))
    except client.EngineError as e:
        Gimp.progress_end()
        return error(procedure, engine_error_text(e))
    except Exception as e:  # a bug or an unreadable layer: still an error message, image untouched
        Gimp.progress_end()
        return error(procedure, f"artcloak could not protect the layer: {type(e).__name__}: {e}")
    progress.end()

    # 2. then the image, in one undo group: one Undo removes every new layer
    reports = []
    image.undo_group_start()
    try:
        new_layers = []
        for (layer, babl, _fmt, _c, rect), (out, report) in zip(jobs, results):
            new = layer.copy()
            image.insert_layer(new, layer.get_parent(), image.get_item_position(layer))
            new.set_name(layer.get_name() + SUFFIX)
            if new.get_lock_content():  # the copy of a locked layer is locked too: it is ours to fill
                new.set_lock_content(False)
            pixels.write_through_selection(new, rect, babl, out)
            # the report in words (the engine's text: the same as the CLI prints) travels with the layer
            entry = {"layer": layer.get_name(), "new_layer": new.get_name(), "region": list(rect),
                     "report": report, "report_text": client.format_report(report)}
            attach_report(new, entry)
            reports.append(entry)
            new_layers.append(new)
        tags = metadata.mark_do_not_train(image)
        image.set_selected_layers(new_layers)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()

    text = "\n\n".join("{}\n{}".format(r["new_layer"], r["report_text"]) for r in reports)
    if interactive:
        Gimp.message("artcloak: protection report\n\n" + text)
    summary = {"layers": reports, "metadata": tags}
    return success(procedure, (GObject.TYPE_STRING, json.dumps(summary)), (GObject.TYPE_STRING, text))


# ---- Verify protection... -----------------------------------------------------------------------

def _pick_layers(image, drawables, config):
    """(original, protected): the arguments, else two selected layers, else "X (protected)" and "X"."""
    orig, prot = config.get_property("original"), config.get_property("protected")
    if orig is not None and prot is not None:
        return orig, prot
    layers = [d for d in drawables if isinstance(d, Gimp.Layer)]
    if len(layers) == 2:
        a, b = layers
        if a.get_name().endswith(SUFFIX) != b.get_name().endswith(SUFFIX):
            return (b, a) if a.get_name().endswith(SUFFIX) else (a, b)
        # same naming: the upper one (smaller position) is the protected one
        return (b, a) if image.get_item_position(a) < image.get_item_position(b) else (a, b)
    if len(layers) == 1 and layers[0].get_name().endswith(SUFFIX):
        prot = layers[0]
        want = prot.get_name()[: -len(SUFFIX)]
        parent = prot.get_parent()
        siblings = parent.get_children() if parent else image.get_layers()
        for layer in siblings:
            if layer.get_name() == want:
                return layer, prot
    return None, None


def run_verify(procedure, run_mode, image, drawables, config, run_data):
    """Measure what a protected layer does to the models, compared with its original."""
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    orig, prot = _pick_layers(image, drawables, config)
    if interactive and (orig is None or prot is None):
        layers = [d for d in drawables if isinstance(d, Gimp.Layer)]
        if orig is None and prot is None and len(layers) == 1:
            orig = layers[0]  # a good first guess for the dialog
        if orig is not None:
            config.set_property("original", orig)
        if prot is not None:
            config.set_property("protected", prot)
        gi.require_version("GimpUi", "3.0")
        from gi.repository import GimpUi

        GimpUi.init(procedure.get_name())
        dialog = GimpUi.ProcedureDialog.new(procedure, config, "Verify protection")
        dialog.fill(["original", "protected"])
        ok = dialog.run()
        dialog.destroy()
        if not ok:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        orig, prot = config.get_property("original"), config.get_property("protected")
    if orig is None or prot is None:
        return error(procedure, 'Select the original and the protected layer (or one "… (protected)" layer '
                     "above its original), or pass them as the original and protected arguments.")
    size = (orig.get_width(), orig.get_height())
    if size != (prot.get_width(), prot.get_height()):
        return error(procedure, f"The two layers differ in size ({size[0]}x{size[1]} and {prot.get_width()}x"
                     f"{prot.get_height()}): verify compares the same pixels.")
    try:
        # read both with alpha when either has it (a layer without alpha reads as opaque)
        babl, fmt, channels = pixels.transfer(image, prot if prot.has_alpha() else orig)
        rect = (0, 0) + size
        a, b = pixels.read(orig, rect, babl), pixels.read(prot, rect, babl)
    except pixels.PixelError as e:
        return error(procedure, str(e))
    progress = Progress(1, "Verifying the protection")
    progress.start(0, prot.get_name())
    try:
        report = client.verify_pixels(a, b, size[0], size[1], channels, fmt, progress)
    except client.EngineError as e:
        Gimp.progress_end()
        return error(procedure, engine_error_text(e))
    progress.end()
    text = f"{prot.get_name()} vs {orig.get_name()}\n{client.format_report(report)}"
    if interactive:
        Gimp.message("artcloak: verification report\n\n" + text)
    return success(procedure, (GObject.TYPE_STRING, json.dumps(report)), (GObject.TYPE_STRING, text))


# ---- Batch -------------------------------------------------------------------------------------

def run_batch(procedure, config, run_data):
    """Protect image files into an output folder: each saved when done; bad files reported, skipped."""
    inputs = list(config.get_property("inputs") or [])
    out_dir = config.get_property("output-folder") or ""
    if not inputs or not out_dir:
        return procedure.new_return_values(
            Gimp.PDBStatusType.CALLING_ERROR,
            GLib.Error("Give the inputs (image files and/or folders) and an output-folder."))
    params = engine_params(config)
    try:
        files = batch.collect(inputs)
    except batch.BatchError as e:
        return error(procedure, str(e))
    progress = Progress(len(files), "Protecting files from AI training")

    def protect_layer(i, path, layer, babl, fmt, channels):
        progress.start(i, os.path.basename(path))
        w, h = layer.get_width(), layer.get_height()
        data = pixels.read(layer, (0, 0, w, h), babl)
        return client.protect_pixels(data, w, h, channels, fmt, params, progress)

    results = batch.run(files, out_dir, protect_layer)
    progress.end()
    done = sum(1 for r in results if "output" in r)
    failed = len(results) - done
    return success(procedure, (GObject.TYPE_INT, done), (GObject.TYPE_INT, failed),
                   (GObject.TYPE_STRING, json.dumps(results)))


# ---- registration ------------------------------------------------------------------------------

def _layer_procedure(plugin, name, run, menu_label):
    """A filter on the selected layers in the AI Protection menu: protect and verify both take RGB
    and grey images, with one or more layers selected."""
    proc = Gimp.ImageProcedure.new(plugin, name, Gimp.PDBProcType.PLUGIN, run, None)
    proc.set_image_types("RGB*, GRAY*")
    proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                              | Gimp.ProcedureSensitivityMask.DRAWABLES)
    proc.set_menu_label(menu_label)
    proc.add_menu_path(MENU)
    return proc


class ArtcloakPlugIn(Gimp.PlugIn):
    def do_set_i18n(self, procname):
        return False

    def do_query_procedures(self):
        return [PROTECT, VERIFY, BATCH]

    def do_create_procedure(self, name):
        if name == PROTECT:
            proc = _layer_procedure(self, name, run_protect, "_Protect from AI training...")
            proc.set_documentation(
                "Protect the selected layers from AI style mimicry",
                "Adds a copy of each selected layer, with a barely visible perturbation that moves what "
                "diffusion models' autoencoders see, directly above it (one undo step). With a selection, "
                "only the selected area changes. Also marks the image 'do not train' (XMP). Every "
                "argument has a default: setting only image and drawables runs the default preset.", name)
            add_engine_arguments(proc)
            proc.add_string_return_value("report", "Report", "JSON: per layer its region and the engine's "
                                         "protection report; the metadata tags set", "", RW)
            proc.add_string_return_value("report-text", "Report text", "The report as shown to users", "", RW)
        elif name == VERIFY:
            proc = _layer_procedure(self, name, run_verify, "_Verify protection...")
            proc.set_documentation(
                "Measure how well a protected layer moves the AI models' view of its original",
                "Compares two layers of the same size: how far each model's latents moved (clean and after "
                "JPEG, resizing, ...), compared with plain noise, and the visible cost. Without arguments "
                "it takes two selected layers, or one '... (protected)' layer and the layer it came from.",
                name)
            proc.add_layer_argument("original", "Original _layer", "The unprotected layer", True, RW)
            proc.add_layer_argument("protected", "_Protected layer", "The protected layer", True, RW)
            proc.add_string_return_value("report", "Report", "The verification report as JSON", "", RW)
            proc.add_string_return_value("report-text", "Report text", "The report as shown to users", "", RW)
        else:
            proc = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_batch, None)
            proc.set_documentation(
                "Protect image files from AI training, into an output folder",
                "Loads each file (a folder: every image in it) without a display, protects its layer "
                "(several layers are merged first), marks it 'do not train' and exports it to the output "
                "folder in its own format. Each file is saved when done; bad files are reported and skipped.",
                name)
            proc.add_enum_argument("run-mode", "Run mode", "The run mode", Gimp.RunMode,
                                   Gimp.RunMode.NONINTERACTIVE, RW)
            proc.add_string_array_argument("inputs", "Inputs", "Image files and/or folders", RW)
            proc.add_string_argument("output-folder", "Output folder", "Where the protected files go "
                                     "(created if needed; an input file is never overwritten)", "", RW)
            add_engine_arguments(proc)
            proc.add_int_return_value("done", "Done", "Files protected and saved", 0, 2**31 - 1, 0, RW)
            proc.add_int_return_value("failed", "Failed", "Files reported and skipped", 0, 2**31 - 1, 0, RW)
            proc.add_string_return_value("report", "Report", "JSON list: per file its output and report, "
                                         "or its error", "", RW)
        proc.set_attribution("artcloak contributors", "artcloak contributors", "2026")
        return proc


Gimp.main(ArtcloakPlugIn.__gtype__, sys.argv)
