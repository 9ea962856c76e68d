"""onnxruntime forwards agree with torch, are exported once into the cache, and torch is the fallback."""
import numpy as np
import pytest
from artcloak.models import MODELS, runners

ort = pytest.importorskip("onnxruntime")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTCLOAK_CACHE", str(tmp_path))
    monkeypatch.delenv("ARTCLOAK_BACKEND", raising=False)
    return tmp_path


def _image(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    rng = np.random.default_rng(0)
    img = np.stack([x, y, 0.5 * (x + y)]) + 0.05 * rng.standard_normal((3, h, w))
    return np.clip(img, 0, 1).astype(np.float32)[None]


@pytest.mark.parametrize("name", ["taef2", "taesana"])
def test_onnxruntime_matches_torch(name, fresh_cache, models_dir):
    nets = runners._build(name, "onnxruntime")
    assert nets.backend == "onnxruntime"
    ref = runners.torch_forward(nets.encoder_module)
    for h, w in ((96, 160), (224, 128)):  # dynamic height and width, two sizes through one graph
        x = _image(h, w)
        z_ort, z_torch = nets.encode(x), ref(x)
        assert z_ort.shape == z_torch.shape
        assert np.abs(z_ort - z_torch).max() <= 1e-3 * max(1.0, np.abs(z_torch).max())
        if nets.decode is not None:
            rec_ort = nets.decode(z_torch)
            rec_torch = runners.torch_forward(nets.decoder_module)(z_torch)
            assert rec_ort.shape == (1, 3, h, w)
            assert np.abs(rec_ort - rec_torch).max() <= 1e-3
    # exported once, named by the weight file's hash: new weights can never reuse a stale graph
    files = sorted(p.name for p in (fresh_cache / "onnx").glob("*.onnx"))
    key = MODELS[name].encoder.git_blob[:20]
    assert f"{name}_encoder-{key}-op18.onnx" in files
    assert ("taef2_decoder" in " ".join(files)) == (name == "taef2")
    assert not list(fresh_cache.rglob("*.part"))  # no temporary left behind


def test_nets_are_cached_per_process(models_dir):
    assert runners.nets("taesana") is runners.nets("taesana")


def test_corrupt_cached_graph_is_rebuilt(fresh_cache, models_dir):
    runners._build("taesana", "onnxruntime")
    (graph,) = (fresh_cache / "onnx").glob("taesana_encoder-*.onnx")
    graph.write_bytes(b"garbage")
    nets = runners._build("taesana", "onnxruntime")
    assert nets.backend == "onnxruntime" and graph.stat().st_size > 1_000_000
    assert nets.encode(_image(64, 64)).shape == (1, 32, 2, 2)


def test_torch_fallback(monkeypatch, models_dir):
    monkeypatch.setenv("ARTCLOAK_BACKEND", "torch")
    nets = runners.nets("taesana")
    assert nets.backend == "torch"
    assert nets.encode(_image(64, 96)).shape == (1, 32, 2, 3)
