"""The "do not train" signal in the image's metadata, so that GIMP's own export writes it.

IPTC PLUS `plus:DataMining` = DMI-PROHIBITED-AIMLTRAINING with `plus:OtherConstraints` free text,
and W3C TDMRep `tdm:reservation` = 1: the engine's values and notice, read from do_not_train.json
(artcloak_client.load_do_not_train; the notice has no commas, which GIMP 3.0.4 cuts a Lang Alt
value at). Exiv2 knows the PLUS schema; the TDMRep namespace is registered here; GIMP's metadata
serialisation carries the namespace on to its export plug-ins.

GIMP 3.0 links gexiv2 0.10, GIMP 3.2 gexiv2 0.16 (same calls): the one the Gimp typelib loaded is used.
Found in GIMP 3.0.4: the Gimp typelib does not declare GExiv2.Metadata as Gimp.Metadata's parent, so
Python sees none of the tag methods on it; they work when called unbound, as GExiv2.Metadata.f(md).
GIMP's exporters write XMP only with their "include-xmp" argument on (the export dialog's "Save XMP
data", default from Preferences > Image Import & Export); the batch procedure turns it on.
"""
import gi

gi.require_version("Gimp", "3.0")
import artcloak_client as client  # noqa: E402
from gi.repository import Gimp  # noqa: E402

GExiv2 = None  # GIMP built without the GExiv2 typelib: no metadata then
for _version in ("0.16", "0.10"):  # GIMP 3.2 links gexiv2 0.16, GIMP 3.0 0.10 (Gimp loaded it already)
    try:
        gi.require_version("GExiv2", _version)
        from gi.repository import GExiv2
        break
    except (ImportError, ValueError):  # not installed, or Gimp loaded the other version
        continue


def _tags(signals):
    """Exiv2's (tag, value) pairs for the engine's `prefix:Name` properties."""
    return tuple(("Xmp." + prop.replace(":", "."), value) for prop, value in signals["properties"].items())


# Read when the plug-in loads, as params.json is: a broken install fails before any image is changed.
DO_NOT_TRAIN = client.load_do_not_train()
TAGS = _tags(DO_NOT_TRAIN)


def _register():
    for prefix, uri in DO_NOT_TRAIN["namespaces"].items():
        try:
            GExiv2.Metadata.try_register_xmp_namespace(uri, prefix)
        except Exception:  # already registered (exiv2 knows "plus"): fine
            pass


def _set(md, tag, value):
    setter = getattr(GExiv2.Metadata, "try_set_tag_string", None) or GExiv2.Metadata.set_tag_string
    setter(md, tag, value)


def get_tag(md, tag):
    """A tag's value as a string, or None (unbound call: see the module docstring)."""
    getter = getattr(GExiv2.Metadata, "try_get_tag_string", None) or GExiv2.Metadata.get_tag_string
    try:
        return getter(md, tag)
    except Exception:
        return None


def mark_do_not_train(image):
    """Add the do-not-train XMP to `image`'s metadata (kept with what it already has).

    Returns the list of tags set; an empty list when GExiv2 is unavailable or refuses them.
    """
    if GExiv2 is None:
        return []
    _register()
    md = image.get_metadata() or Gimp.Metadata.new()
    done = []
    for tag, value in TAGS:
        try:
            _set(md, tag, value)
            if get_tag(md, tag):
                done.append(tag)
        except Exception:  # a namespace exiv2 does not accept: record what worked
            continue
    image.set_metadata(md)
    return done
