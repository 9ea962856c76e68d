"""The per-machine choice of precision and threads (runtime.py), and the loader's corrupt-file report."""
import json

import numpy as np
import pytest
import torch
from artcloak import runtime
from artcloak.cli import main
from artcloak.errors import InputError
from artcloak.models import MODELS, find_file


@pytest.fixture(autouse=True)
def fresh_choice(monkeypatch):
    runtime.choose.cache_clear()
    yield
    runtime.choose.cache_clear()


def test_override_and_bad_value(monkeypatch):
    monkeypatch.setenv("ARTCLOAK_PRECISION", "fp32")
    rt = runtime.choose()
    assert (rt.precision, rt.dtype) == ("fp32", torch.float32) and "ARTCLOAK_PRECISION" in rt.reason
    runtime.choose.cache_clear()
    monkeypatch.setenv("ARTCLOAK_PRECISION", "int4")
    with pytest.raises(InputError, match="ARTCLOAK_PRECISION"):
        runtime.choose()


def test_threads_default_to_physical_cores(monkeypatch):
    rt = runtime.choose()
    assert rt.threads == runtime.physical_cores() >= 1
    assert torch.get_num_threads() == rt.threads
    runtime.choose.cache_clear()
    monkeypatch.setenv("ARTCLOAK_THREADS", "1")
    assert runtime.choose().threads == 1


def test_no_native_bf16_means_fp32_without_a_probe(monkeypatch):
    monkeypatch.setattr(runtime, "native_bf16", lambda flags=None: False)
    monkeypatch.setattr(runtime, "probe", lambda *a, **k: pytest.fail("probed a CPU without bf16"))
    rt = runtime.choose()
    assert rt.precision == "fp32" and "native bf16" in rt.reason


def test_native_flags_are_read():
    assert runtime.native_bf16({"avx2", "avx512_bf16"}) and runtime.native_bf16({"amx_bf16"})
    assert not runtime.native_bf16({"avx", "avx2", "fma"})


def test_probe_compares_speed_and_protection():
    """The real probe on the real taef2 (small): both precisions timed, and the reduced one's steps
    measured by how far they move the model's copy against fp32's steps (about as far: ~1)."""
    figures = runtime.probe("cpu", "bf16", side=32, starts=1)
    assert figures["model"] == "taef2" and figures["fp32_s"] > 0 and figures["bf16_s"] > 0
    assert 0.5 < figures["efficiency"] < 1.5 and figures["speedup"] > 0


def test_decision_rules():
    good = {"model": "taef2", "speedup": 2.0, "efficiency": 0.99}
    assert runtime._decide("bf16", good)[0] == "bf16"
    assert runtime._decide("bf16", {**good, "speedup": 0.05})[0] == "fp32"  # emulated
    assert runtime._decide("bf16", {**good, "efficiency": 0.6})[0] == "fp32"  # protects less per step
    assert "protect 0.99x" in runtime._decide("bf16", good)[1]


def test_a_native_cpu_is_measured_once_then_read_from_the_cache(monkeypatch, tmp_path):
    """The real probe (small) on a CPU reported as native, whatever this CPU is: the answer lands in a
    fresh cache folder (earlier tests may have probed into the session's) and the next process reads
    it instead of measuring again."""
    monkeypatch.setenv("ARTCLOAK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "native_bf16", lambda flags=None: True)
    monkeypatch.setattr(runtime, "PROBE_SIDE", 32)
    first = runtime.choose()
    assert first.reason.startswith("measured now") and first.precision in ("bf16", "fp32")
    cached = json.loads(runtime._cache_file().read_text())
    (entry,) = cached.values()
    assert entry["precision"] == first.precision and "efficiency" in entry
    runtime.choose.cache_clear()
    monkeypatch.setattr(runtime, "probe", lambda *a, **k: pytest.fail("measured twice"))
    second = runtime.choose()
    assert second.precision == first.precision and second.reason.startswith("measured earlier")


@pytest.mark.parametrize("answer", [{"speedup": 2.1, "efficiency": 0.98}, {"speedup": 2.1, "efficiency": 0.7},
                                    {"speedup": 0.04, "efficiency": 1.0}])
def test_the_probes_answer_decides_on_any_cpu(monkeypatch, tmp_path, answer):
    """The bf16 decision path, forced on any machine (an AVX2-only CPU never reaches it by itself):
    a native CPU whose probe says faster and as protective gets bf16, otherwise fp32, and why."""
    monkeypatch.setenv("ARTCLOAK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "native_bf16", lambda flags=None: True)
    monkeypatch.setattr(runtime, "probe", lambda *a, **k: {"model": "taef2", **answer})
    rt = runtime.choose()
    want = "bf16" if answer["speedup"] >= 1.15 and answer["efficiency"] >= 0.9 else "fp32"
    assert rt.precision == want and rt.reason.startswith("measured now")
    assert f"{answer['speedup']:.2f}x fp32's speed" in rt.reason


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_protection_runs_and_reports_in_either_precision(monkeypatch, precision):
    """Both paths run end to end on any CPU (bf16 is emulated, slowly, where it is not native), and the
    report says which precision ran and why."""
    from artcloak import Params, protect

    monkeypatch.setenv("ARTCLOAK_PRECISION", precision)
    img = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    result = protect(img, Params(quality="fast"))
    assert result.report["runtime"]["precision"] == precision
    assert "ARTCLOAK_PRECISION" in result.report["runtime"]["reason"]
    assert f"precision {precision}" in result.report["text"]
    assert not np.array_equal(result.pixels, img)


def test_doctor_says_device_precision_threads_and_why(capsys):
    assert main(["doctor", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"device", "precision", "threads", "reason", "cpu", "native_bf16", "torch"} <= set(info)
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "precision:" in text and info["reason"] in text


def test_corrupt_copy_on_the_path_is_named_even_when_a_good_one_follows(tmp_path, models_dir, monkeypatch,
                                                                        capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    data = bytearray((models_dir / "taesana_encoder.pth").read_bytes())
    data[1000] ^= 0xFF
    (bad / "taesana_encoder.pth").write_bytes(bytes(data))
    monkeypatch.setenv("ARTCLOAK_MODELS", f"{bad}{__import__('os').pathsep}{models_dir}")
    with pytest.warns(UserWarning, match="taesana_encoder.pth"):
        found = find_file(MODELS["taesana"].encoder)
    assert found.verified and found.path == models_dir / "taesana_encoder.pth"
    assert len(found.rejected) == 1 and str(bad / "taesana_encoder.pth") in found.rejected[0]
    assert main(["models"]) == 0
    assert f"IGNORED  {bad / 'taesana_encoder.pth'}" in capsys.readouterr().out


def test_bf16_encoders_see_a_change_under_one_level():
    """runtime.encode keeps the first convolution in fp32: a change of 1/1000 on a bright flat patch
    still reaches the network in bf16 (all-bf16 autocast rounds it away: bf16's step near 0.9 is 1/256)."""
    from artcloak.models import load_encoder

    net = load_encoder("taef2")
    x = torch.full((1, 3, 32, 32), 230 / 256)  # a bf16 value: +1/1000 rounds back to it
    moved = x.clone()
    moved[..., 8:24, 8:24] += 0.001
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            rounded = torch.equal(net(x).float(), net(moved).float())
        a, b = (runtime.encode(net, t, torch.bfloat16) for t in (x, moved))
    assert rounded and not torch.equal(a, b)
