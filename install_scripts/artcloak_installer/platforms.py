"""Which computer this is: the platform names, the torch each platform gets (TORCH_TABLE), and each
platform's folder rules (Layout)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .common import APP, Failure

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
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
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


def has_nvidia_gpu() -> bool:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False
    try:
        return subprocess.run([exe, "-L"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False

