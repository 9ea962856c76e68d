"""The robustness suite and the perceptual figures behind `artcloak verify`."""
import numpy as np
import pytest
from artcloak.errors import InputError
from artcloak.measure import figure, lpips, metrics, report_text, verify


def _pair(h: int = 96, w: int = 112, sigma: float = 4 / 255):
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    orig = np.stack([0.5 + 0.3 * np.sin(7 * x), 0.4 + 0.3 * y, 0.3 + 0.2 * x * y], axis=2).astype(np.float32)
    noise = np.random.default_rng(5).choice([-sigma, sigma], orig.shape)
    prot = np.clip(orig + noise, 0, 1).astype(np.float32)
    return orig, prot


@pytest.fixture(scope="module")
def report(models_dir):
    orig, prot = _pair()
    calls = []
    rep = verify.verify_arrays(np.rint(orig * 255).astype(np.uint8), np.rint(prot * 255).astype(np.uint8),
                               lpips=True, progress=lambda f, m: calls.append((f, m)))
    rep["_progress"] = calls
    return rep


def test_progress_is_reported_in_order(report):
    fractions = [f for f, _ in report["_progress"]]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("taef2: jpeg75" in m for _, m in report["_progress"])


def test_report_keys_as_in_architecture(report):
    assert {"psnr", "ssim", "linf", "flat_change", "lpips"} <= set(report["perceptual"])
    figs = report["models"]["taef2"]
    names = [n for n in verify.SUITE if not (n.startswith("resize") and int(n[6:]) >= 96)]
    assert list(report["transforms"]) == names  # downscales above the image size are left out
    assert "train512" in names
    for view in [""] + [f"after.{n}." for n in names]:
        for fig in ("latent_shift", "noise_ratio", "amplification", "copy_psnr", "copy_over_noise"):
            assert view + fig in figs
    no_decoder = report["models"]["taesana"]
    assert not any(k.endswith(("amplification", "copy_psnr")) for k in no_decoder)
    assert set(report["summary"]) == {"taef2", "taesana"}
    s = report["summary"]["taef2"]
    assert s["copy_view"] == "train512" and s["copy_psnr"] == figs["after.train512.copy_psnr"]
    assert s["copy_over_noise"] == figs["after.train512.copy_over_noise"]
    assert report["headline"]["model"] == "taef2" and report["headline"]["copy_psnr"] == s["copy_psnr"]
    assert report["text"].startswith("A model trained on this image would reproduce it")


def test_plain_noise_scores_about_one(report):
    """The reference is the same noise with random signs: random noise itself must score ~1,
    in every view. A protection has to do better than this to count."""
    for figs in report["models"].values():
        ratios = [v for k, v in figs.items() if k.endswith("noise_ratio")]
        assert all(0.75 < r < 1.33 for r in ratios), figs
    assert report["summary"]["taef2"]["verdict"] in ("none", "weak")


def test_perceptual_figures():
    orig, prot = _pair(sigma=4 / 255)
    p = metrics.perceptual(orig, prot, lpips=True)
    assert 35 < p["psnr"] < 37.5 and abs(p["linf"] - 4) < 0.01
    assert 0 < p["lpips"] < 0.2
    same = metrics.perceptual(orig, orig.copy(), lpips=True)
    assert same["psnr"] == float("inf") and same["ssim"] == 1.0 and same["lpips"] == 0.0
    louder = metrics.perceptual(*_pair(sigma=12 / 255), lpips=True)
    assert louder["lpips"] > p["lpips"] and louder["ssim"] < p["ssim"]


def test_ssim_and_flat_mask_match_reference_implementations():
    from skimage.metrics import structural_similarity

    orig, prot = _pair(80, 90, 6 / 255)
    ref = structural_similarity(orig, prot, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=1.0)
    assert abs(metrics.ssim(orig, prot) - ref) < 1e-5
    flat = np.full((40, 50, 3), 0.5, np.float32)
    flat[:, 25:] = 0.2  # two flat halves and an edge between them
    mask = metrics.flat_mask(flat)
    assert mask[:, :21].all() and mask[:, 29:].all() and not mask[:, 23:27].any()


def test_lpips_weights_are_the_pinned_ones():
    if lpips.weights_path() is None:
        pytest.skip("stlpips-pytorch not installed (pip install '.[verify]')")
    assert lpips.available()


def test_transforms_are_deterministic_and_keep_shape():
    orig, _ = _pair(64, 80)
    for name, (_, fn) in verify.SUITE.items():
        a, b = fn(orig), fn(orig)
        assert np.array_equal(a, b), name
        assert a.dtype == np.float32 and a.ndim == 3 and a.min() >= 0 and a.max() <= 1, name


def test_size_mismatch_is_a_clear_error(models_dir):
    a = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(InputError, match="differ in size"):
        verify.verify_arrays(a, np.zeros((64, 72, 3), np.uint8))
    with pytest.raises(InputError, match="unknown transform"):
        verify.transforms_for(["jpeg12"])


def test_table_and_figure(report, models_dir):
    text = report_text.table(dict(report, metadata={"do_not_train": False}))
    assert "taef2 shift" in text and "noisyupscale" in text and "none found" in text
    assert "copy dB" in text and "+noise dB" in text
    f2 = report["models"]["taef2"]
    row = next(line for line in text.splitlines() if line.strip().startswith("train512"))
    assert f"{f2['after.train512.copy_psnr']:.2f}" in row
    assert f"{f2['after.train512.copy_over_noise']:.2f}" in row
    assert f"reproduce it with a change of {f2['after.train512.copy_psnr']:.1f} dB PSNR" in text
    orig, prot = _pair()
    img = figure.render(orig, prot, ["taef2", "taesana"], report=report)
    # the 1:1 rows of the 96 x 112 crop, and taef2's two copies of the whole 512 px trainer view
    assert img.size == (3 * 512 + 32, 3 * (96 + figure.LABEL_H + 8) + 8 + 2 * figure.LABEL_H + 512 + 8)
