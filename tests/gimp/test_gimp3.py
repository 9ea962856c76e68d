"""The GIMP 3 plug-in in a real, headless GIMP 3 with the real engine and weights.

GIMP 3.0 (Debian 13's), two runs per session (tests/gimp/gimp_harness.py): one with the engine doing four
real jobs on small images (protect with a feathered selection + verify, a 16-bit grey image, a batch of a
good and a bad file), one with a broken engine path and an indexed image. Each scenario records what
happened inside GIMP (tests/gimp/gimp_scenarios.py); these tests judge the records and the pixel dumps.

GIMP 3.2 (Debian sid's, what Flathub and gimp.org ship): one run with the representative subset (protect
adds a layer above the original and leaves it byte-identical, with the do-not-train metadata; a batch),
judged by the same tests.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
import gimp_gui  # noqa: E402
import gimp_harness as harness  # noqa: E402

pytestmark = pytest.mark.gimp

SCRIPT = Path(__file__).with_name("gimp_scenarios.py")
W, H = 96, 80
SELECT = [12.0, 10.0, 60.0, 50.0]  # x, y, w, h of the rectangle selection, feathered by FEATHER
FEATHER = 8.0
HIGH_BUDGET = 10  # the largest per-channel change any intensity allows (0-255 units)
DNT = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"
# the engine's notice, as the plug-ins get it (tests/test_metadata.py keeps the copy equal to the engine's)
NOTICE = json.loads((harness.REPO / "plugin/common/do_not_train.json").read_text())["properties"][
    "plus:OtherConstraints"]


def _inputs(work: Path) -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:H, 0:W]
    texture = rng.integers(0, 256, (H, W))
    rgba = np.stack([x * 255 // (W - 1), y * 255 // (H - 1), texture, np.full((H, W), 255)], -1)
    rgba = rgba.astype(np.uint8)
    rgba[:10, :10, 3] = 0  # a transparent corner: must stay exactly as it was
    Image.fromarray(rgba, "RGBA").save(work / "rgba.png")
    grey = (x * 65535 // (W - 1) // 2 + rng.integers(0, 30000, (H, W))).astype(np.uint16)
    Image.fromarray(grey).save(work / "grey16.png")  # uint16 -> a 16-bit grey PNG
    Image.fromarray(rgba[..., :3]).save(work / "good.jpg", quality=95)
    (work / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")


def _run(gimp: harness.Gimp3, name: str, scenarios: list, env: dict | None = None) -> tuple[dict, Path, str]:
    out = gimp.work / name
    out.mkdir()
    job = gimp.work / f"{name}.json"
    job.write_text(json.dumps({"out": str(out), "scenarios": scenarios}))
    t = time.time()
    proc = gimp.run(SCRIPT, {"ARTCLOAK_GIMP_JOB": str(job), **(env or {})}, timeout=540)
    log = (f"gimp rc={proc.returncode} in {time.time() - t:.0f} s\n"
           f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    results = out / "results.json"
    assert results.exists(), "the scenario script did not run:\n" + log
    return json.loads(results.read_text()), out, log


def _gimp(version: str, how: str):
    if harness.mode(version) is None:
        pytest.skip(f"no GIMP {version} here: run {how} (as root) first")
    g = harness.Gimp3(version=version)
    _inputs(g.work)
    return g


@pytest.fixture(scope="module")
def gimp(models_dir):
    g = _gimp("3.0", "tests/gimp/ensure_gimp.sh")
    yield g
    g.cleanup()


@pytest.fixture(scope="module")
def gimp32(models_dir):
    g = _gimp("3.2", "GIMP3_SUITE=sid tests/gimp/ensure_gimp.sh")
    yield g
    g.cleanup()


@pytest.fixture(scope="module")
def main_run_32(gimp32):
    w = str(gimp32.work)
    return _run(gimp32, "main", [
        ["rgb", {"path": f"{w}/rgba.png", "select": SELECT, "feather": FEATHER, "quality": "fast"}],
        ["batch", {"inputs": [f"{w}/good.jpg", f"{w}/bad.png"], "out_dir": f"{w}/batch-out",
                   "quality": "fast"}],
    ])


@pytest.fixture(scope="module")
def main_run(gimp):
    w = str(gimp.work)
    return _run(gimp, "main", [
        ["pdb", {}],
        ["rgb", {"path": f"{w}/rgba.png", "select": SELECT, "feather": FEATHER, "quality": "fast"}],
        ["u16", {"path": f"{w}/grey16.png", "quality": "fast"}],
        ["batch", {"inputs": [f"{w}/good.jpg", f"{w}/bad.png"], "out_dir": f"{w}/batch-out",
                   "quality": "fast"}],
    ])


@pytest.fixture(scope="module")
def error_run(gimp):
    w = str(gimp.work)
    scenarios = [["broken", {"path": f"{w}/rgba.png"}], ["indexed", {"path": f"{w}/rgba.png"}]]
    return _run(gimp, "errors", scenarios, env={"ARTCLOAK_ENGINE_PYTHON": "/nonexistent/python"})


def scenario(run: tuple, name: str, ok: bool = True) -> tuple[dict, Path]:
    results, out, log = run
    rec = results["scenarios"].get(name)
    assert rec is not None and "exception" not in rec, f"{name}: {rec and rec.get('exception')}\n{log}"
    if ok:
        assert rec.get("status") == "success", f"{name}: {rec.get('status')} {rec.get('error')}\n{log}"
    return rec, out / name


def raw(path: Path, dtype, channels: int) -> np.ndarray:
    return np.fromfile(path, dtype=dtype).reshape(H, W, channels)


def xmp_of(path: Path) -> str:
    """The do-not-train fields as an independent reader (exiftool) sees them, else the raw bytes."""
    if shutil.which("exiftool"):
        return subprocess.run(["exiftool", "-a", "-G1", "-XMP:all", str(path)], capture_output=True,
                              text=True, check=True).stdout
    return path.read_bytes().decode("latin-1")


# ---- registration --------------------------------------------------------------------------------

def test_procedures_registered_with_every_engine_parameter(main_run):
    rec, _ = scenario(main_run, "pdb", ok=False)
    assert rec["menu"] == ["<Image>/Filters/AI Protection"]
    assert rec["verify_menu"] == ["<Image>/Filters/AI Protection"]
    schema = json.loads((harness.REPO / "plugin/common/params.json").read_text())
    assert rec["args"][:3] == ["run-mode", "image", "drawables"]
    assert rec["args"][3:] == [p["name"].replace("_", "-") for p in schema]


# ---- protect: new layer, original untouched, selection, budget, effect ---------------------------

def test_new_layer_directly_above_original(main_run):
    rec, _ = scenario(main_run, "rgb")
    before, after = rec["stack_before"], rec["stack_after"]
    assert len(after) == len(before) + 1
    new, orig = after[0], after[1]
    assert new["name"] == before[0]["name"] + " (protected)" and new["pos"] == 0
    assert orig["id"] == before[0]["id"] and orig["pos"] == 1
    assert new["offsets"] == orig["offsets"] and new["size"] == orig["size"] and new["alpha"]


def test_original_layer_byte_identical(main_run):
    _, d = scenario(main_run, "rgb")
    assert (d / "Background.orig.raw").read_bytes() == (d / "Background.before.raw").read_bytes()


def test_change_within_budget_alpha_kept(main_run):
    rec, d = scenario(main_run, "rgb")
    orig, new = raw(d / "Background.orig.raw", np.uint8, 4), raw(d / "Background.new.raw", np.uint8, 4)
    diff = np.abs(new.astype(int) - orig.astype(int))
    assert diff[..., :3].max() > 0, "the protected layer equals the original"
    assert diff[..., :3].max() <= HIGH_BUDGET
    assert abs(diff[..., :3].max() - rec["report"]["layers"][0]["report"]["perceptual"]["linf"]) <= 1.01
    assert np.array_equal(new[..., 3], orig[..., 3]), "alpha changed"
    assert not diff[orig[..., 3] == 0].any(), "fully transparent pixels changed"


def test_selection_limits_the_change(main_run):
    _, d = scenario(main_run, "rgb")
    orig, new = raw(d / "Background.orig.raw", np.uint8, 4), raw(d / "Background.new.raw", np.uint8, 4)
    mask = raw(d / "selection.raw", np.float32, 1)[..., 0]
    changed = (new != orig).any(axis=2)
    assert (mask == 0).sum() > 1000 and (mask == 1).sum() > 1000
    assert not changed[mask == 0].any(), "pixels outside the selection changed"
    assert changed[mask == 1].mean() > 0.3, "the selected area was barely changed"
    soft = (mask > 0) & (mask < 1)
    assert soft.any() and changed[soft].any(), "the feathered edge was not blended"


def test_verify_finds_a_real_effect(main_run):
    rec, _ = scenario(main_run, "rgb")
    assert rec["verify_status"] == "success", rec.get("verify_error")
    taef2 = rec["verify"]["models"]["taef2"]
    assert taef2["noise_ratio"] > 1.2, taef2
    assert "taef2" in rec["verify_text"]
    assert "after.train512.copy_psnr" in taef2 and "copy_over_noise" in taef2
    assert "A model trained on this image would reproduce it" in rec["verify_text"]


def test_report_returned_and_kept_as_parasite(main_run):
    rec, _ = scenario(main_run, "rgb")
    layer = rec["report"]["layers"][0]
    assert layer["new_layer"] == "Background (protected)"
    assert "taef2" in layer["report"]["models"] and "perceptual" in layer["report"]
    assert rec["parasite"]["report"] == layer["report"]
    assert "moved" in rec["report_text"] and "PSNR" in rec["report_text"]
    # the message says in words what a model trained on the layer would learn: the engine's own text
    # (the CLI prints the same), kept with the layer too
    head = layer["report"]["headline"]
    assert head["model"] == "taef2" and head["view"] == "train512"
    assert rec["report_text"].startswith(
        f"Background (protected)\nA model trained on this image would reproduce it with a change of "
        f"{head['copy_psnr']:.1f} dB PSNR (lower = stronger); you see {head['psnr']:.1f} dB.")
    assert rec["parasite"]["report_text"] == layer["report_text"] == layer["report"]["text"]


def test_one_undo_removes_the_protection(gimp):
    """libgimp has no undo call: press Ctrl+Z in the real UI (Xvfb) after protecting."""
    if not gimp_gui.available():
        pytest.skip("Xvfb/xdotool missing: tests/gimp/ensure_gimp.sh installs them")
    rec = gimp_gui.undo_once(gimp, gimp.work / "rgba.png")
    assert "error" not in rec, rec
    assert rec["status"] == "success"
    assert rec["layers_after_protect"] == ["Background (protected)", "Background"]
    assert rec["layers_after_undo"] == ["Background"], "one Ctrl+Z did not remove the protected layer"
    assert rec["original_identical"]


def _changed_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) of the pixels that differ between two captures, or None."""
    rows, cols = np.nonzero(np.abs(a.astype(int) - b).max(2) > 24)
    if rows.size == 0:
        return None
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def test_dialog_shows_a_live_preview(gimp, instant_cloak):
    """The real dialog (Xvfb) on a 1024 px layer: the preview of its 512 px centre crop appears, "Show
    the change x10" turns it into mid-grey with the change magnified, a new intensity brings a new
    preview, and Cancel leaves the image with its one layer (the preview writes nothing)."""
    if not gimp_gui.available():
        pytest.skip("Xvfb/xdotool missing: tests/gimp/ensure_gimp.sh installs them")
    y, x = np.mgrid[0:1024, 0:1024]
    art = np.stack([x // 4, y // 4, 128 + 60 * np.sin(x / 17) * np.cos(y / 23)], -1).astype(np.uint8)
    Image.fromarray(art).save(gimp.work / "art1024.png")
    rec = gimp_gui.preview_dialog(gimp, gimp.work / "art1024.png")
    said = {k: v for k, v in rec.items() if k not in ("before", "after")}  # for messages: no captures
    assert "error" not in rec and rec["first"], said
    first = rec["first"][0]
    shown = (first["request"], first["mode"], first["width"], first["height"])
    assert shown == (0, "picture", 512, 512), said
    print(f"first preview {first['since_open']} s after the dialog opened "
          f"(engine {first['engine_seconds']} s)")
    assert any(t["mode"] == "change" for t in rec["trace"]), said
    assert any(t["request"] > 0 for t in rec["trace"]), f"no preview after the intensity changed: {said}"
    box = _changed_box(rec["before"], rec["after"])
    assert box is not None, "the x10 toggle changed nothing on screen"
    top, left, bottom, right = box
    assert bottom - top >= 250 and right - left >= 250, f"the preview area is only {box}"
    before = rec["before"][top:bottom, left:right].astype(float)
    after = rec["after"][top:bottom, left:right].astype(float)
    assert abs(np.median(after) - 128) < 20, "the x10 change is not centred on mid-grey"
    # the picture has the layer's gradients (a blank or grey preview area would not); the x10 change,
    # up to 10 x 20/255 on texture, may swing as far from grey as a picture, so the two are not compared
    assert before.std() > 20, "the preview showed no picture"
    assert rec["layers"] is not None and len(rec["layers"]) == 1, rec["layers"]


def test_do_not_train_metadata_on_image_and_in_export(main_run):
    rec, d = scenario(main_run, "rgb")
    assert rec["metadata"]["Xmp.plus.DataMining"] == DNT
    assert rec["metadata"]["Xmp.tdm.reservation"] == "1"
    assert NOTICE in rec["metadata"]["Xmp.plus.OtherConstraints"]
    assert sorted(rec["report"]["metadata"]) == sorted(rec["metadata"])
    text = xmp_of(d / "rgb.png")
    assert "DMI-PROHIBITED-AIMLTRAINING" in text
    assert NOTICE in text, "the free text was cut"
    assert ("Reservation" in text) if shutil.which("exiftool") else ("tdm:reservation" in text)


# ---- 16-bit --------------------------------------------------------------------------------------

def test_sixteen_bit_grey_image_two_layers(main_run):
    rec, d = scenario(main_run, "u16")
    assert rec["precision"].startswith("u16")
    after = [(layer["name"], layer["offsets"]) for layer in rec["stack_after"]]
    assert after == [("Copy 1 (protected)", [6, 4]), ("Copy 1", [6, 4]),
                     ("Background (protected)", [0, 0]), ("Background", [0, 0])]
    assert [layer["layer"] for layer in rec["report"]["layers"]] == ["Copy 1", "Background"]
    for name in ("Copy 1", "Background"):
        before, orig, new = (raw(d / f"{name}.{k}.raw", np.uint16, 1) for k in ("before", "orig", "new"))
        assert np.array_equal(orig, before), name
        diff = new.astype(int) - orig.astype(int)
        assert 0 < np.abs(diff).max() <= HIGH_BUDGET * 257 + 1, name
        assert (diff % 257 != 0).any(), f"{name}: only 8-bit steps: the layer went through 8 bits"


# ---- batch ---------------------------------------------------------------------------------------

def test_batch_writes_good_files_and_reports_bad_ones(main_run, gimp):
    rec, _ = scenario(main_run, "batch")
    assert (rec["done"], rec["failed"]) == (1, 1), rec["report"]
    good, bad = rec["report"]
    assert bad["input"].endswith("bad.png") and bad["error"]
    out = gimp.work / "batch-out"
    assert sorted(p.name for p in out.iterdir()) == ["good.jpg"]  # no partial or stray files
    src = np.asarray(Image.open(gimp.work / "good.jpg").convert("RGB"), dtype=int)
    dst = np.asarray(Image.open(out / "good.jpg"), dtype=int)
    assert Image.open(out / "good.jpg").format == "JPEG" and dst.shape == src.shape
    assert np.abs(dst - src).mean() > 0.2
    assert "taef2" in good["report"]["models"]
    assert "DMI-PROHIBITED-AIMLTRAINING" in xmp_of(out / "good.jpg")


# ---- failures change nothing ---------------------------------------------------------------------

def test_broken_engine_path_is_an_error_and_image_unchanged(error_run):
    rec, d = scenario(error_run, "broken", ok=False)
    assert rec["status"] == "execution-error"
    assert "/nonexistent/python" in rec["error"] and "install" in rec["error"].lower()
    assert rec["stack_after"] == rec["stack_before"]
    assert (d / "Background.orig.raw").read_bytes() == (d / "Background.before.raw").read_bytes()


def test_indexed_image_gets_a_clear_message(error_run):
    rec, _ = scenario(error_run, "indexed", ok=False)
    assert rec["status"] == "execution-error" and "Indexed" in rec["error"] and "RGB" in rec["error"]
    assert rec["stack_after"] == rec["stack_before"]


# ---- GIMP 3.2: the representative subset, judged by the same tests -------------------------------

def test_gimp32_protect_adds_a_layer_and_keeps_the_original(main_run_32):
    assert main_run_32[0]["gimp"].startswith("3.2"), main_run_32[0]["gimp"]
    test_new_layer_directly_above_original(main_run_32)
    test_original_layer_byte_identical(main_run_32)
    test_change_within_budget_alpha_kept(main_run_32)
    test_selection_limits_the_change(main_run_32)
    test_do_not_train_metadata_on_image_and_in_export(main_run_32)  # gexiv2 0.16 in GIMP 3.2


def test_gimp32_batch(main_run_32, gimp32):
    test_batch_writes_good_files_and_reports_bad_ones(main_run_32, gimp32)
