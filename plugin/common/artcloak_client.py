"""artcloak_client: how a GIMP plug-in talks to the artcloak engine (stdlib only, Python 2.7 and 3).

GIMP's own Python never imports torch. This module runs the engine's Python as a separate process
(`python -m artcloak.worker`), hands it the pixels as a raw file in a private temporary folder,
relays its progress and returns the protected pixels and the protection report.

API (stable; the GIMP 3 and GIMP 2.10 fronts rely on it):

  EngineError(message, hint="", kind="internal")
      Every failure. `.message` says what happened, `.hint` how to fix it, `.kind` is one of
      "input", "output", "model", "memory", "internal", "cancelled" (from the worker), "engine" (the
      engine's Python is missing or cannot start) or "crash" (the engine stopped without a result).
  find_engine_python() -> str
      The engine's Python executable. Lookup order: env ARTCLOAK_ENGINE_PYTHON (a python path),
      env ARTCLOAK_CONFIG (a JSON path), artcloak-engine.json beside this file, then
      <user data dir>/artcloak/artcloak-engine.json. The JSON is {"python": ..., "models": ...,
      "version": ...}. Raises EngineError(kind="engine") with the installer command as hint.
  engine_config() -> dict
      {"python": str, "models": str or None, "source": where it was found, "sandbox": the config's
      "sandbox" ("flatpak", "snap") or None}.
  engine_env(cfg, environ=None, sandbox=None) -> dict
      The environment the engine is started with (below).
  sandbox_mode(cfg=None) -> "flatpak" or None
      Whether the engine is started on the host through flatpak-spawn (below).
  load_schema() -> list of dict
      The engine's parameters (params.json beside this file, or in ../common): name, type, default,
      label, help, kind ("choice", "list", "text" or "int"; artcloak/params.py KINDS), choices,
      min, max, advanced.
  defaults() -> {name: default}
  load_do_not_train() -> {"namespaces": {prefix: uri}, "properties": {"prefix:Name": value}}
      The "do not train" XMP properties the engine writes (do_not_train.json beside this file, or in
      ../common; artcloak/files/metadata.py DO_NOT_TRAIN): IPTC plus:DataMining, the notice in
      plus:OtherConstraints, TDMRep tdm:reservation.
  protect_pixels(data, width, height, channels, fmt, params, progress=None, cancelled=None)
      -> (out_bytes, report)
      data: raw row-major H x W x C samples, native little-endian; fmt "u8", "u16" or "float"
      (float32); channels 1-4 (grey, grey+alpha, RGB, RGBA). params: {name: value} (missing ones
      take the engine's defaults). progress(fraction, message) is called as the engine works;
      cancelled() is polled about ten times a second and, when it returns true, the engine is
      stopped and EngineError(kind="cancelled") raised. out_bytes has the same layout as data.
  verify_pixels(orig, prot, width, height, channels, fmt, progress=None) -> report
  PreviewSession(data, width, height, channels, fmt)
      A dialog's live preview of `data` (same layout as protect_pixels): one worker (op "preview")
      for the dialog's life. .start(params=None) (EngineError when the engine cannot start),
      .request(params) on each change (never blocks; only the newest waiting request is run),
      .poll() from a timer -> the newest PreviewFrame (pixels in the layout sent; display and change:
      RGB u8 bytes, the preview and 0.5 + 10 x its change) or None, .close(). .error (the newest
      EngineError or None), .ended, .status (a short text for the dialog).
  format_report(report) -> str
      The text for a message box: the engine's own text of the report (its "text", rendered once in
      the engine: what a model trained on the image would reproduce, how far each model's latents
      moved against plain noise, the visible cost), shown as it is.

The temporary folder is private (mkdtemp, 0700; files 0600) and always removed, also on error,
cancel or crash.

The worker's environment is built, not inherited (engine_env()): GIMP's process carries what its own
bundle needs (an AppImage's LD_LIBRARY_PATH and PYTHONHOME, a Snap's SNAP_*, GI_/GEGL_/BABL_ paths, a
PATH that starts inside the bundle), which breaks a Python from elsewhere. Only a whitelist passes:
HOME and the user's name, TMP/TEMP/TMPDIR, the locale (LANG, LANGUAGE, LC_*), the Windows essentials
(SystemRoot, SYSTEMDRIVE, USERPROFILE, APPDATA, LOCALAPPDATA, COMSPEC, PATHEXT, WINDIR, ...), the XDG
data/cache/config folders, CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS and ARTCLOAK_*; PATH without the
bundle's entries; ARTCLOAK_MODELS from the config unless already set.

Flatpak (FLATPAK_ID set, /.flatpak-info present, or "sandbox": "flatpak" in the config with
flatpak-spawn at hand; ARTCLOAK_SANDBOX=flatpak|none overrides): the engine's Python lives on the host,
which the sandbox's processes cannot run directly, so the worker starts as
`flatpak-spawn --host --watch-bus --directory=JOBDIR --env=K=V ... PYTHON -u -m artcloak.worker`, with
the job folder under the app's cache folder in HOME (the same path on both sides; the sandbox's /tmp is
private). That needs the talk-name permission org.freedesktop.Flatpak; without it the error names the
exact command that grants it (FLATPAK_COMMAND).
"""
# This file must also run under GIMP 2.10's Python 2.7: no f-strings, no annotations, %-formatting.
# ruff: noqa: UP004, UP010, UP020, UP024, UP031, B904
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
           "load_do_not_train", "protect_pixels", "verify_pixels", "format_report", "SAMPLE_SIZES",
           "MIN_SIDE", "IMAGE_EXTENSIONS", "PreviewSession", "PreviewFrame"]

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG_NAME = "artcloak-engine.json"
SAMPLE_SIZES = {"u8": 1, "u16": 2, "float": 4}
# The fronts' shared rules. MIN_SIDE: the engine's smallest image side (artcloak.pixels.MIN_SIDE, one
# latent pixel of an f/32 encoder; tests/test_params_json.py checks they agree). IMAGE_EXTENSIONS: the
# files a batch takes from a folder (what GIMP opens; a file GIMP cannot load is reported and skipped).
MIN_SIDE = 32
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".xcf", ".psd", ".ora",
                    ".jxl", ".avif", ".heic", ".heif", ".tga", ".exr", ".ppm", ".pgm", ".pnm", ".gif")
INSTALL_HINT = ("Install the engine with the installer in the artcloak download: "
                "install_scripts/install.sh (Linux, macOS) or install_scripts/install.ps1 (Windows), "
                "then restart GIMP. To use an engine you installed yourself, set ARTCLOAK_ENGINE_PYTHON "
                "to its Python executable.")
POLL_SECONDS = 0.1
STDERR_TAIL = 1500
_PY2 = sys.version_info[0] == 2
# What the engine's process may inherit from GIMP's (names compared in upper case: Windows' are any case)
ENV_KEEP = frozenset((
    "HOME", "USER", "LOGNAME", "USERNAME", "TMP", "TEMP", "TMPDIR", "LANG", "LANGUAGE",
    "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "USERPROFILE", "HOMEDRIVE", "HOMEPATH",
    "APPDATA", "LOCALAPPDATA", "PROGRAMDATA", "NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE",
    "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR",
    "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS"))
ENV_KEEP_PREFIXES = ("ARTCLOAK_", "LC_")
FLATPAK_APP = "org.gimp.GIMP"
FLATPAK_COMMAND = "flatpak override --user --talk-name=org.freedesktop.Flatpak %s"
FLATPAK_HOST_PATH = "/usr/local/bin:/usr/bin:/bin"


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
    """<user data dir>/artcloak, the same folder the engine's installer uses. The engine's
    artcloak/folders.py data_dir is the reference (this file cannot import the engine);
    tests/test_install.py checks both agree."""
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
    sandbox = cfg.get("sandbox") or None
    # inside a Flatpak the engine is a host file, which the sandbox may not see: checked on the host
    if sandbox_mode(cfg) != "flatpak" and not os.path.isfile(python):
        raise EngineError("The artcloak engine's Python %s does not exist (named by %s)" % (python, source),
                          "The engine may have been moved or removed. " + INSTALL_HINT, "engine")
    return {"python": python, "models": cfg.get("models") or None, "source": source, "sandbox": sandbox}


def sandbox_mode(cfg=None):
    """"flatpak" when the engine must be started on the host through flatpak-spawn, else None."""
    forced = (os.environ.get("ARTCLOAK_SANDBOX") or "").strip().lower()
    if forced:
        return "flatpak" if forced == "flatpak" else None
    if os.environ.get("FLATPAK_ID") or os.path.exists("/.flatpak-info"):
        return "flatpak"
    if (cfg or {}).get("sandbox") == "flatpak" and _which("flatpak-spawn"):
        return "flatpak"
    return None


def _which(name, path=None):
    """shutil.which for Python 2.7 as well: the first executable `name` on PATH, or None."""
    for folder in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        candidate = os.path.join(folder, name)
        if folder and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_engine_python():
    """The engine's Python executable (see the lookup order in the module docstring)."""
    return engine_config()["python"]


# ---- what the engine declares for the plug-ins ----------------------------------------------------

def _load_shared(name):
    """One of the engine's JSON copies for the plug-ins (beside this file, else ../common)."""
    for folder in (HERE, os.path.join(HERE, "..", "common")):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with io.open(path, "r", encoding="utf-8") as f:
                return json.load(f)
    raise EngineError("%s is missing beside %s" % (name, __file__),
                      "Reinstall the plug-in: " + INSTALL_HINT, "engine")


def load_schema():
    """The engine's parameter list from params.json."""
    return _load_shared("params.json")


def load_do_not_train():
    """The engine's "do not train" XMP properties from do_not_train.json (see the module docstring)."""
    return _load_shared("do_not_train.json")


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


def _bundle_roots(environ, platform):
    """Folders of the application bundle GIMP runs from: their PATH entries are not for the engine."""
    roots = [environ.get(name) for name in ("APPDIR", "SNAP")]
    if platform == "flatpak":
        roots.append("/app")
    elif sys.platform in ("win32", "darwin") and "gimp" in sys.prefix.lower():
        roots.append(sys.prefix)  # GIMP's own Python, bundled in its installation folder
    return [os.path.normcase(os.path.abspath(r)).rstrip("\\/") for r in roots if r]


def _clean_path(value, roots):
    kept = []
    for entry in (value or "").split(os.pathsep):
        if not entry:
            continue
        norm = os.path.normcase(os.path.abspath(entry)).rstrip("\\/")
        if any(norm == r or norm.startswith(r + os.sep) or norm.startswith(r + "/") for r in roots):
            continue
        if entry not in kept:
            kept.append(entry)
    return os.pathsep.join(kept)


def engine_env(cfg, environ=None, sandbox=None):
    """The engine process's environment (see the module docstring): a whitelist of `environ`
    (default os.environ), PATH without the bundle's entries, the models folder and Python's I/O
    settings. `sandbox` "flatpak": for the host side (the sandbox's XDG and temp folders stay behind)."""
    environ = os.environ if environ is None else environ
    env = {}
    for name, value in environ.items():
        key = name.upper()
        if key in ENV_KEEP or any(key.startswith(p) for p in ENV_KEEP_PREFIXES):
            env[name] = value
    if sandbox == "flatpak":
        # the sandbox's XDG folders are the app's own (~/.var/app/ID/...), its TMPDIR is private; the
        # host's own values, where flatpak passed them on, come as HOST_XDG_*
        for name in list(env):
            if name.upper().startswith("XDG_") or name.upper() in ("TMP", "TEMP", "TMPDIR"):
                del env[name]
        for kind in ("DATA", "CACHE", "CONFIG"):
            if environ.get("HOST_XDG_%s_HOME" % kind):
                env["XDG_%s_HOME" % kind] = environ["HOST_XDG_%s_HOME" % kind]
        env["PATH"] = FLATPAK_HOST_PATH
    else:
        path_name = next((n for n in environ if n.upper() == "PATH"), "PATH")
        path = _clean_path(environ.get(path_name, ""), _bundle_roots(environ, sandbox))
        env[path_name] = path or os.defpath
    if cfg.get("models") and not env.get("ARTCLOAK_MODELS"):
        env["ARTCLOAK_MODELS"] = cfg["models"]
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _worker_env(cfg, sandbox=None):
    return dict((_native(k), _native(v)) for k, v in engine_env(cfg, sandbox=sandbox).items())


def _flatpak_app():
    return os.environ.get("FLATPAK_ID") or FLATPAK_APP


def _flatpak_error(detail):
    command = FLATPAK_COMMAND % _flatpak_app()
    msg = ("GIMP runs as a Flatpak, and this Flatpak may not start programs outside its sandbox, so it "
           "cannot start the artcloak engine (installed outside it).")
    if detail:
        msg += "\n\nflatpak-spawn said: " + detail
    hint = ("Allow it once: in a terminal, run\n\n    %s\n\nthen restart GIMP. (The artcloak installer "
            "offers to do this when it installs into a Flatpak GIMP.)" % command)
    return EngineError(msg, hint, "engine")


def _flatpak_job_parent():
    """Where job folders go inside a Flatpak: the app's cache folder under HOME, which the sandbox
    and the host see at the same path (the sandbox's /tmp is its own)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    parent = os.path.join(base, "artcloak-jobs")
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o700)
    return parent


def _flatpak_check(python, env):
    """Can flatpak-spawn reach the host, and is the engine's Python there? EngineError if not."""
    argv = ["flatpak-spawn", "--host"] + ["--env=%s=%s" % kv for kv in sorted(env.items())]
    argv += ["test", "-x", _native(python)]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _out, err = proc.communicate()
    except OSError as e:
        raise _flatpak_error("cannot run flatpak-spawn: %s" % e)
    detail = err.decode("utf-8", "replace").strip()[-STDERR_TAIL:]
    if proc.returncode != 0 and detail:
        raise _flatpak_error(detail)
    if proc.returncode != 0:
        raise EngineError("The artcloak engine's Python %s does not exist on this computer (outside "
                          "GIMP's Flatpak sandbox)" % python,
                          "The engine may have been moved or removed. " + INSTALL_HINT, "engine")


def _worker_command(cfg, sandbox, job_dir, env):
    """(argv, env for Popen) that start the worker, directly or on the Flatpak's host."""
    argv = [_native(cfg["python"]), "-u", "-m", "artcloak.worker"]
    if sandbox != "flatpak":
        return argv, env
    host = ["flatpak-spawn", "--host", "--watch-bus", "--directory=%s" % _native(job_dir)]
    host += ["--env=%s=%s" % kv for kv in sorted(env.items())]
    return host + argv, None  # flatpak-spawn itself runs in the sandbox's own environment


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


def _stop(proc, gentle=False):
    """End the worker. `gentle` (flatpak-spawn in between): SIGTERM first, which flatpak-spawn passes
    on to the host process; SIGKILL would end flatpak-spawn alone."""
    if gentle and proc.poll() is None:
        try:
            proc.terminate()
        except OSError:
            pass
        deadline = time.time() + 3
        while proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
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


def _job_folder(sandbox):
    """A private folder for one job's files (inside a Flatpak: where the host sees the same path)."""
    if sandbox == "flatpak":
        tmp = tempfile.mkdtemp(prefix="artcloak-", dir=_flatpak_job_parent())
    else:
        tmp = tempfile.mkdtemp(prefix="artcloak-")
    os.chmod(tmp, 0o700)
    return tmp


def _spawn(cfg, sandbox, env, tmp):
    """Start the worker in `tmp` (its stderr into tmp/stderr.log); return (process, log path)."""
    log_path = os.path.join(tmp, "stderr.log")
    log = open(log_path, "wb")
    kwargs = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = 0x08000000  # CREATE_NO_WINDOW: no console flashing up
    argv, popen_env = _worker_command(cfg, sandbox, tmp, env)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                env=popen_env, cwd=tmp, **kwargs)
    except OSError as e:
        if sandbox == "flatpak":
            raise _flatpak_error("cannot run flatpak-spawn: %s" % e)
        raise EngineError("Cannot start the artcloak engine %s: %s" % (cfg["python"], e),
                          INSTALL_HINT, "engine")
    finally:
        log.close()
    return proc, log_path


def _start_reader(proc):
    """A thread that queues the worker's stdout lines (None at the end); returns (thread, queue)."""
    q = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, q))
    reader.daemon = True
    reader.start()
    return reader, q


def _parse_event(line):
    """The protocol event on one stdout line, or None for a stray line from a library."""
    try:
        event = json.loads(line.decode("utf-8", "replace"))
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _event_error(event, log_path):
    """The EngineError of an error event (an internal error gets the engine's last output lines)."""
    message = event.get("message", "unknown engine error")
    if event.get("kind", "internal") == "internal" and _tail(log_path):
        message += "\n\nEngine output (last lines):\n" + _tail(log_path)
    return EngineError(message, event.get("hint", ""), event.get("kind", "internal"))


def _ended_error(cfg, proc, log_path):
    """The EngineError for a worker that ended without a result (no engine there, or a crash)."""
    proc.wait()
    tail = _tail(log_path)
    if "No module named artcloak" in tail or "No module named 'artcloak" in tail:
        return EngineError("The Python %s has no artcloak engine installed." % cfg["python"],
                           INSTALL_HINT, "engine")
    return _crash_error(proc.returncode, tail)


def _finish(proc, reader, gentle):
    """Stop the worker, let the reader reach the end of its pipe, close the pipes."""
    if proc is None:
        return
    _stop(proc, gentle)
    if reader is not None:
        reader.join(5)  # at EOF now that the process is gone; then its pipe may be closed
    for stream in (proc.stdout, proc.stdin):
        try:
            stream.close()
        except (IOError, OSError):
            pass


def _prepare(files):
    """(config, sandbox, env, job folder with `files` written in it) for a worker about to start."""
    cfg = engine_config()
    sandbox = sandbox_mode(cfg)
    env = _worker_env(cfg, sandbox)
    if sandbox == "flatpak":
        _flatpak_check(cfg["python"], env)
    tmp = _job_folder(sandbox)
    try:
        for name, data in files.items():
            _write_private(os.path.join(tmp, name), data)
    except Exception:
        _remove(tmp)
        raise
    return cfg, sandbox, env, tmp


def _send_line(proc, value, close=False):
    """One JSON line to the worker's stdin; False when the worker is gone (its exit says why)."""
    try:
        proc.stdin.write((json.dumps(value) + "\n").encode("utf-8"))
        proc.stdin.flush()
        if close:
            proc.stdin.close()
    except (IOError, OSError, ValueError):
        return False
    return True


def _read_output(tmp, name):
    try:
        with io.open(os.path.join(tmp, os.path.basename(name)), "rb") as f:
            return f.read()
    except (IOError, OSError) as e:
        raise EngineError("The engine reported success but its output is unreadable: %s" % e, "",
                          "internal")


def _run_job(job, files, progress=None, cancelled=None):
    """Write `files` ({name: bytes}) to a private folder, run one job there, return (output bytes or
    None, report); the folder is removed whatever happens."""
    cfg, sandbox, env, tmp = _prepare(files)
    gentle = sandbox == "flatpak"
    proc = reader = None
    try:
        proc, log_path = _spawn(cfg, sandbox, env, tmp)
        _send_line(proc, dict(job, dir=tmp), close=True)  # a dead worker is reported from its exit
        reader, q = _start_reader(proc)
        result = None
        while True:
            if cancelled is not None and cancelled():
                _stop(proc, gentle)
                raise EngineError("Protection cancelled; nothing was changed.", "", "cancelled")
            try:
                line = q.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if line is None:
                break
            event = _parse_event(line)
            if event is None:
                continue  # a stray line from a library; the protocol lines are JSON objects
            kind = event.get("event")
            if kind == "progress" and progress is not None:
                progress(float(event.get("fraction", 0.0)), event.get("message", ""))
            elif kind == "error":
                _stop(proc, gentle)
                raise _event_error(event, log_path)
            elif kind == "done":
                result = event
                break
        if result is None:
            raise _ended_error(cfg, proc, log_path)
        out = _read_output(tmp, result["output"]) if result.get("output") else None
        proc.wait()
        return out, result.get("report", {})
    finally:
        _finish(proc, reader, gentle)
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


# ---- the dialog's live preview ------------------------------------------------------------------

PREVIEW_GRACE = 0.5  # seconds a closed session's worker may take to end (an idle one ends at once;
# one busy with a preview is stopped: nobody waits for that preview any more)


class PreviewFrame(object):
    """One finished preview: `pixels` (bytes in the layout sent), `display` and `change` (RGB u8 bytes,
    width x height: the preview and 0.5 + 10 x its change, for the eye), `request` (the number
    request() returned), `seconds` (the engine's time for it)."""

    def __init__(self, pixels, display, change, width, height, request, seconds):
        self.pixels, self.display, self.change = pixels, display, change
        self.width, self.height, self.request, self.seconds = width, height, request, seconds


class PreviewSession(object):
    """One worker that previews the same pixels under changing parameters (the worker's op
    "preview"): start() once, request(params) on every change (never blocks), poll() from a timer
    for the newest finished preview, close() when the dialog closes. Requests sent while one runs are
    coalesced by the engine: only the newest is previewed.

    `error`: the EngineError of the session's end, or of a failed request until a later request's
    preview arrives (None while all is well); `ended`: the worker is gone (after an error without a
    request, a crash, or close()); `status`: a short text for the dialog."""

    def __init__(self, data, width, height, channels, fmt):
        data = bytes(data) if not isinstance(data, bytes) else data
        _check_size(data, width, height, channels, fmt, "The preview data")
        self._data, self._fmt = data, fmt
        self.width, self.height, self.channels = int(width), int(height), int(channels)
        self.error, self.ended, self.ready, self.status = None, False, False, "not started"
        self._proc = self._reader = self._queue = self._tmp = None
        self._cfg, self._gentle, self._log, self._count = None, False, None, 0
        self._failed = None  # the request whose error `error` holds, while no later preview came

    def start(self, params=None):
        """Start the worker (raises EngineError when it cannot: no engine, no Python); with `params`
        the first preview is asked for at once. Returns the first request's number (0) or None."""
        self._cfg, sandbox, env, self._tmp = _prepare({"in.raw": self._data})
        self._gentle = sandbox == "flatpak"
        try:
            self._proc, self._log = _spawn(self._cfg, sandbox, env, self._tmp)
        except Exception:
            _remove(self._tmp)
            self.ended = True
            raise
        job = {"op": "preview", "dir": self._tmp, "input": "in.raw", "width": self.width,
               "height": self.height, "channels": self.channels, "format": self._fmt}
        if params is not None:
            job["params"] = dict(params)
        _send_line(self._proc, job)
        self._reader, self._queue = _start_reader(self._proc)
        self.status = "starting the engine"
        return 0 if params is not None else None

    @property
    def latest_request(self):
        """The number of the newest request sent (0: the one start() sent with its params)."""
        return self._count

    def request(self, params):
        """Ask for the preview of `params`; returns the request's number (None once ended)."""
        if self.ended or self._proc is None:
            return None
        self._count += 1
        if not _send_line(self._proc, {"request": self._count, "params": dict(params or {})}):
            return None  # the worker is gone: poll() says why
        return self._count

    def poll(self):
        """The newest preview finished since the last call (a PreviewFrame), or None; never blocks.
        Older frames that arrived meanwhile are skipped (their files removed)."""
        newest = None
        while self._queue is not None and not self.ended:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._on_end()
                break
            event = _parse_event(line) or {}
            if event.get("event") == "preview":
                if newest is not None:
                    self._discard(newest)
                newest = event
            else:
                self._on_event(event)
        if newest is None or self._tmp is None:  # nothing new, or the session ended meanwhile
            return None
        return self._frame(newest)

    def _on_event(self, event):
        kind = event.get("event")
        if kind == "progress":
            self.status = event.get("message", self.status)
        elif kind == "ready":
            self.ready, self.status = True, "engine ready"
        elif kind == "error":
            self.error = _event_error(event, self._log)
            self.status = "error: " + self.error.message
            if "request" not in event:  # the job itself was refused: the worker ends
                self.close()
            else:  # that request failed; a later one's preview clears it
                self._failed = event["request"] if isinstance(event["request"], int) else self._count

    def _on_end(self):
        """The worker ended on its own: a crash, or no engine in that Python."""
        if not self.ended:
            self.error = _ended_error(self._cfg, self._proc, self._log)
            self.status = "error: " + self.error.message
            self.close()

    def _frame(self, event):
        names = [event.get(k) or "" for k in ("output", "display", "change")]
        try:
            pixels, picture, change = [_read_output(self._tmp, n) for n in names]
        except EngineError as e:
            self.error = e
            return None
        finally:
            self._discard(event)
        self.status = "preview of request %s (%.1f s)" % (event.get("request"), event.get("seconds", 0))
        if self._failed is not None and not self.ended and event.get("request", -1) > self._failed:
            self.error, self._failed = None, None
        return PreviewFrame(pixels, picture, change, int(event.get("width", self.width)),
                            int(event.get("height", self.height)), event.get("request"),
                            float(event.get("seconds", 0.0)))

    def _discard(self, event):
        for key in ("output", "display", "change"):
            if event.get(key):
                try:
                    os.unlink(os.path.join(self._tmp, os.path.basename(event[key])))
                except (IOError, OSError):
                    pass

    def close(self):
        """End the session: stdin closed (the worker ends), stopped if it has not within
        PREVIEW_GRACE seconds, the folder removed. Safe to call more than once."""
        self.ended = True
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()
            except (IOError, OSError, ValueError):
                pass
            deadline = time.time() + PREVIEW_GRACE
            while proc.poll() is None and time.time() < deadline:
                time.sleep(0.02)
            _finish(proc, self._reader, self._gentle)
        if self._tmp is not None:
            _remove(self._tmp)
            self._tmp = None


# ---- the report as text -------------------------------------------------------------------------

NO_TEXT = ("This engine sent its report without the report in words; update it with the installer "
           "(install_scripts/install.sh or install.ps1).")


def format_report(report):
    """The report in words for a message: the engine's own text of it (its "text"; the engine renders
    it once, in artcloak/measure/report_text.py, and the CLI prints the same), shown as it is."""
    if not report:
        return "No report."
    return report.get("text") or NO_TEXT
