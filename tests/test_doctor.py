"""`artcloak doctor` lists the product's parts (onnxruntime, the LPIPS weights, the surrogate families) and
what each missing one costs; the installer's --check prints the same."""
from __future__ import annotations

import importlib.util
import json

import pytest
from artcloak.cli import doctor, main


def test_doctor_lists_the_parts_and_their_costs(capsys):
    assert main(["doctor", "--json"]) == 0
    parts = json.loads(capsys.readouterr().out)["parts"]
    ort = parts["onnxruntime"]
    assert ort["installed"] == (importlib.util.find_spec("onnxruntime") is not None)
    assert (ort["cost"] is None) == ort["installed"]
    names = [m["name"] for m in parts["models"]["installed"] + parts["models"]["missing"]]
    assert "taef2" in names and "taesd" in names  # ARTCLOAK_MODELS holds taef2/taesana only
    assert "taesd" in parts["models"]["cost"]
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "surrogates: " in text and "missing:     " in text and "cost of the missing surrogates" in text


def test_missing_parts_are_named_with_their_cost(monkeypatch, capsys):
    """Without onnxruntime and without the LPIPS weights: both NOT INSTALLED, each with its cost."""
    real = importlib.util.find_spec
    monkeypatch.setattr(doctor.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    from artcloak.measure import lpips

    monkeypatch.setattr(lpips, "weights_path", lambda: None)
    p = doctor.parts()
    assert not p["onnxruntime"]["installed"] and p["onnxruntime"]["cost"] == doctor.COST_ONNXRUNTIME
    assert not p["lpips"]["found"] and p["lpips"]["cost"] == doctor.COST_LPIPS
    text = "\n".join(doctor.parts_lines(p))
    assert "onnxruntime: NOT INSTALLED" in text and "LPIPS:       weights NOT INSTALLED" in text
    assert "1.5-2x slower" in text and "LPIPS bound is not checked" in text


def test_lpips_weights_failing_their_hash_are_reported(tmp_path, monkeypatch):
    from artcloak.measure import lpips

    bad = tmp_path / "alex_shift_tolerant.pth"
    bad.write_bytes(b"not the weights")
    monkeypatch.setattr(lpips, "weights_path", lambda: bad)
    p = doctor.lpips_part()
    assert p["found"] and not p["hash_ok"] and "sha256" in p["cost"]
    assert "HASH MISMATCH" in "\n".join(doctor.parts_lines(dict(doctor.parts(), lpips=p)))


def test_forced_torch_backend_is_a_cost(monkeypatch):
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime not installed")
    monkeypatch.setenv("ARTCLOAK_BACKEND", "torch")
    p = doctor.onnxruntime_part()
    assert p["installed"] and not p["used"] and "ARTCLOAK_BACKEND=torch" in p["cost"]
