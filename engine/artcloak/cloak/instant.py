"""The pre-trained ("instant") cloak: a few small tileable patterns, trained once over many images
(cloak/train.py), mixed per image into a perturbation in one pass.

Why a mix and not one pattern: artcloak is open source, so an attacker has the cloak file. One fixed
pattern is found by correlation and subtracted. Here every pattern gets its own random offset and
dihedral turn, and its weight varies smoothly over the image (a random field with cells of MIX_CELL
px), drawn from a secret the attacker lacks: the seed mixed with a digest of the *original* pixels.
A global least-squares fit of the patterns then explains only part of the change, and the optimizer's
steps that follow (quality "instant" runs a few, "default" and "high" many) make it image-specific.

The file is an `.npz` of float16 arrays read with allow_pickle=False, pinned by sha256 (CLOAK_SHA256);
its sidecar JSON says how it was made (command, seed, data, families, figures).
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ModelError

CLOAK_FILE = Path(__file__).with_name("data") / "instant-v1.npz"
# bench/train_cloak.py's file of 2026-12-05 (its sidecar says how it was made)
CLOAK_SHA256 = "0ba374678c59688e2086256dd960b195a73287f6caa4dcbb2cd505c6a1849567"
MIX_CELL = 96  # px of the working image per cell of a pattern's random weight field


@dataclass(frozen=True)
class Cloak:
    patterns: np.ndarray  # K x 3 x P x P float32 in [-1, 1]: tileable

    @property
    def count(self) -> int:
        return int(self.patterns.shape[0])


def save(cloak: Cloak, path: Path, provenance: dict) -> str:
    """Write the cloak (float16 .npz) and its sidecar (`<name>.json`); return the file's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = io.BytesIO()
    np.lib.format.write_array(array, np.ascontiguousarray(cloak.patterns.astype(np.float16)),
                              allow_pickle=False)
    # a fixed date in the zip entry (np.savez stamps the time): the same cloak, the same bytes and hash
    entry = zipfile.ZipInfo("patterns.npy", date_time=(1980, 1, 1, 0, 0, 0))
    entry.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(entry, array.getvalue())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    sidecar = dict(provenance, sha256=digest, file=path.name, patterns=list(cloak.patterns.shape))
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=1) + "\n")
    return digest


def read(path: Path, sha256: str | None) -> Cloak:
    """Read a cloak file, checking its sha256 when one is given; never unpickles."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ModelError(f"the instant cloak file {path} cannot be read ({e.strerror}); "
                         "reinstall artcloak, or pick another quality") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ModelError(f"the instant cloak file {path} does not match its pinned hash (damaged or "
                         "replaced); reinstall artcloak, or pick another quality")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            patterns = z["patterns"].astype(np.float32)
    except (ValueError, KeyError, OSError) as e:
        raise ModelError(f"the instant cloak file {path} is not a cloak ({e})") from None
    if patterns.ndim != 4 or patterns.shape[1] != 3 or patterns.shape[2] != patterns.shape[3]:
        raise ModelError(f"the instant cloak file {path} holds arrays of shape {patterns.shape}, "
                         "not K x 3 x P x P")
    return Cloak(np.clip(patterns, -1, 1))


def shipped() -> Cloak:
    """The cloak the engine uses: the shipped file, hash-checked against CLOAK_SHA256, or the file
    ARTCLOAK_CLOAK names (one a user trained for their own style: bench/train_cloak.py), checked
    against the sha256 its sidecar JSON records. Read once per process."""
    return _read_once(os.environ.get("ARTCLOAK_CLOAK") or None)


@lru_cache(maxsize=4)
def _read_once(path: str | None) -> Cloak:
    if path is None:
        return read(CLOAK_FILE, CLOAK_SHA256)
    sidecar = Path(path).with_suffix(".json")
    try:
        pinned = json.loads(sidecar.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelError(f"ARTCLOAK_CLOAK names {path}, but its sidecar {sidecar} with the file's "
                         "sha256 is missing or unreadable") from None
    return read(Path(path), pinned)


def image_seed(rgb: np.ndarray, seed: int) -> int:
    """The mix's secret: the run's seed with a digest of the original pixels (which an attacker,
    holding only the protected image, does not have). Same image and seed: the same mix."""
    h = hashlib.sha256(np.ascontiguousarray(rgb[::7, ::7]).tobytes())
    h.update(int(seed).to_bytes(8, "little"))
    return int.from_bytes(h.digest()[:8], "little") & (2**63 - 1)


def turn(p: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 dihedral turns of a square pattern (... x P x P)."""
    p = torch.rot90(p, k % 4, dims=(-2, -1))
    return torch.flip(p, dims=[-1]) if k >= 4 else p


def tile(p: torch.Tensor, h: int, w: int, top: int, left: int) -> torch.Tensor:
    """The pattern (C x P x P) repeated over h x w, shifted by (top, left)."""
    side = p.shape[-1]
    reps = (math.ceil((h + top) / side), math.ceil((w + left) / side))
    return p.repeat(1, *reps)[:, top: top + h, left: left + w]


@dataclass(frozen=True)
class Placement:
    """How one image mixes the patterns: each one's turn and offset, and its weight field."""

    turns: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]
    fields: torch.Tensor  # 1 x K x gh x gw: coarse weights, spread smoothly over the image


def place(count: int, side: int, h: int, w: int, gen: torch.Generator, cell: int = MIX_CELL) -> Placement:
    """Draw a placement of `count` patterns of `side` px over an h x w image."""
    turns = tuple(int(t) for t in torch.randint(0, 8, (count,), generator=gen))
    offs = torch.randint(0, side, (count, 2), generator=gen)
    gh, gw = math.ceil(h / cell) + 1, math.ceil(w / cell) + 1
    fields = torch.randn(1, count, gh, gw, generator=gen)
    return Placement(turns, tuple((int(a), int(b)) for a, b in offs), fields)


def mix(patterns: torch.Tensor, h: int, w: int, placement: Placement) -> torch.Tensor:
    """The patterns (K x 3 x P x P, differentiable) mixed over h x w: 1 x 3 x h x w, about the size of
    one pattern everywhere (the weights have unit energy at every pixel)."""
    weights = F.interpolate(placement.fields.to(patterns), size=(h, w), mode="bicubic", align_corners=False)
    weights = weights / weights.square().sum(1, keepdim=True).sqrt().clamp_min(0.3)
    out = torch.zeros(1, patterns.shape[1], h, w, dtype=patterns.dtype, device=patterns.device)
    for k in range(patterns.shape[0]):
        top, left = placement.offsets[k]
        out = out + weights[:, k: k + 1] * tile(turn(patterns[k], placement.turns[k]), h, w, top, left)
    return out


def perturbation(cloak: Cloak, h: int, w: int, seed: int) -> torch.Tensor:
    """The image's mix of the cloak (1 x 3 x h x w, values about [-1, 1]) for a secret seed
    (image_seed): scaled by the budget map and fitted by the caller."""
    gen = torch.Generator().manual_seed(seed)
    patterns = torch.from_numpy(cloak.patterns)
    with torch.no_grad():
        return mix(patterns, h, w, place(cloak.count, patterns.shape[-1], h, w, gen))
