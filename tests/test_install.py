"""The real installer (install_scripts/install.py), run as a user would, into temporary homes.

It runs from a copy of the checkout made once per session (as from an unpacked download; edits to
the working tree during the session cannot change what is being installed).

One real engine environment is built per session (offline, from a wheel folder: torch 2.13.0 CPU
and the engine's dependencies) and reused; the other layouts (macOS, Windows, Flatpak, Snap, GIMP
2.10) point --engine-python at it, so they cost well under a second each.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO  # replaced by the session's copy of the checkout (fixture `checkout`)
TORCH = "torch==2.13.0"  # the CPU wheel on this disk; any other spec may pull a CUDA build
# the real home, for tools installed per user (pyenv, rustup); tests/conftest.py moves HOME
REAL_HOME = Path(os.environ.get("ARTCLOAK_TEST_REAL_HOME") or Path.home())
# the default install's optional parts (pyproject's extras fast and lpips): the offline folder has them too
OPTIONAL = ("onnxruntime>=1.16", "onnx>=1.14", "stlpips-pytorch==0.0.2")
SCRUB = ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "APPDATA", "LOCALAPPDATA",
         "ARTCLOAK_MODELS", "ARTCLOAK_ENGINE_PYTHON", "ARTCLOAK_CONFIG", "ARTCLOAK_CACHE", "PYTHONPATH")


def load_installer(root: Path):
    """The installer package (install_scripts/artcloak_installer) of the checkout at root."""
    for name in [n for n in sys.modules if n.split(".")[0] == "artcloak_installer"]:
        del sys.modules[name]  # a fresh import from this root, not the one loaded before
    sys.path.insert(0, str(root / "install_scripts"))
    try:
        return importlib.import_module("artcloak_installer")
    finally:
        sys.path.remove(str(root / "install_scripts"))


inst = load_installer(REPO)


@pytest.fixture(scope="session", autouse=True)
def checkout(tmp_path_factory):
    """What a user downloads: the installer, the engine and the plug-ins, frozen for this session."""
    global SRC, inst
    d = tmp_path_factory.mktemp("checkout")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, d / name)
    for name in ("engine", "plugin", "install_scripts"):
        shutil.copytree(REPO / name, d / name, ignore=skip)
    SRC, inst = d, load_installer(d)
    return d


def home_env(home: Path, **extra: str) -> dict:
    """A user's environment with HOME moved; tools pip runs (rustc via rustup) keep their real homes."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    real = REAL_HOME
    for var, default in (("RUSTUP_HOME", real / ".rustup"), ("CARGO_HOME", real / ".cargo")):
        if var not in env and default.is_dir():
            env[var] = str(default)
    env["HOME"] = str(home)
    env.update(extra)
    return env


def run_installer(home: Path, *args: str, python: str = sys.executable, env: dict | None = None,
                  expect: int = 0, timeout: int = 600) -> str:
    installer = SRC / "install_scripts" / "install.py"
    out = subprocess.run([python, str(installer), *args], env=env or home_env(home), capture_output=True,
                         text=True, timeout=timeout)
    text = out.stdout + out.stderr
    assert out.returncode == expect, f"installer exit {out.returncode}, expected {expect}:\n{text[-6000:]}"
    return text


def snapshot(root: Path) -> dict:
    """Every path under root with its type, mode, size and mtime: any write shows up."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            found[str(p.relative_to(root))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                               st.st_size if stat.S_ISREG(st.st_mode) else 0,
                                               st.st_mtime_ns if stat.S_ISREG(st.st_mode) else 0)
    return found


def make_gimp_dirs(home: Path, *rel: str) -> None:
    for r in rel:
        (home / r).mkdir(parents=True, exist_ok=True)


def fronts(kind: str) -> list[str]:
    folder = SRC / "plugin" / kind
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name != "__pycache__")


def check_front(folder: Path, name: str, shebang: str, engine_python: Path, models: Path) -> dict:
    """A plug-in installed the way GIMP needs it; returns its engine config."""
    main = folder / name / (name + ".py")
    assert main.is_file(), f"{main} missing"
    assert main.stat().st_mode & 0o111, f"{main} is not executable"
    assert main.read_text(encoding="utf-8").splitlines()[0] == shebang
    kind = "gimp3" if shebang.endswith("python3") else "gimp2"
    for src in (SRC / "plugin" / "common").iterdir():
        own = SRC / "plugin" / kind / name / src.name
        if src.is_file() and src.suffix != ".pyc":
            expected = own if own.is_file() else src
            assert (folder / name / src.name).read_bytes() == expected.read_bytes()
    cfg = json.loads((folder / name / "artcloak-engine.json").read_text(encoding="utf-8"))
    assert Path(cfg["python"]) == engine_python
    assert Path(cfg["models"]) == models
    assert cfg["version"] == inst.engine_version()
    return cfg


# ----------------------------------------------------------------------------- the real install
class Session:
    """One real install into a Linux home with every GIMP packaging; the last test uninstalls it."""

    def __init__(self, factory, models_dir: Path):
        self.factory, self.models_dir = factory, models_dir
        self.home: Path | None = None

    def wheels(self) -> Path:
        d = self.factory.mktemp("wheels")
        out = subprocess.run([sys.executable, "-m", "pip", "download", "--no-cache-dir", "-q", "-d", str(d),
                              TORCH, "numpy>=1.23", "Pillow>=11", "setuptools>=61", "wheel", *OPTIONAL],
                             capture_output=True, text=True, timeout=600, env=home_env(REAL_HOME))
        assert out.returncode == 0, "could not gather the offline wheel folder:\n" + out.stderr[-3000:]
        return d

    def get(self) -> Session:
        if self.home is not None:
            return self
        home = self.factory.mktemp("home-linux")
        make_gimp_dirs(home, ".config/GIMP/3.0", ".config/GIMP/2.10/plug-ins/someone-else",
                       ".var/app/org.gimp.GIMP/config/GIMP/3.0", "snap/gimp/current/.config/GIMP/3.2",
                       ".config/GIMP/2.8")
        (home / ".config/GIMP/2.10/plug-ins/someone-else/someone-else.py").write_text("# not ours\n")
        self.before = snapshot(home)
        wheels = self.wheels_dir = self.wheels()
        # offline from the wheel folder alone: no pip config, no other index or find-links
        env = home_env(home, PIP_CONFIG_FILE=os.devnull)
        for k in [k for k in env if k.startswith("PIP_") and k != "PIP_CONFIG_FILE"]:
            del env[k]
        self.args = ("--models-from", str(self.models_dir), "--wheels", str(wheels), "--torch-spec", TORCH,
                     "--device", "cpu")
        start = time.monotonic()
        self.output = run_installer(home, *self.args, env=env)
        self.seconds = time.monotonic() - start
        self.env = env
        self.home = home
        self.data = home / ".local/share/artcloak"
        self.python = inst.venv_python(self.data / "venv")
        return self


@pytest.fixture(scope="session")
def session_install(tmp_path_factory, models_dir):
    s = Session(tmp_path_factory, models_dir)
    yield s
    # pytest keeps its last temp folders: don't leave a 1 GB environment or 200 MB of wheels there
    if s.home is not None:
        shutil.rmtree(s.home, ignore_errors=True)
    if getattr(s, "wheels_dir", None):
        shutil.rmtree(s.wheels_dir, ignore_errors=True)


@pytest.fixture
def installed(session_install) -> Session:
    return session_install.get()


def test_data_folder_rules_match_the_engine_and_the_client():
    from artcloak import folders
    from artcloak.models.loader import search_path

    spec = importlib.util.spec_from_file_location("_client_for_install_test",
                                                  SRC / "plugin" / "common" / "artcloak_client.py")
    artcloak_client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(artcloak_client)
    layout = inst.Layout(inst.this_platform(), Path.home(), dict(os.environ))
    assert layout.data_dir() == folders.data_dir()
    assert Path(artcloak_client.user_data_dir()) == layout.data_dir()
    assert search_path()[-1] == folders.data_dir() / "models"


@pytest.mark.parametrize("platform,name", [("win32", "windows"), ("darwin", "macos"), ("linux", "linux")])
@pytest.mark.parametrize("xdg", [False, True])
def test_folder_rules_agree_on_every_platform(platform, name, xdg, tmp_path, monkeypatch):
    """The engine's folders (the reference), the installer's Layout and the client's user_data_dir
    give the same data and cache folders on each platform, with and without XDG/LOCALAPPDATA set."""
    from artcloak import folders

    home = tmp_path / "home"
    env = {"HOME": str(home)}
    if xdg:
        env.update(XDG_DATA_HOME=str(tmp_path / "xdata"), XDG_CACHE_HOME=str(tmp_path / "xcache"),
                   LOCALAPPDATA=str(tmp_path / "local"))
    layout = inst.Layout(name, home, env)
    assert folders.data_dir(platform, home, env) == layout.data_dir()
    assert folders.cache_dir(platform, home, env) == layout.cache_dir()
    assert folders.cache_dir(platform, home, dict(env, ARTCLOAK_CACHE=str(tmp_path / "c"))) == tmp_path / "c"
    spec = importlib.util.spec_from_file_location("_client_for_folders_test",
                                                  SRC / "plugin" / "common" / "artcloak_client.py")
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    for key in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(client.sys, "platform", platform)
    assert Path(client.user_data_dir()) == layout.data_dir()


def test_git_blob_id_agrees_with_the_engine(tmp_path):
    """The installer's chunked git_blob_id and the engine's (the reference) give git's blob id."""
    from artcloak.models.loader import git_blob_id

    for size in (0, 5, (1 << 20) + 7):
        data = bytes((i * 31) % 256 for i in range(size))
        f = tmp_path / f"w{size}.pth"
        f.write_bytes(data)
        assert inst.git_blob_id(f) == git_blob_id(data)
    assert git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git hash-object /dev/null


def test_real_install_lays_out_every_gimp(installed):
    s, h = installed, installed.home
    assert s.python.is_file() and os.access(s.python, os.X_OK)
    models = s.data / "models"
    for f in ("taef2_encoder.pth", "taef2_decoder.pth", "taesana_encoder.pth"):
        assert (models / f).read_bytes() == (s.models_dir / f).read_bytes()
    cfg = json.loads((s.data / "artcloak-engine.json").read_text())
    assert Path(cfg["python"]) == s.python
    gimp3 = [(h / ".config/GIMP/3.0/plug-ins", None),
             (h / ".var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins", "flatpak")]
    # a Snap cannot reach an engine in ~/.local (tests/test_install_platforms.py: what it can reach)
    assert not (h / "snap/gimp/current/.config/GIMP/3.2/plug-ins").exists()
    assert "GIMP 3.2 (snap): plug-in NOT installed" in s.output
    assert "flatpak override --user --talk-name=org.freedesktop.Flatpak org.gimp.GIMP" in s.output
    assert fronts("gimp3"), "no GIMP 3 front in plugin/gimp3"
    for folder, sandbox in gimp3:
        for name in fronts("gimp3"):
            cfg = check_front(folder, name, "#!/usr/bin/env python3", s.python, models)
            assert cfg.get("sandbox") == sandbox
    for name in fronts("gimp2"):
        check_front(h / ".config/GIMP/2.10/plug-ins", name, "#!/usr/bin/env python2", s.python, models)
    assert (h / ".config/GIMP/2.10/plug-ins/someone-else/someone-else.py").read_text() == "# not ours\n"
    assert not (h / ".config/GIMP/2.8/plug-ins").exists(), "GIMP 2.8 is not supported: nothing goes there"
    assert "model taesd (" in s.output and "not installed" in s.output, "a missing model must be reported"
    # the engine environment has the pinned CPU torch and the engine, not an editable checkout
    code = "import torch, artcloak, sys; print(torch.__version__, torch.version.cuda, artcloak.__file__)"
    out = subprocess.run([str(s.python), "-c", code], capture_output=True, text=True, env=s.env)
    version, cuda, where = out.stdout.split()
    assert version.split("+")[0] == TORCH.split("==")[1] and cuda == "None"
    assert str(s.data / "venv") in where, where
    # the default install is the product: onnxruntime and the LPIPS weights (hash checked) are in it
    assert "onnxruntime: installed" in s.output and "the LPIPS weights: installed" in s.output
    assert "optional parts: onnxruntime, the LPIPS weights" in s.output
    code = ("import json, onnxruntime; from artcloak.cli import doctor; "
            "print(json.dumps(doctor.parts()))")
    out = subprocess.run([str(s.python), "-c", code], capture_output=True, text=True, env=s.env)
    assert out.returncode == 0, out.stderr[-3000:]
    parts = json.loads(out.stdout)
    assert parts["onnxruntime"]["installed"] and parts["onnxruntime"]["cost"] is None
    assert parts["lpips"]["hash_ok"] and str(s.data / "venv") in parts["lpips"]["path"]


def test_engine_runs_through_the_installed_plugin_config(installed):
    """What GIMP does: the installed client, finding the engine only through its installed config."""
    folder = installed.home / ".config/GIMP/3.0/plug-ins" / fronts("gimp3")[0]
    code = (
        "import sys, json\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import artcloak_client as c\n"
        "w, h, ch = 40, 32, 3\n"
        "data = bytes((x * 7 + y * 3 + k * 60) % 256\n"
        "             for y in range(h) for x in range(w) for k in range(ch))\n"
        "seen = []\n"
        "params = {'quality': 'fast', 'models': 'taesana', 'robustness': ''}  # the quickest real run\n"
        "out, report = c.protect_pixels(data, w, h, ch, 'u8', params,\n"
        "                               progress=lambda f, m: seen.append(f))\n"
        "print(json.dumps({'cfg': c.engine_config()['source'], 'n': len(out),\n"
        "                  'changed': sum(a != b for a, b in zip(out, data)),\n"
        "                  'models': report.get('models_used'), 'progress': len(seen)}))\n")
    env = dict(installed.env)
    out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert str(folder) in result["cfg"], result
    assert result["n"] == 40 * 32 * 3 and result["changed"] > 0 and result["progress"] > 0
    assert result["models"] == ["taesana"]


def test_check_command_protects_through_the_install(installed, tmp_path):
    """The README's second command: a tiny protection through the installed engine's worker."""
    out = run_installer(installed.home, "--check", env=installed.env)
    assert "OK: the engine works" in out and "taef2" in out
    # what is installed, what is missing and what that costs (artcloak doctor's words)
    assert "onnxruntime: 1." in out and "LPIPS:       ok" in out
    assert "missing:     taesd" in out and "cost of the missing surrogates" in out
    assert "cost of the missing onnxruntime" not in out and "cost of the missing LPIPS" not in out
    out = run_installer(tmp_path, "--check", expect=1)  # nothing installed in this home
    assert "run the installer first" in out


def test_second_run_changes_nothing(installed):
    before = snapshot(installed.home)
    start = time.monotonic()
    out = run_installer(installed.home, *installed.args, env=installed.env)
    assert "nothing changed" in out, out[-3000:]
    assert time.monotonic() - start < 60
    assert snapshot(installed.home) == before


def test_changed_engine_is_reinstalled(installed):
    """An update: when the engine's source differs from what was installed, the engine is reinstalled."""
    manifest = installed.data / "install-manifest.json"
    data = json.loads(manifest.read_text())
    data["state"]["engine"] = "an older engine"
    manifest.write_text(json.dumps(data))
    out = run_installer(installed.home, *installed.args, env=installed.env)
    assert "install the artcloak engine" in out and "torch already available" in out
    assert json.loads(manifest.read_text())["state"]["engine"] == inst.engine_fingerprint()
    check = subprocess.run([str(installed.python), "-c", "import artcloak.worker"], env=installed.env)
    assert check.returncode == 0


def test_minimal_after_a_full_install_removes_the_parts_and_a_full_run_brings_them_back(installed):
    has = ("import importlib.util as u, sys; "
           "sys.exit(0 if u.find_spec('onnxruntime') and u.find_spec('stlpips_pytorch') else 3)")
    out = run_installer(installed.home, *installed.args, "--minimal", env=installed.env)
    assert "onnxruntime: left out (--minimal). Cost: " in out and "the LPIPS weights: left out" in out
    assert subprocess.run([str(installed.python), "-c", has]).returncode == 3
    out = run_installer(installed.home, *installed.args, env=installed.env)
    assert "onnxruntime: installed" in out and "the LPIPS weights: installed" in out
    assert subprocess.run([str(installed.python), "-c", has]).returncode == 0


def test_offline_without_the_optional_wheels_installs_and_says_what_it_costs(tmp_path, models_dir, installed):
    """A wheel folder without onnxruntime, onnx and stlpips-pytorch (like a platform with no wheel for them):
    the engine is installed without them, and the installer names each missing part and its cost."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for w in installed.wheels_dir.iterdir():
        if not w.name.lower().startswith(("onnxruntime-", "onnx-", "stlpips")):
            (wheels / w.name).symlink_to(w)
    home = tmp_path / "home"
    home.mkdir()
    before = snapshot(home)
    args = ("--models-from", str(models_dir), "--models", "taef2", "--wheels", str(wheels), "--torch-spec",
            TORCH, "--device", "cpu", "--no-gimp-search")
    out = run_installer(home, *args, env=dict(installed.env, HOME=str(home)))
    assert f"onnxruntime NOT installed (not in the wheel folder {wheels})" in out
    assert "1.5-2x slower" in out and "the LPIPS weights NOT installed" in out and "LPIPS bound" in out
    python = inst.venv_python(home / ".local/share/artcloak/venv")
    code = ("import artcloak, importlib.util as u; "
            "assert u.find_spec('onnxruntime') is None and u.find_spec('stlpips_pytorch') is None")
    probe = subprocess.run([str(python), "-c", code])
    assert probe.returncode == 0
    out = run_installer(home, *args, env=dict(installed.env, HOME=str(home)))
    assert "nothing changed" in out and "onnxruntime NOT installed" in out, "a second run says it again"
    run_installer(home, "--uninstall", env=dict(installed.env, HOME=str(home)))
    assert snapshot(home) == before


def test_minimal_leaves_the_optional_parts_out_and_says_what_it_costs(tmp_path, models_dir):
    home = tmp_path / "home"
    home.mkdir()
    out = run_installer(home, "--dry-run", "--minimal", "--models-from", str(models_dir),
                        "--torch-spec", TORCH)
    assert "would install the artcloak engine" in out and "without its optional parts (--minimal)" in out
    out = run_installer(home, "--dry-run", "--models-from", str(models_dir), "--torch-spec", TORCH)
    assert "with onnxruntime and the LPIPS weights" in out


def test_optional_parts_match_pyproject_and_doctor():
    """The installer's parts are pyproject's extras, their costs are artcloak doctor's words, and a failed
    install falls back through every smaller set down to none."""
    import tomllib
    from artcloak.cli import doctor

    extras = tomllib.loads((SRC / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    parts = {p.extra: p for p in inst.OPTIONAL_PARTS}
    assert set(parts) == {"fast", "lpips"} <= set(extras)
    for extra, part in parts.items():  # the packages a later --minimal run removes are the extra's
        assert sorted(part.packages) == sorted(re.split(r"[<>=!~; ]", r)[0] for r in extras[extra])
    assert extras["verify"] == ["artcloak[fast,lpips]"], "CI measures with what a default install has"
    assert parts["fast"].cost == doctor.COST_ONNXRUNTIME and parts["lpips"].cost == doctor.COST_LPIPS
    assert inst.part_attempts(["fast", "lpips"]) == [["fast", "lpips"], ["lpips"], ["fast"], []]
    assert inst.part_attempts([]) == [[]]


def test_dry_run_touches_nothing(tmp_path, models_dir):
    home = tmp_path / "home"
    make_gimp_dirs(home, ".config/GIMP/3.0")
    before = snapshot(home)
    out = run_installer(home, "--dry-run", "--models-from", str(models_dir), "--torch-spec", TORCH)
    assert snapshot(home) == before
    assert "would create a Python virtual environment" in out
    assert "would copy taef2_encoder.pth" in out
    assert f"would write {home}/.config/GIMP/3.0/plug-ins/" in out
    assert "nothing was changed" in out


def pick_weights(tmp_path: Path, models_dir: Path, names: list[str]) -> Path:
    d = tmp_path / "weights"
    d.mkdir()
    for n in names:
        shutil.copyfile(models_dir / n, d / n)
    return d


def test_missing_model_is_reported_and_the_rest_installed(tmp_path, models_dir, installed):
    home = tmp_path / "home"
    make_gimp_dirs(home, ".config/GIMP/3.0")
    weights = pick_weights(tmp_path, models_dir, ["taef2_encoder.pth", "taef2_decoder.pth"])
    out = run_installer(home, "--engine-python", str(installed.python), "--models-from", str(weights),
                        "--models", "taef2,taesana")
    assert "model taesana (" in out and "not installed" in out
    assert (home / ".local/share/artcloak/models/taef2_encoder.pth").is_file()
    assert not (home / ".local/share/artcloak/models/taesana_encoder.pth").exists()
    out = run_installer(home, "--engine-python", str(installed.python), "--models-from", str(weights),
                        "--models", "taesana", expect=1)
    assert "no surrogate model could be installed" in out


def test_download_verifies_hashes(tmp_path, models_dir, installed):
    """Weights come by URL (a file:// mirror here) and a file that fails its pinned hash is discarded."""
    home = tmp_path / "home"
    home.mkdir()
    mirror = pick_weights(tmp_path, models_dir, ["taef2_encoder.pth", "taesana_encoder.pth"])
    data = bytearray((mirror / "taef2_encoder.pth").read_bytes())
    data[len(data) // 2] ^= 1
    (mirror / "taef2_encoder.pth").write_bytes(bytes(data))
    out = run_installer(home, "--engine-python", str(installed.python), "--models-url", mirror.as_uri(),
                        "--models", "taef2,taesana", "--no-gimp-search")
    models = home / ".local/share/artcloak/models"
    assert "does not match the pinned" in out
    assert not (models / "taef2_encoder.pth").exists()
    assert (models / "taesana_encoder.pth").read_bytes() == (models_dir / "taesana_encoder.pth").read_bytes()
    assert not [p for p in models.iterdir() if p.name.startswith(".")], "temporary download left behind"


@pytest.mark.parametrize("platform, gimp_dirs, data, plugin_roots", [
    ("macos", ["Library/Application Support/GIMP/3.0"], "Library/Application Support/artcloak",
     [("Library/Application Support/GIMP/3.0/plug-ins", "gimp3")]),
    ("windows", ["AppData/Roaming/GIMP/3.0", "AppData/Roaming/GIMP/2.10"], "AppData/Local/artcloak",
     [("AppData/Roaming/GIMP/3.0/plug-ins", "gimp3"), ("AppData/Roaming/GIMP/2.10/plug-ins", "gimp2")]),
])
def test_other_platform_layouts_install_and_uninstall_cleanly(tmp_path, models_dir, installed, platform,
                                                              gimp_dirs, data, plugin_roots):
    home = tmp_path / "home"
    make_gimp_dirs(home, *gimp_dirs)
    before = snapshot(home)
    run_installer(home, "--platform", platform, "--engine-python", str(installed.python), "--models-from",
                  str(models_dir))
    models = home / data / "models"
    assert (models / "taef2_encoder.pth").is_file()
    shebangs = {"gimp3": "#!/usr/bin/env python3", "gimp2": "#!/usr/bin/env python"}
    for rel, kind in plugin_roots:
        for name in fronts(kind):
            check_front(home / rel, name, shebangs[kind], installed.python, models)
    run_installer(home, "--platform", platform, "--uninstall")
    assert snapshot(home) == before


def test_explicit_plugin_folders(tmp_path, models_dir, installed):
    home, g3, g2 = tmp_path / "home", tmp_path / "g3/plug-ins", tmp_path / "g2/plug-ins"
    home.mkdir()
    make_gimp_dirs(home, ".config/GIMP/3.0")
    run_installer(home, "--engine-python", str(installed.python), "--models-from", str(models_dir),
                  "--no-gimp-search", "--gimp-plugins", str(g3), "--gimp2-plugins", str(g2))
    models = home / ".local/share/artcloak/models"
    for name in fronts("gimp3"):
        check_front(g3, name, "#!/usr/bin/env python3", installed.python, models)
    for name in fronts("gimp2"):
        check_front(g2, name, "#!/usr/bin/env python2", installed.python, models)
    assert not (home / ".config/GIMP/3.0/plug-ins").exists(), "--no-gimp-search must not touch GIMP's folder"
    run_installer(home, "--uninstall")
    assert not (tmp_path / "g3").exists() and not (tmp_path / "g2").exists()


def find_python38() -> str | None:
    """A working Python 3.8 (pyenv's shims may name one that is not enabled, so try each)."""
    candidates = sorted(REAL_HOME.glob(".pyenv/versions/3.8*/bin/python3.8")) + [shutil.which("python3.8")]
    for exe in filter(None, candidates):
        try:
            out = subprocess.run([str(exe), "-c", "import sys; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 8)":
            return str(exe)
    return None


@pytest.mark.ci_may_skip
@pytest.mark.skipif(find_python38() is None, reason="no Python 3.8 here to run the installer on its oldest")
def test_installer_runs_on_python38(tmp_path, models_dir):
    home = tmp_path / "home"
    make_gimp_dirs(home, ".config/GIMP/3.0")
    # the installer itself on 3.8; the engine's Python (which torch needs to be 3.10+) is another one
    out = run_installer(home, "--dry-run", "--models-from", str(models_dir), "--python", sys.executable,
                        python=find_python38())
    assert "would copy taef2_encoder.pth" in out


@pytest.mark.parametrize("had_before", [False, True])
def test_uninstall_removes_what_the_engine_wrote_and_keeps_what_was_there(tmp_path, models_dir, had_before):
    """The engine writes outside the data folder after the install (its precision cache in ~/.cache/artcloak,
    onnxruntime's device id under ~/.cache/Microsoft): the uninstaller removes those folders and the parents
    they needed when they were absent at install, and keeps whatever existed before or is not theirs."""
    home = tmp_path / "home"
    home.mkdir()
    ort = home / ".cache/Microsoft/DeveloperTools/.onnxruntime"
    if had_before:  # another program's onnxruntime was here first
        ort.mkdir(parents=True)
        (ort / "deviceid").write_text("someone else's\n")
    before = snapshot(home)
    run_installer(home, "--engine-python", sys.executable, "--models-from", str(models_dir),
                  "--models", "taef2", "--no-gimp-search")
    # what the engine writes when it runs (runtime's precision cache, onnxruntime's first session)
    (home / ".cache/artcloak").mkdir(parents=True)
    (home / ".cache/artcloak/precision.json").write_text("{}")
    if not had_before:
        ort.mkdir(parents=True)
        (ort / "deviceid").write_text("ours\n")
    run_installer(home, "--uninstall")
    assert snapshot(home) == before
    if had_before:
        assert (ort / "deviceid").read_text() == "someone else's\n"
    # a folder that was absent but holds another program's files by then stays, with them
    run_installer(home, "--engine-python", sys.executable, "--models-from", str(models_dir),
                  "--models", "taef2", "--no-gimp-search")
    (home / ".cache/other-app").mkdir(parents=True)
    run_installer(home, "--uninstall")
    assert (home / ".cache/other-app").is_dir() and not (home / ".cache/artcloak").exists()


def test_uninstall_restores_the_home_exactly(installed):
    """Runs last: removes the session's real install (venv, weights, plug-ins, caches, folders)."""
    out = run_installer(installed.home, "--uninstall", "--dry-run", env=installed.env)
    assert "would remove" in out and installed.python.is_file()
    run_installer(installed.home, "--uninstall", env=installed.env)
    assert snapshot(installed.home) == installed.before
    installed.home = None  # a later test would install afresh
