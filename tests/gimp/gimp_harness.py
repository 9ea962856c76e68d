"""Run a Python script inside a real, headless GIMP 3 with the repository's plug-in and engine.

Two GIMPs: 3.0 (Debian 13's package: from the host on Debian 13+, else the trixie chroot that
ensure_gimp.sh builds, default /var/tmp/gimp3-root) and 3.2 (Debian sid's, the chroot that
`GIMP3_SUITE=sid ensure_gimp.sh` builds, default /var/tmp/gimp32-root; GIMP32_ROOT moves it). Both are
started as `gimp-console-3` (3.2 has no `gimp-console-3.0`; plain `gimp-console` may be GIMP 2.10 on a
host). A chroot is entered in a private mount namespace (unshare -m) with /proc, /dev,
/sys, a fresh tmpfs /tmp, and bind mounts at the same paths of what the plug-in needs from the host:
the repository, the engine's venv and its base Python, the model weights and the work folder.

The engine is the Python running pytest (sys.executable: the repo's venv here, the venv .ci/run
creates in CI); the plug-in finds it through ARTCLOAK_ENGINE_PYTHON.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "plugin" / "gimp3"
CHROOTS = {"3.0": Path(os.environ.get("GIMP3_ROOT", "/var/tmp/gimp3-root")),
           "3.2": Path(os.environ.get("GIMP32_ROOT", "/var/tmp/gimp32-root"))}
CHROOT = CHROOTS["3.0"]
GIMP = "gimp-console-3"  # GIMP 3.0 and 3.2 alike
GUI_GIMP = "gimp-3"
# Work folders live under /var/tmp: a chroot gets its own tmpfs /tmp (host /tmp paths also work,
# they are bind-mounted after that tmpfs, but /var/tmp keeps big files off RAM).
WORK_PARENT = "/var/tmp"
PASSED = ("ARTCLOAK_CLOAK", "ARTCLOAK_THREADS")  # the engine's settings a run takes from the tests' env

# the namespace side: mounts, then chroot with a clean environment
_ENTER = r"""
set -e
R=$1; shift
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t sysfs sys "$R/sys"
mount -t tmpfs tmpfs "$R/tmp" -o mode=1777
while [ "$1" != "--" ]; do
  p=${1%:ro}; mkdir -p "$R$p"; mount --bind "$p" "$R$p"
  [ "$p" = "$1" ] || mount -o remount,bind,ro "$R$p"
  shift
done
shift
exec chroot "$R" "$@"
"""


@functools.cache
def host_version() -> str | None:
    """The major.minor of the GIMP 3 installed on the host, or None."""
    if not shutil.which(GIMP):
        return None
    try:
        out = subprocess.run([GIMP, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"version (3\.\d+)", out)
    return m.group(1) if m else None


def mode(version: str = "3.0") -> str | None:
    """"host" (this GIMP installed here), "chroot" (ensure_gimp.sh's chroot, as root) or None."""
    if host_version() == version:
        return "host"
    root = CHROOTS[version]
    if (root / "usr/bin" / GIMP).exists() and os.geteuid() == 0 and shutil.which("unshare"):
        return "chroot"
    return None


def _bare(path: str) -> str:
    return path[:-3] if path.endswith(":ro") else path


def _outermost(paths: list[str]) -> list[str]:
    """Drop paths inside another listed path (one bind mount covers them); outer ones first."""
    out: list[str] = []
    for p in sorted(set(paths), key=lambda s: (len(_bare(s)), s)):
        if not any(_bare(p) == _bare(o) or _bare(p).startswith(_bare(o) + "/") for o in out):
            out.append(p)
    return out


@dataclass
class Gimp3:
    """One GIMP configuration (home, gimprc) reused by several runs: only the first start is cold."""

    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="artcloak-gimp-",
                                                                     dir=WORK_PARENT)))
    engine_python: str = sys.executable
    version: str = "3.0"

    def __post_init__(self) -> None:
        self.home = self.work / "home"
        self.home.mkdir(parents=True, exist_ok=True)

    def binds(self) -> list[str]:
        paths = [str(REPO), str(self.work)]
        engine = Path(self.engine_python)
        if engine.is_absolute() and engine.exists():
            paths.append(str(Path(sys.prefix)))  # the venv
            paths.append(str(Path(sys.base_prefix)) + ":ro")  # the interpreter the venv points at
            paths.append(str(engine.resolve().parent.parent) + ":ro")
        for d in os.environ.get("ARTCLOAK_MODELS", "").split(os.pathsep):
            if d and Path(d).is_dir():
                paths.append(str(Path(d).resolve()) + ":ro")
        if os.environ.get("ARTCLOAK_CLOAK"):  # a development instant cloak (and its sidecar) beside it
            paths.append(str(Path(os.environ["ARTCLOAK_CLOAK"]).resolve().parent) + ":ro")
        # what the engine imports from: a venv may extend another's packages through a .pth file
        paths += [str(Path(p).resolve()) + ":ro" for p in sys.path
                  if p.endswith("site-packages") and Path(p).is_dir()]
        system = ("/", "/usr", "/var", "/var/tmp", "/bin", "/lib")
        if str(Path(sys.base_prefix)) in system:
            raise RuntimeError(
                f"the engine venv's Python lives in {sys.base_prefix}, which the Debian 13 chroot has its "
                "own of: build the venv from a Python installed elsewhere (pyenv, /opt) or use Debian 13")
        return [p for p in _outermost(paths) if _bare(p) not in system]  # never shadow the chroot's own

    def _gimprc(self, gui: bool) -> Path:
        rc = self.work / "gimprc"  # GIMP rewrites it at exit: written fresh for every run
        path = f"${{gimp_dir}}/plug-ins:${{gimp_plug_in_dir}}/plug-ins:{PLUGIN_DIR}"
        text = f'(prev-language "C.UTF-8")\n(plug-in-path "{path}")\n'
        if gui:
            text += "(show-welcome-dialog no)\n(show-tips no)\n"
        rc.write_text(text)
        return rc

    def run(self, script: Path, env: dict[str, str] | None = None, timeout: float = 600,
            gui: bool = False, binds: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """Run `script` with GIMP's python-fu-eval batch interpreter; return the finished process.

        `env` adds variables for GIMP, the script and the plug-in (the engine python and models are set
        unless `env` overrides them). `gui`: the full GIMP on env's DISPLAY (for the dialog screenshot;
        bind /tmp/.X11-unix then). `binds`: more host paths for the chroot.
        """
        how = mode(self.version)
        if how is None:
            raise RuntimeError(f"no GIMP {self.version}: run tests/gimp/ensure_gimp.sh (as root) first")
        os.chmod(PLUGIN_DIR / "artcloak-protect" / "artcloak-protect.py", 0o755)  # GIMP runs executables only
        variables = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(self.home),
                     "ARTCLOAK_ENGINE_PYTHON": self.engine_python,
                     "ARTCLOAK_MODELS": os.environ.get("ARTCLOAK_MODELS", "")}
        variables.update({k: v for k, v in os.environ.items() if k in PASSED})
        variables.update(env or {})
        # -i no UI, -d no brushes/patterns, -f no fonts, -c console messages
        flags = ["-d", "-f"] if gui else ["-i", "-d", "-f", "-c"]
        argv = [GUI_GIMP if gui else GIMP, *flags, f"--gimprc={self._gimprc(gui)}",
                "--batch-interpreter=python-fu-eval", "-b", f"exec(open({str(script)!r}).read())", "--quit"]
        if how == "chroot":
            argv = (["unshare", "--mount", "--propagation", "private", "--", "bash", "-c", _ENTER, "_",
                     str(CHROOTS[self.version]), *self.binds(), *binds, "--", "/usr/bin/env", "-i"]
                    + [f"{k}={v}" for k, v in variables.items()] + argv)
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  env={"PATH": os.environ["PATH"]})
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=variables)

    def cleanup(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
