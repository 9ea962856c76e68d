"""A huge canvas is worked a band of rows at a time (cloak.carry, the budget fit, the flat-area rule,
the random-sign twin, the PNG writer), and every band-wise result is the whole-image one."""
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from artcloak import Params, protect, runtime
from artcloak import pixels as px
from artcloak.cloak import carry, presets, shaping
from artcloak.files import pngcodec
from artcloak.measure import metrics
from PIL import Image


def _picture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Flat colour (left), a gradient, and texture: both sides of the flat-area rule."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:, : w // 3] = (0.2, 0.6, 0.4)
    img[:, w // 3: 2 * w // 3] = np.linspace(0.1, 0.9, h)[:, None, None]
    img[:, 2 * w // 3:] = rng.uniform(0, 1, (h, w - 2 * w // 3, 3))
    img[h // 2: h // 2 + 5] = 0.95  # a bright bar across every column
    return img


def test_carry_brings_the_change_up_as_the_whole_image_torch_path_did():
    work = px.split(_picture(150, 210))
    work.editable = work.editable.copy()  # (split shares one read-only "all editable" value)
    work.editable[:10, :20] = 0  # a transparent corner stays untouched
    budget = presets.INTENSITY["default"]
    delta = np.random.default_rng(1).uniform(-0.15, 0.15, (60, 84, 3)).astype(np.float32)
    flat = metrics.flat_mask(work.rgb)
    got = carry.Carry(work, delta, flat, budget).full()
    # the reference: the whole image at once, in torch
    full = px.to_nchw(work.rgb)
    up = F.interpolate(px.to_nchw(delta), size=(150, 210), mode="bilinear", align_corners=False)
    cap = torch.where(torch.from_numpy(flat)[None, None], budget.flat, budget.linf).float()
    want = shaping.limit_chroma(torch.maximum(torch.minimum(up, cap), -cap), cap, budget.chroma)
    want = ((full + want).clamp(0, 1) - full) * px.to_nchw(work.editable)
    np.testing.assert_allclose(got, px.to_hwc(want), atol=2e-6)
    assert np.abs(got).max() > 0.05 and np.abs(got[:10, :20]).max() == 0
    assert np.abs(got[flat]).max() <= budget.flat + 1e-6  # the flat allowance holds at full size
    c = carry.Carry(work, delta, flat, budget)
    np.testing.assert_array_equal(c.rows(slice(37, 91)), got[37:91])
    np.testing.assert_array_equal(c.rows(slice(None, None, 3)), got[::3])


def test_at_full_size_the_change_is_only_kept_in_range():
    work = px.split(_picture(64, 80))
    delta = np.full((64, 80, 3), 0.2, np.float32)
    got = carry.Carry(work, delta, metrics.flat_mask(work.rgb), presets.INTENSITY["default"]).full()
    np.testing.assert_allclose(got, np.clip(work.rgb + 0.2, 0, 1) - work.rgb, atol=1e-7)


def test_the_flat_area_rule_joins_its_bands_seamlessly(monkeypatch):
    img = _picture(2 * metrics.BAND + 77, 60)
    banded = metrics.flat_mask(img)
    monkeypatch.setattr(metrics, "BAND", 10**6)
    whole = metrics.flat_mask(img)
    assert 0.2 < whole.mean() < 0.8
    np.testing.assert_array_equal(banded, whole)


def test_the_banded_twin_is_the_same_change_with_random_signs():
    rng = np.random.default_rng(3)
    orig = rng.uniform(0.1, 0.9, (2 * metrics.BAND + 40, 50, 3)).astype(np.float32)
    delta = rng.uniform(-0.05, 0.05, orig.shape).astype(np.float32)
    noisy = metrics.twin(orig, orig + delta, 4)
    np.testing.assert_allclose(np.abs(noisy - orig), np.abs(delta), atol=1e-6)  # the same size
    flipped = np.sign(noisy - orig) != np.sign(delta)
    for rows in (slice(0, metrics.BAND), slice(metrics.BAND, None)):  # every band drew its own signs
        assert 0.45 < flipped[rows].mean() < 0.55
    np.testing.assert_array_equal(noisy, metrics.twin(orig, orig + delta, 4))
    assert metrics.mean_square(orig, noisy) == pytest.approx(float(np.mean(delta.astype(np.float64) ** 2)),
                                                              rel=1e-5)


def test_a_png_compressed_in_parts_reads_back_and_does_not_depend_on_threads(monkeypatch):
    img = (np.random.default_rng(5).uniform(0, 1, (300, 257, 3)) ** 4 * 255).astype(np.uint8)
    img[100:180] = 17  # long runs: matches reach back across the parts' borders
    monkeypatch.setattr(pngcodec, "DEFLATE_PART", 20_000)  # 12 parts
    files = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(runtime, "engine_threads", lambda n=threads: n)
        files.append(pngcodec.encode(img))
    assert files[0] == files[1] == files[2]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(files[0]))), img)
    monkeypatch.setattr(pngcodec, "DEFLATE_PART", 10**9)
    assert abs(len(pngcodec.encode(img)) - len(files[0])) < 0.02 * len(files[0])  # as small as one part


def test_a_canvas_above_the_working_size_is_protected_within_its_budget():
    """Short side 1100 > presets.WORK_SHORT: the change is made at 1024 and carried up in bands."""
    h, w = 1100, 1180
    assert presets.work_size(h, w) != (h, w)
    img = (_picture(h, w, seed=2) * 255).round().astype(np.uint8)
    res = protect(img, Params(quality="instant"))
    assert res.pixels.shape == img.shape and res.pixels.dtype == np.uint8
    p = res.report["perceptual"]
    budget = presets.INTENSITY["default"]
    assert budget.psnr <= p["psnr"] < budget.psnr + 1.0, p
    assert p["flat_change"] <= budget.flat * 255 + 1e-3 and p["ssim"] >= budget.min_ssim, p
    changed = res.pixels.astype(int) - img
    assert (changed[:, 2 * w // 3:] != 0).mean() > 0.3  # the texture carries the change


def test_a_huge_canvas_is_resized_in_bands_to_the_same_pixels(monkeypatch):
    img = np.random.default_rng(6).uniform(0, 1, (2 * metrics.BAND + 77, 301, 3)).astype(np.float32)
    whole = metrics.resize_to(img, 333, 97)
    monkeypatch.setattr(metrics, "RESIZE_WHOLE", 1000)  # this image now counts as huge: banded
    banded = metrics.resize_to(img, 333, 97)
    assert banded.shape == whole.shape == (333, 97, 3)
    np.testing.assert_allclose(banded, whole, atol=2e-6)
    # a lazily made image (px.Rows) goes the banded way too, at any size
    lazy = px.Rows(img.shape, lambda rows: img[rows])
    monkeypatch.setattr(metrics, "RESIZE_WHOLE", 10**9)
    np.testing.assert_allclose(metrics.resize_to(lazy, 333, 97), whole, atol=2e-6)


def test_the_lazy_output_and_twin_read_the_same_rows_in_any_order():
    rng = np.random.default_rng(8)
    src = rng.integers(0, 256, (2 * metrics.BAND + 30, 40, 4), dtype=np.uint8)
    lazy = px.lazy_colour(src)
    np.testing.assert_array_equal(np.asarray(lazy), px.colour(src))
    np.testing.assert_array_equal(lazy[5:700, 3:9], px.colour(src)[5:700, 3:9])
    np.testing.assert_array_equal(lazy[::3], px.colour(src)[::3])
    orig = px.colour(src)[::-1].copy()
    twin = metrics.twin_rows(orig, lazy, 2)
    whole = metrics.twin(orig, px.colour(src), 2)
    for rows in (slice(600, 1040), slice(0, 3), slice(metrics.BAND - 1, metrics.BAND + 1), slice(None)):
        np.testing.assert_array_equal(twin[rows], whole[rows])  # read late or early: the same signs
    flipped = np.sign(np.asarray(twin) - orig) != np.sign(px.colour(src) - orig)
    assert 0.3 < flipped.mean() < 0.55  # (clipping at 0 and 1 keeps some flipped ones at the original)
