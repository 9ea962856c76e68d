"""The instant cloak (#19): the shipped file, the per-image secret mix, the `instant` preset within its
budget and beyond noise, the known-pattern attack, and training (a tiny smoke run; the suite never
trains a real cloak: it loads the shipped one)."""
import hashlib
import json

import numpy as np
import pytest
import torch
from artcloak import Params, protect
from artcloak import pixels as px
from artcloak.cloak import instant, presets, shaping, train
from artcloak.errors import ModelError
from artcloak.measure import metrics, pattern_attack


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    """A photo the cloak was not trained on (bench_images holds it out), 512 px wide."""
    from skimage import data

    return np.ascontiguousarray(data.coffee()[:384, :512])


@pytest.fixture(scope="module")
def protected(models_dir, coffee) -> np.ndarray:
    return protect(coffee, Params(quality="instant")).pixels


def test_the_shipped_cloak_is_small_pinned_and_described():
    data = instant.CLOAK_FILE.read_bytes()
    assert len(data) <= 4 * 2**20
    assert hashlib.sha256(data).hexdigest() == instant.CLOAK_SHA256
    side = json.loads(instant.CLOAK_FILE.with_suffix(".json").read_text())
    assert side["sha256"] == instant.CLOAK_SHA256
    for key in ("command", "seed", "data", "models", "train_copy_db_last_tenth"):
        assert key in side or key in side.get("config", {}), key
    cloak = instant.shipped()
    assert cloak.patterns.ndim == 4 and cloak.count >= 2 and np.abs(cloak.patterns).max() <= 1


def test_a_damaged_or_foreign_cloak_file_is_refused(tmp_path):
    good = instant.CLOAK_FILE.read_bytes()
    bad = tmp_path / "damaged.npz"
    bad.write_bytes(good[:-10] + bytes(10))
    with pytest.raises(ModelError, match="pinned hash"):
        instant.read(bad, instant.CLOAK_SHA256)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, patterns=np.array([object()], dtype=object))
    with pytest.raises(ModelError, match="not a cloak"):
        instant.read(pickled, None)  # allow_pickle=False: an object array is never unpickled
    shaped = tmp_path / "shaped.npz"
    np.savez(shaped, patterns=np.zeros((2, 3, 8, 9), np.float16))
    with pytest.raises(ModelError, match="K x 3 x P x P"):
        instant.read(shaped, None)
    with pytest.raises(ModelError, match="cannot be read"):
        instant.read(tmp_path / "missing.npz", None)


def test_a_users_own_cloak_is_checked_against_its_sidecar(tmp_path, monkeypatch):
    path = tmp_path / "mine.npz"
    instant.save(instant.Cloak(np.zeros((2, 3, 16, 16), np.float32)), path, {"command": "test"})
    monkeypatch.setenv("ARTCLOAK_CLOAK", str(path))
    assert instant.shipped().count == 2
    path.write_bytes(path.read_bytes() + b"x")
    instant._read_once.cache_clear()
    with pytest.raises(ModelError, match="pinned hash"):
        instant.shipped()
    instant._read_once.cache_clear()


def test_the_mix_is_secret_to_the_original_image(coffee):
    a = instant.image_seed(coffee, 0)
    assert a == instant.image_seed(coffee.copy(), 0)  # the same image and seed: the same mix
    other = coffee.copy()
    other[100, 100] ^= 1  # one pixel of the original differs: another mix
    assert instant.image_seed(other, 0) != a or instant.image_seed(coffee, 1) != a
    assert instant.image_seed(coffee, 1) != a
    cloak = instant.shipped()
    p1 = instant.perturbation(cloak, 96, 128, a)
    p2 = instant.perturbation(cloak, 96, 128, instant.image_seed(coffee, 1))
    assert p1.shape == (1, 3, 96, 128) and torch.equal(p1, instant.perturbation(cloak, 96, 128, a))
    assert not torch.allclose(p1, p2)


def test_instant_keeps_the_budget_and_moves_the_copy_beyond_noise(coffee, protected):
    orig, prot = px.to_float_rgb(coffee), px.to_float_rgb(protected)
    budget = presets.INTENSITY["default"]
    figures = metrics.perceptual(orig, prot)
    assert figures["psnr"] >= budget.psnr and figures["ssim"] >= budget.min_ssim
    assert figures["flat_change"] <= budget.flat * 255 + 1e-6
    view = metrics.copy_over_views(orig, prot, models=("taef2",), views=metrics.TRAIN_VIEWS[:2])
    noise = metrics.copy_over_views(orig, metrics.twin(orig, prot, 0),
                                    models=("taef2",), views=metrics.TRAIN_VIEWS[:2])
    # the bench's target (>= 3 dB, 1024 px, eight views) is checked there; here a small photo, two views
    assert noise["taef2"]["copy_psnr"] - view["taef2"]["copy_psnr"] >= 2.0


def test_instant_keeps_its_strength_in_fp32(models_dir, coffee, monkeypatch):
    """The path of a CPU without native bf16 (most laptops: fp32), forced here whatever this machine
    has: the refinement steps in fp32 still leave the copy >= 2 dB beyond noise, also after the
    known-pattern attack (measured by hand before this test: 2.83 and 2.98 dB, AVX2 kernels)."""
    from artcloak import runtime

    monkeypatch.setenv("ARTCLOAK_PRECISION", "fp32")
    runtime.choose.cache_clear()
    try:
        result = protect(coffee, Params(quality="instant"))
    finally:
        runtime.choose.cache_clear()
    assert result.report["runtime"]["precision"] == "fp32"
    orig = px.to_float_rgb(coffee)
    views = metrics.TRAIN_VIEWS[:2]
    twin = metrics.twin(orig, px.to_float_rgb(result.pixels), 0)
    noise = metrics.copy_over_views(orig, twin, models=("taef2",), views=views)["taef2"]["copy_psnr"]
    for image in (result.pixels, pattern_attack.attack(result.pixels, instant.shipped())):
        copy = metrics.copy_over_views(orig, px.to_float_rgb(image), models=("taef2",), views=views)
        assert noise - copy["taef2"]["copy_psnr"] >= 2.0


def test_instant_report_is_quick_and_says_so(models_dir, coffee):
    r = protect(coffee, Params(quality="instant"))
    assert r.report["windows"]["taef2"]["copy_side"] == presets.QUALITY["instant"].report_window < 512
    assert "window" in r.report["text"] and "verify" in r.report["text"]
    assert r.report["params"]["quality"] == "instant"


def test_the_known_pattern_attack_removes_a_fixed_pattern_but_not_the_instant_cloak(coffee, protected):
    cloak = instant.shipped()
    orig = px.to_float_rgb(coffee)
    x = px.to_nchw(orig, torch.device("cpu"))
    # the attack works: one fixed, map-weighted pattern (what a naive instant cloak adds) is removed
    m = shaping.budget_map(x, torch.ones_like(x[:, :1]), presets.INTENSITY["default"])
    fixed = instant.tile(instant.turn(torch.from_numpy(cloak.patterns[1]), 3), *x.shape[-2:], 5, 21)[None]
    naive = np.rint(px.to_hwc((x + m * fixed).clamp(0, 1)) * 255).astype(np.uint8)
    cleaned = pattern_attack.attack(naive, cloak)
    assert metrics.psnr(orig, px.to_float_rgb(cleaned)) > metrics.psnr(orig, px.to_float_rgb(naive)) + 4
    # ... but the instant preset's per-image mix survives it: still >= 2 dB beyond noise of its visibility
    prot = px.to_float_rgb(protected)
    views = metrics.TRAIN_VIEWS[:2]
    noise = metrics.copy_over_views(orig, metrics.twin(orig, prot, 0),
                                    models=("taef2",), views=views)["taef2"]["copy_psnr"]
    for blocks in (0, 96):
        attacked = px.to_float_rgb(pattern_attack.attack(protected, cloak, blocks=blocks))
        left = metrics.copy_over_views(orig, attacked, models=("taef2",), views=views)["taef2"]["copy_psnr"]
        assert noise - left >= 2.0, blocks  # measured here: 3.5 (global fit) and 5.2 dB (per block)


def test_training_runs_and_is_reproducible(models_dir):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8), np.full((80, 80, 3), 200, np.uint8)]
    config = train.TrainConfig(steps=3, patterns=2, side=16, crop=64, seed=5)
    a, figures = train.train(images, ["taesana"], config)
    b, _ = train.train(images, ["taesana"], config)
    assert a.patterns.shape == (2, 3, 16, 16) and np.abs(a.patterns).max() <= 1
    assert np.array_equal(a.patterns, b.patterns)
    assert figures["models"] == ["taesana"] and figures["config"]["seed"] == 5


def test_default_and_max_start_from_the_instant_cloak(models_dir, coffee):
    """With no steps at all, default's change is the instant cloak's mix for this image (a warm
    start), and fast's (which starts from zero) is nothing."""
    from artcloak.cloak.optimize import Tuning, optimize

    work, models = px.split(coffee), ["taef2", "taesana"]
    assert presets.QUALITY["default"].warm and presets.QUALITY["max"].warm

    def start(quality: str) -> np.ndarray:
        return optimize(work, Params(quality=quality), models, lambda f, m: None, lambda: None,
                        Tuning(overrides={"steps": 0}))

    warm, instant_start, cold = start("default"), start("instant"), start("fast")
    assert np.abs(cold).max() == 0
    assert np.abs(warm).mean() > 0.5 / 255
    assert np.array_equal(warm, instant_start)  # the same mix, secret to this image
