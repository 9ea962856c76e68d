"""Stand-ins for the model families whose weights are absent on this machine: BENCHMARKS ONLY.

A user with network gets six families (taesd, taesdxl, taesd3, taef1, taef2, taesana with its decoder);
this project's machines hold only taef2 (encoder, decoder) and taesana's encoder. To measure what a
user's install costs, and how the cloak fares when steps go to other networks, each absent file gets
a stand-in of a real architecture:
- the f8 families: taef2's architecture (32 latent channels, its global branch: the same cost as
  taef2) with taef2's weights, either perturbed by seeded Gaussian noise of PERTURB x each tensor's
  standard deviation ("different": a different network whose steps do not help taef2 for free: the
  pessimistic case for taef2's figures) or unchanged ("clone": cost only);
- taesana's decoder: its real f32 architecture with seeded random weights (cost only).
Every stand-in is written to a folder of its own and registered IN THIS PROCESS ONLY, under its own
git blob id, so the engine's hash check still runs; nothing is written to the user's folders and the
engine's registry on disk is unchanged. Figures taken with them are labelled "stand-in".
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch
from artcloak.models import MODELS, find_file
from artcloak.models.loader import git_blob_id
from artcloak.models.registry import WeightFile
from artcloak.models.taesd import make_decoder

F8_ABSENT = ("taesd", "taesdxl", "taesd3", "taef1")
PERTURB = 0.3


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _write(folder: Path, name: str, state: dict[str, torch.Tensor]) -> WeightFile:
    path = folder / name
    torch.save({k: v.half() for k, v in state.items()}, path)
    return WeightFile(name, git_blob_id(path.read_bytes()))


def _perturbed(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in state.items():
        v = v.float()
        noise = torch.randn(v.shape, generator=gen) * (v.std() if v.numel() > 1 else v.abs()) * PERTURB
        out[k] = v + noise
    return out


def write(folder: Path, mode: str = "different") -> dict[str, str]:
    """Write the absent families' stand-ins into `folder` (mode "different" or "clone"); return
    {family: what stands in}. Call register(folder) in each process that should see them."""
    assert mode in ("different", "clone"), mode
    folder.mkdir(parents=True, exist_ok=True)
    enc, dec = (_state(find_file(f).path) for f in MODELS["taef2"].files)
    made = {}
    for i, name in enumerate(F8_ABSENT):
        if find_file(MODELS[name].encoder).verified:
            made[name] = "real weights"
            continue
        for part, state in (("encoder", enc), ("decoder", dec)):
            weights = state if mode == "clone" else _perturbed(state, 100 * i + len(part))
            _write(folder, f"{name}_{part}.pth", weights)
        kind = "its weights" if mode == "clone" else "perturbed weights"
        made[name] = f"stand-in: taef2's architecture, {kind}"
    if not find_file(MODELS["taesana"].decoder).verified:
        torch.manual_seed(7)
        _write(folder, "taesana_decoder.pth", make_decoder(32, f32=True).state_dict())
        made["taesana decoder"] = "stand-in: its f32 architecture, random weights"
    return made


def register(folder: Path) -> list[str]:
    """Put `folder`'s stand-ins first on ARTCLOAK_MODELS and register their blob ids (this process
    only); return the families now standing in."""
    os.environ["ARTCLOAK_MODELS"] = os.pathsep.join([str(folder), os.environ.get("ARTCLOAK_MODELS", "")])
    done = []
    for name in F8_ABSENT:
        files = [folder / f"{name}_{p}.pth" for p in ("encoder", "decoder")]
        if all(f.is_file() for f in files):
            enc, dec = (WeightFile(f.name, git_blob_id(f.read_bytes())) for f in files)
            MODELS[name] = replace(MODELS[name], latent_channels=32, global_branch=True, encoder=enc,
                                   decoder=dec)
            done.append(name)
    sana = folder / "taesana_decoder.pth"
    if sana.is_file():
        MODELS["taesana"] = replace(MODELS["taesana"],
                                    decoder=WeightFile(sana.name, git_blob_id(sana.read_bytes())))
        done.append("taesana decoder")
    return done
