#!/usr/bin/env python3
"""Install artcloak for one user: the engine's own venv, the model weights, the GIMP plug-ins.

All installer logic lives here (stdlib only, Python 3.8+); install.sh and install.ps1 only find a
Python and run this file. Everything written is listed in a manifest in the data folder, so a
second run changes nothing and `--uninstall` removes exactly what was installed and nothing else.

    python3 install_scripts/install.py              install (or update) for this user
    python3 install_scripts/install.py --check      run a tiny protection through the installed engine
    python3 install_scripts/install.py --dry-run    print the plan, touch nothing
    python3 install_scripts/install.py --uninstall  remove what the installer put on this machine
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP = "artcloak"
CONFIG_NAME = "artcloak-engine.json"
MANIFEST_NAME = "install-manifest.json"
DEFAULT_TORCH = "torch==2.13.0"  # pinned: a bare "torch" may pull a multi-GB CUDA build
# Which torch the engine gets: ONE table, first matching row wins. (platform, machines, lowest OS version,
# pip requirements, lowest and highest Python with a wheel). Checked against the package index: 2.13.0
# has no wheel for Python 3.9 or for Intel Macs (newest there 2.2.2, Python <= 3.12, built for numpy 1.x)
# and none for arm64 macOS before 14 (newest there 2.11.0); none at all for Windows on ARM.
TORCH_TABLE = (
    ("linux", ("x86_64", "aarch64"), None, (DEFAULT_TORCH,), (3, 10), (3, 14)),
    ("windows", ("amd64",), None, (DEFAULT_TORCH,), (3, 10), (3, 14)),
    ("macos", ("arm64",), (14, 0), (DEFAULT_TORCH,), (3, 10), (3, 14)),
    ("macos", ("arm64",), (11, 0), ("torch==2.11.0",), (3, 10), (3, 14)),
    ("macos", ("x86_64",), (10, 9), ("torch==2.2.2", "numpy<2"), (3, 9), (3, 12)),
)
FLATPAK_APP = "org.gimp.GIMP"
FLATPAK_GRANT = ["flatpak", "override", "--user", "--talk-name=org.freedesktop.Flatpak", FLATPAK_APP]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
SHEBANG_GIMP3 = "#!/usr/bin/env python3"
GIMP_VERSION_DIR = re.compile(r"^(2\.10|3\.\d+)$")
DOWNLOAD_TIMEOUT = 60
PLATFORMS = ("linux", "macos", "windows")


def machine_name(platform: str, machine: str) -> str:
    """The table's spelling of a CPU name (Windows says AMD64/ARM64, Linux x86_64/aarch64, macOS arm64)."""
    m = machine.strip().lower()
    if platform == "windows":
        return {"x86_64": "amd64", "x64": "amd64", "aarch64": "arm64"}.get(m, m)
    if platform == "macos":
        return {"aarch64": "arm64", "amd64": "x86_64"}.get(m, m)
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def python_hint(platform: str) -> str:
    """How to get a Python the table accepts, in the words of each platform."""
    if platform == "macos":
        return ("Get Python 3.12 from https://www.python.org/downloads/macos/ "
                "(or `brew install python@3.12`), then run: "
                "install_scripts/install.sh --python /usr/local/bin/python3.12 "
                "(Homebrew: /opt/homebrew/bin/python3.12)")
    if platform == "windows":
        return ("Get Python 3.12 from https://www.python.org/downloads/windows/ (tick \"Add python.exe to "
                "PATH\"), then run: powershell -ExecutionPolicy Bypass -File install_scripts\\install.ps1 "
                "--python \"%LOCALAPPDATA%\\Programs\\Python\\Python312\\python.exe\"")
    return ("Install one from your distribution (e.g. `sudo apt install python3.12-venv`), or with "
            "`uv python install 3.12` or pyenv, then run: "
            "install_scripts/install.sh --python /path/to/python3.12")


def torch_choice(platform: str, machine: str, os_version: tuple[int, ...] | None,
                 python: tuple[int, int]) -> list[str]:
    """The pip requirements that give this platform, machine, OS version and Python its torch (see
    TORCH_TABLE); Failure with what to do where PyTorch publishes none."""
    m = machine_name(platform, machine)
    rows = [r for r in TORCH_TABLE if r[0] == platform and m in r[1]]
    if not rows:
        where = {"linux": "Linux", "macos": "macOS", "windows": "Windows"}[platform]
        extra = (" Install the x64 (AMD64) Python from python.org, which Windows on ARM runs by emulation, "
                 "and pass it with --python." if platform == "windows" and m == "arm64" else "")
        raise Failure(f"PyTorch publishes no build for {where} on {machine} processors, so the artcloak "
                      f"engine cannot be installed on this computer.{extra} It runs on Linux (x86_64, "
                      "aarch64), Windows (x86_64) and macOS (Apple silicon with macOS 11 or newer; Intel).")
    osv = tuple(os_version or ())
    row = next((r for r in rows if r[2] is None or (osv and osv >= r[2])), None)
    if row is None:
        low = ".".join(map(str, rows[-1][2]))
        have = ".".join(map(str, osv)) or "(unknown)"
        raise Failure(f"PyTorch has no build for macOS {have} on {machine}: it needs macOS {low} or newer. "
                      "Update macOS, or use the command-line tool on a newer computer.")
    _, _, _, spec, low, high = row
    if not low <= tuple(python[:2]) <= high:
        have = "{}.{}".format(*python[:2])
        span = "{}.{} to {}.{}".format(*low, *high)
        newest = "" if tuple(python[:2]) < low else " (newer than any PyTorch build for it)"
        raise Failure(f"{spec[0]}, the PyTorch for this computer, has builds for Python {span}; the Python "
                      f"that would run the engine is {have}{newest}. {python_hint(platform)}")
    return list(spec)


def this_platform() -> str:
    if sys.platform == "win32":
        return "windows"
    return "macos" if sys.platform == "darwin" else "linux"


# ----------------------------------------------------------------------------- where things go
class Layout:
    """The per-platform folder rules. The installer runs before the engine exists and imports nothing
    of it: the engine's artcloak/folders.py is the reference, tests/test_install.py checks both agree.

    `platform` only changes path rules, so tests can lay out a macOS or Windows home on Linux.
    """

    def __init__(self, platform: str, home: Path, env: dict):
        self.platform, self.home, self.env = platform, home, env

    def data_dir(self) -> Path:
        if self.platform == "windows":
            base = Path(self.env.get("LOCALAPPDATA") or self.home / "AppData" / "Local")
        elif self.platform == "macos":
            base = self.home / "Library" / "Application Support"
        else:
            base = Path(self.env.get("XDG_DATA_HOME") or self.home / ".local" / "share")
        return base / APP

    def gimp_roots(self) -> list[tuple[str, Path]]:
        """(packaging, folder holding GIMP's per-version config folders), in search order."""
        h = self.home
        if self.platform == "windows":
            roots = [("native", Path(self.env.get("APPDATA") or h / "AppData" / "Roaming") / "GIMP")]
            # the Microsoft Store's GIMP (an MSIX package): its AppData writes land in the package's
            # LocalCache, %LOCALAPPDATA%\Packages\<GIMP package>\LocalCache\Roaming\GIMP
            packages = Path(self.env.get("LOCALAPPDATA") or h / "AppData" / "Local") / "Packages"
            if packages.is_dir():
                roots += [("msstore", p / "LocalCache" / "Roaming" / "GIMP")
                          for p in sorted(packages.iterdir()) if p.is_dir() and "gimp" in p.name.lower()]
            return roots
        if self.platform == "macos":
            return [("native", h / "Library" / "Application Support" / "GIMP")]
        config = Path(self.env.get("XDG_CONFIG_HOME") or h / ".config")
        return [("native", config / "GIMP"),
                ("flatpak", h / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP"),
                ("snap", h / "snap" / "gimp" / "current" / ".config" / "GIMP")]

    def gimp_targets(self) -> list[PluginTarget]:
        """Every plug-in folder of a GIMP (2.10, 3.x) whose version folder exists."""
        found = []
        for packaging, root in self.gimp_roots():
            if not root.is_dir():
                continue
            for vdir in sorted(p for p in root.iterdir() if p.is_dir() and GIMP_VERSION_DIR.match(p.name)):
                front = "gimp2" if vdir.name == "2.10" else "gimp3"
                found.append(PluginTarget(vdir / "plug-ins", front, f"GIMP {vdir.name} ({packaging})",
                                          packaging))
        return found

    def engine_folders(self) -> list[tuple[Path, bool]]:
        """Folders outside the data folder that the installed engine writes, (folder, whole): the engine's
        cache, and where onnxruntime keeps its device id (Linux: under XDG_CACHE_HOME or ~/.cache; macOS:
        ~/Library/Application Support; Windows: the registry, no folder). `whole`: everything inside
        is theirs, so it goes on uninstall when it did not exist before the install."""
        found = [(self.cache_dir(), True)]
        ort = Path("Microsoft") / "DeveloperTools" / ".onnxruntime"
        if self.platform == "linux":
            found.append((Path(self.env.get("XDG_CACHE_HOME") or self.home / ".cache") / ort, True))
        elif self.platform == "macos":
            found.append((self.home / "Library" / "Application Support" / ort, True))
        return found

    def cache_dir(self) -> Path:
        """The engine's own cache (exported ONNX graphs; artcloak/folders.py's cache_dir without
        ARTCLOAK_CACHE)."""
        if self.platform == "windows":
            return self.data_dir() / "cache"
        if self.platform == "macos":
            return self.home / "Library" / "Caches" / APP
        return Path(self.env.get("XDG_CACHE_HOME") or self.home / ".cache") / APP

    def shebang(self, front: str) -> str:
        if front == "gimp3":
            return SHEBANG_GIMP3
        # GIMP 2.10: Linux runs the file itself (the distribution's python2 with gimpfu); on macOS and
        # Windows GIMP's bundled interpreter is registered under the name "python".
        return "#!/usr/bin/env python2" if self.platform == "linux" else "#!/usr/bin/env python"


class PluginTarget:
    def __init__(self, folder: Path, front: str, label: str, packaging: str = "native"):
        self.folder, self.front, self.label, self.packaging = folder, front, label, packaging


def venv_python(venv: Path) -> Path:
    """The venv's interpreter (the real OS decides the layout, not --platform)."""
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


# ----------------------------------------------------------------------------- small helpers
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_blob_id(path: Path) -> str:
    """The id git gives a file's content (the registry pins every weight file by it), read in chunks.
    The engine's artcloak/models/loader.py git_blob_id is the reference; tests/test_install.py
    checks both agree."""
    h = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_registry():
    """The engine's model registry, read from the repository by path (hashes live only there)."""
    path = REPO / "engine" / APP / "models" / "registry.py"
    spec = importlib.util.spec_from_file_location("_artcloak_registry", str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building classes
    spec.loader.exec_module(module)
    return module


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


def source_files(folder: Path) -> list[Path]:
    """The files of a plug-in source folder (no caches)."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"))


def with_shebang(data: bytes, shebang: str) -> bytes:
    nl = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
    if data.startswith(b"#!"):
        data = data.split(nl, 1)[1] if nl in data else b""
    return shebang.encode() + nl + data


class Failure(Exception):
    """A step that cannot go on; the message says what to do."""


# ----------------------------------------------------------------------------- the manifest
class Manifest:
    """What this installer created: directories (in creation order), files (with hashes), trees."""

    def __init__(self, path: Path, dry: bool):
        self.path, self.dry = path, dry
        # engine_dirs / engine_trees: folders that did not exist at install and that the engine may create
        # later (its cache's parents; onnxruntime's device-id folder): removed on uninstall (dirs only when
        # empty), since the installer brought the program that made them
        self.data = {"format": 1, "dirs": [], "files": {}, "trees": [], "state": {}, "engine_dirs": [],
                     "engine_trees": []}
        if path.is_file():
            loaded = json.loads(path.read_text(encoding="utf-8"))
            for key in self.data:
                self.data[key] = loaded.get(key, self.data[key])

    def add_dir(self, d: Path) -> None:
        if str(d) not in self.data["dirs"]:
            self.data["dirs"].append(str(d))

    def add_file(self, p: Path, digest: str) -> None:
        self.data["files"][str(p)] = digest

    def add_tree(self, d: Path) -> None:
        if str(d) not in self.data["trees"]:
            self.data["trees"].append(str(d))

    def note_engine_folder(self, folder: Path, whole: bool) -> None:
        """Record `folder` (when `whole`) and its missing parents if they do not exist yet; a folder already
        recorded stays recorded (the engine may have created it since)."""
        missing = []
        p = folder
        while not p.exists() and p.parent != p:
            missing.append(p)
            p = p.parent
        if whole and folder in missing:
            missing.remove(folder)
            if str(folder) not in self.data["engine_trees"]:
                self.data["engine_trees"].append(str(folder))
        for d in reversed(missing):  # outermost first, like "dirs"
            if str(d) not in self.data["engine_dirs"]:
                self.data["engine_dirs"].append(str(d))

    def owns(self, p: Path) -> bool:
        return str(p) in self.data["files"] or str(p) in self.data["trees"]

    @property
    def state(self) -> dict:
        return self.data["state"]

    def save(self) -> None:
        if self.dry:
            return
        text = json.dumps(self.data, indent=1, sort_keys=True) + "\n"
        if self.path.is_file() and self.path.read_text(encoding="utf-8") == text:
            return  # a run that changes nothing leaves even the manifest untouched
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(str(tmp), str(self.path))


# ----------------------------------------------------------------------------- the installer
class Installer:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.dry = args.dry_run
        self.platform = args.platform
        self.layout = Layout(self.platform, Path(os.path.expanduser("~")), dict(os.environ))
        self.base = Path(args.prefix).expanduser().resolve() if args.prefix else self.layout.data_dir()
        self.venv = self.base / "venv"
        self.models_dir = self.base / "models"
        self.manifest = Manifest(self.base / MANIFEST_NAME, self.dry)
        self.changes = 0
        self.planned: set[Path] = set()  # folders a dry run would have created
        self.warnings: list[str] = []

    # -- output
    def say(self, msg: str) -> None:
        print(msg, flush=True)

    def step(self, msg: str) -> None:
        self.say("\n== " + msg)

    def act(self, msg: str) -> None:
        """Report a change; in a dry run, the change that would be made."""
        self.changes += 1
        self.say(("  would " if self.dry else "  ") + msg)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        self.say("  WARNING: " + msg)

    # -- recorded file operations
    def makedirs(self, d: Path) -> None:
        missing = []
        p = d
        while not p.exists() and p not in self.planned:
            missing.append(p)
            p = p.parent
        for m in reversed(missing):
            self.act(f"create folder {m}")
            self.planned.add(m)
            if not self.dry:
                m.mkdir()
                self.manifest.add_dir(m)
        if missing:
            self.manifest.save()

    def put_file(self, dest: Path, data: bytes, mode: int = 0o644) -> None:
        """Write dest atomically unless it already holds exactly this content and mode."""
        digest = hashlib.sha256(data).hexdigest()
        if dest.is_file() and sha256_file(dest) == digest:
            if sys.platform != "win32" and stat.S_IMODE(dest.stat().st_mode) != mode:
                self.act(f"set mode {mode:o} on {dest}")
                if not self.dry:
                    os.chmod(str(dest), mode)
            if not self.manifest.owns(dest) and not self.dry:
                self.manifest.add_file(dest, digest)  # same content as ours: ours to remove later
                self.manifest.save()
            return
        self.makedirs(dest.parent)
        if dest.exists():
            if not self.manifest.owns(dest):
                self.say(f"  replacing {dest} (not from this installer)")
            self.act(f"update {dest}")
        else:
            self.act(f"write {dest}")
        if self.dry:
            return
        fd, tmp = tempfile.mkstemp(dir=str(dest.parent), prefix=".artcloak-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, str(dest))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.manifest.add_file(dest, digest)
        self.manifest.save()

    # -- steps
    def run(self) -> int:
        a = self.args
        if hasattr(os, "geteuid") and os.geteuid() == 0 and os.environ.get("SUDO_USER"):
            self.warn("running under sudo installs for root, not for you: run the installer without sudo")
        dry = ": DRY RUN, nothing is changed" if self.dry else ""
        self.say(f"artcloak installer {engine_version()} ({self.platform} layout){dry}")
        self.say(f"  data folder: {self.base}")
        if not a.engine_python:
            # which torch (TORCH_TABLE), decided before anything is created: a refusal leaves nothing behind
            venv_py = venv_python(self.venv)
            base_python = Path(a.python).expanduser() if a.python else Path(sys.executable)
            info = self.python_info(venv_py if venv_py.is_file() else base_python)
            self.torch_specs = self.choose_torch(info)
        self.makedirs(self.base)
        if not self.dry:
            for folder, whole in self.layout.engine_folders():
                self.manifest.note_engine_folder(folder, whole)
            self.manifest.save()
        # absolute, not resolved: a venv's python is a symlink that only works under its own name
        python = Path(a.engine_python).expanduser().absolute() if a.engine_python else venv_python(self.venv)
        self.engine_python = python
        if not a.engine_python:
            self.install_engine()
        elif not self.dry and not python.is_file():
            raise Failure(f"--engine-python {python} does not exist")
        models_ok = self.install_models()
        config = {"python": str(python), "models": str(self.models_dir), "version": engine_version()}
        self.step("Engine configuration")
        self.put_file(self.base / CONFIG_NAME, (json.dumps(config, indent=2) + "\n").encode())
        self.install_plugins(config)
        self.manifest.save()
        self.step("Summary")
        self.say(f"  engine python: {python}")
        self.say("  models: %s" % (", ".join(models_ok) or "NONE"))
        for w in self.warnings:
            self.say(f"  warning: {w}")
        if not models_ok:
            self.say("FAILED: no surrogate model could be installed; the engine cannot protect anything.")
            return 1
        if self.dry:
            self.say(f"Dry run: {self.changes} change(s) planned, nothing was changed.")
        elif self.changes:
            self.say(f"Installed ({self.changes} change(s)). Check it with: {launcher_hint()} --check")
        else:
            self.say("Everything was already installed; nothing changed.")
        return 0

    # engine ------------------------------------------------------------------
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
        wanted = {"engine": fingerprint, "torch": " ".join(self.torch_specs),
                  "onnxruntime": a.with_onnxruntime}
        if (python.is_file() and all(state.get(k) == v for k, v in wanted.items())
                and self.probe(python, "import torch, artcloak")):
            self.say(f"  engine {engine_version()} and torch already installed")
            return
        self.install_torch(python)
        self.act(f"install the artcloak engine {engine_version()} into the environment")
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
            target = str(src) + ("[verify]" if a.with_onnxruntime else "")
            # the version number may not change between updates: remove the old engine (not its deps)
            subprocess.run(self.pip(python) + ["uninstall", "--yes", "--quiet", APP],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cmd = self.pip(python) + ["install", target] + self.pip_source()
            if self.call(cmd, None) != 0:
                self.say("  retrying without build isolation")
                self.call(cmd + ["--no-build-isolation"], "installing the engine failed")
        state.update(wanted)
        self.manifest.save()

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

    # models ------------------------------------------------------------------
    def install_models(self) -> list[str]:
        """Install the registered models' weights; returns the models whose encoder is in place."""
        a = self.args
        self.step(f"Model weights ({self.models_dir})")
        registry = load_registry()
        names = [n.strip() for n in a.models.split(",") if n.strip()] if a.models else list(registry.MODELS)
        unknown = [n for n in names if n not in registry.MODELS]
        if unknown:
            raise Failure(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(registry.MODELS)}")
        source = Path(a.models_from).expanduser().resolve() if a.models_from else None
        if source is not None and not source.is_dir():
            raise Failure(f"--models-from {source} is not a folder")
        base_url = (a.models_url.rstrip("/") + "/") if a.models_url else registry.UPSTREAM_URL
        self.makedirs(self.models_dir)
        usable = []
        for name in names:
            spec = registry.MODELS[name]
            problems = [self.fetch_weight(wf, source, base_url) for wf in spec.files]
            if not problems[0]:
                usable.append(name)
                detail = f"; no decoder ({problems[1]}): amplification not measured" if problems[1] else ""
                self.say(f"  {name:<8} ok ({spec.serves}){detail}")
            else:
                self.warn(f"model {name} ({spec.serves}) not installed: {problems[0]}")
        if usable:
            lic = self.models_dir / "LICENSE"
            if source is not None and (source / "LICENSE").is_file():
                self.put_file(lic, (source / "LICENSE").read_bytes())
            elif source is None and not lic.exists():
                data = self.download_bytes(base_url + "LICENSE")
                if data:
                    self.put_file(lic, data)
        return usable

    def fetch_weight(self, wf, source: Path | None, base_url: str) -> str:
        """Put one verified weight file in place; returns "" or why it could not be had."""
        dest = self.models_dir / wf.filename
        if dest.is_file() and self.verify(wf, dest) is None:
            if not self.manifest.owns(dest) and not self.dry:
                self.say(f"  {wf.filename} already present (verified; not managed by this installer)")
            return ""
        if source is not None:
            src = source / wf.filename
            if not src.is_file():
                return f"{wf.filename} is not in {source}"
            problem = self.verify(wf, src)
            if problem:
                return f"{src} {problem}"
            self.act(f"copy {wf.filename} from {source}")
            if not self.dry:
                self.place(src, dest, copy=True)
            return ""
        url = base_url + wf.filename
        self.act(f"download {url}")
        if self.dry:
            return ""
        fd, tmp = tempfile.mkstemp(dir=str(self.models_dir), prefix=".download-")
        os.close(fd)
        tmp = Path(tmp)
        try:
            try:
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as r, open(tmp, "wb") as f:
                    shutil.copyfileobj(r, f, 1 << 20)
            except Exception as e:  # URLError, timeouts, HTTP errors: report and go on with the rest
                return f"downloading {url} failed: {e}"
            problem = self.verify(wf, tmp)
            if problem:
                return f"the download from {url} {problem}; discarded"
            self.place(tmp, dest, copy=False)
            return ""
        finally:
            if tmp.exists():
                tmp.unlink()

    def verify(self, wf, path: Path) -> str | None:
        if git_blob_id(path) != wf.git_blob:
            return "does not match the pinned git blob id (corrupt or a different file)"
        if wf.sha256 and sha256_file(path) != wf.sha256:
            return "does not match the pinned sha256"
        return None

    def place(self, src: Path, dest: Path, copy: bool) -> None:
        if copy:
            fd, tmp = tempfile.mkstemp(dir=str(dest.parent), prefix=".copy-")
            os.close(fd)
            shutil.copyfile(str(src), tmp)
            src = Path(tmp)
        os.chmod(str(src), 0o644)
        os.replace(str(src), str(dest))
        self.manifest.add_file(dest, sha256_file(dest))
        self.manifest.save()

    def download_bytes(self, url: str) -> bytes | None:
        if self.dry:
            return None
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as r:
                return r.read()
        except Exception:
            return None

    # plug-ins ----------------------------------------------------------------
    def install_plugins(self, config: dict) -> None:
        a = self.args
        self.step("GIMP plug-ins")
        targets = [PluginTarget(Path(d).expanduser().resolve(), "gimp3", "GIMP 3 (--gimp-plugins)")
                   for d in a.gimp_plugins]
        targets += [PluginTarget(Path(d).expanduser().resolve(), "gimp2", "GIMP 2.10 (--gimp2-plugins)")
                    for d in a.gimp2_plugins]
        if not a.no_gimp_search:
            seen = {str(t.folder) for t in targets}
            targets += [t for t in self.layout.gimp_targets() if str(t.folder) not in seen]
        if not targets:
            self.warn("no GIMP settings folder found (GIMP 3.x or 2.10, native, Flatpak or Snap): no plug-in "
                      "installed. Start GIMP once and run the installer again, or pass --gimp-plugins DIR.")
            return
        common_dir = REPO / "plugin" / "common"
        common = source_files(common_dir) if common_dir.is_dir() else []
        for t in targets:
            fronts = sorted(p for p in (REPO / "plugin" / t.front).iterdir() if p.is_dir()) \
                if (REPO / "plugin" / t.front).is_dir() else []
            fronts = [f for f in fronts if f.name != "__pycache__"]
            if not fronts:
                self.warn(f"{t.label}: this checkout has no plug-in under plugin/{t.front}; skipped")
                continue
            cfg = dict(config)
            if t.packaging == "snap":
                problem = self.snap_problem(Path(config["python"]))
                if problem:
                    self.warn(f"{t.label}: plug-in NOT installed. {problem}")
                    continue
            self.say(f"  {t.label}: {t.folder}")
            if t.packaging in ("flatpak", "snap"):
                cfg["sandbox"] = t.packaging  # the client starts the engine on the host from a Flatpak
            for front in fronts:
                self.install_front(front, t, common, cfg)
            if t.packaging == "flatpak":
                self.flatpak_permission()

    def snap_problem(self, python: Path) -> str | None:
        """Why a Snap GIMP could not run this engine, or None. Strict confinement shows the snap your
        home without its hidden folders (~/.local/...) and a /usr of its own base snap, not your
        system's: the engine, its Python and the interpreter that Python links to must all lie in
        non-hidden folders of your home (~/snap/gimp/common is the snap's own)."""
        home = self.layout.home
        snap_common = home / "snap" / "gimp" / "common"
        fix = (f"A Snap GIMP sees neither hidden folders in your home nor your system's /usr. To use "
               f"artcloak in it, put the engine in the snap's own folder with a self-contained Python "
               f"(python-build-standalone, unpacked under {snap_common}/python): "
               f"{launcher_hint()} --prefix {snap_common}/artcloak "
               f"--python {snap_common}/python/bin/python3 ; "
               "or use GIMP from your distribution, Flathub or gimp.org, which need none of this.")
        paths = [("the engine folder", self.base), ("the engine's Python", python)]
        try:
            paths.append(("the interpreter it runs", python.resolve()))
        except OSError:
            pass
        for what, p in paths:
            try:
                rel = Path(os.path.abspath(str(p))).relative_to(home)
            except ValueError:
                return f"{what} {p} is outside your home. {fix}"
            hidden = [part for part in rel.parts if part.startswith(".")]
            if hidden:
                return f"{what} {p} is in a hidden folder ({hidden[0]}). {fix}"
        return None

    def flatpak_permission(self) -> None:
        """The Flatpak GIMP starts the engine on the host through flatpak-spawn, which needs the
        talk-name org.freedesktop.Flatpak: offer to grant it (`--flatpak-permission`)."""
        if getattr(self, "flatpak_done", False):
            return
        self.flatpak_done = True
        command = " ".join(FLATPAK_GRANT)
        flatpak = shutil.which("flatpak")
        if flatpak:
            shown = subprocess.run([flatpak, "override", "--user", "--show", FLATPAK_APP],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            if shown.returncode == 0 and re.search(r"(?m)^org\.freedesktop\.Flatpak=talk", shown.stdout):
                self.say("  the Flatpak GIMP may already start programs outside its sandbox "
                         "(talk-name org.freedesktop.Flatpak): nothing to change")
                return
        choice = self.args.flatpak_permission
        if choice == "ask":
            if self.dry or not sys.stdin.isatty():
                choice = "no"
            else:
                answer = input("  The Flatpak GIMP needs permission to start the artcloak engine outside its "
                               f"sandbox.\n  Run `{command}` now? [Y/n] ")
                choice = "no" if answer.strip().lower().startswith("n") else "yes"
        if choice == "no" or not flatpak:
            why = "" if flatpak else " (no `flatpak` command found here)"
            self.warn(f"the Flatpak GIMP cannot start the engine until it is allowed to{why}: run\n"
                      f"      {command}\n    (or run the installer again with --flatpak-permission yes)")
            return
        self.act(f"allow the Flatpak GIMP to start the engine outside its sandbox: {command}")
        if self.dry:
            return
        if subprocess.run([flatpak] + FLATPAK_GRANT[1:]).returncode != 0:
            self.warn(f"`{command}` failed; run it yourself, then restart GIMP")
            return
        self.say("  done: the Flatpak GIMP may now start programs on the host (undo: flatpak override "
                 f"--user --no-talk-name=org.freedesktop.Flatpak {FLATPAK_APP})")

    def install_front(self, front: Path, t: PluginTarget, common: list[Path], cfg: dict) -> None:
        dest = t.folder / front.name
        main_name = front.name + ".py"
        for src in source_files(front):
            rel = src.relative_to(front)
            data = src.read_bytes()
            if str(rel) == main_name:
                self.put_file(dest / rel, with_shebang(data, self.layout.shebang(t.front)), 0o755)
            else:
                self.put_file(dest / rel, data, 0o644)
        for src in common:
            rel = src.relative_to(REPO / "plugin" / "common")
            if (front / rel).exists():
                continue  # the front's own file wins
            self.put_file(dest / rel, src.read_bytes(), 0o644)
        self.put_file(dest / CONFIG_NAME, (json.dumps(cfg, indent=2) + "\n").encode())


# ----------------------------------------------------------------------------- uninstall
def uninstall(base: Path, cache: Path, dry: bool) -> int:
    """Remove exactly what the manifest lists (changed files are kept and named) and the engine's cache."""
    path = base / MANIFEST_NAME
    if not path.is_file():
        print(f"Nothing to uninstall: no installer manifest at {path}")
        return 0
    m = Manifest(path, dry)
    verb = "would remove" if dry else "remove"
    kept = []
    for tree in m.data["trees"]:
        if Path(tree).exists():
            print(f"  {verb} {tree}")
            if not dry:
                shutil.rmtree(tree)
    if cache.is_dir():
        print(f"  {verb} the engine's cache {cache}")
        if not dry:
            shutil.rmtree(str(cache))
    for tree in m.data["engine_trees"]:
        if Path(tree).is_dir():
            print(f"  {verb} {tree} (written by the engine's packages; absent before the install)")
            if not dry:
                shutil.rmtree(tree)
    for f, digest in sorted(m.data["files"].items()):
        p = Path(f)
        if not p.is_file():
            continue
        if sha256_file(p) != digest:
            kept.append(f)
            continue
        print(f"  {verb} {p}")
        if not dry:
            p.unlink()
    for d in reversed([Path(d) for d in m.data["dirs"]]):
        if d == base and not dry and path.is_file():
            path.unlink()  # the manifest goes last, just before its own folder
        remove_dir_if_ours(d, verb, dry)
    if not dry and path.is_file():
        path.unlink()
    for d in reversed([Path(d) for d in m.data["engine_dirs"]]):
        if d.is_dir() and not dry and not any(d.iterdir()):
            d.rmdir()  # absent before the install, made for the engine's cache, empty again
            print(f"  {verb} folder {d}")
    for f in kept:
        print(f"  kept {f}: changed since it was installed")
    print("Uninstalled." if not dry else "Dry run: nothing was removed.")
    return 0


def remove_dir_if_ours(d: Path, verb: str, dry: bool) -> None:
    """A folder the installer created goes once empty; caches Python wrote there go with it."""
    if not d.is_dir():
        return
    cache = d / "__pycache__"
    if cache.is_dir() and not dry:
        shutil.rmtree(str(cache))
    if dry:
        return
    try:
        d.rmdir()
        print(f"  {verb} folder {d}")
    except OSError:
        print(f"  kept folder {d}: it holds files the installer did not put there")


# ----------------------------------------------------------------------------- check
def check(base: Path) -> int:
    """Protect a tiny image through the installed engine, the way the plug-ins call it."""
    cfg_path = base / CONFIG_NAME
    if not cfg_path.is_file():
        print(f"No engine configuration at {cfg_path}: run the installer first.")
        return 1
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    w, h, c = 48, 32, 3
    pixels = bytes((x * 5 + y * 3 + k * 40) % 256 for y in range(h) for x in range(w) for k in range(c))
    env = dict(os.environ)
    if cfg.get("models"):
        env.setdefault("ARTCLOAK_MODELS", cfg["models"])
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="artcloak-check-") as tmp:
        Path(tmp, "in.raw").write_bytes(pixels)
        job = {"op": "protect", "dir": tmp, "input": "in.raw", "output": "out.raw", "width": w, "height": h,
               "channels": c, "format": "u8", "params": {"quality": "fast"}}
        print(f"Protecting a {w}x{h} test image with {cfg['python']} (quality fast)...", flush=True)
        proc = subprocess.Popen([cfg["python"], "-m", "artcloak.worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=env, universal_newlines=True)
        out, _ = proc.communicate(json.dumps(job) + "\n")
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        last = events[-1] if events else {}
        if last.get("event") != "done":
            print(f"FAILED: {last.get('message', 'the engine gave no result')} {last.get('hint', '')}")
            return 1
        size = Path(tmp, last["output"]).stat().st_size
        if size != len(pixels):
            print(f"FAILED: the engine wrote {size} bytes, expected {len(pixels)}")
            return 1
        used = last.get("report", {}).get("models_used", [])
    print("OK: the engine works (models: {}; {:.0f} s). In GIMP: Filters > AI Protection.".format(
        ", ".join(used) or "?", time.time() - start))
    return 0


# ----------------------------------------------------------------------------- entry point
def has_nvidia_gpu() -> bool:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False
    try:
        return subprocess.run([exe, "-L"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def launcher_hint() -> str:
    if sys.platform == "win32":
        return "powershell -ExecutionPolicy Bypass -File install_scripts\\install.ps1"
    return "install_scripts/install.sh"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Install artcloak (engine, model weights, GIMP plug-ins) for this user.")
    add = p.add_argument
    add("--dry-run", action="store_true", help="print the plan and change nothing")
    add("--uninstall", action="store_true", help="remove everything this installer installed")
    add("--check", action="store_true", help="protect a tiny image through the installed engine")
    add("--prefix", metavar="DIR", help="put the engine environment and weights here instead of "
        "the user's data folder")
    add("--python", metavar="PATH", help="the Python that creates the engine's environment "
        "(3.9+; default: the one running this installer)")
    add("--engine-python", metavar="PATH", help="use this existing Python (with artcloak installed) "
        "as the engine instead of creating an environment")
    add("--device", choices=("auto", "cpu", "cuda"), default="auto",
        help="which torch build: auto = CUDA where nvidia-smi works, else CPU (macOS: default build)")
    add("--torch-spec", help="pip requirement for torch (default: the one TORCH_TABLE gives this platform "
        f"and Python, {DEFAULT_TORCH} on Linux and Windows x86_64)")
    add("--torch-index", metavar="URL", help="package index for torch (e.g. a CUDA wheel index)")
    add("--wheels", metavar="DIR", help="install offline from this folder of wheels "
        "(torch and its dependencies, numpy, Pillow, setuptools)")
    add("--system-site-packages", action="store_true",
        help="let the engine environment see the creating Python's packages (e.g. its torch)")
    add("--with-onnxruntime", action="store_true", help="also install onnxruntime (2-3x faster measuring; "
        "note: it keeps a device id under ~/.cache/Microsoft)")
    add("--models", metavar="A,B", help="install only these models (default: every registered one)")
    add("--models-from", metavar="DIR", help="copy the weights from this folder instead of downloading")
    add("--models-url", metavar="URL", help="download the weights from this mirror instead of upstream")
    add("--gimp-plugins", metavar="DIR", action="append", default=[],
        help="also install the GIMP 3 plug-in into this plug-ins folder (repeatable)")
    add("--gimp2-plugins", metavar="DIR", action="append", default=[],
        help="also install the GIMP 2.10 plug-in into this plug-ins folder (repeatable)")
    add("--no-gimp-search", action="store_true", help="only use the folders given on the command line")
    add("--platform", choices=PLATFORMS, default=this_platform(),
        help="folder rules to follow (default: this machine's); for tests")
    add("--machine", help="the CPU the torch choice is made for (default: the engine Python's); for tests")
    add("--os-version", help="the macOS version the torch choice is made for (default: this one's); "
        "for tests")
    add("--flatpak-permission", choices=("ask", "yes", "no"), default="ask",
        help="for a Flatpak GIMP: allow it to start the engine outside its sandbox (runs "
        f"`{' '.join(FLATPAK_GRANT)}`); ask = ask when run in a terminal, else only say how")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.uninstall or args.check:
            layout = Layout(args.platform, Path(os.path.expanduser("~")), dict(os.environ))
            base = Path(args.prefix).expanduser().resolve() if args.prefix else layout.data_dir()
            return uninstall(base, layout.cache_dir(), args.dry_run) if args.uninstall else check(base)
        return Installer(args).run()
    except Failure as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted; run the installer again to finish (or --uninstall to remove what was done).",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
