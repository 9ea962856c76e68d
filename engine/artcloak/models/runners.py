"""Fast forward passes for measuring: each surrogate exported once to ONNX and run on onnxruntime.

Measuring needs many plain forwards (no gradients); onnxruntime runs them 2-3x faster than fp32
torch on a CPU. Each encoder/decoder is exported once (opset 18, dynamic batch/height/width) into
the user's cache folder under a name keyed by its weight file's pinned git blob id (the loader has
just checked the file against it), so new weights never reuse a stale graph. Without onnxruntime,
or when an export fails, the same nets run on torch.
Set ARTCLOAK_BACKEND=torch to force torch.

`nets(name)` returns the per-process cached pair: loading and hash-checking weights happens once.
"""
from __future__ import annotations

import inspect
import os
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..folders import cache_dir
from .loader import load_decoder, load_encoder, search_path
from .registry import MODELS

OPSET = 18
Forward = Callable[[np.ndarray], np.ndarray]  # N x C x H x W float32 -> N x C' x H' x W' float32
_lock = threading.Lock()
_cache: dict[tuple, Nets] = {}


def torch_forced() -> bool:
    """ARTCLOAK_BACKEND=torch: measure with torch even where onnxruntime is installed."""
    return os.environ.get("ARTCLOAK_BACKEND", "").lower() == "torch"


def onnxruntime_available() -> bool:
    if torch_forced():
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def torch_forward(module: nn.Module) -> Forward:
    """The fallback: a no-grad fp32 torch forward with numpy in and out."""

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()

    return run


def export(module: nn.Module, in_channels: int, path: Path) -> None:
    """Write `module` as an ONNX graph with dynamic N/H/W; atomically (temp file + rename), so
    concurrent processes never read a half-written graph."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sample = torch.rand(1, in_channels, 64, 64)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the TorchScript exporter; torch before 2.5 (Intel Macs get 2.2.2) has no `dynamo` argument
            legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
            torch.onnx.export(module, (sample,), tmp, opset_version=OPSET, input_names=["x"],
                              output_names=["y"], **legacy,
                              dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def ort_forward(module: nn.Module, in_channels: int, path: Path) -> Forward:
    """An onnxruntime forward for `module`, exporting it to `path` first when not cached."""
    import onnxruntime as ort

    ort.disable_telemetry_events()  # the engine sends nothing anywhere (a no-op on most platforms)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    # idle worker threads sleep instead of spinning: no gain for these large convolutions, and a
    # busy laptop (or the optimizer's own threads) is not slowed down by them
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if not path.is_file():
        export(module, in_channels, path)
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception:  # a corrupt cached graph (e.g. disk full during an old export): rebuild once
        path.unlink(missing_ok=True)
        export(module, in_channels, path)
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {"x": np.ascontiguousarray(x, np.float32)})[0]

    return run


@dataclass
class Nets:
    """One surrogate ready for measuring: encode, decode (None without decoder weights), backend used."""

    name: str
    encode: Forward
    decode: Forward | None
    backend: str  # "onnxruntime" or "torch"
    encoder_module: nn.Module
    decoder_module: nn.Module | None


def _build(name: str, backend: str) -> Nets:
    spec = MODELS[name]
    enc = load_encoder(name)
    dec = load_decoder(name)
    forwards: list[Forward | None] = [torch_forward(enc), torch_forward(dec) if dec is not None else None]
    used = "torch"
    if backend == "onnxruntime" and onnxruntime_available():
        try:
            outs = []
            for module, wf, kind, cin in ((enc, spec.encoder, "encoder", 3),
                                          (dec, spec.decoder, "decoder", spec.latent_channels)):
                if module is None:
                    outs.append(None)
                    continue
                key = wf.git_blob[:20]  # load_encoder/load_decoder verified the file against it
                graph = cache_dir() / "onnx" / f"{name}_{kind}-{key}-op{OPSET}.onnx"
                outs.append(ort_forward(module, cin, graph))
            forwards, used = outs, "onnxruntime"
        except Exception as e:  # the torch forwards above still work: measure slower rather than fail
            warnings.warn(f"onnxruntime unavailable for {name} ({e}); measuring with torch", stacklevel=2)
    return Nets(name, forwards[0], forwards[1], used, enc, dec)  # type: ignore[arg-type]


def _stamp(name: str) -> tuple:
    """Where the weight files are and when they changed, without reading them (cheap)."""
    out = []
    for folder in search_path():
        for wf in MODELS[name].files if name in MODELS else ():
            p = folder / wf.filename
            try:
                st = p.stat()
                out.append((str(p), st.st_mtime_ns, st.st_size))
            except OSError:
                pass
    return tuple(out)


def nets(name: str, backend: str = "onnxruntime") -> Nets:
    """The cached measuring nets for model `name` (loaded and hash-checked once per process per
    search path; a changed ARTCLOAK_MODELS or replaced weight file loads afresh)."""
    if backend == "onnxruntime" and not onnxruntime_available():
        backend = "torch"
    key = (name, backend, _stamp(name))
    with _lock:
        if key not in _cache:
            _cache[key] = _build(name, backend)
        return _cache[key]
