"""Where and how the optimizer runs: device, precision and threads, chosen by measurement per machine.

bf16 autocast is about 2x faster than fp32 on a CPU with native bf16 (avx512_bf16, amx_bf16) and about
30x slower where it is emulated (AVX2 only, most laptops). So reduced precision is used only where it
is native, measured faster than fp32, and protects as well: the probe takes attack steps on a small
textured image against an installed surrogate, the same size in fp32 and in the reduced precision,
and keeps the reduced one only when its steps move the model's copy (decoded, measured in fp32) at
least MIN_EFFICIENCY as far as fp32's. A gradient that differs a little from fp32's (bf16 keeps 8 bits
of mantissa: cosine ~0.97 here) is no reason to refuse a 2x speed-up whose steps protect as much.
The answer is measured once (a second or two) and kept in the user cache, keyed by the device, the
torch version and the surrogate.

ARTCLOAK_PRECISION=auto|fp32|bf16|fp16 overrides the choice; ARTCLOAK_THREADS the thread count
(default: all physical cores).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from functools import lru_cache

import torch

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PROBE_VERSION = 2
MIN_SPEEDUP = 1.15  # reduced precision must be this much faster than fp32 ...
MIN_EFFICIENCY = 0.9  # ... and each of its steps protect at least this much of what an fp32 step does
PROBE_SIDE = 128  # px: the probe's test image (a second or two on a laptop CPU, emulated bf16 included)
PROBE_STARTS = 3  # random starts the step gains are summed over


@dataclass(frozen=True)
class Runtime:
    device: str  # "cpu", "cuda" or "mps"
    precision: str  # "fp32", "bf16" or "fp16"
    threads: int
    reason: str  # why this precision: measured, cached, overridden, not native

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def dtype(self) -> torch.dtype:
        return PRECISIONS[self.precision]

    def to_dict(self) -> dict:
        return asdict(self)


def _cpuinfo(keys: tuple[str, ...]) -> str | None:
    """The value of the first line of Linux's /proc/cpuinfo that starts with one of `keys` (the
    first core's), or None where there is no such file or line."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(keys):
                    return line.split(":", 1)[1]
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's marketing name (for the cache key and the report)."""
    if sys.platform.startswith("linux"):
        name = _cpuinfo(("model name",))
        if name is not None:
            return name.strip()
    elif sys.platform == "darwin":
        name = _sysctl("machdep.cpu.brand_string")
        if name:
            return name
    return platform.processor() or platform.machine() or "unknown CPU"


def _sysctl(key: str) -> str:
    try:
        return subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_flags() -> set[str]:
    """The CPU's feature flags where the OS tells them (Linux /proc/cpuinfo, macOS sysctl)."""
    if sys.platform.startswith("linux"):
        flags = _cpuinfo(("flags", "Features"))
        if flags is not None:
            return set(flags.split())
    elif sys.platform == "darwin" and _sysctl("hw.optional.arm.FEAT_BF16") == "1":
        return {"bf16"}
    return set()


def native_bf16(flags: set[str] | None = None) -> bool:
    """True where the CPU computes bf16 itself rather than emulating it."""
    flags = cpu_flags() if flags is None else flags
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def physical_cores() -> int:
    """All physical cores this process may use (hyper-threads share a core's arithmetic units)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    cores = 0
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                text = f.read()
            pairs, phys = set(), "0"
            for line in text.splitlines():
                if line.startswith("physical id"):
                    phys = line.split(":", 1)[1].strip()
                elif line.startswith("core id"):
                    pairs.add((phys, line.split(":", 1)[1].strip()))
            cores = len(pairs)
        except OSError:
            pass
    elif sys.platform == "darwin":
        cores = int(_sysctl("hw.physicalcpu") or 0)
    return max(1, min(usable, cores) if cores else usable)


def engine_threads() -> int:
    """The engine's thread count: ARTCLOAK_THREADS, else every physical core."""
    env = os.environ.get("ARTCLOAK_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return physical_cores()


def _device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _candidate(device: str) -> str:
    return "fp16" if device == "mps" else "bf16"


def _cache_file():
    from .folders import cache_dir

    return cache_dir() / "precision.json"


def _cache_key(device: str, model: str) -> str:
    name = torch.cuda.get_device_name() if device == "cuda" else cpu_model()
    return f"{device}|{name}|torch {torch.__version__}|probe {PROBE_VERSION}|{model}"


def _read_cache() -> dict:
    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, entry: dict) -> None:
    data = _read_cache()
    data[key] = entry
    path = _cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs a probe next time


def _probe_image(side: int) -> torch.Tensor:
    """A deterministic textured test image (1 x 3 x side x side): smooth shapes plus fine grain, so
    both the flat-ish and the busy parts an attack works on are there."""
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, max(2, side // 12), max(2, side // 12), generator=gen)
    smooth = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False)
    return (0.15 + 0.7 * smooth + 0.06 * torch.randn(1, 3, side, side, generator=gen)).clamp(0, 1)


def _probe_model() -> str | None:
    """The surrogate the probe attacks: the first installed one with a decoder (the copy is what the
    protection is judged by), else the first installed encoder; None when none is installed."""
    from .models import MODELS, find_file

    installed = [n for n, s in MODELS.items() if find_file(s.encoder).verified]
    with_decoder = [n for n in installed if find_file(MODELS[n].decoder).verified]
    return (with_decoder or installed or [None])[0]


def probe(device: str, precision: str, side: int | None = None, starts: int = PROBE_STARTS,
          model: str | None = None) -> dict:
    """How much one attack step protects in `precision` against fp32, on `model` (default:
    _probe_model()) and a small test image: from each of `starts` random starts, one gradient step of
    the same size in each precision, and the gain in the model's copy change (decoded, or its latents
    without a decoder) that step brings, measured in fp32 for both. `efficiency` = the reduced
    precision's gains over fp32's (1 = protects as well); `speedup` = fp32's time per forward+backward
    over the reduced one's. Raises ModelError when no surrogate is installed."""
    from .errors import ModelError
    from .models import load_decoder, load_encoder

    model = model or _probe_model()
    if model is None:
        raise ModelError("no surrogate installed to measure the precision with")
    side = side or PROBE_SIDE
    dev = torch.device(device)
    enc = load_encoder(model).to(dev).to(memory_format=torch.channels_last)
    dec = load_decoder(model)
    dec = dec.to(dev).to(memory_format=torch.channels_last) if dec is not None else None
    x = _probe_image(side).to(dev).contiguous(memory_format=torch.channels_last)

    def seen(img: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        z = encode(enc, img, dtype)
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
            return (dec(z) if dec is not None else z).float()

    with torch.no_grad():
        ref = seen(x, torch.float32)

    def moved(delta: torch.Tensor) -> float:
        with torch.no_grad():
            return float(((seen(x + delta, torch.float32) - ref) ** 2).mean())

    def gradient(delta: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, float]:
        d = delta.clone().requires_grad_(True)
        t = time.perf_counter()
        ((seen(x + d, dtype) - ref) ** 2).mean().backward()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return d.grad, time.perf_counter() - t

    low = PRECISIONS[precision]
    gradient(x * 0, low)  # warm-up: the first reduced-precision call picks its kernels
    gains = {torch.float32: 0.0, low: 0.0}
    times = {torch.float32: float("inf"), low: float("inf")}
    for seed in range(starts):
        # a random start (at delta = 0 the MSE's gradient is exactly zero), then one step per precision
        flips = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed)) < 0.5
        start = (x + (flips.float().to(dev) * 4 - 2) / 255).clamp(0, 1) - x
        before = moved(start)
        for dtype in gains:
            g, seconds = gradient(start, dtype)
            times[dtype] = min(times[dtype], seconds)
            gains[dtype] += moved(start + g / g.square().mean().sqrt().clamp_min(1e-30) / 255) - before
    return {"model": model, "fp32_s": round(times[torch.float32], 4), f"{precision}_s": round(times[low], 4),
            "speedup": round(times[torch.float32] / times[low], 3),
            "efficiency": round(gains[low] / max(gains[torch.float32], 1e-30), 3)}


def encode(net: torch.nn.Sequential, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An encoder's forward in `dtype` (autocast), its first convolution in fp32: bf16 keeps 8 bits,
    so a change under 1/255 on a bright pixel would round away before the network saw it. Measured on
    the bench's flat illustration (default preset): with the whole encoder in bf16 the flat areas got
    0.59/255 of their 1/255 and taef2's copy was 0.77 dB weaker than fp32's; with the first
    convolution in fp32, 1.00/255 and within 0.05 dB."""
    if dtype == torch.float32:
        return net(x).float()
    h = net[0](x)
    with torch.autocast(x.device.type, dtype=dtype):
        return net[1:](h).float()


def _decide(precision: str, figures: dict) -> tuple[str, str]:
    """Reduced precision where it is faster and protects as well as fp32 (see the module docstring)."""
    ok = figures["speedup"] >= MIN_SPEEDUP and figures["efficiency"] >= MIN_EFFICIENCY
    summary = (f"{precision} {figures['speedup']:.2f}x fp32's speed, its steps protect "
               f"{figures['efficiency']:.2f}x as much as fp32's on {figures['model']}")
    if not ok:
        summary += (f" (below {MIN_SPEEDUP}x)" if figures["speedup"] < MIN_SPEEDUP
                    else f" (below {MIN_EFFICIENCY})")
    return (precision if ok else "fp32"), summary


@lru_cache(maxsize=1)
def choose() -> Runtime:
    """The runtime for this process: measured once per machine and torch version, then cached."""
    threads = engine_threads()
    torch.set_num_threads(threads)
    device = _device()
    wanted = os.environ.get("ARTCLOAK_PRECISION", "auto").strip().lower() or "auto"
    if wanted != "auto":
        if wanted not in PRECISIONS:
            from .errors import InputError

            raise InputError(f"ARTCLOAK_PRECISION={wanted!r}: use auto, {', '.join(PRECISIONS)}")
        return Runtime(device, wanted, threads, "set by ARTCLOAK_PRECISION")
    candidate = _candidate(device)
    if device == "cpu" and not native_bf16():
        return Runtime(device, "fp32", threads,
                       "this CPU has no native bf16 (no avx512_bf16/amx_bf16): bf16 would be emulated")
    model = _probe_model()
    if model is None:
        return Runtime(device, "fp32", threads, "no surrogate installed to measure reduced precision with")
    key = _cache_key(device, model)
    entry = _read_cache().get(key)
    if entry and entry.get("precision") in PRECISIONS:
        return Runtime(device, entry["precision"], threads, f"measured earlier: {entry.get('summary', '')}")
    try:
        figures = probe(device, candidate, model=model)
    except Exception as e:  # an unsupported op in reduced precision: fp32 always works
        return Runtime(device, "fp32", threads, f"{candidate} probe failed ({type(e).__name__}): fp32")
    chosen, summary = _decide(candidate, figures)
    _write_cache(key, {"precision": chosen, "summary": summary, **figures})
    return Runtime(device, chosen, threads, f"measured now: {summary}")


def describe() -> dict:
    """What `artcloak doctor` and the report say about the machine and the choice."""
    rt = choose()
    flags = cpu_flags()
    return {**rt.to_dict(), "cpu": cpu_model(), "native_bf16": native_bf16(flags),
            "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("bf16", "fma")),
            "torch": torch.__version__, "physical_cores": physical_cores()}


def release_memory() -> None:
    """Hand memory the process has freed back to the system. glibc keeps much of what the
    optimizer's steps freed (~250 MB after a 1024 px run) for reuse, and a huge canvas's full-size
    passes then come on top of it; elsewhere (macOS, Windows: other allocators) this does nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # a C library without malloc_trim (musl)
        pass
