"""The installer where GIMP 3 comes from elsewhere: the torch table over the whole platform matrix, a
Flatpak GIMP (the permission it needs to start the engine on the host), a Snap GIMP (the folders its
confinement can reach), the Microsoft Store GIMP's folders, each run as a user would run the installer
(--platform simulates another system's folder rules) in a temporary HOME.

The Snap case also protects through the plug-in it installed, with a Snap-like environment: a protected
result. The engine is this test run's Python (--engine-python), so no environment is built here
(tests/test_install.py builds a real one).
"""
from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALLER = ROOT / "install_scripts" / "install.py"
GRANT = "flatpak override --user --talk-name=org.freedesktop.Flatpak org.gimp.GIMP"


def load_installer():
    """The installer package that install.py runs (install_scripts/artcloak_installer)."""
    sys.path.insert(0, str(INSTALLER.parent))
    try:
        return importlib.import_module("artcloak_installer")
    finally:
        sys.path.remove(str(INSTALLER.parent))


inst = load_installer()


def user_env(home: Path, **extra: str) -> dict:
    """A user's environment with only HOME (and what is given) pointing at the test's folders."""
    keep = ("PATH", "LANG", "SYSTEMROOT", "RUSTUP_HOME", "CARGO_HOME")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("LC_")}
    env.update(HOME=str(home), **extra)
    return env


def run_installer(home: Path, *args: str, env: dict | None = None, expect: int = 0) -> str:
    out = subprocess.run([sys.executable, str(INSTALLER), *args], env=env or user_env(home),
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == expect, f"installer exit {out.returncode}, expected {expect}:\n{text[-5000:]}"
    return text


def plugin_config(folder: Path) -> dict:
    return json.loads((folder / "artcloak-protect" / "artcloak-engine.json").read_text())


# ---- the torch table --------------------------------------------------------------------------

PYTHONS = [(3, m) for m in range(8, 16)]
MACHINES = {"linux": ["x86_64", "aarch64", "armv7l", "ppc64le"], "windows": ["AMD64", "ARM64"],
            "macos": ["arm64", "x86_64"]}
OS_VERSIONS = {"linux": [None], "windows": [None], "macos": [(10, 15), (11, 7), (13, 6), (14, 0), (15, 2)]}


def expected_torch(platform, machine, osv, py):
    """What the project promises, written out by hand: the specs, or a word the refusal must contain."""
    if (platform, machine) in (("linux", "x86_64"), ("linux", "aarch64"), ("windows", "AMD64")):
        return ["torch==2.13.0"] if (3, 10) <= py <= (3, 14) else "Python"
    if platform == "macos" and machine == "arm64":
        if osv < (11, 0):
            return "macOS 11.0 or newer"
        pin = "torch==2.13.0" if osv >= (14, 0) else "torch==2.11.0"
        return [pin] if (3, 10) <= py <= (3, 14) else "Python"
    if platform == "macos" and machine == "x86_64":
        return ["torch==2.2.2", "numpy<2"] if (3, 9) <= py <= (3, 12) else "Python"
    return "no build"


@pytest.mark.parametrize("platform", sorted(MACHINES))
def test_torch_table_over_the_whole_matrix(platform):
    seen = 0
    for machine, osv, py in itertools.product(MACHINES[platform], OS_VERSIONS[platform], PYTHONS):
        want = expected_torch(platform, machine, osv, py)
        try:
            got = inst.torch_choice(platform, machine, osv, py)
        except inst.Failure as e:
            msg = str(e)
            assert isinstance(want, str), f"{platform} {machine} {osv} {py}: refused ({msg}), expected {want}"
            assert want in msg and "Offline" not in msg, msg
            if want == "Python":  # says which Pythons work and how to get one
                assert re.search(r"Python 3\.\d+ to 3\.\d+", msg) and "--python" in msg, msg
                assert ("python.org" in msg) if platform != "linux" else ("apt install" in msg), msg
            seen += 1
            continue
        assert got == want, f"{platform} {machine} {osv} {py}"
        assert all(re.match(r"^[\w.-]+(==|<)[\w.]+$", s) for s in got), "every torch pinned"
        seen += 1
    assert seen == len(MACHINES[platform]) * len(OS_VERSIONS[platform]) * len(PYTHONS)


def test_linux_and_windows_x86_64_keep_the_pinned_cpu_torch():
    assert inst.torch_choice("linux", "x86_64", None, (3, 11)) == [inst.DEFAULT_TORCH] == ["torch==2.13.0"]
    assert inst.torch_choice("windows", "AMD64", None, (3, 11)) == ["torch==2.13.0"]


def test_installer_plans_the_table_torch(tmp_path, models_dir):
    home = tmp_path / "home"
    home.mkdir()
    common = ("--dry-run", "--models-from", str(models_dir), "--no-gimp-search")
    out = run_installer(home, *common, "--platform", "macos", "--machine", "x86_64", "--os-version", "13.6")
    assert "would install torch==2.2.2 numpy<2" in out
    out = run_installer(home, *common, "--platform", "macos", "--machine", "arm64", "--os-version", "13.6")
    assert "would install torch==2.11.0 " in out
    out = run_installer(home, *common, "--platform", "macos", "--machine", "arm64", "--os-version", "14.4")
    assert "would install torch==2.13.0 " in out
    out = run_installer(home, *common, "--platform", "windows", "--machine", "ARM64", expect=1)
    assert "no build for Windows on ARM64" in out and "x64 (AMD64) Python" in out and "Offline" not in out
    assert list(home.iterdir()) == []


def test_too_old_python_is_refused_before_anything_is_made(tmp_path, models_dir):
    """A Python 3.9 (say, macOS's own) for an Apple-silicon Mac: a clear refusal that says how to get one."""
    fake = tmp_path / "python3.9"
    fake.write_text("#!/bin/sh\necho 3.9 arm64 14.5\n")  # what the installer's probe prints
    fake.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    out = run_installer(home, "--platform", "macos", "--python", str(fake), "--models-from", str(models_dir),
                        expect=1)
    assert "torch==2.13.0, the PyTorch for this computer, has builds for Python 3.10 to 3.14" in out
    assert "is 3.9" in out and "python.org" in out and "brew install python@3.12" in out
    assert "Offline" not in out
    assert list(home.iterdir()) == [], "a refused install must leave nothing behind"


# ---- Flatpak -----------------------------------------------------------------------------------

def flatpak_standin(tmp_path: Path, granted: bool = False) -> tuple[Path, Path]:
    """A `flatpak` command that records its arguments (and says the override exists if `granted`)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "flatpak.log"
    shown = "[Session Bus Policy]\\norg.freedesktop.Flatpak=talk\\n" if granted else ""
    (bin_ / "flatpak").write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n'
                                  f'case "$*" in *--show*) printf "{shown}";; esac\nexit 0\n')
    (bin_ / "flatpak").chmod(0o755)
    return bin_, log


@pytest.mark.parametrize("answer", ["yes", "no", "granted"])
def test_flatpak_gimp_gets_the_permission_offered(tmp_path, models_dir, answer):
    home = tmp_path / "home"
    gimp = home / ".var/app/org.gimp.GIMP/config/GIMP/3.0"
    gimp.mkdir(parents=True)
    bin_, log = flatpak_standin(tmp_path, granted=answer == "granted")
    env = user_env(home, PATH=f"{bin_}:{os.environ['PATH']}")
    args = ["--engine-python", sys.executable, "--models-from", str(models_dir)]
    if answer != "granted":
        args += ["--flatpak-permission", answer]
    out = run_installer(home, *args, env=env)
    assert plugin_config(gimp / "plug-ins")["sandbox"] == "flatpak"  # the client reads it
    calls = log.read_text().splitlines()
    ran = [c for c in calls if "--talk-name" in c]
    if answer == "yes":
        assert ran == ["override --user --talk-name=org.freedesktop.Flatpak org.gimp.GIMP"]
        assert f"allow the Flatpak GIMP to start the engine outside its sandbox: {GRANT}" in out
        assert "done: the Flatpak GIMP may now start programs on the host" in out
    elif answer == "no":
        assert ran == [] and GRANT in out and "--flatpak-permission yes" in out
    else:
        assert ran == [] and "nothing to change" in out


# ---- Snap --------------------------------------------------------------------------------------

def test_snap_gimp_is_refused_with_what_to_do_for_a_hidden_engine(tmp_path, models_dir):
    home = tmp_path / "home"
    snap_gimp = home / "snap/gimp/current/.config/GIMP/3.0"
    native = home / ".config/GIMP/3.0"
    snap_gimp.mkdir(parents=True)
    native.mkdir(parents=True)
    out = run_installer(home, "--engine-python", sys.executable, "--models-from", str(models_dir))
    assert not (snap_gimp / "plug-ins").exists()
    assert (native / "plug-ins/artcloak-protect/artcloak-protect.py").is_file()  # the others still get it
    assert "GIMP 3.0 (snap): plug-in NOT installed" in out
    common = home / "snap/gimp/common"
    assert f"--prefix {common}/artcloak --python {common}/python/bin/python3" in out


SNAP_CLIENT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import artcloak_client as c
data = bytes((x * 7 + y * 3 + k * 60) % 256 for y in range(32) for x in range(40) for k in range(3))
out, report = c.protect_pixels(data, 40, 32, 3, "u8", {"quality": "fast", "models": "taesana",
                                                       "robustness": ""})
print(json.dumps({"source": c.engine_config()["source"], "changed": sum(a != b for a, b in zip(out, data)),
                  "models": report["models_used"]}))
"""


def test_snap_gimp_with_a_reachable_engine_protects(tmp_path, models_dir):
    """The engine in the snap's own folder (~/snap/gimp/common), with a self-contained Python there
    (a stand-in that runs this test's Python): installed into the Snap GIMP, and it protects."""
    home = tmp_path / "home"
    snap_gimp = home / "snap/gimp/current/.config/GIMP/3.0"
    snap_gimp.mkdir(parents=True)
    common = home / "snap/gimp/common"
    python = common / "python/bin/python3"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    out = run_installer(home, "--prefix", str(common / "artcloak"), "--engine-python", str(python),
                        "--models-from", str(models_dir))
    assert "NOT installed" not in out
    cfg = plugin_config(snap_gimp / "plug-ins")
    assert cfg["sandbox"] == "snap" and cfg["python"] == str(python)
    assert cfg["models"] == str(common / "artcloak/models")
    # what the snap gives its plug-ins: HOME inside the snap, its own libraries and Python
    env = user_env(home / "snap/gimp/current", SNAP="/snap/gimp/473", SNAP_NAME="gimp",
                   SNAP_USER_COMMON=str(common), LD_LIBRARY_PATH="/snap/gimp/473/usr/lib",
                   PYTHONHOME="/snap/gimp/473/usr", GI_TYPELIB_PATH="/snap/gimp/473/usr/lib/girepository-1.0",
                   PATH=f"/snap/gimp/473/usr/bin:{os.environ['PATH']}",
                   TMPDIR=str(tmp_path))
    env.pop("PYTHONHOME")  # this test's own Python runs the client (GIMP's would have its own home)
    proc = subprocess.run([sys.executable, "-c", SNAP_CLIENT, str(snap_gimp / "plug-ins/artcloak-protect")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "beside the plug-in" in rec["source"] and rec["changed"] > 0 and rec["models"] == ["taesana"]


# ---- Microsoft Store ---------------------------------------------------------------------------

def test_microsoft_store_gimp_folders(tmp_path, models_dir):
    home = tmp_path / "home"
    store = home / "AppData/Local/Packages/GIMP.GIMP_6c8nmhf7ygwc8/LocalCache/Roaming/GIMP/3.0"
    other = home / "AppData/Local/Packages/Microsoft.WindowsCalculator_8wekyb3d8bbwe/LocalCache/Roaming"
    store.mkdir(parents=True)
    other.mkdir(parents=True)
    out = run_installer(home, "--platform", "windows", "--engine-python", sys.executable,
                        "--models-from", str(models_dir))
    main = store / "plug-ins/artcloak-protect/artcloak-protect.py"
    assert main.is_file() and main.read_text().splitlines()[0] == "#!/usr/bin/env python3"
    assert "GIMP 3.0 (msstore)" in out
    cfg = plugin_config(store / "plug-ins")
    assert cfg["python"] == sys.executable and cfg["models"] == str(home / "AppData/Local/artcloak/models")
    assert "sandbox" not in cfg
    assert not (other / "GIMP").exists()
    run_installer(home, "--platform", "windows", "--uninstall")
    assert not (store / "plug-ins").exists()


def test_install_sh_prefers_a_python_pytorch_has_builds_for(tmp_path):
    """install.sh takes python3.12 before a plain python3 (which may be macOS's own 3.9)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "python3").write_text("#!/bin/sh\necho 'the plain python3 ran'\n")
    (bin_ / "python3.12").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for p in bin_.iterdir():
        p.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    out = subprocess.run(["sh", str(ROOT / "install_scripts" / "install.sh"), "--help"], capture_output=True,
                         text=True, env=user_env(home, PATH=f"{bin_}:/usr/bin:/bin"), timeout=60)
    assert out.returncode == 0 and "--flatpak-permission" in out.stdout, out.stdout + out.stderr
    assert "plain python3" not in out.stdout
