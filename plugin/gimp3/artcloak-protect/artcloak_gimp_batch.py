"""python-fu-protect-from-ai-batch: files and folders in, protected files (same format) out.

Each file is loaded without a display, its layer protected in place (several layers are merged
first), marked "do not train", exported under a temporary name and renamed when complete, so the
output folder only ever holds finished files. One bad file is reported and skipped.
"""
import os

import gi

gi.require_version("Gimp", "3.0")
import artcloak_client as client  # noqa: E402
import artcloak_gimp_metadata as metadata  # noqa: E402
import artcloak_gimp_pixels as pixels  # noqa: E402
from gi.repository import Gimp, Gio  # noqa: E402

JPEG_QUALITY = 0.95  # high, so that JPEG itself removes as little of the protection as possible


class BatchError(Exception):
    """The batch as a whole cannot run (nothing to do, unusable output folder)."""


def collect(inputs):
    """Files to protect: each named file, plus the images directly inside each named folder."""
    files = []
    for item in inputs:
        item = os.path.abspath(os.path.expanduser(item))
        if os.path.isdir(item):
            for name in sorted(os.listdir(item)):
                path = os.path.join(item, name)
                wanted = name.lower().endswith(client.IMAGE_EXTENSIONS) and not name.startswith(".")
                if wanted and os.path.isfile(path):
                    files.append(path)
        else:
            files.append(item)  # missing or unreadable files are reported per file by run()
    if not files:
        raise BatchError("No image files found in: {}".format(", ".join(inputs)))
    return files


EXPORTERS = {".png": "file-png-export", ".jpg": "file-jpeg-export", ".jpeg": "file-jpeg-export",
             ".webp": "file-webp-export", ".tif": "file-tiff-export", ".tiff": "file-tiff-export"}


def _export(image, path):
    """Export `image` to `path` in the format its extension names, with its XMP (the do-not-train
    marks) and, for JPEG, at a high quality."""
    gfile = Gio.File.new_for_path(path)
    name = EXPORTERS.get(os.path.splitext(path)[1].lower())
    proc = Gimp.get_pdb().lookup_procedure(name) if name else None
    if proc is None:
        if not Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, gfile, None):
            raise RuntimeError(f"GIMP could not export {os.path.basename(path)}")
        return
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", image)
    cfg.set_property("file", gfile)
    for prop, value in (("include-xmp", True), ("include-exif", True), ("include-iptc", True),
                        ("quality", JPEG_QUALITY if name == "file-jpeg-export" else None)):
        if value is not None and cfg.find_property(prop) is not None:
            cfg.set_property(prop, value)
    result = proc.run(cfg)
    if result.index(0) != Gimp.PDBStatusType.SUCCESS:
        raise RuntimeError(f"export to {os.path.basename(path)} failed: {result.index(1)}")


def _layer_of(image):
    layers = image.get_layers()
    if len(layers) == 1 and not layers[0].is_group():
        return layers[0]
    return image.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)


def protect_file(index, src, out_dir, protect_layer):
    """Protect one file; return its result entry. `protect_layer` runs the engine on a layer."""
    dst = os.path.join(out_dir, os.path.basename(src))
    if os.path.abspath(dst) == os.path.abspath(src):
        raise BatchError("the output would overwrite the input; choose another output folder")
    if not os.path.isfile(src):
        raise BatchError("no such file")
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(src))
    if image is None:
        raise BatchError("GIMP could not load it")
    try:
        layer = _layer_of(image)
        babl, fmt, channels = pixels.transfer(image, layer)
        out, report = protect_layer(index, src, layer, babl, fmt, channels)
        pixels.write_all(layer, babl, out)
        tags = metadata.mark_do_not_train(image)
        stem, ext = os.path.splitext(os.path.basename(src))
        part = os.path.join(out_dir, f".{stem}.artcloak-part{ext}")
        try:
            _export(image, part)
            os.replace(part, dst)
        finally:
            if os.path.exists(part):
                os.remove(part)
    finally:
        image.delete()
    return {"input": src, "output": dst, "metadata": tags, "report": report}


def run(files, out_dir, protect_layer):
    """Protect every file; a failing one gets {"input", "error"} and the batch goes on."""
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir)
    results = []
    for i, src in enumerate(files):
        try:
            results.append(protect_file(i, src, out_dir, protect_layer))
        except client.EngineError as e:
            results.append({"input": src, "error": e.message, "hint": e.hint, "kind": e.kind})
        except Exception as e:  # GLib.Error from loading/exporting, PixelError, BatchError, ...
            results.append({"input": src, "error": str(getattr(e, "message", None) or e)})
    return results
