"""The building blocks written twice for speed, numpy (the report) and torch (the optimizer), agree:
the flat-area rule and SSIM; and each shared block (filters, pixels' layouts) is the one used."""
import numpy as np
import torch
from artcloak import filters
from artcloak import pixels as px
from artcloak.cloak import shaping, transforms
from artcloak.measure import metrics, verify


def _image(h=72, w=96, seed=0) -> np.ndarray:
    """Flat colour, a soft gradient, faint noise near the flat threshold, and busy texture."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:, : w // 4] = (0.3, 0.5, 0.7)
    img[:, w // 4: w // 2] = np.linspace(0.2, 0.3, h)[:, None, None]
    img[:, w // 2: 3 * w // 4] = 0.6 + rng.normal(0, 1.8 / 255, (h, 3 * w // 4 - w // 2, 3))
    img[:, 3 * w // 4:] = rng.uniform(0, 1, (h, w - 3 * w // 4, 3))
    return np.clip(img, 0, 1).astype(np.float32)


def test_flat_area_rule_twins_agree():
    img = _image()
    ours = metrics.flat_mask(img)
    theirs = shaping.flat(px.to_nchw(img))[0, 0].numpy()
    assert ours.shape == theirs.shape
    assert 0.2 < ours.mean() < 0.8  # both kinds of area are there
    assert (ours == theirs).mean() > 0.995  # only values within rounding of the threshold may differ


def test_ssim_twins_agree():
    a = _image(seed=1)
    b = np.clip(a + np.random.default_rng(2).normal(0, 4 / 255, a.shape), 0, 1).astype(np.float32)
    ours = metrics.ssim(a, b)
    theirs = float(shaping.ssim_map(px.to_nchw(a), px.to_nchw(b)).mean())
    assert ours < 0.999
    assert abs(ours - theirs) < 1e-4


def test_one_gaussian_kernel():
    g = filters.gaussian_kernel(1.5, 5)
    ref = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(g.numpy(), ref / ref.sum(), rtol=1e-6)
    # the numpy SSIM's window is the same kernel, to the bit
    assert np.array_equal(metrics._gauss_window(), (ref / ref.sum()).astype(np.float32))
    assert np.array_equal(filters.ssim_window().numpy(), filters.gaussian_kernel(1.5, 5).numpy())
    # blurs built from it keep a flat image flat and its mean
    flat = torch.full((1, 3, 20, 20), 0.4)
    assert torch.allclose(transforms.gaussian_blur(flat, 1.0), flat, atol=1e-6)
    img = _image(40, 40)
    out = verify.gaussian_blur(img, 1.0)
    assert out.shape == img.shape and abs(float(out.mean()) - float(img.mean())) < 2e-3


def test_layout_round_trip():
    img = _image(33, 47)
    t = px.to_nchw(img)
    assert t.shape == (1, 3, 33, 47) and t.dtype == torch.float32
    assert np.array_equal(px.to_hwc(t), img)
    assert px.to_nchw(img[..., 0]).shape == (1, 1, 33, 47)
    assert np.array_equal(px.nchw(img), t.numpy())
    assert px.to_hwc(t * 2, clamp=True).max() <= 1.0
