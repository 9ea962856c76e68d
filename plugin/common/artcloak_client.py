"""artcloak_client: how a GIMP plug-in talks to the artcloak engine (stdlib only, Python 2.7 and 3).

GIMP's own Python never imports torch. This module runs the engine's Python as a separate process
(`python -m artcloak.worker`), hands it the pixels as a raw file in a private temporary folder,
relays its progress and returns the protected pixels and the protection report.

API (stable; the GIMP 3 and GIMP 2.10 fronts rely on it):

  EngineError(message, hint="", kind="internal")
      Every failure. `.message` says what happened, `.hint` how to fix it, `.kind` is one of
      "input", "model", "memory", "internal", "cancelled" (from the worker), "engine" (the engine's
      Python is missing or cannot start) or "crash" (the engine stopped without a result).
  find_engine_python() -> str
      The engine's Python executable. Lookup order: env ARTCLOAK_ENGINE_PYTHON (a python path),
      env ARTCLOAK_CONFIG (a JSON path), artcloak-engine.json beside this file, then
      <user data dir>/artcloak/artcloak-engine.json. The JSON is {"python": ..., "models": ...,
      "version": ...}. Raises EngineError(kind="engine") with the installer command as hint.
  engine_config() -> dict
      {"python": str, "models": str or None, "source": where it was found}.
  load_schema() -> list of dict
      The engine's parameters (params.json beside this file, or in ../common): name, type, default,
      label, help, choices, min, max, advanced.
  defaults() -> {name: default}
  protect_pixels(data, width, height, channels, fmt, params, progress=None, cancelled=None)
      -> (out_bytes, report)
      data: raw row-major H x W x C samples, native little-endian; fmt "u8", "u16" or "float"
      (float32); channels 1-4 (grey, grey+alpha, RGB, RGBA). params: {name: value} (missing ones
      take the engine's defaults). progress(fraction, message) is called as the engine works;
      cancelled() is polled about ten times a second and, when it returns true, the engine is
      stopped and EngineError(kind="cancelled") raised. out_bytes has the same layout as data.
  verify_pixels(orig, prot, width, height, channels, fmt, progress=None) -> report
  format_report(report) -> str
      A short text for a message box: how far each model's latents moved (clean and after each
      transform), how that compares with plain noise, and the visible cost.

The temporary folder is private (mkdtemp, 0700; files 0600) and always removed, also on error,
cancel or crash. The worker's environment has GI_TYPELIB_PATH, PYTHONPATH and PYTHONHOME removed
(GIMP sets them for its own Python) and ARTCLOAK_MODELS set from the config unless already set.
"""
# This file must also run under GIMP 2.10's Python 2.7: no f-strings, no annotations, %-formatting.
# ruff: noqa: UP010, UP020, UP024, UP031, B904
from __future__ import absolute_import, division, print_function

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

try:
    import queue
except ImportError:  # Python 2
    import Queue as queue  # noqa: N813

__all__ = ["EngineError", "find_engine_python", "engine_config", "load_schema", "defaults",
           "protect_pixels", "verify_pixels", "format_report", "SAMPLE_SIZES"]

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG_NAME = "artcloak-engine.json"
SAMPLE_SIZES = {"u8": 1, "u16": 2, "float": 4}
INSTALL_HINT = ("Install the engine with the installer in the artcloak download: "
                "install_scripts/install.sh (Linux, macOS) or install_scripts/install.ps1 (Windows), "
                "then restart GIMP. To use an engine you installed yourself, set ARTCLOAK_ENGINE_PYTHON "
                "to its Python executable.")
POLL_SECONDS = 0.1
STDERR_TAIL = 1500
_STRIP_ENV = ("GI_TYPELIB_PATH", "PYTHONPATH", "PYTHONHOME")
_PY2 = sys.version_info[0] == 2


class EngineError(Exception):
    """A failure of the engine or of talking to it; see the module docstring for `kind`."""

    def __init__(self, message, hint="", kind="internal"):
        Exception.__init__(self, message)
        self.message = message
        self.hint = hint or ""
        self.kind = kind

    def __str__(self):
        text = self.message
        if self.hint:
            text = "%s\n\n%s" % (self.message, self.hint)
        return _native_text(text)


# ---- finding the engine -------------------------------------------------------------------------

def _native(text):
    """A str for os/subprocess calls (Python 2 wants bytes there, JSON gives unicode)."""
    if _PY2 and not isinstance(text, str):
        return text.encode(sys.getfilesystemencoding() or "utf-8")
    return text


def _native_text(text):
    """A str for messages (Python 2's str() of unicode fails on non-ASCII text)."""
    if _PY2 and not isinstance(text, str):
        return text.encode("utf-8")
    return text


def user_data_dir():
    """<user data dir>/artcloak, the same folder the engine's installer uses."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
    elif sys.platform == "darwin":
        base = os.path.join(os.path.expanduser("~"), "Library", "Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "artcloak")


def _config_candidates():
    """(path, how it was named) for every config file the lookup order knows, in order."""
    out = []
    if os.environ.get("ARTCLOAK_CONFIG"):
        out.append((os.environ["ARTCLOAK_CONFIG"], "ARTCLOAK_CONFIG"))
    out.append((os.path.join(HERE, CONFIG_NAME), "beside the plug-in"))
    out.append((os.path.join(user_data_dir(), CONFIG_NAME), "user data folder"))
    return out


def _read_config(path, source):
    try:
        with io.open(path, "r", encoding="utf-8") as f:
            cfg = json.load(f)
    except (IOError, OSError) as e:
        raise EngineError("Cannot read the engine config %s (%s): %s" % (path, source, e),
                          INSTALL_HINT, "engine")
    except ValueError as e:
        raise EngineError("The engine config %s is not valid JSON: %s" % (path, e), INSTALL_HINT, "engine")
    if not isinstance(cfg, dict):
        raise EngineError("The engine config %s is not a JSON object" % path, INSTALL_HINT, "engine")
    return cfg


def _find_config():
    """(config dict, description) of the first config file in the lookup order, or ({}, None)."""
    for path, source in _config_candidates():
        if source == "ARTCLOAK_CONFIG" and not os.path.isfile(path):
            raise EngineError("ARTCLOAK_CONFIG names %s, which does not exist" % path,
                              "Fix or unset ARTCLOAK_CONFIG. " + INSTALL_HINT, "engine")
        if os.path.isfile(path):
            return _read_config(path, source), "%s (%s)" % (path, source)
    return {}, None


def engine_config():
    """The engine's Python, its models folder (or None) and where they were found."""
    python = os.environ.get("ARTCLOAK_ENGINE_PYTHON")
    try:
        cfg, source = _find_config()
    except EngineError:
        if not python:
            raise
        cfg, source = {}, None  # the override names the python; a broken config file is not needed
    if python:
        source = "ARTCLOAK_ENGINE_PYTHON"
    else:
        python = cfg.get("python")
    if not python:
        if source:
            raise EngineError("The engine config %s names no \"python\"" % source, INSTALL_HINT, "engine")
        raise EngineError("The artcloak engine is not installed (no %s found beside the plug-in or in %s)"
                          % (CONFIG_NAME, user_data_dir()), INSTALL_HINT, "engine")
    if not os.path.isfile(python):
        raise EngineError("The artcloak engine's Python %s does not exist (named by %s)" % (python, source),
                          "The engine may have been moved or removed. " + INSTALL_HINT, "engine")
    return {"python": python, "models": cfg.get("models") or None, "source": source}


def find_engine_python():
    """The engine's Python executable (see the lookup order in the module docstring)."""
    return engine_config()["python"]


# ---- parameters ---------------------------------------------------------------------------------

def load_schema():
    """The engine's parameter list from params.json (beside this file, else ../common)."""
    for folder in (HERE, os.path.join(HERE, "..", "common")):
        path = os.path.join(folder, "params.json")
        if os.path.isfile(path):
            with io.open(path, "r", encoding="utf-8") as f:
                return json.load(f)
    raise EngineError("params.json is missing beside %s" % __file__,
                      "Reinstall the plug-in: " + INSTALL_HINT, "engine")


def defaults():
    """{name: default} for every engine parameter."""
    return dict((p["name"], p["default"]) for p in load_schema())


# ---- running the worker -------------------------------------------------------------------------

def _write_private(path, data):
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _check_size(data, width, height, channels, fmt, what):
    if fmt not in SAMPLE_SIZES:
        raise EngineError("Unknown sample format %r; use u8, u16 or float" % (fmt,), "", "input")
    if not 1 <= int(channels) <= 4:
        raise EngineError("Unsupported channel count %r (1 to 4)" % (channels,), "", "input")
    need = int(width) * int(height) * int(channels) * SAMPLE_SIZES[fmt]
    if len(data) != need:
        raise EngineError("%s has %d bytes; %dx%d pixels with %d %s channels need %d"
                          % (what, len(data), width, height, channels, fmt, need), "", "input")


def _worker_env(cfg):
    env = dict(os.environ)
    for name in _STRIP_ENV:
        env.pop(name, None)
    if cfg.get("models") and not env.get("ARTCLOAK_MODELS"):
        env["ARTCLOAK_MODELS"] = cfg["models"]
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    return dict((_native(k), _native(v)) for k, v in env.items())


def _pump(stream, q):
    """Reader thread: every stdout line into the queue, then None at end of file."""
    try:
        for line in iter(stream.readline, b""):
            q.put(line)
    finally:
        q.put(None)


def _tail(path):
    try:
        with io.open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return ""
    return text[-STDERR_TAIL:].strip()


def _stop(proc):
    if proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            pass
    proc.wait()


def _crash_error(code, stderr_tail):
    killed = code is not None and code < 0
    if killed and code == -9:
        hint = ("It was killed (signal 9), most often because the computer ran out of memory: close other "
                "programs or protect a smaller image.")
    else:
        hint = "See the engine's output below; if it looks like a bug, please report it with this text."
    msg = "The artcloak engine stopped unexpectedly (exit code %s)." % code
    if stderr_tail:
        msg += "\n\nEngine output (last lines):\n" + stderr_tail
    return EngineError(msg, hint, "crash")


def _run_job(job, files, progress=None, cancelled=None):
    """Write `files` ({name: bytes}) to a private folder, run one job there, return (output bytes or
    None, report); the folder is removed whatever happens."""
    cfg = engine_config()
    tmp = tempfile.mkdtemp(prefix="artcloak-")
    proc = reader = None
    try:
        os.chmod(tmp, 0o700)
        for name, data in files.items():
            _write_private(os.path.join(tmp, name), data)
        job = dict(job, dir=tmp)
        log_path = os.path.join(tmp, "stderr.log")
        log = open(log_path, "wb")
        kwargs = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = 0x08000000  # CREATE_NO_WINDOW: no console flashing up
        try:
            proc = subprocess.Popen([_native(cfg["python"]), "-u", "-m", "artcloak.worker"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                    env=_worker_env(cfg), cwd=tmp, **kwargs)
        except OSError as e:
            raise EngineError("Cannot start the artcloak engine %s: %s" % (cfg["python"], e),
                              INSTALL_HINT, "engine")
        finally:
            log.close()
        try:
            proc.stdin.write((json.dumps(job) + "\n").encode("utf-8"))
            proc.stdin.close()
        except (IOError, OSError):
            pass  # the worker died at once; reported below from its exit code and output
        q = queue.Queue()
        reader = threading.Thread(target=_pump, args=(proc.stdout, q))
        reader.daemon = True
        reader.start()
        result = None
        while True:
            if cancelled is not None and cancelled():
                _stop(proc)
                raise EngineError("Protection cancelled; nothing was changed.", "", "cancelled")
            try:
                line = q.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if line is None:
                break
            try:
                event = json.loads(line.decode("utf-8", "replace"))
            except ValueError:
                continue  # a stray line from a library; the protocol lines are JSON objects
            if not isinstance(event, dict):
                continue
            kind = event.get("event")
            if kind == "progress" and progress is not None:
                progress(float(event.get("fraction", 0.0)), event.get("message", ""))
            elif kind == "error":
                _stop(proc)
                message = event.get("message", "unknown engine error")
                if event.get("kind", "internal") == "internal" and _tail(log_path):
                    message += "\n\nEngine output (last lines):\n" + _tail(log_path)
                raise EngineError(message, event.get("hint", ""), event.get("kind", "internal"))
            elif kind == "done":
                result = event
                break
        if result is None:
            proc.wait()
            tail = _tail(log_path)
            if "No module named artcloak" in tail or "No module named 'artcloak" in tail:
                raise EngineError("The Python %s has no artcloak engine installed." % cfg["python"],
                                  INSTALL_HINT, "engine")
            raise _crash_error(proc.returncode, tail)
        out = None
        if result.get("output"):
            name = os.path.basename(result["output"])
            try:
                with io.open(os.path.join(tmp, name), "rb") as f:
                    out = f.read()
            except (IOError, OSError) as e:
                raise EngineError("The engine reported success but its output is unreadable: %s" % e, "",
                                  "internal")
        proc.wait()
        return out, result.get("report", {})
    finally:
        if proc is not None:
            _stop(proc)
            if reader is not None:
                reader.join(5)  # at EOF now that the process is gone; then its pipe may be closed
            for stream in (proc.stdout, proc.stdin):
                try:
                    stream.close()
                except (IOError, OSError):
                    pass
        _remove(tmp)


def _remove(folder):
    """Remove the temp folder; on Windows a just-killed process may hold files for a moment."""
    for _ in range(20):
        shutil.rmtree(folder, ignore_errors=True)
        if not os.path.exists(folder):
            return
        time.sleep(0.1)


def protect_pixels(data, width, height, channels, fmt, params, progress=None, cancelled=None):
    """Protect raw pixels; return (protected bytes in the same layout, report dict)."""
    data = bytes(data) if not isinstance(data, bytes) else data
    _check_size(data, width, height, channels, fmt, "The image data")
    job = {"op": "protect", "input": "in.raw", "output": "out.raw", "width": int(width),
           "height": int(height), "channels": int(channels), "format": fmt, "params": dict(params or {})}
    out, report = _run_job(job, {"in.raw": data}, progress, cancelled)
    if out is None or len(out) != len(data):
        raise EngineError("The engine returned %s bytes for %d expected"
                          % (None if out is None else len(out), len(data)), "", "internal")
    return out, report


def verify_pixels(orig, prot, width, height, channels, fmt, progress=None):
    """Measure how far `prot` moved each model's view of `orig`; return the report dict."""
    orig = bytes(orig) if not isinstance(orig, bytes) else orig
    prot = bytes(prot) if not isinstance(prot, bytes) else prot
    _check_size(orig, width, height, channels, fmt, "The original")
    _check_size(prot, width, height, channels, fmt, "The protected image")
    job = {"op": "verify", "original": "a.raw", "protected": "b.raw", "width": int(width),
           "height": int(height), "channels": int(channels), "format": fmt}
    return _run_job(job, {"a.raw": orig, "b.raw": prot}, progress)[1]


# ---- the report as text -------------------------------------------------------------------------

def _transform_name(key):
    """Short names for the report's transforms (jpeg75 -> "JPEG q75", resize512 -> "resize 512 px")."""
    for prefix, text in (("jpeg", "JPEG q%s"), ("resize", "resize %s px"), ("crop", "crop %s%%")):
        if key.startswith(prefix) and key[len(prefix):].isdigit():
            return text % key[len(prefix):]
    return {"noisyupscale": "noisy upscale"}.get(key, key)


def _pct(value):
    return "%.1f%%" % (100.0 * value)


def _wrap(items, indent, width=88):
    lines, line = [], indent
    for item in items:
        if line.strip() and len(line) + len(item) + 2 > width:
            lines.append(line.rstrip(", "))
            line = indent
        line += item + ", "
    if line.strip():
        lines.append(line.rstrip(", "))
    return lines


def _model_lines(name, figs, summary, order):
    head = "  %s:" % name
    if "latent_shift" in figs:
        head += " moved %s" % _pct(figs["latent_shift"])
        if "noise_ratio" in figs:
            head += " (%.1fx noise)" % figs["noise_ratio"]
    if summary.get("verdict"):
        head += ", %s" % summary["verdict"]
        if summary.get("weakest_view"):
            head += " (weakest: %s, %.1fx)" % (_transform_name(summary["weakest_view"]),
                                               summary.get("weakest_noise_ratio", 0.0))
    views = []
    for t in order:
        shift = figs.get("after.%s.latent_shift" % t)
        if shift is None:
            continue
        view = "%s %s" % (_transform_name(t), _pct(shift))
        if figs.get("after.%s.noise_ratio" % t) is not None:
            view += " (%.1fx)" % figs["after.%s.noise_ratio" % t]
        views.append(view)
    lines = [head]
    if views:
        lines += _wrap(["after " + views[0]] + views[1:], "    ")
    if "amplification" in figs:
        lines.append("    its decoder shows %.1fx the change a person sees" % figs["amplification"])
    return lines


def format_report(report):
    """A few lines for a GIMP message: how far each model's latents moved, clean and after each
    transform (with the verdict and weakest view when the report has a summary), and the visible cost."""
    if not report:
        return "No report."
    lines = []
    models = report.get("models") or {}
    summaries = report.get("summary") or {}
    if models:
        lines.append("How far each AI model's view of the image moved "
                     "(plain noise of the same visibility = 1.0x):")
    for name in sorted(models):
        figs = models[name] or {}
        order = list(report.get("transforms") or [])
        for key in figs:
            parts = key.split(".")
            if len(parts) == 3 and parts[0] == "after" and parts[1] not in order:
                order.append(parts[1])
        lines += _model_lines(name, figs, summaries.get(name) or {}, order)
    p = report.get("perceptual") or {}
    if p:
        bits = []
        for key, text in (("psnr", "PSNR %.1f dB"), ("ssim", "SSIM %.3f"),
                          ("linf", "largest change %.0f/255"),
                          ("flat_change", "mean change in flat areas %.2f/255"), ("lpips", "LPIPS %.3f")):
            if p.get(key) is not None:
                bits.append(text % p[key])
        lines.append("Visible cost: " + ", ".join(bits))
    return "\n".join(lines) if lines else "No report."
