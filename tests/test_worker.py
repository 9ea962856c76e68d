"""The process boundary the GIMP plug-ins use: the real worker process, the real client, real weights.

Small images, quality "fast" and one surrogate (taesana) keep each protect run to seconds.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from artcloak.cloak.presets import INTENSITY
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugin" / "common"))
import artcloak_client as client  # noqa: E402

FAST = {"quality": "fast", "models": "taesana"}
LINF = round(INTENSITY["default"].linf * 255)  # the most any sample may change (8-bit units)


def rgba_image(h=40, w=32):
    rng = np.random.default_rng(1)
    img = rng.integers(30, 226, (h, w, 4), dtype=np.uint8)
    img[..., 3] = 255
    img[:8, :8, 3] = 0  # a fully transparent corner must not change
    return img


def run_worker(job_line, cwd):
    """Run `python -m artcloak.worker` on one job line; return (exit code, events, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "artcloak.worker"], input=job_line, capture_output=True,
                          text=True, cwd=cwd, timeout=120)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, events, proc.stderr


def worker_children():
    """Pids of this process's children running artcloak.worker (Linux /proc)."""
    return worker_pids_of(os.getpid())


def alive(pid):
    """True while `pid` runs (a zombie waiting for a reaper counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def worker_pids_of(parent):
    """Pids of `parent`'s children running artcloak.worker (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"artcloak.worker" in cmd:
            pids.append(int(entry.name))
    return pids


def test_protect_u8_rgba_round_trip(engine):
    img = rgba_image()
    events = []
    out, report = client.protect_pixels(img.tobytes(), 32, 40, 4, "u8", FAST,
                                        progress=lambda f, m: events.append((f, m)))
    res = np.frombuffer(out, np.uint8).reshape(img.shape)
    diff = np.abs(res.astype(int) - img)
    assert diff[..., :3].max() > 0, "nothing was protected"
    assert diff[..., :3].max() <= LINF, "change beyond the preset's L-inf cap"
    assert (res[..., 3] == img[..., 3]).all(), "alpha must be carried through"
    assert (diff[:8, :8] == 0).all(), "fully transparent pixels changed"
    fractions = [f for f, _ in events]
    assert len(events) >= 3 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert report["models"]["taesana"]["latent_shift"] > 0
    assert "taesana" in client.format_report(report)
    assert list(engine.iterdir()) == [], "the client left its temp folder behind"


def test_worker_u16_grey_through_raw_files(tmp_path, models_dir):
    img = np.random.default_rng(2).integers(2000, 60000, (36, 33, 1), dtype=np.uint16)
    img.astype("<u2").tofile(tmp_path / "in.raw")
    job = {"op": "protect", "dir": str(tmp_path), "input": "in.raw", "output": "out.raw", "width": 33,
           "height": 36, "channels": 1, "format": "u16", "params": FAST}
    code, events, err = run_worker(json.dumps(job) + "\n", tmp_path)
    assert code == 0, err
    assert [e["event"] for e in events][-1] == "done"
    assert any(e["event"] == "progress" for e in events)
    assert events[-1]["output"] == "out.raw"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.raw", "out.raw"], "a partial file was left"
    res = np.fromfile(tmp_path / "out.raw", "<u2").reshape(img.shape)
    change = np.abs(res.astype(int) - img)
    assert 0 < change.max() <= LINF * 257 + 1
    assert events[-1]["report"]["perceptual"]["psnr"] > 30


@pytest.mark.parametrize("line, expect", [
    ("this is not json\n", "not valid JSON"),
    (json.dumps({"op": "explode", "dir": "."}) + "\n", "'op' must be one of"),
    ("\n", "no job"),
])
def test_bad_job_gives_an_error_event(tmp_path, line, expect):
    code, events, _ = run_worker(line, tmp_path)
    assert code != 0
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "input"
    assert expect in events[-1]["message"]


def test_bad_pixels_and_escaping_names_give_input_errors(tmp_path):
    (tmp_path / "in.raw").write_bytes(b"\0" * 100)
    base = {"op": "protect", "dir": str(tmp_path), "input": "in.raw", "output": "out.raw", "width": 32,
            "height": 32, "channels": 3, "format": "u8", "params": {}}
    code, events, _ = run_worker(json.dumps(base) + "\n", tmp_path)
    assert code != 0 and events[-1]["kind"] == "input" and "has 100 bytes" in events[-1]["message"]
    code, events, _ = run_worker(json.dumps(dict(base, output="../evil.raw")) + "\n", tmp_path)
    assert code != 0 and events[-1]["kind"] == "input" and "plain file name" in events[-1]["message"]
    assert not (tmp_path.parent / "evil.raw").exists()
    assert not (tmp_path / "out.raw").exists()


def test_worker_error_kinds():
    from artcloak.errors import InputError, ModelError
    from artcloak.worker import error_event

    assert error_event(MemoryError())["kind"] == "memory"
    assert "smaller image" in error_event(MemoryError())["hint"]
    assert error_event(RuntimeError("DefaultCPUAllocator: can't allocate memory"))["kind"] == "memory"
    assert error_event(ModelError("gone"))["kind"] == "model"
    assert error_event(InputError("bad"))["kind"] == "input"
    internal = error_event(ZeroDivisionError("boom"))
    assert internal["kind"] == "internal" and "ZeroDivisionError: boom" in internal["message"]


def test_cli_and_worker_share_the_error_kinds(tmp_path, monkeypatch, capsys):
    """One mapping (errors.kind_of): the CLI's --json record names torch's out-of-memory
    RuntimeError "memory", as the worker does, with the worker's hint."""
    from artcloak import cli
    from artcloak.errors import Cancelled, InputError, ModelError, OutputError, kind_of
    from artcloak.worker import error_event

    for e, kind in ((MemoryError(), "memory"), (RuntimeError("CUDA out of memory. Tried"), "memory"),
                    (InputError("x"), "input"), (OutputError("x"), "output"), (ModelError("x"), "model"),
                    (Cancelled("x"), "cancelled"),
                    (RuntimeError("boom"), "internal"), (ValueError("x"), "internal")):
        assert kind_of(e) == kind == error_event(e)["kind"], e
    src = tmp_path / "in.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(src)

    def oom(*a, **k):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 GB")

    monkeypatch.setattr(cli.protect, "protect_file", oom)
    assert cli.main(["protect", str(src), "-o", str(tmp_path / "out.png"), "--json"]) == 1
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rec["kind"] == "memory" and "smaller image" in rec["hint"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find the worker")
def test_killed_worker_is_an_engine_error_and_temp_is_removed(engine):
    killed = []

    def kill_on_first_progress(fraction, message):
        if not killed:
            pids = worker_children()
            assert pids, "no worker process found"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed.extend(pids)

    img = rgba_image(64, 64)
    with pytest.raises(client.EngineError) as err:
        client.protect_pixels(img.tobytes(), 64, 64, 4, "u8", dict(FAST, quality="max"),
                              progress=kill_on_first_progress)
    assert killed
    assert err.value.kind == "crash"
    assert "stopped unexpectedly" in err.value.message and "-9" in err.value.message
    assert "memory" in err.value.hint
    assert list(engine.iterdir()) == []


def test_cancel_stops_the_worker(engine):
    seen = []
    img = rgba_image(64, 64)
    with pytest.raises(client.EngineError) as err:
        client.protect_pixels(img.tobytes(), 64, 64, 4, "u8", dict(FAST, quality="max"),
                              progress=lambda f, m: seen.append(f), cancelled=lambda: bool(seen))
    assert err.value.kind == "cancelled"
    assert seen and seen[-1] < 1.0
    if Path("/proc/self/stat").exists():
        assert worker_children() == []
    assert list(engine.iterdir()) == []


def test_verify_through_config_file(engine, tmp_path, monkeypatch, models_dir):
    """The installer's route: ARTCLOAK_CONFIG names the python and the models folder."""
    cfg = tmp_path / "artcloak-engine.json"
    cfg.write_text(json.dumps({"python": sys.executable, "models": str(models_dir), "version": "test"}))
    monkeypatch.delenv("ARTCLOAK_ENGINE_PYTHON")
    monkeypatch.delenv("ARTCLOAK_MODELS")
    monkeypatch.setenv("ARTCLOAK_CONFIG", str(cfg))
    assert client.find_engine_python() == sys.executable
    img = rgba_image()
    prot = img.copy()
    prot[8:, 8:, :3] ^= 4  # a visible-budget change the models may or may not follow
    report = client.verify_pixels(img.tobytes(), prot.tobytes(), 32, 40, 4, "u8")
    assert report["perceptual"]["linf"] == pytest.approx(4, abs=0.01)
    assert "taesana" in report["models"]
    assert list(engine.iterdir()) == []


def test_worker_env_strips_gimp_python_and_sets_models(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/gimp/lib/python")
    monkeypatch.setenv("PYTHONHOME", "/gimp")
    monkeypatch.setenv("GI_TYPELIB_PATH", "/gimp/typelibs")
    monkeypatch.delenv("ARTCLOAK_MODELS", raising=False)
    env = client._worker_env({"python": "x", "models": "/m"})
    assert not {"PYTHONPATH", "PYTHONHOME", "GI_TYPELIB_PATH"} & set(env)
    assert env["ARTCLOAK_MODELS"] == "/m"
    monkeypatch.setenv("ARTCLOAK_MODELS", "/mine")
    assert client._worker_env({"python": "x", "models": "/m"})["ARTCLOAK_MODELS"] == "/mine"


def test_broken_engine_path_gives_a_hint(monkeypatch, tmp_path):
    monkeypatch.delenv("ARTCLOAK_CONFIG", raising=False)
    monkeypatch.setenv("ARTCLOAK_ENGINE_PYTHON", str(tmp_path / "gone" / "python"))
    with pytest.raises(client.EngineError) as err:
        client.protect_pixels(b"\0" * 32 * 32 * 3, 32, 32, 3, "u8", {})
    assert err.value.kind == "engine" and "does not exist" in err.value.message
    assert "install" in err.value.hint
    monkeypatch.delenv("ARTCLOAK_ENGINE_PYTHON")
    cfg = tmp_path / "artcloak-engine.json"
    cfg.write_text(json.dumps({"python": str(tmp_path / "moved" / "python")}))
    monkeypatch.setenv("ARTCLOAK_CONFIG", str(cfg))
    with pytest.raises(client.EngineError) as err:
        client.find_engine_python()
    assert str(cfg) in err.value.message and "install_scripts" in err.value.hint
    monkeypatch.delenv("ARTCLOAK_CONFIG")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path / "empty"))
    if not (Path(client.HERE) / client.CONFIG_NAME).exists():
        with pytest.raises(client.EngineError, match="not installed"):
            client.find_engine_python()


def test_wrong_buffer_size_is_refused_before_starting(monkeypatch):
    with pytest.raises(client.EngineError) as err:
        client.protect_pixels(b"\0" * 10, 32, 32, 3, "u16", {})
    assert err.value.kind == "input" and "6144" in err.value.message


def test_engine_error_event_reaches_the_caller(engine):
    with pytest.raises(client.EngineError) as err:
        client.protect_pixels(b"\0" * 32 * 32 * 3, 32, 32, 3, "u8", {"bogus": 1})
    assert err.value.kind == "input" and "unknown parameter(s): bogus" in err.value.message
    assert list(engine.iterdir()) == []


def test_a_python_without_the_engine_is_named(engine, monkeypatch, tmp_path):
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    monkeypatch.setenv("ARTCLOAK_ENGINE_PYTHON", str(python))
    with pytest.raises(client.EngineError) as err:
        client.protect_pixels(b"\0" * 32 * 32 * 3, 32, 32, 3, "u8", {})
    assert err.value.kind == "engine" and "has no artcloak engine" in err.value.message
    assert "install_scripts" in err.value.hint
    assert list(engine.iterdir()) == []


ORPHAN_CLIENT = r"""
import sys
sys.path.insert(0, sys.argv[1])
import artcloak_client as c
data = bytes((i * 13) % 256 for i in range(128 * 128 * 3))
c.protect_pixels(data, 128, 128, 3, "u8", {"quality": "max", "models": "taesana"},
                 progress=lambda f, m: print(m, flush=True))
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find the worker")
def test_worker_stops_and_cleans_up_when_its_client_is_killed(tmp_path, models_dir):
    """GIMP ends a plug-in whose progress is cancelled: the worker must not run on, nor leave pixels."""
    tmp = tmp_path / "t"
    tmp.mkdir()
    env = dict(os.environ, ARTCLOAK_ENGINE_PYTHON=sys.executable, TMPDIR=str(tmp))
    env.pop("ARTCLOAK_CONFIG", None)
    plugin = subprocess.Popen([sys.executable, "-c", ORPHAN_CLIENT, str(ROOT / "plugin" / "common")],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        for line in plugin.stdout:
            if line.startswith("step 2/"):
                break
        workers = worker_pids_of(plugin.pid)
        def jobs() -> list[Path]:  # the client's job folders: some sandboxes' process hooks drop files there
            return [p for p in tmp.iterdir() if p.name.startswith("artcloak-")]

        assert len(workers) == 1 and jobs(), "no running worker with its job folder"
        plugin.kill()
        plugin.wait()
        deadline = time.time() + 60
        while time.time() < deadline and alive(workers[0]):
            time.sleep(0.2)
        assert not alive(workers[0]), "the worker ran on after its client died"
        assert jobs() == [], "the orphaned job folder was left behind"
    finally:
        plugin.kill()
        plugin.wait()


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the XDG data folder is the Linux layout")
def test_engine_lookup_order(monkeypatch, tmp_path):
    monkeypatch.delenv("ARTCLOAK_ENGINE_PYTHON", raising=False)
    monkeypatch.delenv("ARTCLOAK_CONFIG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    (tmp_path / "artcloak").mkdir()
    (tmp_path / "artcloak" / "artcloak-engine.json").write_text(
        json.dumps({"python": sys.executable, "models": "/user/models"}))
    if not (Path(client.HERE) / client.CONFIG_NAME).exists():  # a config beside the client comes first
        cfg = client.engine_config()
        assert cfg["python"] == sys.executable and cfg["models"] == "/user/models"
        assert "user data folder" in cfg["source"]
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"python": sys.executable, "models": "/other/models"}))
    monkeypatch.setenv("ARTCLOAK_CONFIG", str(other))
    assert client.engine_config()["models"] == "/other/models"
    other.write_text("{ not json")
    with pytest.raises(client.EngineError, match="not valid JSON"):
        client.engine_config()
    monkeypatch.setenv("ARTCLOAK_ENGINE_PYTHON", sys.executable)  # the override needs no config file
    assert client.engine_config()["source"] == "ARTCLOAK_ENGINE_PYTHON"


def test_report_text_names_models_views_and_cost():
    """The engine's text of a report (measure.report_text, rendered once); the client shows it as it is."""
    from artcloak.measure import report_text

    figs = {"latent_shift": 0.151, "noise_ratio": 2.9, "amplification": 3.3,
            "after.jpeg75.latent_shift": 0.199, "after.jpeg75.noise_ratio": 1.2,
            "after.resize512.latent_shift": 0.066, "after.resize512.noise_ratio": 0.9}
    summary = {"weakest_view": "resize512", "weakest_noise_ratio": 0.9, "verdict": "none"}
    report = {"perceptual": {"psnr": 38.04, "ssim": 0.991, "linf": 6.0, "flat_change": 0.8},
              "models": {"taef2": figs}, "summary": {"taef2": summary}}
    text = report_text.render(report)
    assert client.format_report(dict(report, text=text)) == text
    assert "update it with the installer" in client.format_report(report)  # no text: never re-rendered
    assert "taef2: moved 15.1% (2.9x noise), none (weakest: resize 512 px, 0.9x)" in text
    assert "after JPEG q75 19.9% (1.2x), resize 512 px 6.6% (0.9x)" in text
    assert "decoder shows 3.3x" in text and "PSNR 38.0 dB" in text and "0.80/255" in text
    assert client.format_report({}) == "No report." == report_text.render({})


def test_float_grey_alpha_through_the_client(engine):
    """32-bit float (GIMP 3's float images), two channels: the grey value changes, alpha does not."""
    rng = np.random.default_rng(5)
    img = np.empty((34, 32, 2), np.float32)
    img[..., 0] = rng.uniform(0.1, 0.9, (34, 32))
    img[..., 1] = rng.uniform(0.5, 1.0, (34, 32))
    out, _ = client.protect_pixels(img.tobytes(), 32, 34, 2, "float", FAST)
    res = np.frombuffer(out, np.float32).reshape(img.shape)
    assert np.array_equal(res[..., 1], img[..., 1])
    assert 0 < np.abs(res[..., 0] - img[..., 0]).max() <= LINF / 255 + 1e-6
