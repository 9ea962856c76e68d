"""The client and the GIMP 2.10 front must run under GIMP 2.10's Python 2.7 as well as Python 3.

Always: a syntax check on the Python 3 AST for constructs Python 2.7 rejects (f-strings, annotations,
keyword-only arguments, `raise ... from`, argument-less super(), ...). Where a Python 2.7 interpreter
exists (ARTCLOAK_PYTHON2, python2.7 on PATH, or a pyenv 2.7), also compile both files with it and run
the client under it against the real worker. CI images usually have no Python 2: there the AST check
is what guards the 2.7 syntax.
"""
import ast
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "plugin" / "common" / "artcloak_client.py"
FRONT = ROOT / "plugin" / "gimp2" / "artcloak_protect" / "artcloak_protect.py"
PY2_FILES = [CLIENT, FRONT]


def py3_only_constructs(source):
    """(line, what) for every construct in `source` that Python 2.7 cannot parse or run."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.JoinedStr):
            found.append((line, "f-string"))
        elif isinstance(node, (ast.AnnAssign, ast.Nonlocal, ast.YieldFrom, ast.Await, ast.AsyncFunctionDef,
                               ast.NamedExpr)):
            found.append((line, type(node).__name__))
        elif isinstance(node, ast.arguments):
            if node.kwonlyargs or node.posonlyargs:
                found.append((line, "keyword-only or positional-only arguments"))
            if any(a.annotation is not None for a in node.args + node.kwonlyargs):
                found.append((line, "annotation"))
        elif isinstance(node, ast.FunctionDef) and node.returns is not None:
            found.append((line, "return annotation"))
        elif isinstance(node, ast.Raise) and node.cause is not None:
            found.append((line, "raise ... from"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
              and not node.args):
            found.append((line, "super() without arguments"))
        elif isinstance(node, ast.Starred) and not isinstance(getattr(node, "ctx", None), ast.Load):
            found.append((line, "starred assignment"))
    return found


@pytest.mark.parametrize("path", PY2_FILES, ids=lambda p: p.name)
def test_no_python3_only_syntax(path):
    assert py3_only_constructs(path.read_text(encoding="utf-8")) == []


def test_the_checker_catches_python3_syntax():
    bad = "def f(x: int, *, y=1) -> int:\n    z: int = 1\n    raise ValueError(f'{x}') from None\n"
    whats = {w for _, w in py3_only_constructs(bad)}
    assert {"f-string", "annotation", "return annotation", "AnnAssign", "raise ... from",
            "keyword-only or positional-only arguments"} <= whats


def find_python2():
    candidates = [os.environ.get("ARTCLOAK_PYTHON2"), shutil.which("python2.7"), shutil.which("python2")]
    real_home = os.environ.get("ARTCLOAK_TEST_REAL_HOME") or os.path.expanduser("~")  # conftest moves HOME
    candidates += sorted(glob.glob(os.path.join(real_home, ".pyenv/versions/2.7*/bin/python2.7")))
    for exe in filter(None, candidates):
        try:
            out = subprocess.run([exe, "-c", "import sys; print(sys.version_info[0])"], capture_output=True,
                                 text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == "2":
            return exe
    return None


PY2 = find_python2()
needs_py2 = pytest.mark.skipif(PY2 is None, reason="no Python 2.7 here (the AST check above still runs)")


# Debian 12 and 13 (the CI systems) no longer package Python 2.7: there the AST check is the guard.
@pytest.mark.ci_may_skip
@needs_py2
def test_python27_compiles_client_and_front():
    code = ("import py_compile, sys\n"
            "for p in sys.argv[1:]: py_compile.compile(p, doraise=True, cfile=p + '.py2c')")
    out = subprocess.run([PY2, "-c", code] + [str(p) for p in PY2_FILES], capture_output=True, text=True)
    for p in PY2_FILES:
        Path(str(p) + ".py2c").unlink(missing_ok=True)
    assert out.returncode == 0, out.stderr


PY2_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import artcloak_client as c
assert c.defaults()["intensity"] == "default"
w, h = 32, 36
data = bytearray((i * 7) % 200 + 20 for i in range(w * h * 3))
seen = []
out, report = c.protect_pixels(bytes(data), w, h, 3, "u8", {"quality": "fast", "models": "taesana"},
                               progress=lambda f, m: seen.append(f))
assert len(out) == len(data) and out != bytes(data)
text = c.format_report(report)
try:
    c.protect_pixels(b"x", w, h, 3, "u8", {})
except c.EngineError as e:
    kind = e.kind
print(json.dumps({"progress": len(seen), "report": "taesana" in text, "kind": kind, "str": str(e)[:20]}))
"""


@pytest.mark.ci_may_skip
@needs_py2
def test_client_runs_under_python27_against_the_real_worker(models_dir):
    env = dict(os.environ, ARTCLOAK_ENGINE_PYTHON=sys.executable)
    env.pop("ARTCLOAK_CONFIG", None)
    out = subprocess.run([PY2, "-c", PY2_SCRIPT, str(CLIENT.parent)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["progress"] >= 3 and result["report"] and result["kind"] == "input"


PY2_PREVIEW = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
import artcloak_client as c
w, h = 40, 36
data = bytes(bytearray((i * 7) % 200 + 20 for i in range(w * h * 3)))
s = c.PreviewSession(data, w, h, 3, "u8")
s.start({"intensity": "low"})

def frame(number):
    end = time.time() + 240
    while time.time() < end:
        f = s.poll()
        if s.error is not None:
            raise SystemExit(str(s.error))
        if f is not None and f.request == number:
            return f
        time.sleep(0.05)
    raise SystemExit("no preview: " + s.status)

first = frame(0)
second = frame(s.request({"intensity": "high"}))
folder = s._tmp
s.close()
print(json.dumps({"sizes": [len(first.pixels), len(first.display), len(second.change)],
                  "differ": first.pixels != second.pixels, "folder_gone": not os.path.exists(folder)}))
"""


@pytest.mark.ci_may_skip
@needs_py2
def test_preview_session_runs_under_python27(models_dir, instant_cloak):
    """GIMP 2.10 has no preview, but the client it imports must stay 2.7-clean, PreviewSession too."""
    env = dict(os.environ, ARTCLOAK_ENGINE_PYTHON=sys.executable)
    env.pop("ARTCLOAK_CONFIG", None)
    out = subprocess.run([PY2, "-c", PY2_PREVIEW, str(CLIENT.parent)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr + out.stdout
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"sizes": [40 * 36 * 3] * 3, "differ": True, "folder_gone": True}
