#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""artcloak for GIMP 2.10 (Python-Fu / gimpfu): Filters > AI Protection > Protect from AI training...

Runs under GIMP 2.10's Python 2.7 (and Python 3), standard library and gimpfu only. The engine runs
in its own Python (see artcloak_client.py); this file only moves pixels between GIMP and the client.

Procedures (also for the Python-Fu console and `gimp-console -b`):
  python-fu-protect-from-ai(image, drawable, intensity, quality, target, models, robustness, seed)
      Adds "<layer> (protected)" directly above the layer, in one undo group. Options are indexes:
      intensity 0=low 1=default 2=high, quality 0=fast 1=default 2=max 3=instant.
  python-fu-protect-from-ai-batch(inputs, output_folder, intensity, ...)
      inputs: a folder, or files separated by newlines or os.pathsep; each protected file is saved
      into output_folder under its own name as soon as it is done; unreadable files are reported and
      skipped. Returns (number done, number failed).

With a selection, only its bounding box is protected and the new layer gets a mask made from the
selection (soft edges included). GIMP 2.10 limits: 8-bit images only (gimpfu's pixel regions are
8-bit; use GIMP 3 for 16/32-bit); if GIMP ends the plug-in, the engine notices and stops.
"""
# This file must run under Python 2.7: no f-strings, no annotations, %-formatting.
# ruff: noqa: UP009, UP010, UP024, UP031, E402, B904
from __future__ import absolute_import, division, print_function

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
for _folder in (HERE, os.path.join(HERE, "..", "..", "common")):
    if os.path.isfile(os.path.join(_folder, "artcloak_client.py")):
        sys.path.insert(0, os.path.abspath(_folder))
        break

import artcloak_client as client
from gimpfu import (
    PF_DIRNAME,
    PF_DRAWABLE,
    PF_IMAGE,
    PF_INT,
    PF_OPTION,
    PF_STRING,
    PF_TEXT,
    gimp,
    main,
    pdb,
    register,
)

PROC = "python-fu-protect-from-ai"
BATCH_PROC = "python-fu-protect-from-ai-batch"
MENU = "<Image>/Filters/AI Protection"
AUTHOR = "artcloak contributors"
IMAGE_TYPES = "RGB*, GRAY*"
U8_PRECISIONS = (100, 150)  # GIMP 2.10 PRECISION_U8_LINEAR, PRECISION_U8_GAMMA
ADD_SELECTION_MASK = 4  # GimpAddMaskType (its constant's name differs between GIMP 2.8 and 2.10)


# ---- parameters from params.json ----------------------------------------------------------------

def _is_option(p):
    """A closed choice (the schema's kind "choice"): a PF_OPTION list."""
    return p.get("kind") == "choice"


def pf_params(schema):
    """gimpfu parameter tuples generated from the engine's schema."""
    out = []
    for p in schema:
        name = str(p["name"])
        desc = str(p.get("label") or name)
        if _is_option(p):
            choices = [str(c) for c in p["choices"]]
            desc = "%s (%s)" % (desc, ", ".join("%d=%s" % (i, c) for i, c in enumerate(choices)))
            out.append((PF_OPTION, name, desc, choices.index(p["default"]), choices))
        elif p["type"] == "int":
            out.append((PF_INT, name, desc, int(p["default"])))
        else:
            out.append((PF_STRING, name, desc, str(p["default"])))
    return out


def engine_params(schema, values):
    """{name: value} for the engine from gimpfu's values (option indexes become their names)."""
    out = {}
    for p, value in zip(schema, values):
        if _is_option(p):
            index = int(value)
            if not 0 <= index < len(p["choices"]):
                raise client.EngineError("%s must be an index from 0 to %d, not %r"
                                         % (p["name"], len(p["choices"]) - 1, value), "", "input")
            value = p["choices"][index]
        elif p["type"] == "int":
            value = int(value)
        else:
            value = "" if value is None else str(value)
        out[p["name"]] = value
    return out


# ---- pixels -------------------------------------------------------------------------------------

def check_drawable(image, drawable):
    """Raise EngineError(kind="input") for what this GIMP 2.10 plug-in cannot protect."""
    if not pdb.gimp_item_is_layer(drawable):
        raise client.EngineError("Select a layer to protect (not a channel or a mask).", "", "input")
    if drawable.is_indexed:
        raise client.EngineError("Indexed images cannot be protected.",
                                 "Use Image > Mode > RGB (or Grayscale) first.", "input")
    precision = _precision(image)
    if precision is not None and precision not in U8_PRECISIONS:
        raise client.EngineError("This GIMP 2.10 plug-in protects 8-bit images only.",
                                 "Use Image > Precision > 8 bit integer, or the GIMP 3 plug-in, which "
                                 "works at every precision.", "input")
    if not 1 <= drawable.bpp <= 4:
        raise client.EngineError("Unsupported pixel layout (%d bytes per pixel)." % drawable.bpp, "", "input")


def _precision(image):
    fn = getattr(pdb, "gimp_image_get_precision", None)  # GIMP 2.10; 2.8 is always 8-bit
    return None if fn is None else int(fn(image))


def read_pixels(drawable, box=None):
    """The drawable's pixels (or a box x1, y1, x2, y2 of them) as raw u8 bytes, row-major."""
    x1, y1, x2, y2 = box or (0, 0, drawable.width, drawable.height)
    return drawable.get_pixel_rgn(0, 0, drawable.width, drawable.height, False, False)[x1:x2, y1:y2]


def write_pixels(drawable, data, box=None, base=None):
    """Write `data` into the drawable (or into `box`, the rest from `base` = the full-size bytes)."""
    w, h = drawable.width, drawable.height
    rgn = drawable.get_pixel_rgn(0, 0, w, h, True, True)
    if box is None:
        rgn[0:w, 0:h] = data
    else:
        rgn[0:w, 0:h] = base
        x1, y1, x2, y2 = box
        rgn[x1:x2, y1:y2] = data
    drawable.flush()
    drawable.merge_shadow(True)
    drawable.update(0, 0, w, h)


def selection_box(image, drawable):
    """The selection's bounds in layer coordinates, grown to the engine's minimum size, or None
    without a selection. Only this box is optimised; a selection mask limits the result to it."""
    if pdb.gimp_selection_is_empty(image):
        return None
    _, sx1, sy1, sx2, sy2 = pdb.gimp_selection_bounds(image)
    ox, oy = drawable.offsets
    w, h = drawable.width, drawable.height
    x1, y1, x2, y2 = max(0, sx1 - ox), max(0, sy1 - oy), min(w, sx2 - ox), min(h, sy2 - oy)
    if x1 >= x2 or y1 >= y2:
        raise client.EngineError("The selection does not touch the layer \"%s\"." % drawable.name,
                                 "Select part of the layer, or Select > None to protect all of it.", "input")
    x1, x2 = _grow(x1, x2, w)
    y1, y2 = _grow(y1, y2, h)
    return x1, y1, x2, y2


def _grow(a, b, size, least=client.MIN_SIDE):
    """Widen [a, b) around its centre to at least `least` pixels, staying inside [0, size)."""
    if b - a >= least or size <= least:
        return (a, b) if size > least else (0, size)
    a = max(0, min(a - (least - (b - a)) // 2, size - least))
    return a, a + least


def _progress(start=0.0, span=1.0):
    def update(fraction, message):
        if message and hasattr(pdb, "gimp_progress_set_text"):
            pdb.gimp_progress_set_text(str(message))
        gimp.progress_update(start + span * max(0.0, min(1.0, fraction)))
    return update


def protect_drawable(drawable, params, progress, box=None):
    """Protected raw bytes (of `box`, else the whole layer) and the report; GIMP is not changed."""
    x1, y1, x2, y2 = box or (0, 0, drawable.width, drawable.height)
    return client.protect_pixels(read_pixels(drawable, box), x2 - x1, y2 - y1, drawable.bpp, "u8", params,
                                 progress=progress)


def add_protected_layer(image, drawable, data, box=None):
    """'<name> (protected)' with `data`, directly above `drawable`, same offsets, one undo step.

    With a `box` (a selection), `data` covers only the box, the rest is copied from the layer, and
    a mask made from the selection shows the protected layer inside the selection only."""
    pdb.gimp_image_undo_group_start(image)
    try:
        layer = gimp.Layer(image, "%s (protected)" % drawable.name, drawable.width, drawable.height,
                           drawable.type, drawable.opacity, drawable.mode)
        parent = pdb.gimp_item_get_parent(drawable)
        position = pdb.gimp_image_get_item_position(image, drawable)
        pdb.gimp_image_insert_layer(image, layer, parent, position)
        x, y = drawable.offsets
        layer.set_offsets(x, y)
        if box is None:
            write_pixels(layer, data)
        else:
            write_pixels(layer, data, box, read_pixels(drawable))
            pdb.gimp_layer_add_mask(layer, pdb.gimp_layer_create_mask(layer, ADD_SELECTION_MASK))
    finally:
        pdb.gimp_image_undo_group_end(image)
    gimp.displays_flush()
    return layer


def _show_error(e):
    gimp.message("artcloak: %s" % e)


# ---- the procedures -----------------------------------------------------------------------------

def protect_from_ai(image, drawable, *values):
    """Menu and PDB entry: protect one layer into a new layer above it."""
    try:
        schema = client.load_schema()
        params = engine_params(schema, values)
        check_drawable(image, drawable)
        box = selection_box(image, drawable)
        gimp.progress_init("Protecting from AI training...")
        data, report = protect_drawable(drawable, params, _progress(), box)
    except client.EngineError as e:
        _show_error(e)
        return
    add_protected_layer(image, drawable, data, box)
    gimp.progress_update(1.0)
    gimp.message("artcloak: protected \"%s\".\n\n%s" % (drawable.name, client.format_report(report)))


def batch_inputs(inputs):
    """The files a batch string names: a folder's images (sorted), or a newline/pathsep list."""
    inputs = (inputs or "").strip()
    if os.path.isdir(inputs):
        return [os.path.join(inputs, n) for n in sorted(os.listdir(inputs))
                if n.lower().endswith(client.IMAGE_EXTENSIONS) and not n.startswith(".")]
    files = []
    for line in inputs.splitlines():
        files.extend(part.strip() for part in line.split(os.pathsep) if part.strip())
    return files


def protect_file(path, out_dir, params, progress):
    """Load, protect and save one file into out_dir (same name, written under a temporary name first)."""
    name = os.path.basename(path)
    target = os.path.join(out_dir, name)
    if os.path.abspath(target) == os.path.abspath(path):
        raise client.EngineError("the output would overwrite the original %s" % path,
                                 "Choose another output folder.", "input")
    image = pdb.gimp_file_load(path, path)
    try:
        drawable = pdb.gimp_image_merge_visible_layers(image, 1)  # CLIP_TO_IMAGE
        check_drawable(image, drawable)
        data, report = protect_drawable(drawable, params, progress)
        write_pixels(drawable, data)
        partial = os.path.join(out_dir, ".artcloak-partial-" + name)  # same extension: same file type
        try:
            pdb.gimp_file_save(image, drawable, partial, partial)
            _move(partial, target)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
        return report
    finally:
        pdb.gimp_image_delete(image)


def _move(src, dst):
    """Rename over an existing file (Python 2.7 has no os.replace; Windows refuses to rename over)."""
    if os.name == "nt" and os.path.exists(dst):
        os.remove(dst)
    os.rename(src, dst)


def protect_from_ai_batch(inputs, out_dir, *values):
    """Protect files into out_dir; each is saved when done, bad ones are reported and skipped."""
    try:
        params = engine_params(client.load_schema(), values)
        if not out_dir:
            raise client.EngineError("Choose an output folder.", "", "input")
        files = batch_inputs(inputs)
        if not files:
            raise client.EngineError("No image files found in %r." % inputs,
                                     "Give a folder, or file paths separated by newlines.", "input")
        if not os.path.isdir(out_dir):
            os.makedirs(out_dir)
    except (client.EngineError, OSError) as e:
        _show_error(e)
        return 0, 0
    gimp.progress_init("Protecting %d files from AI training..." % len(files))
    done, failed = 0, []
    for i, path in enumerate(files):
        try:
            protect_file(path, out_dir, params, _progress(i / len(files), 1.0 / len(files)))
            done += 1
        except client.EngineError as e:
            if e.kind == "engine":  # no engine: every other file would fail the same way
                _show_error(e)
                return done, len(files) - done
            failed.append("%s: %s" % (os.path.basename(path), e.message))
        except Exception as e:  # a file GIMP cannot load or save; keep going with the others
            failed.append("%s: %s" % (os.path.basename(path), e))
    gimp.progress_update(1.0)
    text = "artcloak: protected %d of %d files into %s." % (done, len(files), out_dir)
    if failed:
        text += "\n\nSkipped:\n" + "\n".join(failed)
    gimp.message(text)
    return done, len(failed)


def register_all():
    """Register both procedures; the parameters come from params.json."""
    params = pf_params(client.load_schema())
    register(PROC, "Protect a layer from AI style mimicry",
             "Adds a copy of the layer, named '<layer> (protected)', with a perturbation that moves what "
             "AI image models see while a person sees almost no change. The original layer is not changed.",
             AUTHOR, AUTHOR, "2026", "Protect from AI training...", IMAGE_TYPES,
             [(PF_IMAGE, "image", "Input image", None), (PF_DRAWABLE, "drawable", "Input layer", None)]
             + params, [], protect_from_ai, menu=MENU)
    register(BATCH_PROC, "Protect image files from AI style mimicry",
             "Protects every file of a folder (or a list of files) into an output folder, saving each as "
             "it finishes; files that cannot be protected are reported and skipped.",
             AUTHOR, AUTHOR, "2026", "Protect files from AI training (batch)...", "",
             [(PF_TEXT, "inputs", "Folder or files (one per line)", ""),
              (PF_DIRNAME, "output_folder", "Output folder", "")] + params,
             [(PF_INT, "done", "Files protected"), (PF_INT, "failed", "Files skipped")],
             protect_from_ai_batch, menu=MENU)


register_all()
main()
