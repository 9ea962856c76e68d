import numpy as np
import pytest
import torch
from artcloak.errors import ModelError
from artcloak.models import MODELS, available_models, load_decoder, load_encoder, resolve_models
from artcloak.models.loader import git_blob_id


def test_registry_has_six_models():
    assert {"taesd", "taesdxl", "taesd3", "taef1", "taef2", "taesana"} <= set(MODELS)
    for spec in MODELS.values():
        for f in spec.files:
            assert len(f.git_blob) == 40 and f.url.endswith(f.filename)


def test_real_weights_load_and_reconstruct(models_dir):
    assert {"taef2", "taesana"} <= set(available_models())
    enc, dec = load_encoder("taef2"), load_decoder("taef2")
    assert not any(p.requires_grad for p in enc.parameters())
    y, x = np.mgrid[0:128, 0:128] / 128.0
    img = torch.from_numpy(np.stack([x, y, 0.5 * (x + y)])).float()[None]
    with torch.no_grad():
        rec = dec(enc(img))
    assert float((rec - img).abs().mean()) < 0.05


def test_corrupt_weight_is_refused(tmp_path, models_dir, monkeypatch):
    data = bytearray((models_dir / "taesana_encoder.pth").read_bytes())
    data[1000] ^= 0xFF
    (tmp_path / "taesana_encoder.pth").write_bytes(bytes(data))
    assert git_blob_id(bytes(data)) != MODELS["taesana"].encoder.git_blob
    monkeypatch.setenv("ARTCLOAK_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match="no surrogate"):
        resolve_models(["taesana"])
