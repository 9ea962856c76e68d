"""The GIMP 2.10 front (plugin/gimp2/...) under Python 3, against tests/fakes/gimpfu.py.

No machine here can run GIMP 2.10's Python-Fu, so the recording fake of gimpfu is the one stand-in
in the suite; the client, the worker process, the engine and the weights behind it are all real.
"""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from artcloak.cloak.presets import INTENSITY
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FRONT = ROOT / "plugin" / "gimp2" / "artcloak_protect" / "artcloak_protect.py"
sys.path.insert(0, str(Path(__file__).resolve().parent / "fakes"))
import gimpfu  # noqa: E402  (the fake)

LINF = round(INTENSITY["default"].linf * 255)  # the most any sample may change (8-bit units)


@pytest.fixture
def front(engine):
    """The front freshly loaded (its register() calls captured), the engine = this Python."""
    gimpfu.reset()
    spec = importlib.util.spec_from_file_location("artcloak_protect_gimp2", FRONT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def values(**override):
    """gimpfu argument values after image/drawable: the defaults, quality fast, one model."""
    reg = gimpfu.REGISTERED["python-fu-protect-from-ai"]["params"][2:]
    out = []
    for p in reg:
        if p[1] in override:
            v = override[p[1]]
            out.append(p[4].index(v) if p[0] == gimpfu.PF_OPTION else v)
        else:
            out.append(p[3])
    return out


FAST = {"quality": "fast", "models": "taesana"}


def make_image(layer_type=gimpfu.RGBA_IMAGE, precision=gimpfu.PRECISION_U8_GAMMA):
    image = gimpfu.FakeImage(80, 70, precision)
    top = gimpfu.Layer(image, "top", 80, 70, gimpfu.RGBA_IMAGE)
    src = gimpfu.Layer(image, "art", 48, 40, layer_type, 80.0, 3)
    bottom = gimpfu.Layer(image, "bottom", 80, 70, gimpfu.RGB_IMAGE)
    rng = np.random.default_rng(3)
    src.pixels[...] = rng.integers(20, 236, src.pixels.shape, dtype=np.uint8)
    if src.has_alpha:
        src.pixels[..., -1] = 255
        src.pixels[:6, :6, -1] = 0
    src.offsets = (5, 7)
    image.layers[:] = [top, src, bottom]
    return image, top, src, bottom


def names(calls):
    return [c[0] for c in calls]


def test_registration_is_generated_from_params_json(front):
    from artcloak.params import schema

    assert set(gimpfu.REGISTERED) == {"python-fu-protect-from-ai", "python-fu-protect-from-ai-batch"}
    reg = gimpfu.REGISTERED["python-fu-protect-from-ai"]
    assert reg["menu"] == "<Image>/Filters/AI Protection" and reg["label"] == "Protect from AI training..."
    params = reg["params"]
    assert [p[0] for p in params[:2]] == [gimpfu.PF_IMAGE, gimpfu.PF_DRAWABLE]
    assert [p[1] for p in params[2:]] == [p["name"] for p in schema()]
    kinds = {p[1]: p for p in params[2:]}
    assert kinds["intensity"][0] == gimpfu.PF_OPTION and kinds["intensity"][4] == ["low", "default", "high"]
    assert kinds["intensity"][4][kinds["intensity"][3]] == "default"
    assert kinds["target"][0] == gimpfu.PF_STRING  # choices are suggestions: a path is allowed too
    assert kinds["seed"][0] == gimpfu.PF_INT
    batch = gimpfu.REGISTERED["python-fu-protect-from-ai-batch"]
    assert [p[1] for p in batch["params"][2:]] == [p["name"] for p in schema()]
    assert ("main", ()) in gimpfu.CALLS


def test_protect_adds_a_layer_above_the_source(front):
    image, top, src, bottom = make_image()
    before = src.pixels.copy()
    gimpfu.CALLS.clear()
    reg = gimpfu.REGISTERED["python-fu-protect-from-ai"]
    reg["function"](image, src, *values(**FAST))

    assert len(image.layers) == 4 and image.layers[0] is top and image.layers[2] is src
    new = image.layers[1]
    assert new.name == "art (protected)" and new.offsets == src.offsets
    assert (new.width, new.height, new.type, new.opacity, new.mode) == (48, 40, src.type, 80.0, 3)
    assert np.array_equal(src.pixels, before), "the original layer was modified"
    diff = np.abs(new.pixels.astype(int) - before)
    assert 0 < diff[..., :3].max() <= LINF
    assert np.array_equal(new.pixels[..., 3], before[..., 3]), "alpha must be kept"
    assert (diff[:6, :6] == 0).all(), "transparent pixels changed"

    order = names(gimpfu.CALLS)
    start, end = order.index("pdb.gimp_image_undo_group_start"), order.index("pdb.gimp_image_undo_group_end")
    assert order.count("pdb.gimp_image_undo_group_start") == order.count("pdb.gimp_image_undo_group_end") == 1
    assert start < order.index("pdb.gimp_image_insert_layer") < order.index("layer.merge_shadow") < end
    assert image.undo_depth == 0
    progress = [c[1][0] for c in gimpfu.CALLS if c[0] == "gimp.progress_update"]
    assert len(progress) >= 3 and progress == sorted(progress) and progress[-1] == 1.0
    assert "taesana" in gimpfu.MESSAGES[-1] and "Visible cost" in gimpfu.MESSAGES[-1]


def test_selection_limits_the_protection(front):
    image, _, src, _ = make_image()
    image.selection = (10, 12, 40, 30)  # image coordinates; the layer sits at (5, 7)
    before = src.pixels.copy()
    gimpfu.CALLS.clear()
    gimpfu.REGISTERED["python-fu-protect-from-ai"]["function"](image, src, *values(**FAST))
    new = image.layers[1]
    changed = np.abs(new.pixels.astype(int) - before).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    # the selection is (5, 5)-(35, 23) in the layer, grown to the engine's 32 x 32 minimum
    assert xs.min() >= 4 and xs.max() < 36 and ys.min() >= 0 and ys.max() < 32 and changed.any()
    assert np.array_equal(src.pixels, before)
    assert new.mask is not None and new.mask.mask_type == 4 and new.mask.selection == image.selection
    order = names(gimpfu.CALLS)
    assert order.index("pdb.gimp_layer_add_mask") < order.index("pdb.gimp_image_undo_group_end")


def test_a_selection_outside_the_layer_is_refused(front):
    image, _, src, _ = make_image()
    image.selection = (60, 60, 70, 70)
    gimpfu.REGISTERED["python-fu-protect-from-ai"]["function"](image, src, *values(**FAST))
    assert len(image.layers) == 3 and "does not touch the layer" in gimpfu.MESSAGES[-1]


@pytest.mark.parametrize("case, expect", [
    ("broken engine", "does not exist"),
    ("indexed", "Indexed images"),
    ("16-bit", "8-bit images only"),
    ("mask", "Select a layer"),
])
def test_errors_leave_the_image_unchanged(front, monkeypatch, tmp_path, case, expect):
    layer_type = gimpfu.INDEXED_IMAGE if case == "indexed" else gimpfu.RGBA_IMAGE
    precision = gimpfu.PRECISION_U16_GAMMA if case == "16-bit" else gimpfu.PRECISION_U8_GAMMA
    image, _, src, _ = make_image(layer_type, precision)
    if case == "broken engine":
        monkeypatch.setenv("ARTCLOAK_ENGINE_PYTHON", str(tmp_path / "nowhere" / "python"))
    drawable = gimpfu.Channel(48, 40) if case == "mask" else src
    layers = list(image.layers)
    gimpfu.CALLS.clear()
    gimpfu.REGISTERED["python-fu-protect-from-ai"]["function"](image, drawable, *values(**FAST))
    assert image.layers == layers
    assert "pdb.gimp_image_undo_group_start" not in names(gimpfu.CALLS)
    assert expect in gimpfu.MESSAGES[-1]


def test_bad_option_index_is_reported(front):
    image, _, src, _ = make_image()
    vals = values(**FAST)
    vals[0] = 7  # intensity
    gimpfu.REGISTERED["python-fu-protect-from-ai"]["function"](image, src, *vals)
    assert len(image.layers) == 3 and "intensity must be an index" in gimpfu.MESSAGES[-1]


def test_batch_saves_each_file_and_skips_bad_ones(front, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (34, 40), dtype=np.uint8)
    Image.fromarray(rgb).save(src / "a.png")
    Image.fromarray(grey).save(src / "b.png")
    (src / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    fn = gimpfu.REGISTERED["python-fu-protect-from-ai-batch"]["function"]
    done, failed = fn(str(src), str(out), *values(**FAST))
    assert (done, failed) == (2, 1)
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"], "partial or missing outputs"
    a = np.asarray(Image.open(out / "a.png"))
    b = np.asarray(Image.open(out / "b.png"))
    assert a.shape == rgb.shape and 0 < np.abs(a.astype(int) - rgb).max() <= LINF
    assert b.shape == grey.shape and 0 < np.abs(b.astype(int) - grey).max() <= LINF
    assert "broken.png" in gimpfu.MESSAGES[-1] and "2 of 3" in gimpfu.MESSAGES[-1]
    loaded = [c[1][0] for c in gimpfu.CALLS if c[0] == "pdb.gimp_file_load"]
    deleted = [c for c in gimpfu.CALLS if c[0] == "pdb.gimp_image_delete"]
    assert len(loaded) == 3 and len(deleted) == 2  # the unreadable file never became an image


def test_batch_refuses_to_overwrite_originals(front, tmp_path):
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    fn = gimpfu.REGISTERED["python-fu-protect-from-ai-batch"]["function"]
    assert fn(str(tmp_path / "a.png"), str(tmp_path), *values(**FAST)) == (0, 1)
    assert (tmp_path / "a.png").read_bytes() == before
    assert "overwrite" in gimpfu.MESSAGES[-1]

