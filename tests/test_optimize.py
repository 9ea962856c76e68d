"""The optimizer's parts: differentiable transforms, targets, the perceptual budget, determinism."""
import random

import numpy as np
import pytest
import torch
from artcloak import InputError, Params
from artcloak import pixels as px
from artcloak.cloak import presets, shaping, targets, transforms
from artcloak.cloak.optimize import optimize
from artcloak.measure import metrics
from artcloak.params import BUILTIN_TARGETS


def _photo(h=96, w=128, seed=0) -> np.ndarray:
    from skimage import data

    img = data.astronaut()[100:100 + h, 150:150 + w]
    return np.ascontiguousarray(img)


def test_jpeg_approximation_matches_pil_and_passes_gradients():
    img = _photo(128, 128).astype(np.float32) / 255
    ref = metrics.jpeg(img, 80)
    t = torch.from_numpy(img).permute(2, 0, 1)[None].requires_grad_(True)
    out = transforms.jpeg(t, 80)
    ours = out[0].permute(1, 2, 0).detach().numpy()
    assert np.abs(ours - ref).mean() < 0.6 * np.abs(img - ref).mean()  # much closer to PIL than no JPEG
    out.sum().backward()
    assert t.grad is not None and float(t.grad.abs().mean()) > 0.1


def test_resize_and_blur_are_differentiable():
    t = torch.rand(1, 3, 64, 64, requires_grad=True)
    transforms.gaussian_blur(transforms.resize(t, (40, 40)), 0.8).sum().backward()
    assert t.grad.shape == t.shape and float(t.grad.abs().sum()) > 0


def test_views_follow_robustness():
    rng = random.Random(0)
    levels = [(64, 96), (128, 192)]
    for _ in range(50):
        v = transforms.sample_view(rng, levels, 64, ["crop"])
        assert v.level == 1 and not v.flip and not v.jpeg_quality and not v.noise and not v.blur
        assert v.size == (64, 64) and v.top % 32 == 0 and v.left % 32 == 0
    views = [transforms.sample_view(rng, levels, 64, ["resize", "flip", "jpeg"]) for _ in range(80)]
    assert {v.level for v in views} == {0, 1}
    assert any(v.flip for v in views)
    assert all(v.jpeg_quality == 0 or 70 <= v.jpeg_quality <= 95 for v in views)


@pytest.mark.parametrize("name", BUILTIN_TARGETS)
def test_builtin_targets(name):
    assert name in targets.MAKERS and set(targets.MAKERS) == set(BUILTIN_TARGETS)
    t = targets.make_target(name, 70, 90, seed=3)
    assert t.shape == (70, 90, 3) and t.dtype == np.float32
    assert 0 <= t.min() and t.max() <= 1 and t.std() > 0.15  # busy, high contrast
    np.testing.assert_array_equal(t, targets.make_target(name, 70, 90, seed=3))


def test_user_image_target(tmp_path):
    from PIL import Image

    Image.fromarray(_photo(40, 30)).save(tmp_path / "t.png")
    t = targets.make_target(str(tmp_path / "t.png"), 100, 70)
    assert t.shape == (100, 70, 3)
    np.testing.assert_allclose(t[:40, :30], t[40:80, 30:60])  # tiled, not stretched
    with pytest.raises(InputError, match="neither a built-in"):
        targets.make_target(str(tmp_path / "missing.png"), 10, 10)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot read"):
        targets.make_target(str(tmp_path / "bad.png"), 10, 10)


def test_budget_keeps_flat_areas_and_psnr():
    img = np.full((128, 128, 3), 0.5, np.float32)
    img[:, 64:] = np.random.default_rng(0).uniform(0.2, 0.8, (128, 64, 3))  # flat left, textured right
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    b = presets.INTENSITY["default"]
    m = shaping.budget_map(x, torch.ones(1, 1, 128, 128), b)
    assert float(m[..., :, :56].max()) <= b.flat + 1e-7
    assert float(m[..., :, 70:].mean()) > 3 * b.flat
    assert float(m.max()) <= b.linf + 1e-7
    rms = float(m.square().mean().sqrt())
    assert 10 * np.log10(1 / rms**2) >= b.psnr - 0.05
    none = shaping.budget_map(x, torch.zeros(1, 1, 128, 128), b)
    assert float(none.abs().max()) == 0


def _run(img, seed, **kw):
    work = px.split(img)
    return optimize(work, Params(quality="fast", seed=seed, **kw), ["taef2", "taesana"],
                    lambda f, m: None, lambda: None)


def test_same_seed_same_perturbation():
    img = _photo(48, 64)
    a, b = _run(img, 5), _run(img, 5)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() > 0
    assert not np.array_equal(a, _run(img, 6))


def test_robustness_subset_and_user_target_run(tmp_path):
    from PIL import Image

    Image.fromarray(_photo(32, 32)).save(tmp_path / "t.png")
    d = _run(_photo(64, 64), 0, robustness="crop", target=str(tmp_path / "t.png"))
    assert d.shape == (64, 64, 3) and np.abs(d).max() > 0


def test_limit_chroma_keeps_brightness_and_caps_colour():
    from artcloak.cloak.shaping import limit_chroma

    d = torch.tensor([0.04, -0.04, 0.01]).view(1, 3, 1, 1).expand(1, 3, 4, 4).clone()
    cap = torch.full((1, 1, 4, 4), 0.04)
    out = limit_chroma(d, cap, 0.25)
    assert torch.allclose(out.mean(1), d.mean(1))  # brightness change untouched
    chroma = out - out.mean(1, keepdim=True)
    assert float(chroma.abs().max()) <= 0.25 * 0.04 + 1e-7
    assert float((d - d.mean(1, keepdim=True)).abs().max()) > 0.25 * 0.04  # it did have to act


def test_cheap_steps_run_the_f32_encoders_alone():
    from types import SimpleNamespace

    from artcloak.cloak.optimize import _step_models

    both = SimpleNamespace(names=["taef2", "taesana"], factor={"taef2": 8, "taesana": 32})
    assert [_step_models(both, s, 0) for s in range(3)] == [["taesana"]] * 3
    assert [len(_step_models(both, s, 3)) for s in range(6)] == [1, 1, 2, 1, 1, 2]
    assert all(_step_models(both, s, 1) == ["taef2", "taesana"] for s in range(4))
    only_f8 = SimpleNamespace(names=["taef2"], factor={"taef2": 8})  # nothing cheaper: every step runs it
    assert all(_step_models(only_f8, s, 0) == ["taef2"] for s in range(4))
    assert presets.QUALITY["fast"].f8_every == 0 < presets.QUALITY["default"].f8_every  # fast: taesana alone


def test_more_families_ride_on_the_steps_between():
    """Six families installed: the primary (taef2) keeps exactly the steps it has with two, taesana
    runs every step, and the other f8 families take every other step between, one at a time, in turn."""
    from types import SimpleNamespace

    from artcloak.cloak.optimize import _secondary, _step_models

    names = ["taesd", "taesdxl", "taesd3", "taef1", "taef2", "taesana"]
    six = SimpleNamespace(names=names, factor={n: 32 if n == "taesana" else 8 for n in names})
    two = SimpleNamespace(names=["taef2", "taesana"], factor={"taef2": 8, "taesana": 32})
    runs = [_step_models(six, s, 2) for s in range(12)]
    assert ["taef2" in r for r in runs] == ["taef2" in _step_models(two, s, 2) for s in range(12)]
    assert all(r[-1] == "taesana" for r in runs)
    assert [r[:-1] for r in runs[::2]] == [["taesd"], [], ["taesdxl"], [], ["taesd3"], []]
    every = [_step_models(six, s, 1) for s in range(4)]  # max: the primary every step, another beside it
    assert [r[:-1] for r in every] == [["taef2", "taesd"], ["taef2"], ["taef2", "taesdxl"], ["taef2"]]
    assert _step_models(six, 0, 0) == ["taesana"]  # fast: taesana alone
    assert _secondary(six, "taesd") and not _secondary(six, "taef2") and not _secondary(six, "taesana")
    no_f32 = SimpleNamespace(names=names[:5], factor=dict.fromkeys(names[:5], 8))
    assert [_step_models(no_f32, s, 0)[0] for s in range(3)] == ["taef2"] * 3


def test_presets_are_resolved_in_one_place():
    """presets.resolve turns the names into the Budget and Search protect passes down (with a
    benchmark's overrides going to whichever has the field)."""
    budget, search = presets.resolve(Params(intensity="high", quality="fast"))
    assert budget is presets.INTENSITY["high"] and search is presets.QUALITY["fast"]
    budget, search = presets.resolve(Params(), {"steps": 3, "psnr": 40.0})
    assert search.steps == 3 and budget.psnr == 40.0
    assert search.crop == presets.QUALITY["default"].crop and budget.linf == presets.INTENSITY["default"].linf


def test_the_copy_objective_with_a_random_start_moves_within_the_map():
    """The "copy" objective with sign steps from a random start (Search.start): the change moves,
    the start is really drawn (it changes the result) and every step is projected into the caps."""
    from artcloak.cloak.optimize import Tuning

    img = _photo(48, 64)
    work = px.split(img)
    params = Params(quality="fast", seed=2)

    def run(start: float) -> np.ndarray:
        t = Tuning(prune=0.0, overrides={"objective": "copy", "update": "sign", "start": start})
        return optimize(work, params, ["taef2", "taesana"], lambda f, m: None, lambda: None, t)

    a, b = run(0.0), run(0.5)
    assert np.abs(b).max() > 1 / 255 and not np.array_equal(a, b)
    assert max(np.abs(a).max(), np.abs(b).max()) <= presets.INTENSITY["default"].linf + 1e-6


def test_the_ssim_term_judges_the_changes_shape_not_its_size():
    """optimize._ssim_excess: the change scaled to the preset's PSNR, 0 while its SSIM is within the
    allowance, positive beyond; doubling the change does not move it (the fit sets the size)."""
    from artcloak.cloak.optimize import _ssim_excess

    b = presets.INTENSITY["default"]
    x = torch.linspace(0.2, 0.8, 96)[None, None, :, None].expand(1, 3, 96, 96).contiguous()  # soft gradient
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 3, 96, 96, generator=gen)
    smooth = torch.sin(torch.linspace(0, 6, 96))[None, None, None, :].expand(1, 3, 96, 96)
    assert float(_ssim_excess(x, noise, b)) > 0.5  # grain on a smooth ramp: SSIM sees it
    assert float(_ssim_excess(x, smooth, b)) == 0.0  # a slow wave of the same PSNR: within the allowance
    assert float(_ssim_excess(x, 2 * noise, b)) == pytest.approx(float(_ssim_excess(x, noise, b)), rel=1e-4)
    d = noise.clone().requires_grad_(True)
    _ssim_excess(x, d, b).backward()
    assert d.grad is not None and float(d.grad.abs().sum()) > 0
