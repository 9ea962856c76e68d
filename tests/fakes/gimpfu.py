"""A small RECORDING FAKE of GIMP 2.10's `gimpfu` module: the only stand-in in the test suite.

No machine here can run GIMP 2.10's Python-Fu, so tests/test_gimp2_fake.py runs the GIMP 2.10 front
under Python 3 against this fake. It implements just the calls the front uses, with GIMP's
semantics where they matter (layer stack order, pixel regions with shadow tiles that only show after
merge_shadow, undo groups) and checks register()'s arguments the way gimpfu does. Every call is
recorded in CALLS. Files are loaded and saved with Pillow where GIMP would use its file plug-ins.
"""
import re

import numpy as np
from PIL import Image as PILImage

# the values gimpfu.py of GIMP 2.10 gives them (PDB_* for the first ones)
PF_INT, PF_STRING, PF_IMAGE, PF_LAYER, PF_DRAWABLE = 0, 4, 13, 14, 16
PF_TEXT, PF_DIRNAME, PF_OPTION = 1009, 1012, 1013
RGB_IMAGE, RGBA_IMAGE, GRAY_IMAGE, GRAYA_IMAGE, INDEXED_IMAGE, INDEXEDA_IMAGE = range(6)
BPP = {RGB_IMAGE: 3, RGBA_IMAGE: 4, GRAY_IMAGE: 1, GRAYA_IMAGE: 2, INDEXED_IMAGE: 1, INDEXEDA_IMAGE: 2}
PIL_MODES = {RGB_IMAGE: "RGB", RGBA_IMAGE: "RGBA", GRAY_IMAGE: "L", GRAYA_IMAGE: "LA"}
PRECISION_U8_GAMMA, PRECISION_U16_GAMMA = 150, 250  # GimpPrecision values of GIMP 2.10

CALLS = []  # (name, args) of every gimp/pdb call, in order
REGISTERED = {}  # proc name -> register() arguments
MESSAGES = []


def reset():
    CALLS.clear()
    REGISTERED.clear()
    MESSAGES.clear()


def _record(name, *args):
    CALLS.append((name, args))


# ---- images, layers, pixel regions --------------------------------------------------------------

class FakeImage:
    def __init__(self, width, height, precision=PRECISION_U8_GAMMA):
        self.width, self.height, self.precision = width, height, precision
        self.layers = []  # top first, as GIMP lists them
        self.selection = None  # (x1, y1, x2, y2) in image coordinates, or None
        self.undo_depth = 0
        self.deleted = False


class Layer:
    """gimp.Layer(image, name, width, height, type, opacity, mode); not in the stack until inserted."""

    def __init__(self, image, name, width, height, type, opacity=100.0, mode=0):
        _record("gimp.Layer", image, name, width, height, type, opacity, mode)
        self.image, self.name, self.width, self.height = image, name, width, height
        self.type, self.opacity, self.mode = type, opacity, mode
        self.offsets = (0, 0)
        self.parent = None
        self.mask = None
        self.pixels = np.zeros((height, width, BPP[type]), np.uint8)
        self._shadow = None

    bpp = property(lambda self: BPP[self.type])
    is_indexed = property(lambda self: self.type in (INDEXED_IMAGE, INDEXEDA_IMAGE))
    has_alpha = property(lambda self: self.type in (RGBA_IMAGE, GRAYA_IMAGE, INDEXEDA_IMAGE))

    def set_offsets(self, x, y):
        _record("layer.set_offsets", self, x, y)
        self.offsets = (x, y)

    def get_pixel_rgn(self, x, y, w, h, dirty, shadow):
        _record("layer.get_pixel_rgn", self, x, y, w, h, dirty, shadow)
        if shadow:
            self._shadow = self.pixels.copy()
            return PixelRgn(self, self._shadow, dirty)
        return PixelRgn(self, self.pixels, dirty)

    def flush(self):
        _record("layer.flush", self)

    def merge_shadow(self, undo):
        _record("layer.merge_shadow", self, undo)
        if self._shadow is not None:
            self.pixels[...] = self._shadow
            self._shadow = None

    def update(self, x, y, w, h):
        _record("layer.update", self, x, y, w, h)


class Channel:
    """A channel or layer mask: a drawable that is not a layer."""

    def __init__(self, width, height):
        self.width, self.height, self.type, self.is_indexed = width, height, GRAY_IMAGE, False
        self.bpp, self.name, self.parent = 1, "mask", None


class PixelRgn:
    """rgn[x1:x2, y1:y2] reads/writes row-major bytes, as gimpfu's pixel regions do."""

    def __init__(self, layer, buf, dirty):
        self.layer, self.buf, self.dirty = layer, buf, dirty

    def _box(self, key):
        xs, ys = key
        return ys.start, ys.stop, xs.start, xs.stop

    def __getitem__(self, key):
        y0, y1, x0, x1 = self._box(key)
        return self.buf[y0:y1, x0:x1].tobytes()

    def __setitem__(self, key, data):
        if not self.dirty:
            raise RuntimeError("writing to a pixel region opened with dirty=False")
        y0, y1, x0, x1 = self._box(key)
        region = self.buf[y0:y1, x0:x1]
        if len(data) != region.size:
            raise ValueError(f"pixel data has {len(data)} bytes, the region {region.size}")
        region[...] = np.frombuffer(data, np.uint8).reshape(region.shape)


# ---- gimp and pdb -------------------------------------------------------------------------------

class _Gimp:
    Layer = Layer

    @staticmethod
    def message(text):
        _record("gimp.message", text)
        MESSAGES.append(text)

    @staticmethod
    def progress_init(text):
        _record("gimp.progress_init", text)

    @staticmethod
    def progress_update(fraction):
        _record("gimp.progress_update", fraction)

    @staticmethod
    def displays_flush():
        _record("gimp.displays_flush")


def _siblings(image, item):
    return item.parent.children if item.parent is not None else image.layers


class _Pdb:
    """The PDB procedures the front calls; any other name is an AttributeError."""

    def gimp_image_undo_group_start(self, image):
        _record("pdb.gimp_image_undo_group_start", image)
        image.undo_depth += 1

    def gimp_image_undo_group_end(self, image):
        _record("pdb.gimp_image_undo_group_end", image)
        assert image.undo_depth > 0, "undo group end without start"
        image.undo_depth -= 1

    def gimp_item_is_layer(self, item):
        _record("pdb.gimp_item_is_layer", item)
        return int(isinstance(item, Layer))

    def gimp_item_get_parent(self, item):
        _record("pdb.gimp_item_get_parent", item)
        return item.parent

    def gimp_image_get_item_position(self, image, item):
        _record("pdb.gimp_image_get_item_position", image, item)
        return _siblings(image, item).index(item)

    def gimp_image_insert_layer(self, image, layer, parent, position):
        _record("pdb.gimp_image_insert_layer", image, layer, parent, position)
        assert layer.image is image and layer not in image.layers
        layer.parent = parent
        _siblings(image, layer).insert(position, layer)

    def gimp_selection_is_empty(self, image):
        _record("pdb.gimp_selection_is_empty", image)
        return int(image.selection is None)

    def gimp_selection_bounds(self, image):
        _record("pdb.gimp_selection_bounds", image)
        if image.selection is None:
            return (0, 0, 0, image.width, image.height)
        return (1,) + tuple(image.selection)

    def gimp_layer_create_mask(self, layer, mask_type):
        _record("pdb.gimp_layer_create_mask", layer, mask_type)
        assert layer.image is not None and layer in _siblings(layer.image, layer), "layer not in the image"
        mask = Channel(layer.width, layer.height)
        mask.mask_type, mask.selection = mask_type, layer.image.selection
        return mask

    def gimp_layer_add_mask(self, layer, mask):
        _record("pdb.gimp_layer_add_mask", layer, mask)
        assert layer.mask is None, "the layer already has a mask"
        layer.mask = mask

    def gimp_image_get_precision(self, image):
        _record("pdb.gimp_image_get_precision", image)
        return image.precision

    def gimp_progress_set_text(self, text):
        _record("pdb.gimp_progress_set_text", text)

    def gimp_file_load(self, filename, raw_filename):
        _record("pdb.gimp_file_load", filename, raw_filename)
        try:
            pil = PILImage.open(filename)
            pil.load()
        except Exception as e:
            raise RuntimeError(f"Procedure 'gimp-file-load' returned no return values: {e}") from e
        types = {v: k for k, v in PIL_MODES.items()}
        if pil.mode not in types:
            pil = pil.convert("RGBA" if "A" in pil.getbands() else "RGB")
        image = FakeImage(pil.width, pil.height)
        layer = Layer(image, filename, pil.width, pil.height, types[pil.mode])
        layer.pixels[...] = np.asarray(pil).reshape(layer.pixels.shape)
        layer.parent = None
        image.layers.append(layer)
        return image

    def gimp_image_merge_visible_layers(self, image, merge_type):
        _record("pdb.gimp_image_merge_visible_layers", image, merge_type)
        assert len(image.layers) == 1, "the fake merges single-layer images only"
        return image.layers[0]

    def gimp_file_save(self, image, drawable, filename, raw_filename):
        _record("pdb.gimp_file_save", image, drawable, filename, raw_filename)
        pil = PILImage.fromarray(drawable.pixels.squeeze(2) if drawable.bpp == 1 else drawable.pixels,
                                 PIL_MODES[drawable.type])
        ext = filename.rsplit(".", 1)[-1].lower()
        pil.save(filename, {"jpg": "JPEG", "jpeg": "JPEG", "tif": "TIFF"}.get(ext, ext.upper()))

    def gimp_image_delete(self, image):
        _record("pdb.gimp_image_delete", image)
        image.deleted = True


gimp = _Gimp()
pdb = _Pdb()


# ---- register / main ----------------------------------------------------------------------------

_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]*$")


def register(proc_name, blurb, help, author, copyright, date, label, imagetypes, params, results, function,
             menu=None, domain=None, on_query=None, on_run=None):
    """Capture the procedure after the checks gimpfu makes (names, parameter tuples, defaults)."""
    if not proc_name.startswith(("python-", "python_", "plug-in-", "plug_in_", "file-", "extension-")):
        proc_name = "python-fu-" + proc_name
    assert callable(function)
    names = set()
    assert _NAME.match(proc_name), "procedure name contains illegal characters"
    for p in params:
        assert len(p) >= 4 and isinstance(p[0], int), "parameter definition must have 4 elements"
        kind, name, desc = p[0], p[1], p[2]
        assert _NAME.match(name), f"bad parameter name {name!r}"
        assert name not in names, f"duplicate parameter {name!r}"
        names.add(name)
        assert isinstance(desc, str) and desc
        if kind == PF_OPTION:
            assert len(p) == 5 and isinstance(p[4], list) and 0 <= p[3] < len(p[4]), p
        elif kind == PF_INT:
            assert isinstance(p[3], int), p
        elif kind in (PF_STRING, PF_TEXT, PF_DIRNAME):
            assert isinstance(p[3], str), p
    for r in results:
        assert len(r) >= 3 and isinstance(r[0], int) and _NAME.match(r[1]), "bad result definition"
    if menu is not None:
        assert menu.startswith("<Image>") and "/" not in label
    REGISTERED[proc_name] = {"blurb": blurb, "help": help, "label": label, "imagetypes": imagetypes,
                             "params": list(params), "results": list(results), "function": function,
                             "menu": menu}


def main():
    _record("main")
