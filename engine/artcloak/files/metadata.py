"""The "do not train" signals, written as XMP and read back.

Written into every protected PNG, JPEG, WebP (and TIFF) unless the user says not to:
- IPTC Photo Metadata (PLUS) `plus:DataMining` = DMI-PROHIBITED-AIMLTRAINING: prohibited for any
  AI/ML training, which includes the narrower generative-AI variant (the property takes one value);
- `plus:OtherConstraints`: the same in words (a language alternative, as IPTC specifies);
- W3C TDMRep `tdm:reservation` = 1: text and data mining rights are reserved.
An XMP packet the file already has is merged, not replaced: its other properties, namespaces and
prefixes stay, and only these three properties are set anew.

The GIMP 3 front writes the same three through GIMP's own metadata: it reads them from
`plugin/common/do_not_train.json`, this module's copy for the plug-ins (`python -m
artcloak.files.metadata > plugin/common/do_not_train.json`; tests/test_metadata.py keeps it identical).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..errors import InputError

NS_X = "adobe:ns:meta/"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_XML = "http://www.w3.org/XML/1998/namespace"
NS_PLUS = "http://ns.useplus.org/ldf/xmp/1.0/"
NS_TDM = "http://www.w3.org/ns/tdmrep/"
DMI = "http://ns.useplus.org/ldf/vocab/"
PROHIBITED_AIML = DMI + "DMI-PROHIBITED-AIMLTRAINING"
DMI_LABELS = {
    "DMI-UNSPECIFIED": "unspecified",
    "DMI-ALLOWED": "allowed",
    "DMI-PROHIBITED-AIMLTRAINING": "prohibited for AI/ML training",
    "DMI-PROHIBITED-GENAIMLTRAINING": "prohibited for generative AI/ML training",
    "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING": "prohibited except for search engine indexing",
    "DMI-PROHIBITED": "prohibited",
    "DMI-PROHIBITED-SEECONSTRAINT": "prohibited, see the other constraints",
    "DMI-PROHIBITED-SEEEMBEDDEDRIGHTSEXPR": "prohibited, see the embedded rights expression",
    "DMI-PROHIBITED-SEELINKEDRIGHTSEXPR": "prohibited, see the linked rights expression",
}
# No commas: GIMP 3.0.4 cuts a language-alternative value at its first comma on the way to its exporters.
NOTICE = ("The owner of this image prohibits its use for training or fine-tuning or evaluating machine "
          "learning and AI models (generative AI included) and for text and data mining.")
NOTICE_MAX = 2000  # characters: even at 4 UTF-8 bytes each, well inside a JPEG's 64 KB XMP segment
PREFIXES = {"x": NS_X, "rdf": NS_RDF, "plus": NS_PLUS, "tdm": NS_TDM}
# The three "do not train" properties (prefix:name -> value), declared once for the engine and the plug-ins
DO_NOT_TRAIN = {"plus:DataMining": PROHIBITED_AIML, "plus:OtherConstraints": NOTICE, "tdm:reservation": "1"}
PACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
PACKET_END = '\n<?xpacket end="w"?>'


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _tag(prop: str) -> str:
    """ElementTree's name of a `prefix:name` property."""
    prefix, name = prop.split(":")
    return _q(PREFIXES[prefix], name)


OURS = {_tag(prop) for prop in DO_NOT_TRAIN}


def shared() -> dict:
    """What the plug-ins need to write the same signals (plugin/common/do_not_train.json):
    the namespaces of the properties' prefixes, and each property's value."""
    prefixes = dict.fromkeys(prop.split(":")[0] for prop in DO_NOT_TRAIN)
    return {"namespaces": {p: PREFIXES[p] for p in prefixes}, "properties": dict(DO_NOT_TRAIN)}


def _strip_packet(xmp: str) -> str:
    """The XML inside an XMP packet (without xpacket processing instructions and padding)."""
    xmp = xmp.lstrip("\ufeff")
    xmp = re.sub(r"<\?xpacket[^>]*\?>", "", xmp)
    return xmp.strip().rstrip("\0").strip()


def _namespaces(xml: str) -> list[tuple[str, str]]:
    import io

    out = []
    for _event, (prefix, uri) in ET.iterparse(io.StringIO(xml), events=("start-ns",)):
        out.append((prefix, uri))
    return out


def _parse(xmp: str | bytes | None) -> ET.Element | None:
    """The x:xmpmeta (or bare rdf:RDF) root of a packet, or None when there is none or it is broken."""
    if not xmp:
        return None
    if isinstance(xmp, bytes):
        xmp = xmp.decode("utf-8", "replace")
    xml = _strip_packet(xmp)
    try:
        for prefix, uri in _namespaces(xml):
            if prefix and not re.match(r"ns\d+$", prefix) and uri not in PREFIXES.values():
                ET.register_namespace(prefix, uri)
        return ET.fromstring(xml)
    except ET.ParseError:
        return None


def _rdf_of(root: ET.Element) -> ET.Element | None:
    return root if root.tag == _q(NS_RDF, "RDF") else root.find(f".//{_q(NS_RDF, 'RDF')}")


def check_notice(notice: str | None) -> None:
    """A user's notice must be one line of printable text, at most NOTICE_MAX characters: a control
    character makes the XMP invalid (the marks could not be read back), and a long one does not fit
    a JPEG's XMP segment. Checked before any work, and again when the XMP is made."""
    if notice is None:
        return
    if len(notice) > NOTICE_MAX:
        raise InputError(f"the notice is {len(notice)} characters long; at most {NOTICE_MAX} fit",
                         "Shorten the notice (--notice).")
    bad = next((c for c in notice if not c.isprintable()), None)
    if bad is not None:
        raise InputError(f"the notice contains the control or unprintable character {bad!r} at position "
                         f"{notice.index(bad) + 1}; it must be one line of printable text",
                         "Remove line breaks, tabs and control characters from the notice (--notice).")


def do_not_train_xmp(existing: str | bytes | None = None, notice: str | None = None) -> str:
    """An XMP packet saying "do not train", merged into `existing` (kept otherwise unchanged)."""
    check_notice(notice)
    for prefix, uri in PREFIXES.items():
        ET.register_namespace(prefix, uri)
    root = _parse(existing)
    rdf = _rdf_of(root) if root is not None else None
    if root is None or rdf is None:
        root = ET.Element(_q(NS_X, "xmpmeta"))
        rdf = ET.SubElement(root, _q(NS_RDF, "RDF"))
    elif root.tag == _q(NS_RDF, "RDF"):
        meta = ET.Element(_q(NS_X, "xmpmeta"))
        meta.append(root)
        root = meta
    for desc in rdf.findall(_q(NS_RDF, "Description")):  # drop old values of our three properties
        for attr in [a for a in desc.attrib if a in OURS]:
            del desc.attrib[attr]
        mine = [c for c in desc if c.tag in OURS]
        for child in mine:
            desc.remove(child)
        if mine and len(desc) == 0 and set(desc.attrib) <= {_q(NS_RDF, "about")}:
            rdf.remove(desc)  # a description that held only our properties
    desc = ET.SubElement(rdf, _q(NS_RDF, "Description"), {_q(NS_RDF, "about"): ""})
    ET.SubElement(desc, _tag("plus:DataMining")).text = DO_NOT_TRAIN["plus:DataMining"]
    alt = ET.SubElement(ET.SubElement(desc, _tag("plus:OtherConstraints")), _q(NS_RDF, "Alt"))
    ET.SubElement(alt, _q(NS_RDF, "li"), {_q(NS_XML, "lang"): "x-default"}).text = notice or NOTICE
    ET.SubElement(desc, _tag("tdm:reservation")).text = DO_NOT_TRAIN["tdm:reservation"]
    ET.indent(root, space=" ")
    return PACKET_BEGIN + ET.tostring(root, encoding="unicode") + PACKET_END


def _value(desc: ET.Element, tag: str) -> str | None:
    """A simple property written either as an attribute or as an element (text or rdf:resource),
    or the x-default (else first) entry of a language alternative."""
    if tag in desc.attrib:
        return desc.attrib[tag].strip()
    el = desc.find(tag)
    if el is None:
        return None
    if _q(NS_RDF, "resource") in el.attrib:
        return el.attrib[_q(NS_RDF, "resource")].strip()
    items = el.findall(f".//{_q(NS_RDF, 'li')}")
    if items:
        best = next((i for i in items if i.get(_q(NS_XML, "lang")) == "x-default"), items[0])
        return (best.text or "").strip()
    return (el.text or "").strip()


def read_do_not_train(xmp: str | bytes | None) -> dict:
    """What a file's XMP says about AI training: {"xmp": found?, "data_mining", "data_mining_label",
    "other_constraints", "tdm_reservation", "do_not_train"}."""
    out: dict = {"xmp": bool(xmp), "data_mining": None, "data_mining_label": None,
                 "other_constraints": None, "tdm_reservation": None, "do_not_train": False}
    root = _parse(xmp)
    if root is None:
        if xmp:
            out["problem"] = "the XMP packet could not be parsed"
        return out
    for desc in root.iter(_q(NS_RDF, "Description")):
        for key, tag in (("data_mining", _tag("plus:DataMining")),
                         ("other_constraints", _tag("plus:OtherConstraints")),
                         ("tdm_reservation", _tag("tdm:reservation"))):
            value = _value(desc, tag)
            if value is not None and out[key] is None:
                out[key] = value
    if out["tdm_reservation"] is not None:
        out["tdm_reservation"] = 1 if out["tdm_reservation"] in ("1", "true", "True") else 0
    dm = out["data_mining"]
    if dm:
        code = dm.rsplit("/", 1)[-1]
        out["data_mining_label"] = DMI_LABELS.get(code, code)
    out["do_not_train"] = bool((dm and "PROHIBITED" in dm) or out["tdm_reservation"] == 1)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(shared(), indent=1))
