"""The model's copy of an image (docs/CONTRACTS.md, Metrics): the train512 trainer view, copy_psnr and
copy_over_noise on the real taef2 encoder and decoder, and the report in words that the CLI, the worker
and the plug-ins show."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from artcloak.measure import metrics, report_text, verify

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugin" / "common"))
import artcloak_client as client  # noqa: E402

SENTENCE = "A model trained on this image would reproduce it with a change of"


def _photo() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[::4, ::4]).astype(np.float32) / 255  # 128 x 128


def _random_sign(img: np.ndarray, size: float = 4 / 255) -> np.ndarray:
    noise = np.random.default_rng(3).choice([-size, size], img.shape)
    return np.clip(img + noise, 0, 1).astype(np.float32)


def _structured(img: np.ndarray, size: float = 4 / 255) -> np.ndarray:
    """A 16 px checkerboard of +-size (opposite in green): as visible as _random_sign, but shaped."""
    y, x = np.mgrid[0: img.shape[0], 0: img.shape[1]]
    board = np.sign(np.sin(2 * np.pi * x / 16) * np.sin(2 * np.pi * y / 16))[..., None] * np.array([1, -1, 1])
    return np.clip(img + size * board, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def structured(models_dir):
    """taef2's figures for the checkerboard, clean, after train512 and after jpeg75 (one real run)."""
    img = _photo()
    prot = _structured(img)
    chosen = {n: metrics.TRANSFORMS[n] for n in ("train512", "jpeg75")}
    figs = metrics.model_figures("taef2", img, prot, chosen)
    report = {"perceptual": metrics.perceptual(img, prot), "models": {"taef2": figs}}
    report["headline"] = report_text.headline(report)
    return img, prot, report


# ---- the trainer view ----------------------------------------------------------------------------

@pytest.mark.parametrize("h,w", [(300, 451), (1024, 768), (64, 2000), (512, 512)])
def test_train512_is_a_resized_centre_crop_resaved_as_jpeg(h, w):
    rng = np.random.default_rng(h + w)
    img = rng.random((h, w, 3), dtype=np.float32)
    view = metrics.train_view(img)
    assert view.shape == (512, 512, 3) and view.dtype == np.float32
    if max(h, w) <= 2 * min(h, w):  # independently: resize so the short side is 576, crop, JPEG 88
        s = 576 / min(h, w)
        big = metrics.resize_to(img, round(h * s), round(w * s))
        top, left = (big.shape[0] - 512) // 2, (big.shape[1] - 512) // 2
        crop = big[top: top + 512, left: left + 512]
        assert np.array_equal(view, metrics.jpeg(crop, 88))
        assert np.abs(view - crop).mean() > 0.01  # the JPEG re-save is really there
    assert np.array_equal(view, metrics.train_view(img))  # deterministic


def test_train512_in_protects_report_and_verifys_suite_and_measured_whole():
    assert "train512" in metrics.TRANSFORMS and "train512" in verify.SUITE and "train512" in verify.QUICK
    img = np.random.default_rng(1).random((1024, 1024, 3), dtype=np.float32)
    views = metrics.views_of(None, metrics.EVAL_SIDE)  # protect's report: other views cut to EVAL_SIDE
    assert views["after.train512."](img).shape == (512, 512, 3)
    assert views["after.jpeg75."](img).shape == (metrics.EVAL_SIDE, metrics.EVAL_SIDE, 3)
    assert views[""](img).shape == (metrics.EVAL_SIDE, metrics.EVAL_SIDE, 3)


# ---- copy_psnr and copy_over_noise ---------------------------------------------------------------

def test_copy_psnr_infinite_for_identical_finite_for_changed(models_dir):
    img = _photo()
    same = metrics.model_figures("taef2", img, img.copy(), {})
    assert same["copy_psnr"] == float("inf") and same["copy_over_noise"] == 0.0
    changed = metrics.model_figures("taef2", img, _random_sign(img), {})
    assert 20 < changed["copy_psnr"] < 60
    assert "copy_psnr" not in metrics.model_figures("taesana", img, _random_sign(img), {})  # no decoder


def test_copy_over_noise_zero_for_noise_positive_for_a_shaped_change(structured, models_dir):
    """Random-sign noise is its own twin: it gains nothing over noise. The checkerboard, just as
    visible, survives the autoencoder where its random-sign twin is smoothed away."""
    img, prot, report = structured
    noise = metrics.model_figures("taef2", img, _random_sign(img), {})
    assert abs(noise["copy_over_noise"]) < 1.0, noise
    figs = report["models"]["taef2"]
    assert abs(metrics.psnr(img, prot) - metrics.psnr(img, _random_sign(img))) < 0.5  # same visibility
    assert figs["copy_over_noise"] > 3.0, figs
    assert figs["copy_psnr"] < noise["copy_psnr"] - 3.0
    assert np.isfinite(figs["after.jpeg75.copy_psnr"]) and np.isfinite(figs["after.jpeg75.copy_over_noise"])
    assert figs["after.train512.copy_over_noise"] > 0.8, figs  # the trainer view keeps some of it
    assert figs["after.train512.copy_psnr"] != figs["copy_psnr"]


# ---- the report in words -------------------------------------------------------------------------

def test_headline_and_text_say_it_in_words(structured):
    _, _, report = structured
    figs = report["models"]["taef2"]
    head = report["headline"]
    assert head == {"model": "taef2", "view": "train512", "copy_psnr": figs["after.train512.copy_psnr"],
                    "copy_over_noise": figs["after.train512.copy_over_noise"],
                    "psnr": report["perceptual"]["psnr"]}
    text = report_text.render(report)
    first = text.splitlines()[0]
    assert first == (f"{SENTENCE} {head['copy_psnr']:.1f} dB PSNR (lower = stronger); "
                     f"you see {head['psnr']:.1f} dB.")
    assert "than random noise of the same visibility" in text and "trainer's resize" in text
    assert "its copy's PSNR (lower = stronger): clean" in text
    # the plug-ins show the engine's text as it is
    assert client.format_report(dict(report, text="the engine's words")) == "the engine's words"
    assert client.format_report(dict(report, text=text)) == text
    assert report_text.text_of(dict(report, text="")) == text
    assert report_text.headline_lines({"models": {"taesana": {"noise_ratio": 2.0}}}) == []


def test_worker_done_event_carries_the_text(tmp_path, models_dir):
    rng = np.random.default_rng(4)
    img = rng.integers(30, 226, (40, 32, 3), dtype=np.uint8)
    img.tofile(tmp_path / "in.raw")
    job = {"op": "protect", "dir": str(tmp_path), "input": "in.raw", "output": "out.raw", "width": 32,
           "height": 40, "channels": 3, "format": "u8", "params": {"quality": "fast", "models": "taef2"}}
    proc = subprocess.run([sys.executable, "-m", "artcloak.worker"], input=json.dumps(job) + "\n",
                          capture_output=True, text=True, timeout=600)
    done = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()][-1]
    assert done["event"] == "done", proc.stderr[-2000:]
    assert done["report_text"] == done["report"]["text"] == report_text.render(done["report"])
    assert done["report_text"].startswith(SENTENCE)
    assert "after.train512.copy_psnr" in done["report"]["models"]["taef2"]
    assert client.format_report(done["report"]) == done["report_text"]


def test_figure_shows_both_copies_at_one_to_one(structured, models_dir):
    from artcloak.measure import figure

    img, prot, report = structured
    rows = figure.copy_rows(img, prot, ["taef2", "taesana"], gain=10.0)
    assert len(rows) == 1  # taesana has no decoder: no copy
    title, panels = rows[0]
    copy = report["models"]["taef2"]["after.train512.copy_psnr"]
    assert f"{copy:.1f} dB" in title and f"you see {report['perceptual']['psnr']:.1f} dB" in title
    (l0, c0), (l1, c1), _ = panels
    assert "copy of the original" in l0 and f"copy of the protected: {copy:.1f} dB" in l1
    assert c0.shape == c1.shape == (512, 512, 3)  # the trainer's whole crop, 1:1
    assert abs(metrics.psnr(c0, c1) - copy) < 0.01


def test_the_report_costs_the_same_however_many_families_are_installed():
    """The primary family (taef2) first, at full size; the others share a fixed pixel budget, so six
    families cost the report about what two do."""
    two = metrics.report_sides(["taef2", "taesana"], 256, 512)
    six = metrics.report_sides(["taesd", "taesdxl", "taesd3", "taef1", "taef2", "taesana"], 256, 512)
    assert list(two)[0] == list(six)[0] == "taef2" and two["taef2"] == six["taef2"] == (256, None)

    def secondary_pixels(sides):
        return sum(s * s + w * w for m, (s, w) in sides.items() if m != "taef2")

    assert secondary_pixels(six) <= 1.05 * secondary_pixels(two) and six["taesd"][1] < 512
    fast = metrics.report_sides(["taef2", "taesana"], 256, 256)
    assert fast["taef2"] == (256, 256)


def test_a_windowed_headline_says_so(structured):
    img, prot, _ = structured
    report = metrics.measure(img, prot, ["taesana", "taef2"], copy_views=("train512",), copy_side=256)
    assert list(report["models"]) == ["taef2", "taesana"] and report["headline"]["window"] == 256
    assert "256 px window of the trainer's 512 px crop" in report["text"]
    assert "measured on" in report["text"]
    whole = metrics.measure(img, prot, ["taef2"], copy_views=("train512",))
    assert whole["headline"]["window"] == 512 and "window of the trainer" not in whole["text"]


# ---- several trainer views (#19) -----------------------------------------------------------------

def test_train_views_crop_where_asked_and_resave_at_their_quality():
    rng = np.random.default_rng(5)
    img = rng.random((600, 800, 3), dtype=np.float32)
    assert np.array_equal(metrics.train_view(img, 576, "centre", 88), metrics.train_view(img))
    big = metrics.resize_to(img, 640, 853)
    assert np.array_equal(metrics.train_view(img, 640, "top-left", 75), metrics.jpeg(big[:512, :512], 75))
    assert np.array_equal(metrics.train_view(img, 640, "bottom-right", 95),
                          metrics.jpeg(big[-512:, -512:], 95))
    sides = {s for s, _, _ in metrics.TRAIN_VIEWS}
    assert sides == {512, 640, 768, 1024}
    assert {at for _, at, _ in metrics.TRAIN_VIEWS} == set(metrics.CROP_AT)
    assert all(75 <= q <= 95 for _, _, q in metrics.TRAIN_VIEWS)


def test_copy_over_views_median_mean_worst_and_reuses_the_originals(models_dir):
    img = np.repeat(np.repeat(_photo(), 4, 0), 4, 1)  # 512 x 512
    views = metrics.TRAIN_VIEWS[:3]
    cache: dict = {}
    strong = metrics.copy_over_views(img, _random_sign(img, 8 / 255), ("taef2",), views, cache=cache)
    assert len(cache) == 3  # the original's latents and copies, one per view
    weak = metrics.copy_over_views(img, _random_sign(img, 2 / 255), ("taef2",), views, cache=cache)
    assert len(cache) == 3
    for figs in (strong["taef2"], weak["taef2"]):
        assert figs["copy_psnr"] <= figs["copy_worst"] and figs["copy_mean"] <= figs["copy_worst"]
    assert strong["taef2"]["copy_psnr"] < weak["taef2"]["copy_psnr"] - 3
    assert strong["taef2"]["latent_shift"] > weak["taef2"]["latent_shift"]
    none = metrics.copy_over_views(img, img.copy(), ("taesana",), views)
    assert none["taesana"]["latent_shift"] == 0 and "copy_psnr" not in none["taesana"]
