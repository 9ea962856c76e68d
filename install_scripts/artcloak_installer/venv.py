"""The engine's own Python environment: the venv, the torch for this computer, the engine package."""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

from .common import APP, REPO, Failure
from .platforms import CPU_INDEX, has_nvidia_gpu, python_hint, torch_choice
from .steps import Steps


def venv_python(venv: Path) -> Path:
    """The venv's interpreter (the real OS decides the layout, not --platform)."""
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"



def engine_version() -> str:
    text = (REPO / "engine" / APP / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.M)
    return m.group(1) if m else "unknown"


def engine_fingerprint() -> str:
    """Changes whenever the engine's installable source changes (decides whether to reinstall it)."""
    h = hashlib.sha256()
    files = [REPO / "pyproject.toml"] + sorted(
        p for p in (REPO / "engine" / APP).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    for p in files:
        h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()



class Part(NamedTuple):
    """An optional part of the engine, installed by default (an extra of pyproject.toml)."""

    extra: str  # the extra in pyproject.toml that brings it
    packages: tuple  # that extra's packages (removed again when a later run leaves the part out)
    what: str
    cost: str  # what leaving it out costs: the same words as artcloak doctor's (tests compare them)


OPTIONAL_PARTS = (
    Part("fast", ("onnxruntime", "onnx"), "onnxruntime",
         "measuring (the report after each protection, `verify`, the optimiser's checks) runs on torch "
         "instead, about 1.5-2x slower"),
    Part("lpips", ("stlpips-pytorch",), "the LPIPS weights",
         "the presets' LPIPS bound is not checked: outputs are fitted to the pixel bounds only, and reports "
         "and `verify` leave LPIPS out"),
)


def part_attempts(asked: list[str]) -> list[list[str]]:
    """The sets of parts to try, most first; among equals the later parts (the pure-Python LPIPS carrier
    before onnxruntime's binary wheels) first; the last try has none."""
    order = list(reversed(asked))
    out = []
    for n in range(len(order), -1, -1):
        out += [sorted(c, key=asked.index) for c in itertools.combinations(order, n)]
    return out


class EngineSteps(Steps):
    """Create the venv and install torch and the engine into it."""

    def install_engine(self) -> None:
        a = self.args
        self.step(f"Engine environment ({self.venv})")
        python = venv_python(self.venv)
        base_python = Path(a.python).expanduser() if a.python else Path(sys.executable)
        if not python.is_file():
            self.act(f"create a Python virtual environment with {base_python}")
            if not self.dry:
                self.makedirs(self.venv.parent)
                cmd = [str(base_python), "-m", "venv"]
                if a.system_site_packages:
                    cmd.append("--system-site-packages")
                self.manifest.add_tree(self.venv)
                self.manifest.save()
                self.call(cmd + [str(self.venv)], "creating the virtual environment failed")
        fingerprint = engine_fingerprint()
        state = self.manifest.state
        asked = [] if a.minimal else [p.extra for p in OPTIONAL_PARTS]
        wanted = {"engine": fingerprint, "torch": " ".join(self.torch_specs), "parts": ",".join(asked)}
        if (python.is_file() and all(state.get(k) == v for k, v in wanted.items())
                and self.probe(python, "import torch, artcloak")):
            self.say(f"  engine {engine_version()} and torch already installed")
            self.report_parts(asked, state.get("parts_installed", "").split(","))
            return
        self.install_torch(python)
        whats = [p.what for p in OPTIONAL_PARTS if p.extra in asked]
        self.act(f"install the artcloak engine {engine_version()} into the environment, "
                 + (f"with {' and '.join(whats)}" if whats else "without its optional parts (--minimal)"))
        if self.dry:
            return
        with tempfile.TemporaryDirectory(prefix="artcloak-src-") as tmp:
            # a private copy: building in the checkout would leave build/ and egg-info behind
            src = Path(tmp) / "src"
            src.mkdir()
            for name in ("pyproject.toml", "README.md"):
                if (REPO / name).is_file():
                    shutil.copy2(str(REPO / name), str(src / name))
            shutil.copytree(str(REPO / "engine"), str(src / "engine"),
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build"))
            # built once, then installed with as many of its optional parts as this computer has wheels for
            dist = Path(tmp) / "dist"
            build = self.pip(python) + ["wheel", "--no-deps", "--wheel-dir", str(dist), str(src)]
            if self.call(build + self.pip_source(), None) != 0:
                self.say("  retrying without build isolation")
                self.call(build + self.pip_source() + ["--no-build-isolation"], "building the engine failed")
            wheel = str(next(dist.glob("*.whl")))
            # the version number may not change between updates: remove the old engine (not its deps)
            subprocess.run(self.pip(python) + ["uninstall", "--yes", "--quiet", APP],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # the table's other pins (an Intel Mac's numpy<2) hold while the parts' dependencies resolve
            pins = [s for s in self.torch_specs if not s.startswith("torch")]
            got = None
            for parts in part_attempts(asked):
                target = wheel + (f"[{','.join(parts)}]" if parts else "")
                if parts != asked:
                    self.say(f"  trying again with {' and '.join(parts) or 'no optional part'}")
                if self.call(self.pip(python) + ["install", target, *pins] + self.pip_source(), None) == 0:
                    got = parts
                    break
            if got is None:
                raise Failure("installing the engine failed (see pip's message above)")
            # a part left out on purpose (--minimal after a full install) leaves the environment too
            dropped = [n for p in OPTIONAL_PARTS if p.extra not in asked for n in p.packages]
            if dropped:
                subprocess.run(self.pip(python) + ["uninstall", "--yes", "--quiet", *dropped],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.report_parts(asked, got)
        state.update(wanted, parts_installed=",".join(got))
        self.manifest.save()

    def report_parts(self, asked: list[str], got: list[str]) -> None:
        """Say which optional parts the engine has; one asked for but missing is a warning with its cost."""
        for p in OPTIONAL_PARTS:
            if p.extra in got:
                self.say(f"  {p.what}: installed")
            elif p.extra not in asked:
                self.say(f"  {p.what}: left out (--minimal). Cost: {p.cost}")
            else:
                where = (f"not in the wheel folder {self.args.wheels}" if self.args.wheels
                         else "pip found no build of it for this computer and Python")
                self.warn(f"{p.what} NOT installed ({where}); the engine works without it. Cost: {p.cost}")

    def python_info(self, exe: Path) -> dict:
        """The version, CPU and macOS version of the Python that runs (or will run) the engine; it must
        be able to make virtual environments. Read-only, so a dry run asks too."""
        code = ("import sys, platform, venv, ensurepip; print('%d.%d' % sys.version_info[:2], "
                "platform.machine() or '?', platform.mac_ver()[0] or '-')")
        try:
            out = subprocess.run([str(exe), "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
        except OSError as e:
            raise Failure(f"cannot run the Python {exe}: {e}. Pass a working one with --python PATH") \
                from None
        fields = out.stdout.strip().split()
        if out.returncode != 0 or len(fields) != 3:
            raise Failure(f"{exe} cannot create virtual environments (on Debian/Ubuntu: sudo apt install "
                          f"python3-venv):\n{out.stdout.strip()}")
        version = tuple(int(x) for x in fields[0].split("."))
        if version < (3, 9):
            raise Failure(f"the engine needs Python 3.10 or newer (3.9 on an Intel Mac); {exe} is "
                          f"{fields[0]}. {python_hint(self.platform)}")
        a = self.args
        machine = a.machine or fields[1]
        mac = a.os_version or (fields[2] if fields[2] != "-" else "")
        osv = tuple(int(x) for x in re.findall(r"\d+", mac)[:2]) or None
        return {"exe": exe, "python": version, "machine": machine, "os_version": osv}

    def choose_torch(self, info: dict) -> list[str]:
        a = self.args
        if a.torch_spec:
            return [a.torch_spec]  # the user's own choice
        specs = torch_choice(self.platform, info["machine"], info["os_version"], info["python"])
        self.say(f"  PyTorch for {self.platform} on {info['machine']}, Python %d.%d: {' '.join(specs)}"
                 % info["python"][:2])
        return specs

    def pip(self, python: Path) -> list[str]:
        cmd = [str(python), "-m", "pip", "--disable-pip-version-check", "--no-input"]
        return cmd

    def pip_source(self) -> list[str]:
        """Where pip may take packages from: only the wheel folder when one was given."""
        if self.args.wheels:
            return ["--no-index", "--find-links", str(Path(self.args.wheels).expanduser().resolve())]
        return []

    def install_torch(self, python: Path) -> None:
        a = self.args
        specs = self.torch_specs
        spec = specs[0]
        if a.system_site_packages and python.is_file() and self.probe(python, "import torch"):
            self.say("  using the torch the environment sees from %s" % (a.python or sys.executable))
            return
        if python.is_file() and self.probe(python, "import torch") and self.torch_matches(python, spec):
            self.say("  torch already available in the environment")
            return
        device = a.device
        if device == "auto":
            device = "cuda" if has_nvidia_gpu() else "cpu"
        index = a.torch_index
        if index is None and not a.wheels and device == "cpu" and self.platform == "linux" and not self.dry:
            index = self.cpu_index_needed(python, spec)  # the table's torch, pinned: never a bare "torch"
        where = (f"from {a.wheels}") if a.wheels else (f"from {index}" if index else "from the package index")
        kind = {"cuda": "CUDA", "cpu": "CPU"}[device]
        if self.platform == "macos":
            kind = "default (Metal where available)"
        elif self.platform == "windows" and device == "cuda" and not index and not a.wheels:
            kind = "CPU"
            self.say("  note: the default index has only CPU builds of torch for Windows; for your NVIDIA "
                     "card pass --torch-index with the CUDA wheel index named on pytorch.org")
        self.act(f"install {' '.join(specs)} ({kind} build) {where}")
        if self.dry:
            return
        cmd = self.pip(python) + ["install", "--no-cache-dir", *specs] + self.pip_source()
        if index:
            cmd += ["--index-url", index]
        self.call(cmd, f"installing {' '.join(specs)} failed. Offline? Pass --wheels DIR with that torch "
                       "wheel (and its dependencies), or --system-site-packages to use a torch you already "
                       "have.")

    def torch_matches(self, python: Path, spec: str) -> bool:
        m = re.match(r"^torch==([\w.]+)$", spec.strip())
        if not m:
            return False
        code = f"import torch,sys; sys.exit(torch.__version__.split('+')[0] != {m.group(1)!r})"
        return self.probe(python, code)

    def cpu_index_needed(self, python: Path, spec: str) -> str | None:
        """Ask pip what it would install: if that is a CUDA build, use the CPU-only index instead.

        Costs a resolve, not a download; offline wheel folders and local indexes never reach the network.
        """
        self.ensure_modern_pip(python)
        fd, report = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        try:
            cmd = self.pip(python) + ["install", "--no-cache-dir", "--dry-run", "--quiet",
                                      "--report", report, spec]
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                return None  # old pip or no index: the real install reports the problem
            items = json.loads(Path(report).read_text(encoding="utf-8")).get("install", [])
        except (OSError, ValueError):
            return None
        finally:
            os.unlink(report)
        names = [i.get("metadata", {}).get("name", "").lower() for i in items]
        if any(n.startswith("nvidia-") or n == "triton" for n in names):
            self.say(f"  the default index offers a CUDA torch here; using the CPU-only index {CPU_INDEX}")
            return CPU_INDEX
        return None

    def ensure_modern_pip(self, python: Path) -> None:
        """pip >= 22.2 is needed for `install --dry-run --report`; older venvs (Python 3.9) get an upgrade."""
        code = "import pip, sys; sys.exit(tuple(map(int, pip.__version__.split('.')[:2])) < (22, 2))"
        if not self.probe(python, code):
            self.call(self.pip(python) + ["install", "--quiet", "--upgrade", "pip"], None)

    def probe(self, python: Path, code: str) -> bool:
        try:
            return subprocess.run([str(python), "-c", code], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL).returncode == 0
        except OSError:
            return False

    def call(self, cmd: list[str], error: str | None) -> int:
        self.say("  $ " + " ".join(cmd))
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1")
        rc = subprocess.run(cmd, env=env).returncode
        if rc != 0 and error:
            raise Failure(error)
        return rc
