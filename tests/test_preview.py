"""The dialog's live preview across the process boundary: the worker's "preview" session and the
client's PreviewSession, with the real engine, the real instant cloak and real weights.

The instant cloak is the shipped file, or the one ARTCLOAK_CLOAK names (with its sidecar's sha256):
these tests use whichever the engine itself would use.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from artcloak import display
from artcloak.preview_session import Inbox, parse_request

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugin" / "common"))
import artcloak_client as client  # noqa: E402

W, H = 80, 64
TIMEOUT = 120  # seconds for one preview on a loaded CPU, engine start included


def rgba_image():
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:H, 0:W]
    img = np.stack([x * 255 // W, y * 255 // H, rng.integers(0, 256, (H, W)), np.full((H, W), 255)], -1)
    img = img.astype(np.uint8)
    img[:8, :8, 3] = 0  # transparent: must not change
    return img


class Worker:
    """`python -m artcloak.worker` driven line by line, as the client does."""

    def __init__(self, folder: Path, job: dict):
        self.proc = subprocess.Popen([sys.executable, "-m", "artcloak.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=folder)
        self.send(job)

    def send(self, value: dict) -> None:
        self.proc.stdin.write(json.dumps(value) + "\n")
        self.proc.stdin.flush()

    def until(self, *kinds: str) -> dict:
        """The next event of one of `kinds` (progress and ready skipped)."""
        end = time.time() + TIMEOUT
        while time.time() < end:
            line = self.proc.stdout.readline()
            assert line, f"the worker ended early (exit {self.proc.wait()})"
            event = json.loads(line)
            if event["event"] in kinds:
                return event
        raise AssertionError(f"no {kinds} event within {TIMEOUT} s")


def read_frame(folder: Path, event: dict, dtype, channels: int) -> tuple[np.ndarray, bytes, bytes]:
    out = np.fromfile(folder / event["output"], dtype).reshape(event["height"], event["width"], channels)
    return out, (folder / event["display"]).read_bytes(), (folder / event["change"]).read_bytes()


def test_worker_preview_session(tmp_path, instant_cloak):
    """Start with params, a first preview; a change of intensity, a second (different) preview; a bad
    request answered without ending the session; closing stdin ends the process, frames removed."""
    img = rgba_image()
    img.tofile(tmp_path / "in.raw")
    job = {"op": "preview", "dir": str(tmp_path), "input": "in.raw", "width": W, "height": H,
           "channels": 4, "format": "u8", "params": {"intensity": "low"}}
    worker = Worker(tmp_path, job)
    first = worker.until("preview", "error")
    assert first["event"] == "preview" and first["request"] == 0, first
    low, picture, change = read_frame(tmp_path, first, np.uint8, 4)
    assert low.shape == img.shape
    assert len(picture) == len(change) == W * H * 3
    worker.send({"request": 7, "params": {"intensity": "bogus"}})
    bad = worker.until("preview", "error")
    assert bad["event"] == "error" and bad["request"] == 7 and bad["kind"] == "input"
    worker.send({"request": 8, "params": {"intensity": "high"}})
    second = worker.until("preview", "error")
    assert second["event"] == "preview" and second["request"] == 8, second
    assert second["output"] != first["output"], "a new frame must not overwrite the one being read"
    high, _, _ = read_frame(tmp_path, second, np.uint8, 4)
    assert high.shape == img.shape
    low_change = np.abs(low.astype(int) - img)[..., :3]
    high_change = np.abs(high.astype(int) - img)[..., :3]
    assert 0 < low_change.max() and 0 < high_change.max()
    assert not np.array_equal(low, high), "the intensity changed, the preview did not"
    assert high_change.mean() > low_change.mean(), "'high' must change more than 'low'"
    assert (high[..., 3] == img[..., 3]).all() and (high[:8, :8] == img[:8, :8]).all()
    worker.proc.stdin.close()
    assert worker.proc.wait(TIMEOUT) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.raw"], "the session left its frames"


def test_requests_during_a_preview_are_coalesced():
    """Only the newest waiting request runs; closing still hands out what waits, then ends."""
    inbox = Inbox()
    for n in (1, 2, 3):
        inbox.put(parse_request(json.dumps({"request": n, "params": {"intensity": "low"}}), n))
    assert inbox.take(0.01)["request"] == 3 and inbox.dropped == 2
    assert inbox.take(0.01) is None
    inbox.put(parse_request('{"params": {}}', 9))
    inbox.close()
    assert inbox.take(0.01) == {"request": 9, "params": {}}
    assert inbox.take(0.01) is None and inbox.closed


def test_display_pictures_of_grey_16_bit_with_alpha():
    """A 16-bit grey+alpha layer shows as RGB u8: grey repeated, transparency over a checkerboard,
    and a change under one 8-bit level still visible in the x10 change."""
    grey = np.full((16, 16, 2), 40000, np.uint16)
    grey[..., 1] = 65535
    grey[:8, :8, 1] = 0
    picture = np.frombuffer(display.picture(grey), np.uint8).reshape(16, 16, 3)
    assert (picture[8:, 8:] == round(40000 / 65535 * 255)).all()
    assert (picture[:8, :8] == round(display.CHECKER_GREYS[0] * 255)).all()
    moved = grey.copy()
    moved[..., 0] += 200  # 0.78 of an 8-bit level
    change = np.frombuffer(display.change(grey, moved), np.uint8).reshape(16, 16, 3)
    assert (change == round((0.5 + 10 * 200 / 65535) * 255)).all()
    assert change[0, 0, 0] > 128 + 5


def test_client_preview_session(engine, instant_cloak):
    """PreviewSession with the real worker: start with params, a first frame; a bad value, an error
    in words while the session goes on; a change, a second frame that differs (and clears the error);
    close: the process has ended and the job folder is gone."""
    img = rgba_image()
    session = client.PreviewSession(img.tobytes(), W, H, 4, "u8")
    session.start({"intensity": "low"})
    try:
        first = wait_frame(session)
        assert first.request == 0 and len(first.pixels) == img.nbytes
        assert len(first.display) == len(first.change) == W * H * 3
        bad = session.request({"intensity": "bogus"})
        end = time.time() + TIMEOUT
        while session.error is None and time.time() < end:
            session.poll()
            time.sleep(0.05)
        assert session.error is not None and session.error.kind == "input" and not session.ended
        assert "intensity" in session.error.message and bad == session.latest_request
        number = session.request({"intensity": "high"})
        second = wait_frame(session, number)
        assert second.pixels != first.pixels and second.change != first.change
        assert np.frombuffer(second.pixels, np.uint8).reshape(img.shape)[..., 3].tolist() == \
            img[..., 3].tolist()
        folders = list(engine.iterdir())
        assert len(folders) == 1, folders
        proc = session._proc
    finally:
        session.close()
    assert proc.poll() is not None, "the worker still runs after close()"
    assert list(engine.iterdir()) == [], "the session left its job folder behind"
    assert session.ended and session.request({}) is None


def wait_frame(session, number=None):
    """Poll as the dialog's timer does until the frame answering `number` (any when None) arrives."""
    end = time.time() + TIMEOUT
    while time.time() < end:
        frame = session.poll()
        if frame is not None and (number is None or frame.request == number):
            assert session.error is None, session.error  # a failed request's error ends with a preview
            return frame
        assert not session.ended, session.error
        time.sleep(0.05)
    raise AssertionError(f"no preview within {TIMEOUT} s ({session.status})")


def test_client_preview_without_an_engine_says_why(monkeypatch, tmp_path):
    """No engine: start() raises the usual EngineError, and nothing is left behind."""
    monkeypatch.setenv("ARTCLOAK_ENGINE_PYTHON", str(tmp_path / "missing" / "python"))
    session = client.PreviewSession(b"\0" * (W * H * 3), W, H, 3, "u8")
    with pytest.raises(client.EngineError) as e:
        session.start({})
    assert e.value.kind == "engine"
    session.close()


def test_client_preview_with_a_python_without_the_engine(engine, monkeypatch, tmp_path):
    """The worker cannot even start (no artcloak in that Python): poll() says so in words, the session
    has ended and its folder is gone; the dialog would show this and go on without a preview."""
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    monkeypatch.setenv("ARTCLOAK_ENGINE_PYTHON", str(python))
    session = client.PreviewSession(rgba_image().tobytes(), W, H, 4, "u8")
    session.start({})
    end = time.time() + 60
    while not session.ended and time.time() < end:
        assert session.poll() is None
        time.sleep(0.05)
    assert session.ended and session.error is not None
    assert session.error.kind == "engine" and "has no artcloak engine" in session.error.message
    assert list(engine.iterdir()) == []
    assert session.request({"intensity": "high"}) is None
