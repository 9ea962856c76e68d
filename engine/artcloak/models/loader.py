"""Find, verify and load surrogate weights: ARTCLOAK_MODELS folders first, then the user data folder.

Weights are only ever read with `torch.load(weights_only=True)` after their pinned hash matched;
nothing is unpickled and nothing is downloaded here (the installer does that).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError
from ..folders import data_dir
from .registry import MODELS, ModelSpec, WeightFile
from .taesd import make_decoder, make_encoder

ENV_VAR = "ARTCLOAK_MODELS"


def search_path() -> list[Path]:
    """The folders searched for weight files, in order."""
    folders = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    return folders + [data_dir() / "models"]


def git_blob_id(data: bytes) -> str:
    """The id git gives a file's content: lets us check files against the upstream tree. (The
    installer computes it on files itself; this is the reference, tests/test_install.py compares.)"""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FoundFile:
    """Where a weight file was found and whether its content matched the pinned hash."""

    spec: WeightFile
    path: Path | None
    verified: bool
    problem: str = ""
    rejected: tuple[str, ...] = ()  # copies earlier on the search path that failed their hash


def check_file(spec: WeightFile, path: Path) -> FoundFile:
    data = path.read_bytes()
    if git_blob_id(data) != spec.git_blob:
        return FoundFile(spec, path, False, f"{path} does not match the pinned hash (corrupt or wrong file)")
    if spec.sha256 and hashlib.sha256(data).hexdigest() != spec.sha256:
        return FoundFile(spec, path, False, f"{path} does not match the pinned sha256")
    return FoundFile(spec, path, True)


def find_file(spec: WeightFile) -> FoundFile:
    """The first verified copy on the search path. A copy that fails its hash is never used, and is
    named (file and path) in `rejected` even when a good copy is found later on the path."""
    bad: list[FoundFile] = []
    for folder in search_path():
        path = folder / spec.filename
        if path.is_file():
            found = check_file(spec, path)
            if found.verified:
                found.rejected = tuple(b.problem for b in bad)
                if bad:
                    warnings.warn(f"{spec.filename}: ignored {'; '.join(found.rejected)}; using {path}",
                                  stacklevel=2)
                return found
            bad.append(found)
    if bad:
        first = bad[0]
        first.rejected = tuple(b.problem for b in bad)
        first.problem = "; ".join(first.rejected)
        return first
    searched = os.pathsep.join(map(str, search_path()))
    return FoundFile(spec, None, False, f"{spec.filename} not found in {searched}")


def _load_state(found: FoundFile) -> dict:
    if not found.verified or found.path is None:
        raise ModelError(found.problem)
    st = found.path.stat()
    return _read_state(str(found.path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=16)
def _read_state(path: str, mtime_ns: int, size: int) -> dict:
    """A verified weight file's tensors (fp32), read once per process: the optimizer and the measuring
    nets both build each surrogate (~0.04 s a file on an idle 2-core CPU, ~0.3 s on a busy one). Keyed by
    the file's time and size, so a replaced file is read (and was hash-checked) afresh. Never mutated:
    load_state_dict copies it into the module."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated zip, a pickle that needs globals, ...
        raise ModelError(f"cannot read {path}: {e}") from e
    return {k: v.float() for k, v in state.items()}


def frozen(module: nn.Module, state: dict) -> nn.Module:
    """`module` with the weights `state`, in eval mode and without gradients: a fixed network that is
    measured or attacked, never trained (the surrogates here, the LPIPS metric)."""
    module.load_state_dict(state)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def load_encoder(name: str) -> nn.Module:
    """The named model's encoder, verified and frozen (fp32 weights, eval mode)."""
    spec = _spec(name)
    net = make_encoder(spec.latent_channels, stem_f32=spec.f32, global_branch=spec.global_branch)
    return frozen(net, _load_state(find_file(spec.encoder)))


def load_decoder(name: str) -> nn.Module | None:
    """The named model's decoder, or None when its weights are not installed."""
    spec = _spec(name)
    found = find_file(spec.decoder)
    if found.path is None:
        return None
    net = make_decoder(spec.latent_channels, f32=spec.f32, global_branch=spec.global_branch)
    return frozen(net, _load_state(found))


def _spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


def available_models() -> list[str]:
    """Registered models whose encoder weights are present and verified."""
    return [n for n, s in MODELS.items() if find_file(s.encoder).verified]


def resolve_models(requested: list[str] | None) -> list[str]:
    """The models a run will use: the requested ones that are installed (all installed ones if none asked).

    A missing model is skipped while at least one other is available; none available is an error.
    """
    names = requested or list(MODELS)
    for n in names:
        _spec(n)
    usable = [n for n in names if find_file(MODELS[n].encoder).verified]
    if not usable:
        problems = "; ".join(find_file(MODELS[n].encoder).problem for n in names)
        raise ModelError(f"no surrogate model weights available ({problems})")
    return usable
