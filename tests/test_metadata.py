"""The "do not train" XMP: written into PNG, JPEG and WebP, read back by exiftool (an independent
reader), merged with the metadata the file had, which survives."""
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from artcloak.files import imageio, metadata
from PIL import Image, ImageCms, PngImagePlugin

OLD_XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
    'xmp:CreatorTool="Krita 5"><dc:creator><rdf:Seq><rdf:li>Ann Artist</rdf:li></rdf:Seq></dc:creator>'
    '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
COMMON = Path(__file__).resolve().parents[1] / "plugin" / "common"


def exiftool(path) -> dict:
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool missing: apt-get install libimage-exiftool-perl")
    out = subprocess.run(["exiftool", "-j", "-G1", "-a", str(path)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)[0]


def _exif() -> bytes:
    ex = Image.Exif()
    ex[0x010F] = "CameraMaker"  # Make
    ex[0x8298] = "(c) Ann Artist"  # Copyright
    return ex.tobytes()


def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def sources(tmp_path):
    rng = np.random.default_rng(0)
    rgb = (rng.random((40, 56, 3)) * 255).astype(np.uint8)
    png_info = PngImagePlugin.PngInfo()
    png_info.add_text("Author", "Ann Artist")
    png_info.add_itxt("XML:com.adobe.xmp", OLD_XMP)
    Image.fromarray(rgb).save(tmp_path / "in.png", pnginfo=png_info, exif=_exif(), icc_profile=_icc())
    Image.fromarray(rgb).save(tmp_path / "in.jpg", quality=92, exif=_exif(), icc_profile=_icc(),
                              xmp=OLD_XMP.encode(), comment=b"made by hand")
    if shutil.which("exiftool"):  # IPTC (APP13) as photo tools write it
        subprocess.run(["exiftool", "-q", "-overwrite_original", "-IPTC:Keywords=cats",
                        str(tmp_path / "in.jpg")], check=True)
    Image.fromarray(rgb).save(tmp_path / "in.webp", lossless=True, exif=_exif(), icc_profile=_icc(),
                              xmp=OLD_XMP.encode())
    return tmp_path


def test_xmp_merge_keeps_existing_properties_and_never_duplicates():
    once = metadata.do_not_train_xmp(OLD_XMP)
    twice = metadata.do_not_train_xmp(once, notice="second notice")
    root = ET.fromstring(metadata._strip_packet(twice))
    plus, tdm = f"{{{metadata.NS_PLUS}}}", f"{{{metadata.NS_TDM}}}"
    assert len(list(root.iter(plus + "DataMining"))) == 1
    assert len(list(root.iter(tdm + "reservation"))) == 1
    assert "Ann Artist" in twice and 'xmp:CreatorTool="Krita 5"' in twice  # prefixes kept too
    got = metadata.read_do_not_train(twice)
    assert got["data_mining"] == metadata.PROHIBITED_AIML
    assert got["other_constraints"] == "second notice" and got["tdm_reservation"] == 1 and got["do_not_train"]


def test_read_without_or_with_broken_xmp():
    assert metadata.read_do_not_train(None)["do_not_train"] is False
    broken = metadata.read_do_not_train("<x:xmpmeta><unclosed")
    assert broken["do_not_train"] is False and "problem" in broken
    # a broken packet is replaced by a valid one rather than kept broken
    assert metadata.read_do_not_train(metadata.do_not_train_xmp("<x:xmpmeta><unclosed"))["do_not_train"]


@pytest.mark.parametrize("name", ["in.png", "in.jpg", "in.webp"])
def test_written_file_says_do_not_train_and_keeps_old_metadata(sources, name):
    src = sources / name
    before = src.read_bytes()
    pixels, info = imageio.read(src)
    out = sources / ("out" + src.suffix)
    imageio.write(out, pixels, info)
    assert src.read_bytes() == before
    tags = exiftool(out)
    assert tags["XMP-plus:DataMining"] == metadata.PROHIBITED_AIML
    assert "prohibits its use for training" in tags["XMP-plus:OtherConstraints"]
    assert str(tags["XMP-tdm:Reservation"]) == "1"
    # what the file had before is still there
    assert tags["XMP-dc:Creator"] == "Ann Artist" and tags["XMP-xmp:CreatorTool"] == "Krita 5"
    assert tags["IFD0:Make"] == "CameraMaker" and tags["IFD0:Copyright"] == "(c) Ann Artist"
    assert "sRGB" in tags["ICC-header:ProfileDescription" if "ICC-header:ProfileDescription" in tags
                          else "ICC_Profile:ProfileDescription"]
    if name == "in.png":
        assert tags["PNG:Author"] == "Ann Artist"
    if name == "in.jpg":
        assert tags["File:Comment"] == "made by hand" and tags["IPTC:Keywords"] == "cats"
    # and artcloak's own reader agrees
    assert metadata.read_do_not_train(imageio.read(out)[1].xmp)["do_not_train"]


def test_no_metadata_leaves_xmp_as_it_was(sources):
    pixels, info = imageio.read(sources / "in.png")
    imageio.write(sources / "plain.png", pixels, info, do_not_train=False)
    tags = exiftool(sources / "plain.png")
    assert "XMP-plus:DataMining" not in tags and tags["XMP-dc:Creator"] == "Ann Artist"


# ---- the plug-ins' copy: the GIMP 3 front writes the same properties and notice ----------------

def test_do_not_train_json_equals_the_engine():
    """plugin/common/do_not_train.json is the engine's declaration, copied for the plug-ins (regenerate
    when this fails: `python -m artcloak.files.metadata > plugin/common/do_not_train.json`)."""
    assert json.loads((COMMON / "do_not_train.json").read_text(encoding="utf-8")) == metadata.shared(), (
        "plugin/common/do_not_train.json is stale: run "
        "`python -m artcloak.files.metadata > plugin/common/do_not_train.json`")
    out = subprocess.run([sys.executable, "-m", "artcloak.files.metadata"], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == metadata.shared()


def test_client_reads_what_the_engine_writes():
    """The client (stdlib only) hands the GIMP 3 front exactly the three properties the engine's XMP
    carries, with the same values."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_client_for_metadata", COMMON / "artcloak_client.py")
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    shared = client.load_do_not_train()
    written = metadata.read_do_not_train(metadata.do_not_train_xmp())
    assert shared["properties"] == {"plus:DataMining": written["data_mining"],
                                    "plus:OtherConstraints": written["other_constraints"],
                                    "tdm:reservation": str(written["tdm_reservation"])}
    assert written["other_constraints"] == metadata.NOTICE and written["do_not_train"]
    assert shared["namespaces"] == {"plus": metadata.NS_PLUS, "tdm": metadata.NS_TDM}


def test_notice_has_no_commas():
    """GIMP 3.0.4 cuts a language-alternative value at its first comma on the way to its exporters."""
    assert "," not in metadata.NOTICE
    assert "prohibits its use for training" in metadata.NOTICE and "text and data mining" in metadata.NOTICE
