"""protect() end to end on the real weights: formats, alpha, cancel, progress, and a real effect."""
import numpy as np
import pytest
from artcloak import Cancelled, InputError, Params, protect
from artcloak import pixels as px
from artcloak.measure import metrics

FAST = Params(quality="fast")


def _photo(h=64, w=80) -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.coffee()[150:150 + h, 200:200 + w])


def _as(c: int, dtype) -> np.ndarray:
    rgb = _photo().astype(np.float32) / 255
    colour = rgb if c >= 3 else rgb.mean(2, keepdims=True)
    layers = [colour]
    if c in (2, 4):
        alpha = np.ones(colour.shape[:2] + (1,), np.float32)
        alpha[:16] = 0.0
        alpha[16:24] = 0.4
        layers.append(alpha)
    a = np.concatenate(layers, 2)
    if dtype == np.float32:
        return a.astype(np.float32)
    scale = np.iinfo(dtype).max
    return np.rint(a * scale).astype(dtype)


@pytest.mark.parametrize("c,dtype", [(1, np.uint8), (2, np.uint8), (3, np.uint8), (4, np.uint8),
                                     (1, np.uint16), (4, np.uint16), (2, np.float32), (3, np.float32)])
def test_formats_keep_shape_dtype_and_alpha(c, dtype):
    img = _as(c, dtype)
    before = img.copy()
    res = protect(img, FAST)
    np.testing.assert_array_equal(img, before)  # input never written
    out = res.pixels
    assert out.shape == img.shape and out.dtype == img.dtype
    ncol = 1 if c <= 2 else 3
    assert np.any(out[..., :ncol] != img[..., :ncol])
    if c in (2, 4):
        np.testing.assert_array_equal(out[..., -1], img[..., -1])
        np.testing.assert_array_equal(out[:16], img[:16])  # fully transparent rows untouched
    assert set(res.report) >= {"perceptual", "models", "models_used", "params"}
    assert res.report["perceptual"]["psnr"] > 30


def test_tiny_and_empty_inputs_are_refused_clearly():
    with pytest.raises(InputError, match="at least 32x32"):
        protect(np.zeros((1, 1, 3), np.uint8), FAST)
    with pytest.raises(InputError, match="empty"):
        protect(np.zeros((0, 0, 3), np.uint8), FAST)


def test_huge_input_is_refused_before_any_work():
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (25000, 25000, 3))
    with pytest.raises(InputError, match="megapixels"):
        protect(huge, FAST)


def test_cancel_raises_and_gives_no_result():
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        protect(_photo(), FAST, cancel=cancel)
    assert len(calls) == 4  # checked every step: stops at the first true


def test_progress_is_monotone_and_finishes():
    seen = []
    protect(_photo(), FAST, progress=lambda f, m: seen.append((f, m)))
    fr = [f for f, _ in seen]
    assert len(fr) >= FAST_STEPS
    assert fr == sorted(fr) and fr[-1] == 1.0 and all(0 <= f <= 1 for f in fr)
    assert all(isinstance(m, str) and m for _, m in seen)


FAST_STEPS = 8


def test_same_seed_same_output():
    a = protect(_photo(), Params(quality="fast", seed=11)).pixels
    b = protect(_photo(), Params(quality="fast", seed=11)).pixels
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_real_effect_survives_jpeg():
    """A 256 px photo, fast preset: the attacked encoder's (taesana) latents move far more than
    random-sign noise of the same size, and taef2 (which fast reaches by transfer) changes its copy
    and its latents more than that noise does."""
    from skimage import data

    img = np.ascontiguousarray(data.astronaut()[::2, ::2])  # 256 x 256
    res = protect(img, FAST)
    f2 = res.report["models"]["taef2"]
    assert f2["after.train512.copy_over_noise"] > 2.0, f2
    assert f2["after.jpeg75.noise_ratio"] > 1.15 and f2["noise_ratio"] > 1.3, f2
    assert res.report["models"]["taesana"]["noise_ratio"] > 1.5
    p = res.report["perceptual"]
    assert p["psnr"] >= 33 and p["flat_change"] <= 1.0, p
    # the same change with random signs is what "no optimisation" looks like: far weaker
    orig = px.to_float_rgb(img)
    prot = px.to_float_rgb(res.pixels)
    noisy = np.clip(orig + metrics.random_sign(prot - orig, 1), 0, 1)
    rnd = metrics.model_figures("taef2", orig, noisy, seed=2)
    assert f2["after.jpeg75.latent_shift"] > 1.15 * rnd["after.jpeg75.latent_shift"]  # fp32 1.22, bf16 1.26
