"""Moving a layer's pixels between GIMP 3 and the engine's raw format, without loss.

The engine works on perceptual (sRGB-curve) values, as the surrogate models were trained on them.
Each layer is read in the sample format that holds its precision exactly:

- 8-bit / 16-bit images with a perceptual or non-linear curve: "R'G'B'(A) u8" / "u16" (identity).
- linear-light images (any depth), 32-bit integer, half, float and double images: "R'G'B'(A) float",
  i.e. perceptual float32. For linear 8/16-bit layers this round-trips exactly (float32 holds every
  linear u8/u16 value after the curve and back), so unchanged pixels stay byte-identical; only the
  changed pixels are quantised once, by GIMP, into the layer's own encoding.
Grey images use "Y'(A) ...". Colour is taken in sRGB primaries (babl converts other profiles).
"""
import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
import artcloak_client as client  # noqa: E402
from gi.repository import Gegl, Gimp  # noqa: E402

CONTEXT = 16  # pixels around a selection the engine also sees (the protection is smoother at edges)


class PixelError(Exception):
    """The layer cannot be protected as it is (indexed image, group layer, ...)."""


def sample_format(image):
    """The engine sample format ("u8", "u16" or "float") that carries this image's precision."""
    name = image.get_precision().value_name  # e.g. GIMP_PRECISION_U16_NON_LINEAR
    if name.endswith("_LINEAR"):
        return "float"
    if "_U8_" in name:
        return "u8"
    if "_U16_" in name:
        return "u16"
    return "float"


def transfer(image, drawable):
    """(babl format name, engine format, channel count) for reading and writing `drawable`."""
    base = image.get_base_type()
    if base == Gimp.ImageBaseType.INDEXED:
        raise PixelError("Indexed (palette) images cannot carry a protection: a palette has too few "
                         "colours. Use Image > Mode > RGB first, protect, and export as PNG, JPEG or WebP.")
    fmt = sample_format(image)
    alpha = drawable.has_alpha()
    colour, n = ("R'G'B'", 3) if base == Gimp.ImageBaseType.RGB else ("Y'", 1)
    return "{}{} {}".format(colour, "A" if alpha else "", fmt), fmt, n + (1 if alpha else 0)


def _grow(start, length, total, minimum):
    """Widen [start, start+length) to at least `minimum` inside [0, total) when the layer allows."""
    if length >= minimum or total <= minimum:
        return (0, total) if total <= minimum else (start, length)
    start = max(0, min(start - (minimum - length) // 2, total - minimum))
    return start, minimum


def region(drawable):
    """The part of `drawable` to send to the engine: the selection's bounds (plus context) or all.

    Returns (x, y, w, h) in the drawable's coordinates, or None when the selection misses the layer.
    """
    ok, x, y, w, h = drawable.mask_intersect()
    if not ok or w <= 0 or h <= 0:
        return None
    lw, lh = drawable.get_width(), drawable.get_height()
    if (w, h) != (lw, lh):
        x0, y0 = max(0, x - CONTEXT), max(0, y - CONTEXT)
        x1, y1 = min(lw, x + w + CONTEXT), min(lh, y + h + CONTEXT)
        x, w = _grow(x0, x1 - x0, lw, client.MIN_SIDE)
        y, h = _grow(y0, y1 - y0, lh, client.MIN_SIDE)
    return x, y, w, h


def read(drawable, rect, babl):
    """The raw bytes of `rect` (x, y, w, h) of `drawable` in `babl` format."""
    x, y, w, h = rect
    buf = drawable.get_buffer()
    data = buf.get(Gegl.Rectangle.new(x, y, w, h), 1.0, babl, Gegl.AbyssPolicy.CLAMP)
    return bytes(data)


def write_through_selection(drawable, rect, babl, data):
    """Write `data` into `rect` via the shadow buffer: GIMP blends it by the selection (soft edges)
    and records one undo step; outside the selection the layer keeps its pixels exactly."""
    x, y, w, h = rect
    shadow = drawable.get_shadow_buffer()
    shadow.set(Gegl.Rectangle.new(x, y, w, h), babl, data)
    shadow.flush()
    drawable.merge_shadow(True)
    drawable.update(x, y, w, h)


def write_all(drawable, babl, data):
    """Replace all pixels of `drawable` (batch mode: no selection, no undo needed)."""
    w, h = drawable.get_width(), drawable.get_height()
    buf = drawable.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), babl, data)
    buf.flush()
    drawable.update(0, 0, w, h)
