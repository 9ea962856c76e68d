"""Shift-tolerant LPIPS (Ghildyal & Liu, ECCV 2022), AlexNet variant: a learned perceptual distance.

The weights (backbone and calibration layers, BSD-2) ship in the `stlpips-pytorch` wheel; that
package's own code imports torchvision and more, so only its weight file is used: the layers are
defined here, and the file is checked against a pinned sha256 and read with weights_only=True.
0 means identical; ~0.01 is hard to see; 0.1 and above is plainly visible.
"""
from __future__ import annotations

import hashlib
import importlib.util
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import pixels as px
from ..models.loader import frozen

WEIGHTS = "weights/vST0.0/alex_shift_tolerant.pth"
SHA256 = "b356b382f96010f77d085ee8343ecd9fd322d0a56e8de2b2d0549fafcad8b9ee"
CHANNELS = (64, 192, 384, 256, 256)
_lock = threading.Lock()


class BlurDown(nn.Module):
    """Anti-aliased 2x downsampling: reflect-pad 2, then a fixed 3x3 binomial blur with stride 2."""

    def __init__(self, ch: int):
        super().__init__()
        self.register_buffer("filt", torch.zeros(ch, 1, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


def _slice(*layers: tuple[int, nn.Module]) -> nn.Sequential:
    """A Sequential whose children keep the upstream feature indices (so the state_dict loads)."""
    s = nn.Sequential()
    for i, m in layers:
        s.add_module(str(i), m)
    return s


class Lin(nn.Module):
    """Per-layer calibration: a 1x1 conv without bias (index 1: upstream had a dropout at 0)."""

    def __init__(self, ch: int):
        super().__init__()
        self.model = _slice((1, nn.Conv2d(ch, 1, 1, bias=False)))


class STLPIPSAlex(nn.Module):
    def __init__(self):
        super().__init__()
        self.scaling_layer = nn.Module()
        self.scaling_layer.register_buffer("shift", torch.zeros(1, 3, 1, 1))
        self.scaling_layer.register_buffer("scale", torch.ones(1, 3, 1, 1))
        relu, pool = nn.ReLU, lambda: nn.MaxPool2d(3, stride=1)
        self.net = nn.Module()
        self.net.slice1 = _slice((0, nn.Conv2d(3, 64, 11, padding=2)), (1, BlurDown(64)), (2, relu()))
        self.net.slice2 = _slice((3, pool()), (4, BlurDown(64)), (5, nn.Conv2d(64, 192, 5, padding=2)),
                                 (6, relu()))
        self.net.slice3 = _slice((7, pool()), (8, BlurDown(192)), (9, nn.Conv2d(192, 384, 3, padding=1)),
                                 (10, relu()))
        self.net.slice4 = _slice((11, nn.Conv2d(384, 256, 3, padding=1)), (12, relu()))
        self.net.slice5 = _slice((13, nn.Conv2d(256, 256, 3, padding=1)), (14, relu()))
        for k, ch in enumerate(CHANNELS):
            setattr(self, f"lin{k}", Lin(ch))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((2 * x - 1) - self.scaling_layer.shift) / self.scaling_layer.scale
        out = []
        for k in range(1, 6):
            x = getattr(self.net, f"slice{k}")(x)
            out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distance per batch item; inputs N x 3 x H x W in [0, 1]."""
        total = a.new_zeros(a.shape[0])
        for k, (fa, fb) in enumerate(zip(self.features(a), self.features(b))):
            total = total + getattr(self, f"lin{k}").model((fa - fb) ** 2).mean((1, 2, 3))
        return total


def weights_path() -> Path | None:
    """The weight file inside the installed stlpips-pytorch package (its code is never imported)."""
    spec = importlib.util.find_spec("stlpips_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS
    return path if path.is_file() else None


def verified(path: Path) -> bool:
    """Whether the weight file at `path` matches its pinned sha256 (nothing else is ever read)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() == SHA256


@lru_cache(maxsize=1)
def load() -> STLPIPSAlex | None:
    """The frozen metric, or None when the weights are not installed or fail their hash."""
    path = weights_path()
    if path is None or not verified(path):
        return None
    net = frozen(STLPIPSAlex(), torch.load(path, map_location="cpu", weights_only=True))
    return net.to(memory_format=torch.channels_last)  # its convolutions: ~25% faster on a CPU


def available() -> bool:
    return load() is not None


def distance(a: np.ndarray, b: np.ndarray, side: int = 512) -> float | None:
    """ST-LPIPS between two H x W x 3 images in [0, 1], on their centre crop of at most side x side
    (the metric is a spatial mean; the crop bounds its cost). None when unavailable."""
    with _lock:
        net = load()
    if net is None:
        return None
    h, w = a.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    crop = (slice(top, top + side), slice(left, left + side))

    def t(img: np.ndarray) -> torch.Tensor:
        return px.to_nchw(img[crop]).contiguous(memory_format=torch.channels_last)

    with torch.no_grad():
        return float(net(t(a), t(b))[0])
