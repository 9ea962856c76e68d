"""The optimizer (first version: plain Adam toward a target latent under an L-inf cap)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .models import load_encoder
from .params import Params
from .pixels import Work

STEPS = {"fast": 10, "default": 30, "max": 80}
LINF = {"low": 4 / 255, "default": 6 / 255, "high": 10 / 255}


def optimize(work: Work, params: Params, models: list[str], progress: Callable[[float, str], None],
             check_cancel: Callable[[], None]) -> np.ndarray:
    """Return the perturbation (H x W x 3, [0, 1] units) to add to work.rgb."""
    torch.manual_seed(params.seed)
    x = torch.from_numpy(work.rgb).permute(2, 0, 1)[None]
    mask = torch.from_numpy(work.editable)[None, None]
    encs = [load_encoder(m) for m in models]
    target = torch.rand_like(x)
    with torch.no_grad():
        goals = [e(target) for e in encs]
    eps = LINF[params.intensity]
    delta = torch.zeros_like(x, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=eps / 4)
    steps = STEPS[params.quality]
    for i in range(steps):
        check_cancel()
        xp = (x + delta * mask).clamp(0, 1)
        loss = sum(torch.nn.functional.mse_loss(e(xp), g) for e, g in zip(encs, goals))
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            delta.clamp_(-eps, eps)
        progress((i + 1) / steps, f"step {i + 1}/{steps}")
    with torch.no_grad():
        d = ((x + delta * mask).clamp(0, 1) - x)[0].permute(1, 2, 0).numpy()
    return d
