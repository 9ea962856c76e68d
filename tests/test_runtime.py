"""The per-machine choice of precision and threads (runtime.py), and the loader's corrupt-file report."""
import json

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


def test_probe_compares_speed_and_gradients():
    figures = runtime.probe("cpu", "bf16", side=32, reps=1)
    assert figures["fp32_s"] > 0 and figures["bf16_s"] > 0
    assert 0.9 < figures["grad_cosine"] <= 1.0001 and 0.5 < figures["sign_agreement"] <= 1.0


def test_decision_rules():
    good = {"speedup": 2.0, "grad_cosine": 0.999, "sign_agreement": 0.97}
    assert runtime._decide("bf16", good)[0] == "bf16"
    assert runtime._decide("bf16", {**good, "speedup": 0.05})[0] == "fp32"  # emulated
    assert runtime._decide("bf16", {**good, "grad_cosine": 0.5})[0] == "fp32"  # other steps
    assert runtime._decide("bf16", {**good, "sign_agreement": 0.6})[0] == "fp32"


def test_a_native_cpu_is_measured_once_then_read_from_the_cache(monkeypatch):
    """The real probe (small) on a CPU reported as native: the answer lands in the user cache (which
    conftest moved to a private folder) and the next process reads it instead of measuring again."""
    monkeypatch.setattr(runtime, "native_bf16", lambda flags=None: True)
    monkeypatch.setattr(runtime, "PROBE_SIDE", 32)
    first = runtime.choose()
    assert first.reason.startswith("measured now") and first.precision in ("bf16", "fp32")
    cached = json.loads(runtime._cache_file().read_text())
    (entry,) = cached.values()
    assert entry["precision"] == first.precision and "speedup" in entry
    runtime.choose.cache_clear()
    monkeypatch.setattr(runtime, "probe", lambda *a, **k: pytest.fail("measured twice"))
    second = runtime.choose()
    assert second.precision == first.precision and second.reason.startswith("measured earlier")


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
