"""Where and how the optimizer runs: device, precision and threads, chosen by measurement per machine.

bf16 autocast is about 2x faster than fp32 on a CPU with native bf16 (avx512_bf16, amx_bf16) and about
30x slower where it is emulated (AVX2 only, most laptops). So reduced precision is used only where it
is native, measured faster than fp32 on a real encoder-sized network, and gives the same steps (the
input gradients agree with fp32's in direction and sign). The answer is measured once (a second or
two) and kept in the user cache, keyed by the CPU model and the torch version.

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
PROBE_VERSION = 1
# reduced precision must be this much faster, and its input gradients this close to fp32's
MIN_SPEEDUP = 1.15
MIN_COSINE = 0.98
MIN_SIGN_AGREEMENT = 0.9
PROBE_SIDE = 192  # px: a second or two on a laptop CPU, large enough to time the convolutions


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


def _threads() -> int:
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


def _cache_key(device: str) -> str:
    name = torch.cuda.get_device_name() if device == "cuda" else cpu_model()
    return f"{device}|{name}|torch {torch.__version__}|probe {PROBE_VERSION}"


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


def probe(device: str, precision: str, side: int | None = None, reps: int = 3) -> dict:
    """Time forward+backward of an encoder-sized network in fp32 and in `precision`, and compare the
    input gradients (what the optimizer's steps follow)."""
    from .models.taesd import make_encoder

    side = side or PROBE_SIDE
    gen = torch.Generator().manual_seed(0)
    net = make_encoder(32).eval()
    for p in net.parameters():
        p.requires_grad_(False)
        p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / max(1, p[0].numel())) ** 0.5)
    dev = torch.device(device)
    net = net.to(dev).to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, side, side, generator=gen).to(dev).contiguous(memory_format=torch.channels_last)
    target = torch.randn(1, 32, side // 8, side // 8, generator=gen).to(dev)

    def run(dtype: torch.dtype) -> tuple[float, torch.Tensor]:
        best = float("inf")
        grad = None
        for _ in range(reps):
            xi = x.clone().requires_grad_(True)
            t = time.perf_counter()
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
                z = net(xi).float()
            ((z - target) ** 2).mean().backward()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
            grad = xi.grad.detach().float().flatten().cpu()
        return best, grad

    t32, g32 = run(torch.float32)
    tlow, glow = run(PRECISIONS[precision])
    cos = float(torch.nn.functional.cosine_similarity(g32, glow, dim=0))
    signs = float((g32.sign() == glow.sign()).float().mean())
    return {"fp32_s": round(t32, 4), f"{precision}_s": round(tlow, 4), "speedup": round(t32 / tlow, 3),
            "grad_cosine": round(cos, 4), "sign_agreement": round(signs, 4)}


def _decide(precision: str, figures: dict) -> tuple[str, str]:
    ok = (figures["speedup"] >= MIN_SPEEDUP and figures["grad_cosine"] >= MIN_COSINE
          and figures["sign_agreement"] >= MIN_SIGN_AGREEMENT)
    summary = (f"{precision} {figures['speedup']:.2f}x fp32's speed, gradient cosine "
               f"{figures['grad_cosine']:.3f}, sign agreement {figures['sign_agreement']:.3f}")
    return (precision if ok else "fp32"), summary


@lru_cache(maxsize=1)
def choose() -> Runtime:
    """The runtime for this process: measured once per machine and torch version, then cached."""
    threads = _threads()
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
    key = _cache_key(device)
    entry = _read_cache().get(key)
    if entry and entry.get("precision") in PRECISIONS:
        return Runtime(device, entry["precision"], threads, f"measured earlier: {entry.get('summary', '')}")
    try:
        figures = probe(device, candidate)
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
