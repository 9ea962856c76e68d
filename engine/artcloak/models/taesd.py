"""The Tiny AutoEncoder family (TAESD and its FLUX/Sana variants), written as a few small layers.

Every member shares one residual block; they differ only in latent channels, in a 32x stem
(Sana) and in a GroupNorm "global" branch in the lowest-resolution blocks (FLUX.2). Module
indices match the upstream state_dict layout, so the published weights load without renaming.
"""
from __future__ import annotations

import torch
from torch import nn


def conv3(n_in: int, n_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=bias)


class SoftClamp(nn.Module):
    """Decoder input squashing: tanh(x / 3) * 3."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


def make_global_branch(ch: int) -> nn.Sequential:
    """1x1 expand, GroupNorm(4), ReLU, 1x1 project: image-wide context added before a block."""
    wide = ch * 4
    return nn.Sequential(
        nn.Conv2d(ch, wide, 1, bias=False), nn.GroupNorm(4, wide), nn.ReLU(),
        nn.Conv2d(wide, ch, 1, bias=False),
    )


class Block(nn.Module):
    """Three 3x3 convs with a residual skip; optionally the FLUX.2 global branch first."""

    def __init__(self, ch: int, global_branch: bool = False):
        super().__init__()
        self.conv = nn.Sequential(conv3(ch, ch), nn.ReLU(), conv3(ch, ch), nn.ReLU(), conv3(ch, ch))
        self.fuse = nn.ReLU()
        self.pool = make_global_branch(ch) if global_branch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + x)


def make_encoder(latent_channels: int, stem_f32: bool = False, global_branch: bool = False) -> nn.Sequential:
    """RGB in [0, 1] -> latents at 1/8 (or 1/32 with the Sana stem) of the resolution."""
    if stem_f32:
        layers: list[nn.Module] = [conv3(3, 32, stride=2), nn.ReLU(), conv3(32, 64, stride=2), nn.ReLU()]
    else:
        layers = [conv3(3, 64)]
    layers.append(Block(64))
    for stage in range(3):
        deepest = stage == 2
        layers.append(conv3(64, 64, stride=2, bias=False))
        layers.extend(Block(64, global_branch and deepest) for _ in range(3))
    layers.append(conv3(64, latent_channels))
    return nn.Sequential(*layers)


def make_decoder(latent_channels: int, f32: bool = False, global_branch: bool = False) -> nn.Sequential:
    """Latents -> RGB in ~[0, 1] at 8x (or 32x) the latent resolution."""
    widths = [256, 128, 64, 64, 64] if f32 else [64, 64, 64]
    layers: list[nn.Module] = [SoftClamp(), conv3(latent_channels, widths[0]), nn.ReLU()]
    for stage, ch in enumerate(widths):
        nxt = widths[stage + 1] if stage + 1 < len(widths) else 64
        layers.extend(Block(ch, global_branch and stage == 0) for _ in range(3))
        layers += [nn.Upsample(scale_factor=2), conv3(ch, nxt, bias=False)]
    layers += [Block(64), conv3(64, 3)]
    return nn.Sequential(*layers)
