"""The plug-in's client started from the environments GIMP's packagings give it, with the real client,
worker, engine and weights behind (no part of ours is mocked):

- an AppImage: a bundle folder (APPDIR) whose incompatible libraries are on LD_LIBRARY_PATH, a python3
  that fails first on PATH, PYTHONHOME/PYTHONPATH and GIMP's GI_/GEGL_/BABL_ paths set;
- a Flatpak sandbox: FLATPAK_ID set and a stand-in `flatpak-spawn` on PATH that runs its command the way
  the real one runs it on the host: with ONLY the environment it is given (--env) and in the folder it is
  given (--directory); with the permission missing it fails the way the real one does;
- the Windows essentials and a Snap's variables in the engine's environment, an engine path with spaces
  and non-ASCII letters, and a client without standard streams (GIMP for Windows runs plug-ins with
  pythonw).

Each test asserts a protected result or the clear message. No test reads the real HOME or XDG folders:
each runs with HOME and XDG_* in its own temporary folder.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMON = ROOT / "plugin" / "common"
sys.path.insert(0, str(COMMON))
import artcloak_client as client  # noqa: E402

FAST = {"quality": "fast", "models": "taesana", "robustness": ""}
W, H = 40, 32
PERMISSION = "flatpak override --user --talk-name=org.freedesktop.Flatpak org.gimp.GIMP"
DENIED = ("Portal call failed: GDBus.Error:org.freedesktop.DBus.Error.ServiceUnknown: "
          "The name org.freedesktop.Flatpak was not provided by any .service files")

# flatpak-spawn --host as the real one behaves on the host side: the command sees only --env's variables
# (the real one adds its session helper's few; none of GIMP's sandbox) and starts in --directory.
STANDIN = r'''
import json, os, sys
args = sys.argv[1:]
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
if os.environ.get("STANDIN_DENY"):
    sys.stderr.write(os.environ["STANDIN_DENY"] + "\n")
    sys.exit(1)
if not args or args[0] != "--host":
    sys.exit("flatpak-spawn stand-in: only --host is simulated")
env, directory, i = {}, None, 1
while i < len(args) and args[i].startswith("--"):
    a = args[i]
    if a.startswith("--env="):
        key, value = a[len("--env="):].split("=", 1)
        env[key] = value
    elif a.startswith("--directory="):
        directory = a[len("--directory="):]
    elif a not in ("--watch-bus", "--clear-env"):
        sys.exit("flatpak-spawn stand-in: unknown option " + a)
    i += 1
cmd = args[i:]
if directory:
    os.chdir(directory)
exe = cmd[0]
if os.sep not in exe:
    for folder in env.get("PATH", "").split(os.pathsep):
        if folder and os.access(os.path.join(folder, exe), os.X_OK):
            exe = os.path.join(folder, exe)
            break
os.execve(exe, cmd, env)
'''


def image() -> np.ndarray:
    rng = np.random.default_rng(3)
    img = rng.integers(20, 236, (H, W, 3), dtype=np.uint8)
    img[:, : W // 2] //= 2  # some structure for the encoders
    return img


def protect(**kw) -> tuple[bytes, dict, bytes]:
    data = image().tobytes()
    out, report = client.protect_pixels(data, W, H, 3, "u8", dict(FAST, **kw))
    return out, report, data


def assert_protected(out: bytes, report: dict, data: bytes) -> None:
    assert len(out) == len(data)
    diff = np.abs(np.frombuffer(out, np.uint8).astype(int) - np.frombuffer(data, np.uint8).astype(int))
    assert 0 < diff.max() <= 12, "no protection applied, or far too strong"
    assert report["models_used"] == ["taesana"] and "perceptual" in report


@pytest.fixture
def clean_env(monkeypatch, tmp_path, models_dir):
    """Nothing of this process's own environment: a user's HOME and XDG folders in tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.upper() not in ("PATH", "LANG", "SYSTEMROOT") and not name.startswith("LC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ARTCLOAK_MODELS", str(models_dir))
    monkeypatch.setenv("ARTCLOAK_ENGINE_PYTHON", sys.executable)
    tmp = tmp_path / "t"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return home


# ---- AppImage ------------------------------------------------------------------------------------

def appimage_bundle(tmp_path: Path) -> dict:
    """An AppImage's mounted bundle and the environment its GIMP gives plug-ins."""
    app = tmp_path / "squashfs-root"
    lib, bin_ = app / "usr" / "lib", app / "usr" / "bin"
    lib.mkdir(parents=True)
    bin_.mkdir(parents=True)
    for name in ("libstdc++.so.6", "libz.so.1", "libgomp.so.1"):  # not the host's: "file too short"
        (lib / name).write_text("a library built for another system\n")
    py = bin_ / "python3"
    py.write_text("#!/bin/sh\necho 'bundled python3: wrong ABI' >&2\nexit 1\n")
    py.chmod(0o755)
    return {"APPDIR": str(app), "APPIMAGE": str(tmp_path / "GIMP-3.2.6-x86_64.AppImage"),
            "LD_LIBRARY_PATH": f"{lib}:{lib}/x86_64-linux-gnu", "PYTHONHOME": str(app / "usr"),
            "PYTHONPATH": f"{lib}/python3.12", "GI_TYPELIB_PATH": f"{lib}/girepository-1.0",
            "GEGL_PATH": f"{lib}/gegl-0.4", "BABL_PATH": f"{lib}/babl-0.1", "GTK_PATH": f"{lib}/gtk-3.0",
            "GDK_PIXBUF_MODULE_FILE": f"{lib}/loaders.cache", "PYTHONDONTWRITEBYTECODE": "1",
            "PATH": f"{bin_}:{app}/usr/sbin:{os.environ['PATH']}"}


def test_appimage_environment_breaks_an_inheriting_engine(tmp_path):
    """The stand-in bundle is as hostile as a real one: the engine's Python, inheriting it, fails."""
    env = appimage_bundle(tmp_path)
    env.pop("PYTHONHOME")  # with it the interpreter does not even start; without it, numpy/torch crash
    out = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "file too short" in out.stderr
    py3 = subprocess.run(["python3", "-c", "pass"], env=env, capture_output=True, text=True)
    assert py3.returncode != 0 and "wrong ABI" in py3.stderr


def test_appimage_like_environment_still_protects(clean_env, monkeypatch, tmp_path):
    for key, value in appimage_bundle(tmp_path).items():
        monkeypatch.setenv(key, value)
    env = client.engine_env({"models": None})
    leaked = sorted(k for k in env if k.startswith(("LD_", "PYTHONH", "PYTHONP", "GI_", "GEGL", "BABL", "GTK",
                                                       "GDK", "APP")))
    assert leaked == []
    assert str(tmp_path / "squashfs-root") not in env["PATH"]
    assert_protected(*protect())


# ---- Flatpak -------------------------------------------------------------------------------------

@pytest.fixture
def flatpak(clean_env, monkeypatch, tmp_path):
    """GIMP's Flatpak sandbox as a plug-in sees it, with the stand-in flatpak-spawn first on PATH."""
    bin_ = tmp_path / "app-bin"
    bin_.mkdir()
    spawn = bin_ / "flatpak-spawn"
    spawn.write_text(f"#!{sys.executable} -I\n{STANDIN}")
    spawn.chmod(0o755)
    app = clean_env / ".var" / "app" / "org.gimp.GIMP"
    for sub in ("cache", "data", "config"):
        (app / sub).mkdir(parents=True)
    private_tmp = tmp_path / "sandbox-private-tmp"
    private_tmp.mkdir()
    log = tmp_path / "flatpak-spawn.log"
    for key, value in {"FLATPAK_ID": "org.gimp.GIMP", "PATH": f"{bin_}:/app/bin:/usr/bin:/bin",
                       "XDG_CACHE_HOME": str(app / "cache"), "XDG_DATA_HOME": str(app / "data"),
                       "XDG_CONFIG_HOME": str(app / "config"), "TMPDIR": str(private_tmp),
                       "GI_TYPELIB_PATH": "/app/lib/girepository-1.0", "PYTHONPATH": "/app/lib/python3.12",
                       "LD_LIBRARY_PATH": "/app/lib", "GIMP_SANDBOX_ONLY": "1",
                       "STANDIN_LOG": str(log)}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))  # the sandbox's private /tmp
    return {"log": log, "app": app, "private_tmp": private_tmp}


def spawn_calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def options(call: list[str]) -> tuple[dict, str | None, list[str]]:
    env, directory, i = {}, None, 1
    while call[i].startswith("--"):
        if call[i].startswith("--env="):
            k, v = call[i][6:].split("=", 1)
            env[k] = v
        elif call[i].startswith("--directory="):
            directory = call[i][12:]
        i += 1
    return env, directory, call[i:]


def test_flatpak_starts_the_engine_on_the_host(flatpak):
    out, report, data = protect()
    assert_protected(out, report, data)
    calls = spawn_calls(flatpak["log"])
    job = [c for c in calls if "artcloak.worker" in c]
    assert len(job) == 1, calls
    env, directory, cmd = options(job[0])
    assert job[0][0] == "--host" and cmd == [sys.executable, "-u", "-m", "artcloak.worker"]
    # the job folder is one both sides see (under the app's folder in HOME), not the private /tmp
    jobs = flatpak["app"] / "cache" / "artcloak-jobs"
    assert Path(directory).parent == jobs and not Path(directory).exists(), "job folder not removed"
    assert list(flatpak["private_tmp"].iterdir()) == []
    # only what the engine needs crosses to the host: nothing of the sandbox's own folders and paths
    assert env["HOME"] == os.environ["HOME"] and env["ARTCLOAK_MODELS"] == os.environ["ARTCLOAK_MODELS"]
    assert not {"FLATPAK_ID", "XDG_CACHE_HOME", "XDG_DATA_HOME", "TMPDIR", "GI_TYPELIB_PATH", "PYTHONPATH",
                "LD_LIBRARY_PATH", "GIMP_SANDBOX_ONLY", "STANDIN_LOG"} & set(env), env
    assert "/app" not in env["PATH"]


def test_flatpak_config_alone_selects_the_host(flatpak, monkeypatch, tmp_path):
    """The installer's "sandbox": "flatpak" in the config is read (here without FLATPAK_ID)."""
    monkeypatch.delenv("FLATPAK_ID")
    monkeypatch.delenv("ARTCLOAK_ENGINE_PYTHON")
    cfg = tmp_path / "artcloak-engine.json"
    cfg.write_text(json.dumps({"python": sys.executable, "models": os.environ["ARTCLOAK_MODELS"],
                               "sandbox": "flatpak"}))
    monkeypatch.setenv("ARTCLOAK_CONFIG", str(cfg))
    assert_protected(*protect())
    assert any("artcloak.worker" in c for c in spawn_calls(flatpak["log"]))


def test_flatpak_without_permission_names_the_command(flatpak, monkeypatch):
    monkeypatch.setenv("STANDIN_DENY", DENIED)
    with pytest.raises(client.EngineError) as err:
        protect()
    assert err.value.kind == "engine"
    text = str(err.value)
    assert PERMISSION in text and "ServiceUnknown" in text and "restart GIMP" in text
    assert not any("artcloak.worker" in c for c in spawn_calls(flatpak["log"])), "the job was still tried"
    jobs = flatpak["app"] / "cache" / "artcloak-jobs"
    assert not jobs.exists() or list(jobs.iterdir()) == []


def test_flatpak_engine_missing_on_the_host(flatpak, monkeypatch, tmp_path):
    monkeypatch.setenv("ARTCLOAK_ENGINE_PYTHON", str(tmp_path / "gone" / "bin" / "python"))
    with pytest.raises(client.EngineError) as err:
        protect()
    assert "does not exist" in err.value.message and "outside" in err.value.message
    assert "install" in err.value.hint.lower()


# ---- Snap, Windows: the environment alone --------------------------------------------------------

def test_snap_variables_and_paths_stay_behind():
    environ = {"HOME": "/home/me/snap/gimp/473", "SNAP": "/snap/gimp/473", "SNAP_NAME": "gimp",
               "SNAP_USER_COMMON": "/home/me/snap/gimp/common", "SNAP_LIBRARY_PATH": "/var/lib/snapd/lib/gl",
               "LD_LIBRARY_PATH": "/snap/gimp/473/usr/lib", "PYTHONHOME": "/snap/gimp/473/usr",
               "PATH": "/snap/gimp/473/usr/bin:/snap/gimp/473/bin:/usr/bin:/bin", "LANG": "de_DE.UTF-8",
               "LC_NUMERIC": "C", "XDG_DATA_HOME": "/home/me/snap/gimp/473/.local/share"}
    env = client.engine_env({"models": "/home/me/snap/gimp/common/artcloak/models"}, environ)
    assert env["PATH"] == "/usr/bin:/bin"
    assert not [k for k in env if k.startswith(("SNAP", "LD_", "PYTHONH"))]
    assert env["LANG"] == "de_DE.UTF-8" and env["LC_NUMERIC"] == "C" and env["HOME"] == environ["HOME"]
    assert env["ARTCLOAK_MODELS"] == "/home/me/snap/gimp/common/artcloak/models"


def test_windows_essentials_kept_gimp_bundle_dropped():
    """The names Windows itself needs (in whatever case the system spells them) reach the engine."""
    environ = {"SystemRoot": "C:\\WINDOWS", "windir": "C:\\WINDOWS", "SYSTEMDRIVE": "C:",
               "ComSpec": "C:\\WINDOWS\\system32\\cmd.exe", "PATHEXT": ".COM;.EXE;.BAT",
               "USERPROFILE": "C:\\Users\\Zoë", "APPDATA": "C:\\Users\\Zoë\\AppData\\Roaming",
               "LOCALAPPDATA": "C:\\Users\\Zoë\\AppData\\Local",
               "TEMP": "C:\\Users\\Zoë\\AppData\\Local\\Temp",
               "TMP": "C:\\Users\\Zoë\\AppData\\Local\\Temp", "NUMBER_OF_PROCESSORS": "8",
               "PYTHONHOME": "C:\\Program Files\\GIMP 3\\", "PYTHONPATH": "C:\\Program Files\\GIMP 3\\lib",
               "GI_TYPELIB_PATH": "C:\\Program Files\\GIMP 3\\lib\\girepository-1.0",
               "GEGL_PATH": "x", "BABL_PATH": "y", "GTK_EXE_PREFIX": "z", "ARTCLOAK_CACHE": "D:\\cache"}
    env = client.engine_env({"models": None}, environ)
    for key in ("SystemRoot", "windir", "SYSTEMDRIVE", "ComSpec", "PATHEXT", "USERPROFILE", "APPDATA",
                "LOCALAPPDATA", "TEMP", "TMP", "NUMBER_OF_PROCESSORS", "ARTCLOAK_CACHE"):
        assert env[key] == environ[key], key
    assert not [k for k in env if k.startswith(("PYTHONH", "PYTHONP", "GI_", "GEGL", "BABL", "GTK"))]


def test_engine_path_with_spaces_and_non_ascii(clean_env, monkeypatch, tmp_path):
    """Quoting: an engine and a job folder whose names have spaces and non-ASCII letters (C:\\Users\\Zoë)."""
    folder = tmp_path / "Program Files" / "art cloak é" / "bin"
    folder.mkdir(parents=True)
    wrapper = folder / "python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("ARTCLOAK_ENGINE_PYTHON", str(wrapper))
    jobs = tmp_path / "Temp Zoë"
    jobs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(jobs))
    assert_protected(*protect())
    assert list(jobs.iterdir()) == []


PYTHONW_CLIENT = r"""
import sys, json
sys.path.insert(0, sys.argv[1])
result_path = sys.argv[2]
# what pythonw.exe gives a plug-in: no console streams at all (closed descriptors, None objects)
import os
for fd in (0, 1, 2):
    os.close(fd)
sys.stdout = sys.stderr = sys.stdin = None
import artcloak_client as c
data = bytes((x * 7 + y * 3 + k * 60) % 256 for y in range(32) for x in range(40) for k in range(3))
out, report = c.protect_pixels(data, 40, 32, 3, "u8",
                               {"quality": "fast", "models": "taesana", "robustness": ""})
with open(result_path, "w") as f:
    json.dump({"changed": sum(a != b for a, b in zip(out, data)), "models": report["models_used"]}, f)
"""


def test_client_without_console_streams(clean_env, tmp_path):
    """GIMP for Windows runs plug-ins with pythonw: no stdin/stdout/stderr. The client needs none."""
    result = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-c", PYTHONW_CLIENT, str(COMMON), str(result)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=dict(os.environ, TMPDIR=tempfile.gettempdir()), timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    rec = json.loads(result.read_text())
    assert rec["changed"] > 0 and rec["models"] == ["taesana"]
