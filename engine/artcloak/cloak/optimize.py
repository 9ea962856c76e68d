"""The optimizer: one perturbation that moves every surrogate encoder's latents toward a target at once.

Why it is shaped this way:
- Trainers look at the image at 512-1024 px, so the perturbation lives at a working resolution (short
  side <= 1024) and every step encodes one crop of one rescaled view: the cost per step is fixed,
  whatever the input size, and the gain survives the trainer's downscale (gradients go through it).
- Each view is also cropped, flipped, JPEG-compressed, noised or blurred at random (Expectation over
  Transformation, restricted to Params.robustness), so the effect survives what platforms do.
- The perturbation is bounded per pixel by a texture-masking budget (shaping.budget_map): flat colour
  gets at most ~1/255, busy texture the most.
- Steps follow the gradient's own shape, normalised per 16 px cell (Search.update "local"): Adam's
  per-pixel normalisation turns every step into a random-looking sign pattern, which scores like
  plain noise; the gradient's shape is what the encoders respond to beyond noise.
- Before the last steps, the half of the changed pixels that helped least (or hurt) is dropped
  (Tuning.prune): per unit of visible change, the rest moves the latents further.
- The last steps see the output's own rounding (straight-through), so quantising to uint8/uint16
  keeps the protection.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .. import pixels as px
from .. import runtime
from ..models import load_decoder, load_encoder, runners
from ..models.registry import MODELS, primary_of
from ..params import Params
from ..pixels import Work
from . import instant, presets, shaping, targets, transforms


@dataclass
class Tuning:
    """Knobs kept in one place for the benchmark's experiments; defaults are the measured choice."""

    # (the objective, the step rule and the random start are the quality preset's: Search.objective,
    # Search.update, Search.start; overrides changes them)
    # gradient weights at full, 1/2, 1/4, 1/8 resolution: steps toward coherent signs
    smooth: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    # each encoder's weight in the loss; a family not named here gets 1.0 as the primary or an f32 one
    # and SECONDARY_WEIGHT as another f8 family (_Encoders)
    weights: dict[str, float] = field(default_factory=lambda: {"taef2": 1.0, "taesana": 1.0})
    overrides: dict = field(default_factory=dict)  # Search/Budget field overrides, for experiments
    prune: float = 0.25  # fraction of changed pixels that helped least (or hurt), dropped before the end
    # weight of the decoded-copy term for surrogates with a decoder: push D(E(view)) away from the
    # clean image's copy (what a trainer's model would learn), in dB so it scales itself; 0 = latents only
    copy: float = 2.0  # (the decoded window's size is the quality preset's Search.copy_window)


def device_and_dtype() -> tuple[torch.device, torch.dtype]:
    """Where the encoders run and in which precision: measured per machine (runtime.choose)."""
    rt = runtime.choose()
    return rt.torch_device, rt.dtype


def _level_sizes(h: int, w: int) -> list[tuple[int, int]]:
    """The rescaled views a trainer might produce (short side from half the working size up to it),
    smallest first, ending with the working size itself."""
    short = min(h, w)
    sizes = []
    for frac in presets.LEVELS:
        s = round(short * frac)
        if s >= presets.MIN_LEVEL:
            sizes.append((max(32, round(h * s / short)), max(32, round(w * s / short))))
    sizes.append((h, w))
    return sizes


class _Encoders:
    """The frozen surrogate ensemble (weights frozen, channels_last, autocast)."""

    def __init__(self, names: list[str], dev: torch.device, dtype: torch.dtype, weights: dict[str, float],
                 decoders: bool = False):
        self.names = names
        self.dev, self.dtype = dev, dtype
        self.nets = {n: load_encoder(n).to(dev).to(memory_format=torch.channels_last) for n in names}
        self.decoders = {}
        self.factor = {n: 32 if MODELS[n].f32 else 8 for n in names}
        f8 = [n for n in names if self.factor[n] == 8]
        if decoders and f8:  # the copy term: the primary f8 family's alone (the others' steps are
            # latents-only and cheap, and an f32 decoder on every step would cost what taesana saves)
            first = primary_of(f8)
            dec = load_decoder(first)
            if dec is not None:
                self.decoders[first] = dec.to(dev).to(memory_format=torch.channels_last)
        self.weights = {n: weights.get(n, SECONDARY_WEIGHT if _secondary(self, n) else 1.0) for n in names}

    def encode(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return runtime.encode(self.nets[name], x.contiguous(memory_format=torch.channels_last), self.dtype)

    def decode(self, name: str, z: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.dev.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            return self.decoders[name](z.contiguous(memory_format=torch.channels_last)).float()


def _window(z: torch.Tensor, frac: float, rng: random.Random) -> tuple[slice, slice]:
    """A random square-ish window of the latents (frac of each side) to decode."""
    h, w = z.shape[-2:]
    wh, ww = max(2, round(h * frac)), max(2, round(w * frac))
    top, left = rng.randrange(0, h - wh + 1), rng.randrange(0, w - ww + 1)
    return slice(top, top + wh), slice(left, left + ww)


class _References:
    """What each pooled view should become (the target's latents) and what it was (the clean image's),
    encoded once per view and encoder: every step then costs one forward per encoder, not three."""

    def __init__(self, encs: _Encoders, target: torch.Tensor, clean: torch.Tensor,
                 levels: list[tuple[int, int]], measuring: bool = True):
        self.encs, self.target, self.clean, self.levels = encs, target, clean, levels
        self.measuring = measuring  # may use the measuring nets (see _forward)
        self._cache: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self._copies: dict[tuple[str, int], tuple[tuple[slice, slice], torch.Tensor]] = {}

    def _forward(self, name: str, x: torch.Tensor, decode: bool = False) -> torch.Tensor:
        """A no-grad forward: on the CPU through the measuring nets (onnxruntime, ~1.5x faster than
        torch fp32), elsewhere, for the secondary f8 families' small centre parts and for a search of
        a few steps (an onnxruntime session would cost more to open than it saves: instant's two
        views), on the optimizer's own nets."""
        with torch.no_grad():
            if self.encs.dev.type == "cpu" and self.measuring and not _secondary(self.encs, name):
                net = runners.nets(name)
                run = net.decode if decode else net.encode
                if run is not None:
                    return torch.from_numpy(run(x.float().contiguous().numpy()))
            return self.encs.decode(name, x) if decode else self.encs.encode(name, x)

    def latents(self, name: str, index: int, view: transforms.View,
                centre: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The target's and the clean image's latents of the pooled view (of its centre part: _centre)."""
        key = (name, index)
        if key not in self._cache:
            with torch.no_grad():
                refs = torch.cat([_view_of(r, view, self.levels) for r in (self.target, self.clean)])
                refs = _centre(refs, 8) if centre else refs
            zt, z0 = self._forward(name, refs).split(1)
            self._cache[key] = (zt, z0)
        return self._cache[key]

    def copy(self, name: str, index: int, z0: torch.Tensor, frac: float,
             rng: random.Random) -> tuple[tuple[slice, slice], torch.Tensor]:
        """A latent window of the pooled view and the clean image's decoded copy of it."""
        key = (name, index)
        if key not in self._copies:
            win = _window(z0, frac, rng)
            self._copies[key] = (win, self._forward(name, z0[..., win[0], win[1]], decode=True))
        return self._copies[key]


def _cover(rng: random.Random, levels: list[tuple[int, int]], crop: int, robustness: list[str], align: int,
           n: int, tries: int = 12) -> list[transforms.View]:
    """n pooled views that together cover the working image: each is the candidate (of `tries` drawn)
    that adds the most not-yet-covered area, so no region is left without a gradient."""
    grid = torch.zeros(32, 32, dtype=torch.bool)
    pool: list[transforms.View] = []
    for _ in range(n):
        best, best_gain, best_cells = None, -1, None
        for _ in range(tries):
            v = transforms.sample_geometry(rng, levels, crop, robustness, align)
            lh, lw = levels[v.level]
            y0, x0 = int(32 * v.top / lh), int(32 * v.left / lw)
            y1 = max(y0 + 1, round(32 * (v.top + v.size[0]) / lh))
            x1 = max(x0 + 1, round(32 * (v.left + v.size[1]) / lw))
            gain = int((~grid[y0:y1, x0:x1]).sum())
            if gain > best_gain:
                best, best_gain, best_cells = v, gain, (y0, y1, x0, x1)
        y0, y1, x0, x1 = best_cells
        grid[y0:y1, x0:x1] = True
        pool.append(best)
    return pool


def _view_of(img: torch.Tensor, view: transforms.View, levels: list[tuple[int, int]]) -> torch.Tensor:
    """The view's crop, cut from the working image and resized on its own: the same pixels as cropping
    the rescaled level, at the cost of the crop alone."""
    hw, ww = img.shape[-2:]
    lh, lw = levels[view.level]
    sy, sx = lh / hw, lw / ww
    ch, cw = view.size
    y0, x0 = int(view.top / sy), int(view.left / sx)
    y1 = min(hw, max(y0 + 1, round((view.top + ch) / sy)))
    x1 = min(ww, max(x0 + 1, round((view.left + cw) / sx)))
    out = transforms.resize(img[..., y0:y1, x0:x1], (ch, cw))
    return torch.flip(out, dims=[-1]) if view.flip else out


def optimize(work: Work, params: Params, models: list[str], progress: Callable[[float, str], None],
             check_cancel: Callable[[], None], tuning: Tuning | None = None,
             preset: tuple[presets.Budget, presets.Search] | None = None) -> np.ndarray:
    """Return the perturbation at the working resolution (presets.work_size: the image's own size up
    to a short side of WORK_SHORT; h x w x 3 float32, [0, 1] units). carry.Carry brings it to the
    full-size image, where protect.fit_to_budget fits it. `preset`: the (Budget, Search) the caller
    resolved (presets.resolve); by default resolved here from params and tuning.overrides."""
    tuning = tuning or Tuning()
    budget, search = preset or presets.resolve(params, tuning.overrides)
    robustness = params.robustness_list
    dev, dtype = device_and_dtype()
    torch.manual_seed(params.seed)
    rng = random.Random(params.seed)
    gen = torch.Generator().manual_seed(params.seed)

    progress(0.0, "preparing")
    H, W = work.rgb.shape[:2]
    full = px.to_nchw(work.rgb, dev)
    editable_full = px.to_nchw(work.editable, dev)
    hw, ww = presets.work_size(H, W)
    at_full = (hw, ww) == (H, W)
    with torch.no_grad():
        x = full if at_full else transforms.resize(full, (hw, ww))
        editable = editable_full if at_full else (transforms.resize(editable_full, (hw, ww)) > 0.999).float()
        sigma = shaping.local_std(x)  # once: the budget map and the flat areas both need it
        bmap = shaping.budget_map(x, editable, budget, params.seed, sigma=sigma)
        flat = shaping.flat(sigma=sigma)
    levels = _level_sizes(hw, ww)
    target_img = px.to_nchw(targets.make_target(params.target, hw, ww, params.seed), dev)
    encs = _Encoders(_running(models, search), dev, dtype, tuning.weights,
                     decoders=tuning.copy > 0 and search.copy_window > 0)
    align = max(encs.factor.values())
    check_cancel()

    channels = 1 if work.grey else 3
    delta = torch.zeros(1, channels, hw, ww, device=dev)
    if search.warm:  # the instant cloak's mix for this image, secret to it (instant.image_seed)
        mixed = instant.perturbation(instant.shipped(), hw, ww, instant.image_seed(work.rgb, params.seed))
        with torch.no_grad():
            delta.copy_((mixed.mean(1, keepdim=True) if work.grey else mixed).to(dev) * bmap)
            _project(delta, x[:, :channels], bmap, budget.chroma)
    elif search.start:
        with torch.no_grad():
            delta.copy_((torch.rand(delta.shape, generator=gen).to(dev) * 2 - 1) * search.start * bmap)
            _project(delta, x[:, :channels], bmap, budget.chroma)
    delta.requires_grad_(True)
    moments = _Moments(torch.zeros_like(delta), torch.zeros_like(delta))
    quant = work.scale if (at_full and work.source.dtype != np.float32) else 0.0
    steps = search.steps
    # a pool of trainer views (level, crop, flip), cycled in random order; each step draws fresh JPEG,
    # noise and blur for its view, so the references are encoded once per pooled view
    pool = _cover(rng, levels, search.crop, robustness, align, min(steps, search.views))
    refs = _References(encs, target_img, x, levels, measuring=steps >= MEASURING_MIN_STEPS)
    order: list[int] = []
    score = torch.zeros(1, 1, hw, ww, device=dev)  # how much each pixel's change lowered the loss so far
    rule = STEP_RULES[search.update]
    for step in range(steps):
        check_cancel()
        late = step >= steps - search.quant_steps
        if step == steps - search.quant_steps:  # the last steps: drop what helped least, then spend
            with torch.no_grad():
                if tuning.prune:
                    bmap = _prune(delta, bmap, score, tuning.prune)
                bmap = _spend(delta, bmap, flat, editable, budget)
        # view -> loss -> step -> projection
        index, view = _draw(pool, order, rng, robustness)
        xp = x + delta.expand(1, 3, hw, ww)
        if quant and late:  # the output's own rounding, straight-through
            xp = xp + (torch.round(xp * quant) / quant - xp).detach()
        v = transforms.degrade(_view_of(xp.clamp(0, 1), view, levels), view, gen)
        loss = _loss(encs, refs, _step_models(encs, step, search.f8_every), v, index, view, tuning,
                     search, rng)
        if search.ssim_weight:
            loss = loss + search.ssim_weight * _ssim_excess(x, delta.expand(1, 3, hw, ww), budget)
        delta.grad = None
        loss.backward()
        with torch.no_grad():
            if tuning.prune and step >= steps // 3:
                score.sub_((delta.grad * delta).sum(1, keepdim=True))
            g = _smooth(delta.grad, tuning.smooth) if tuning.smooth else delta.grad
            delta.sub_(_lr(search.lr, step, steps) * bmap * rule(g, moments, step))
            _project(delta, x[:, :channels], bmap, budget.chroma)
        progress((step + 1) / steps, f"step {step + 1}/{steps}, loss {float(loss.detach()):.4f}")
    check_cancel()
    return np.ascontiguousarray(px.to_hwc(delta.detach().expand(1, 3, hw, ww)))


def _running(models: list[str], search: presets.Search) -> list[str]:
    """The encoders the steps will run (and so load): the f32 ones alone where no f8 step comes."""
    cheap = [n for n in models if MODELS[n].f32]
    return cheap if cheap and search.f8_every <= 0 else models


def _step_models(encs: _Encoders, step: int, f8_every: int) -> list[str]:
    """The encoders a step runs: every f32 encoder (taesana, a twentieth of an f8 one's cost, whose
    change transfers to the f8 models' copies); the primary f8 family (registry.PRIMARY, whose copy
    the report judges) on every f8_every-th step, as if no other family were installed (every step
    when there is no f32 encoder); and the other installed f8 families one at a time, in turn, on
    every other step between (every other step of "max"), each on a quarter of the view (_loss):
    more families make the cloak broader for a bounded cost (~1/16 of the primary's f8 work), and the
    primary keeps every step it had."""
    cheap = [n for n in encs.names if encs.factor[n] == 32]
    f8 = [n for n in encs.names if encs.factor[n] == 8]
    if not f8 or (cheap and f8_every <= 0):
        return cheap
    first = primary_of(f8)
    rest = [n for n in f8 if n != first]
    every = f8_every if cheap else 1
    on_primary = step % every == every - 1
    names = [first] if on_primary else []
    if rest and (not on_primary or every == 1):
        turn = step if every == 1 else step - (step + 1) // every  # the count of earlier steps without it
        if turn % 2 == 0:
            names.append(rest[(turn // 2) % len(rest)])
    return names + cheap


# Searches shorter than this encode their few references on their own nets (torch): opening and
# warming an onnxruntime session cost instant more than its faster runs saved, and ~200 MB
# (bench_install --avx2, six families, 1024 px instant, 2026-12-06: peak 865 -> 670 MB, ~0.1 s less)
MEASURING_MIN_STEPS = 4
SECONDARY_SHARE = 0.5  # side of the view's centre part a secondary f8 family encodes (a quarter of the cost)
# A secondary f8 family's weight in the loss. Measured with bench/standins.py's "different" stand-ins
# (fp32, illustration and photo): at 0.1 taef2's copy stays within 0.05 dB of the two-family cloak,
# at 0.3-1.0 the illustration's lost 0.5 dB per dB of visible change; and the stand-ins' own latents
# and copies moved as far with their steps as without (transfer from taef2 and taesana): their steps
# are a hedge for the real, more different networks, kept small and cheap.
SECONDARY_WEIGHT = 0.1


def _secondary(encs: _Encoders, name: str) -> bool:
    """An installed f8 family other than the primary: latents only, on the view's centre part."""
    return encs.factor[name] == 8 and name != primary_of(encs.names)


def _centre(t: torch.Tensor, align: int) -> torch.Tensor:
    """The centre SECONDARY_SHARE of a view (sides multiples of `align`)."""
    h, w = t.shape[-2:]
    ch = max(align, round(h * SECONDARY_SHARE / align) * align)
    cw = max(align, round(w * SECONDARY_SHARE / align) * align)
    top, left = (h - ch) // 2, (w - cw) // 2
    return t[..., top: top + ch, left: left + cw]


def _draw(pool: list[transforms.View], order: list[int], rng: random.Random,
          robustness: list[str]) -> tuple[int, transforms.View]:
    """The next pooled view (the pool is cycled in a fresh random order) with fresh JPEG, noise and
    blur of its own: the references are encoded once per pooled view."""
    if not order:
        order.extend(rng.sample(range(len(pool)), len(pool)))
    index = order.pop()
    return index, transforms.with_degradation(rng, pool[index], robustness)


# ---- the objective ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Objective:
    toward: float  # weight of the latents' pull toward the target's
    away: float  # weight of the latents' push from the clean image's
    latents_with_copy: bool = True  # False: where a decoder is loaded, its copy term alone
    in_db: bool = False  # the push from the clean latents in dB, like the copy term: terms summed into one
    # sign step then count alike, whatever their scale


OBJECTIVES = {"target": Objective(1.0, 0.0), "away": Objective(0.0, 1.0), "mix": Objective(1.0, 1.0),
              "away-db": Objective(0.0, 1.0, in_db=True),
              "copy": Objective(0.0, 1.0, latents_with_copy=False, in_db=True)}


def _loss(encs: _Encoders, refs: _References, names: list[str], v: torch.Tensor, index: int,
          view: transforms.View, tuning: Tuning, search: presets.Search, rng: random.Random) -> torch.Tensor:
    """One step's loss over the encoders it runs: each one's latents toward the target's and away from
    the clean image's (relative MSE), and, where a decoder is loaded, the decoded copy away from the
    clean image's copy (in dB, so it scales itself)."""
    objective = OBJECTIVES[search.objective]
    loss = 0.0
    for name in names:
        part = _secondary(encs, name)
        z = encs.encode(name, _centre(v, 8) if part else v)
        zt, z0 = refs.latents(name, index, view, part)
        toward, away = objective.toward, objective.away
        if name in encs.decoders and not part and not objective.latents_with_copy:
            toward = away = 0.0
        term = 0.0
        if toward:
            term = term + toward * F.mse_loss(z, zt) / zt.square().mean().clamp_min(1e-8)
        if away:
            moved = F.mse_loss(z, z0) / z0.square().mean().clamp_min(1e-8)
            term = term - away * ((moved + 1e-9).log() if objective.in_db else moved)
        if name in encs.decoders and not part:
            win, c0 = refs.copy(name, index, z0, search.copy_window, rng)
            c1 = encs.decode(name, z[..., win[0], win[1]])
            term = term - tuning.copy * (F.mse_loss(c1, c0) + 1e-7).log()
        loss = loss + encs.weights[name] * term
    return loss


def _ssim_excess(x: torch.Tensor, d: torch.Tensor, budget: presets.Budget) -> torch.Tensor:
    """How far the change d, scaled to the preset's PSNR (as the budget fit will spend it), takes the
    working image's SSIM past the preset's allowance, in allowances (0 within). Scaled, it judges
    the change's shape, not its size: the steps turn it toward changes SSIM does not see, so where
    SSIM binds (a painting's soft gradients) the fit can spend more of the PSNR budget."""
    d = d * (10 ** (-budget.psnr / 20) / d.square().mean().sqrt().clamp_min(1e-8))
    seen = 1 - shaping.ssim_map(x, (x + d).clamp(0, 1)).mean()
    return F.relu(seen / max(1 - budget.min_ssim, 1e-3) - 1)


# ---- step rules: the gradient (smoothed) -> a change per pixel, before the budget map scales it ----

@dataclass
class _Moments:
    first: torch.Tensor
    second: torch.Tensor


def _rule_sign(g: torch.Tensor, m: _Moments, step: int) -> torch.Tensor:
    """PGD's sign step: every pixel moves by its full allowance (scores like plain noise)."""
    return g.sign()


def _rule_grad(g: torch.Tensor, m: _Moments, step: int) -> torch.Tensor:
    """Momentum, normalised over the whole image."""
    m.first.mul_(0.9).add_(g, alpha=0.1)
    return m.first / m.first.square().mean().sqrt().clamp_min(1e-30)


def _rule_local(g: torch.Tensor, m: _Moments, step: int) -> torch.Tensor:
    """Momentum, normalised per 16 px cell: the gradient's own shape, and every region moves."""
    m.first.mul_(0.9).add_(g, alpha=0.1)
    e = _coarse(m.first.square().mean(1, keepdim=True), 16)
    return m.first / (e + 1e-3 * e.mean()).sqrt().clamp_min(1e-30)


def _rule_adam(g: torch.Tensor, m: _Moments, step: int) -> torch.Tensor:
    """Adam: normalised per pixel (a random-looking sign pattern)."""
    m.first.mul_(0.9).add_(g, alpha=0.1)
    m.second.mul_(0.99).add_(g * g, alpha=0.01)
    mh = m.first / (1 - 0.9 ** (step + 1))
    vh = m.second / (1 - 0.99 ** (step + 1))
    return mh / (vh.sqrt() + 1e-20)


STEP_RULES = {"local": _rule_local, "grad": _rule_grad, "adam": _rule_adam, "sign": _rule_sign}


def _lr(base: float, step: int, steps: int) -> float:
    """Cosine schedule from `base` down to 5% of it."""
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))


# ---- projection and spending -----------------------------------------------------------------------

def _project(delta: torch.Tensor, x: torch.Tensor, bmap: torch.Tensor, chroma: float) -> None:
    """Back into the budget, in place: each pixel within its allowance, colour within the chroma share,
    and x + delta within [0, 1] (pure white only darker: what the output would clip is never kept)."""
    delta.copy_(shaping.limit_chroma(torch.maximum(torch.minimum(delta, bmap), -bmap), bmap, chroma))
    delta.copy_((x + delta).clamp(0, 1) - x)


def _prune(delta: torch.Tensor, bmap: torch.Tensor, score: torch.Tensor, frac: float) -> torch.Tensor:
    """Drop (in place) the `frac` of changed pixels that lowered the loss least or raised it; return the
    map with them removed: per unit of visible change, the rest moves the latents further."""
    seen = score != 0
    sample = score[seen][:: max(1, int(seen.sum()) // 200_000)]
    cut = torch.quantile(sample, frac) if sample.numel() else 0.0
    keep = ((score > cut) | ~seen).float()
    delta.mul_(keep)
    return bmap * keep


def _spend(delta: torch.Tensor, bmap: torch.Tensor, flat: torch.Tensor, editable: torch.Tensor,
           budget: presets.Budget) -> torch.Tensor:
    """Scale the change in place so it spends the preset's budget (flat areas: the mean allowance; the
    rest: the PSNR), and its map with it; return the new map. protect.fit_to_budget fits the output."""
    d = delta.expand(1, 3, *delta.shape[-2:])
    fl = flat & (editable > 0)
    tex = ~flat & (editable > 0)
    sq = d.square().sum(1, keepdim=True)
    sum_flat, sum_tex = float(sq[fl].sum()), float(sq[tex].sum())
    mean_flat = float(d.abs().mean(1, keepdim=True)[fl].mean()) if fl.any() else 0.0
    s_tex, s_flat = shaping.spend_gains(mean_flat, sum_flat, sum_tex, d.numel(), budget)
    s_tex, s_flat = s_tex or 1.0, s_flat or 1.0  # undefined (no change there): leave the map as it is
    gain = torch.where(flat, torch.full_like(bmap, s_flat), torch.full_like(bmap, s_tex))
    peak = torch.where(flat, torch.full_like(bmap, presets.FLAT_PEAK * budget.flat),
                       torch.full_like(bmap, budget.linf))
    new_map = torch.minimum(bmap * gain, peak)
    delta.mul_(gain)
    delta.copy_(torch.maximum(torch.minimum(delta, new_map), -new_map))
    return new_map


def _smooth(g: torch.Tensor, weights: tuple[float, ...]) -> torch.Tensor:
    """Sum of the gradient seen at several coarser resolutions: steps toward spatially coherent
    perturbations, which survive downscaling and JPEG and beat random signs of the same size."""
    out = weights[0] * g
    h, w = g.shape[-2:]
    for i, wt in enumerate(weights[1:], start=1):
        k = 2**i
        if min(h, w) < 2 * k:
            break
        out = out + wt * _coarse(g, k)
    return out


def _coarse(t: torch.Tensor, k: int) -> torch.Tensor:
    """t averaged over k x k cells and spread back smoothly (bilinear) to t's size."""
    h, w = t.shape[-2:]
    return F.interpolate(F.avg_pool2d(t, k, ceil_mode=True), scale_factor=k, mode="bilinear",
                         align_corners=False)[..., :h, :w]
