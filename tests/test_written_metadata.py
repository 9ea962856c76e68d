"""The protect summary's "metadata" record says what the written file carries, read back from it.

An old Pillow (before 11) writes a JPEG without the XMP it is handed (it has no `xmp=` for JPEG); the
engine requires Pillow 11, but `--system-site-packages` can still bring an older one. Simulated here by
a Pillow whose JPEG writer ignores `xmp=`, as Pillow 10's does: the record must then say "no".
"""
import json

import numpy as np
import pytest
from artcloak import cli
from PIL import Image


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(5)
    px = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(px).save(path, quality=95)
    return path


def protect_json(src, dst, capsys, *extra):
    code = cli.main(["protect", str(src), "-o", str(dst), "--json", "--quality", "fast",
                     "--models", "taesana", "--robustness", "", *extra])
    recs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert code == 0, recs
    return recs[-1]


def test_summary_reads_the_metadata_back_from_the_written_file(photo, tmp_path, capsys, monkeypatch):
    save = Image.Image.save

    def pillow10_save(self, fp, format=None, **params):  # noqa: A002 (Pillow's own name)
        if (format or "").upper() == "JPEG":
            params.pop("xmp", None)
        return save(self, fp, format, **params)

    monkeypatch.setattr(Image.Image, "save", pillow10_save)
    rec = protect_json(photo, tmp_path / "old-pillow.jpg", capsys)
    assert rec["metadata"]["do_not_train"] is False and rec["metadata"]["xmp"] is False
    assert any("Pillow 11" in note for note in rec["notes"]), rec["notes"]
    monkeypatch.setattr(Image.Image, "save", save)
    rec = protect_json(photo, tmp_path / "new-pillow.jpg", capsys)
    assert rec["metadata"]["do_not_train"] is True and rec["metadata"]["tdm_reservation"] == 1
    with Image.open(tmp_path / "new-pillow.jpg") as im:
        assert b"DMI-PROHIBITED-AIMLTRAINING" in (im.info.get("xmp") or b"")
    rec = protect_json(photo, tmp_path / "none.jpg", capsys, "--no-metadata")
    assert rec["metadata"]["do_not_train"] is False and not any("Pillow" in n for n in rec["notes"])
