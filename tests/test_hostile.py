"""Hostile inputs (#20): what a user can hand the CLI and the worker, and what must hold for each.

Every case either works or ends with exit code 1 or 2 and a reason in words (no traceback) before
any protection work (a write failure: after it, in words), with no input changed and nothing left
behind. Real processes (the CLI, the worker), real weights, tiny images and quality "fast".
"""
import hashlib
import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from artcloak import pixels
from artcloak.files import imageio
from PIL import Image

FAST = ["--quality", "fast", "--models", "taesana"]
TOO_MANY = (20000, 20001)  # just over pixels.MAX_PIXELS
LIMIT_WORDS = f"the limit is {pixels.MAX_PIXELS:,} pixels"
# root ignores folder permissions: the CLI runs without its capabilities where a test needs them to count
UNPRIVILEGED = (["setpriv", "--inh-caps=-all", "--bounding-set=-all"]
                if os.geteuid() == 0 and shutil.which("setpriv") else [])


def cli(*args, cwd, prefix=(), preexec_fn=None):
    """Run `python -m artcloak.cli protect ...`; returns (exit code, stdout, stderr)."""
    proc = subprocess.run([*prefix, sys.executable, "-m", "artcloak.cli", "protect", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300, preexec_fn=preexec_fn)
    return proc.returncode, proc.stdout, proc.stderr


def worker(job, cwd, extra_lines=(), preexec_fn=None):
    """Run `python -m artcloak.worker` on a job (and any further lines); returns (exit code, events)."""
    text = "".join(json.dumps(j) + "\n" if isinstance(j, dict) else j for j in (job, *extra_lines))
    proc = subprocess.run([sys.executable, "-m", "artcloak.worker"], input=text, capture_output=True,
                          text=True, cwd=cwd, timeout=300, preexec_fn=preexec_fn)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def no_traceback(err: str) -> None:
    """No traceback, and no exception's name where words belong."""
    assert "Traceback" not in err and not re.search(r"\b[A-Z]\w*Error\b", err), err


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def noise(h=80, w=64, c=3, seed=0) -> np.ndarray:
    img = np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)
    return img[..., 0] if c == 1 else img


def png(path, arr, **kw) -> Path:
    Image.fromarray(arr).save(path, **kw)
    return Path(path)


def png_header(path, width, height) -> Path:
    """A PNG that claims `width` x `height` (8-bit RGB) and holds no pixels: sizes are read from it."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return Path(path)


def name_max(folder) -> int:
    """The longest file name this filesystem allows, in bytes."""
    return os.pathconf(folder, "PC_NAME_MAX")


def files_in(folder) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir())


# ---- 1. colour-key transparency ---------------------------------------------------------------------

@pytest.mark.parametrize("grey", [False, True], ids=["rgb", "grey"])
def test_colour_key_pixels_are_written_back_byte_for_byte(tmp_path, grey):
    img = noise(c=1 if grey else 3, seed=3)
    img[:40] = 0  # a 40-px band of the key colour, black
    src = png(tmp_path / "k.png", img, transparency=0 if grey else (0, 0, 0))
    before = sha(src)
    code, _, err = cli(src, "-o", tmp_path / "out.png", *FAST, cwd=tmp_path)
    assert code == 0, err
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == ("L" if grey else "RGB"), "the colour-key PNG must stay a colour-key PNG"
        assert im.info.get("transparency") == (0 if grey else (0, 0, 0)), "the tRNS chunk must still apply"
        out = np.asarray(im).reshape(img.shape)
    flat_in, flat_out = img.reshape(80, 64, -1), out.reshape(80, 64, -1)
    key = np.all(flat_in == 0, axis=2)
    assert key.sum() >= 40 * 64
    assert flat_in[key].tobytes() == flat_out[key].tobytes(), "a transparent (key-colour) pixel changed"
    assert not np.all(flat_out[~key] == 0, axis=-1).any(), "an opaque pixel was turned into the key colour"
    assert np.abs(flat_out[~key].astype(int) - flat_in[~key]).max() > 0, "nothing was protected"
    assert sha(src) == before


def test_colour_key_16bit_and_low_bit_depth_read_as_alpha(tmp_path):
    """The key is read in the file's own units: 16-bit keys as they are, a 2-bit grey key scaled."""
    grey16 = np.random.default_rng(1).integers(0, 65536, (40, 40), dtype=np.uint16)
    grey16[:10] = 4660
    src = png(tmp_path / "g16.png", grey16, transparency=4660)
    got, info = imageio.read(src)
    assert got.shape[2] == 2 and info.colour_key == (4660,)
    assert (got[..., 1] == 0).sum() == (grey16 == 4660).sum()
    imageio.write(tmp_path / "o16.png", got, info, do_not_train=False)
    with Image.open(tmp_path / "o16.png") as im:
        assert im.info.get("transparency") == 4660 and np.array_equal(np.asarray(im), grey16)
    two_bit = (np.arange(40 * 40).reshape(40, 40) % 4).astype(np.uint8)
    src2 = png(tmp_path / "g2.png", two_bit, transparency=1, bits=2)
    got2, _ = imageio.read(src2)
    with Image.open(src2) as im:
        decoded = np.asarray(im)  # 2-bit samples scaled to 8 bits: the key 1 is 85
    assert (got2[..., -1] == 0).sum() == (decoded == 85).sum() > 0


# ---- 2. the output folder ---------------------------------------------------------------------------

def test_out_dir_that_is_a_file_is_refused_in_words(tmp_path):
    src = png(tmp_path / "a.png", noise())
    (tmp_path / "afile").write_text("not a folder")
    code, out, err = cli(src, "--out-dir", "afile", *FAST, "--json", cwd=tmp_path)
    assert code == 1, err
    no_traceback(err)
    rec = json.loads(out)
    assert rec["kind"] == "output" and "it is a file" in rec["error"] and rec["hint"]
    assert (tmp_path / "afile").read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0 and not UNPRIVILEGED, reason="root writes anywhere; setpriv is missing")
def test_out_dir_in_a_read_only_folder_is_refused_in_words(tmp_path):
    src = png(tmp_path / "a.png", noise())
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = cli(src, "--out-dir", "ro/new", *FAST, cwd=tmp_path, prefix=UNPRIVILEGED)
        code_o, _, err_o = cli(src, "-o", "ro/out.png", *FAST, cwd=tmp_path, prefix=UNPRIVILEGED)
    finally:
        ro.chmod(0o755)
    assert code == 1 and code_o == 1, (err, err_o)
    for text in (err, err_o):
        no_traceback(text)
        assert "permission denied" in text and "hint: Choose a folder you can write to" in text
    assert files_in(ro) == []


# ---- 3. long names ----------------------------------------------------------------------------------

def test_longest_legal_name_is_written(tmp_path):
    """The longest name the filesystem allows is legal: its temporary name is shortened to fit
    (it was 15 bytes longer, and failed after the whole run)."""
    name = "n" * (name_max(tmp_path) - 4) + ".png"
    src = png(tmp_path / "a.png", noise())
    (tmp_path / "out").mkdir()
    code, _, err = cli(src, "-o", f"out/{name}", *FAST, cwd=tmp_path)
    assert code == 0, err
    assert files_in(tmp_path / "out") == [name], "the output is missing or a temporary file was left"


def test_name_too_long_is_refused_before_the_work(tmp_path):
    src = png(tmp_path / "a.png", noise())
    name = "n" * name_max(tmp_path) + ".png"
    code, out, err = cli(src, "-o", name, *FAST, "--json", cwd=tmp_path)
    assert code == 1
    no_traceback(err)
    rec = json.loads(out)
    assert rec["kind"] == "output" and "too long" in rec["error"] and "shorter" in rec["hint"]
    assert "report" not in rec and files_in(tmp_path) == ["a.png"]


# ---- 4. the notice ----------------------------------------------------------------------------------

@pytest.mark.parametrize("notice, words", [("no\x07training", "control"), ("x" * 70000, "70000 characters"),
                                           ("two\nlines", "control")])
def test_bad_notice_is_refused_before_the_work(tmp_path, notice, words):
    src = png(tmp_path / "a.png", noise())
    code, out, err = cli(src, "-o", "out.png", "--notice", notice, *FAST, cwd=tmp_path)
    assert code == 2 and out == ""
    no_traceback(err)
    assert words in err and "notice" in err and len(err.splitlines()) <= 2
    assert files_in(tmp_path) == ["a.png"]


def test_notice_limits_are_the_metadata_module_s():
    from artcloak.files import metadata

    metadata.check_notice("Kein Training \u2014 \u00e9t\u00e9 " * 10)
    metadata.check_notice("x" * metadata.NOTICE_MAX)
    with pytest.raises(Exception, match="at most"):
        metadata.do_not_train_xmp(None, "x" * (metadata.NOTICE_MAX + 1))


def test_notice_without_metadata_is_a_usage_error(tmp_path):
    src = png(tmp_path / "a.png", noise())
    code, _, err = cli(src, "-o", "out.png", "--no-metadata", "--notice", "X", cwd=tmp_path)
    assert code == 2 and "--no-metadata" in err and files_in(tmp_path) == ["a.png"]


# ---- 5. the pixel limit -----------------------------------------------------------------------------

def test_one_pixel_limit_for_files_targets_and_worker_jobs(tmp_path):
    big = png_header(tmp_path / "big.png", *TOO_MANY)
    small = png(tmp_path / "a.png", noise())
    code, out, err = cli(big, "-o", "out.png", *FAST, "--json", cwd=tmp_path)
    assert code == 1
    no_traceback(err)
    rec = json.loads(out)
    assert rec["kind"] == "input" and LIMIT_WORDS in rec["error"] and "DOS" not in rec["error"]
    code, _, err = cli(small, "-o", "out.png", "--target", big, *FAST, cwd=tmp_path)
    assert code == 2 and LIMIT_WORDS in err and "big.png" in err
    no_traceback(err)
    job = {"op": "protect", "dir": str(tmp_path), "input": "none.raw", "output": "out.raw",
           "width": TOO_MANY[0], "height": TOO_MANY[1], "channels": 3, "format": "u8", "params": {}}
    code, events = worker(job, tmp_path)
    assert code == 1 and events[-1]["kind"] == "input" and LIMIT_WORDS in events[-1]["message"]
    noise(40, 40).tofile(tmp_path / "in.raw")
    job = dict(job, input="in.raw", width=40, height=40, params={"target": str(big), "quality": "fast"})
    code, events = worker(job, tmp_path)
    assert code == 1 and events[-1]["kind"] == "input" and LIMIT_WORDS in events[-1]["message"]
    assert "a bug" not in events[-1]["hint"]
    assert sorted(files_in(tmp_path)) == ["a.png", "big.png", "in.raw"]


def test_pillow_s_own_limit_does_not_fire_below_the_engine_s(tmp_path):
    """Between Pillow's 179 MP "decompression bomb" and the engine's 400 MP, an image opens (its
    header only is read here): the engine's limit is the one that counts."""
    src = png_header(tmp_path / "mid.png", 15000, 13000)
    with imageio.open_image(src) as im:
        assert im.size == (15000, 13000)
    with pytest.raises(Exception, match=LIMIT_WORDS):
        imageio.open_image(png_header(tmp_path / "big.png", *TOO_MANY))


# ---- 6. format and extension ------------------------------------------------------------------------

def test_format_against_the_output_name_is_refused(tmp_path):
    src = png(tmp_path / "a.png", noise())
    code, _, err = cli(src, "--format", "jpeg", "-o", "q.png", *FAST, cwd=tmp_path)
    assert code == 2 and "q.jpg" in err and "PNG" in err
    no_traceback(err)
    assert files_in(tmp_path) == ["a.png"]


# ---- 7. failures while writing ----------------------------------------------------------------------

def _file_size_limit(n_bytes):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, n_bytes))


def test_file_size_limit_is_said_in_words(tmp_path):
    src = png(tmp_path / "a.png", noise(128, 128))
    (tmp_path / "out").mkdir()
    code, out, err = cli(src, "-o", "out/b.png", *FAST, "--json", cwd=tmp_path,
                         preexec_fn=_file_size_limit(20 * 1024))
    assert code == 1
    no_traceback(err)
    rec = json.loads(out)
    assert rec["kind"] == "output" and "file-size limit" in rec["error"] and "ulimit" in rec["hint"]
    assert files_in(tmp_path / "out") == [], "a partial or temporary file was left"
    # the worker says the same, with the same kind
    noise(128, 128).tofile(tmp_path / "in.raw")
    job = {"op": "protect", "dir": str(tmp_path), "input": "in.raw", "output": "out.raw", "width": 128,
           "height": 128, "channels": 3, "format": "u8", "params": {"quality": "fast", "models": "taesana"}}
    code, events = worker(job, tmp_path, preexec_fn=_file_size_limit(20 * 1024))
    assert code == 1 and events[-1]["kind"] == "output" and "file-size limit" in events[-1]["message"]
    assert "out.raw" not in files_in(tmp_path) and "out.raw.part" not in files_in(tmp_path)


def test_write_failures_in_words():
    import errno

    from artcloak.files import destination

    for code, words in ((errno.ENOSPC, "disk is full"), (errno.EFBIG, "file-size limit"),
                        (errno.ENAMETOOLONG, "too long"), (errno.EROFS, "read-only")):
        e = destination.write_failure(OSError(code, os.strerror(code)), "x.png")
        assert words in str(e) and e.hint and "x.png" in str(e)


# ---- the worker's rough edges -----------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("models", 3), ("robustness", 1), ("target", 2.5), ("seed", "1"),
                                          ("intensity", ["high"])])
def test_worker_field_of_the_wrong_type_is_an_input_error(tmp_path, field, value):
    noise(40, 40).tofile(tmp_path / "in.raw")
    job = {"op": "protect", "dir": str(tmp_path), "input": "in.raw", "output": "out.raw", "width": 40,
           "height": 40, "channels": 3, "format": "u8", "params": {field: value}}
    code, events = worker(job, tmp_path)
    assert code == 1 and events[-1]["kind"] == "input" and field in events[-1]["message"]
    assert "bug" not in events[-1]["hint"]


def test_a_second_request_while_busy_is_answered(tmp_path):
    job = {"op": "verify", "dir": str(tmp_path), "original": "a.raw", "protected": "b.raw", "width": 40,
           "height": 40, "channels": 3, "format": "u8"}
    code, events = worker(job, tmp_path, extra_lines=[job])
    refused = [e for e in events if e["event"] == "refused"]
    assert len(refused) == 1 and "busy" in refused[0]["message"] and refused[0]["kind"] == "input"
    assert events[-1]["event"] == "error" and code == 1  # the first job ran (its files are missing)


def test_empty_robustness_is_said(tmp_path):
    code, _, err = cli(tmp_path / "missing.png", "-o", "out.png", "--robustness", "", cwd=tmp_path)
    assert code == 1 and "--robustness is empty" in err


# ---- what already held, kept ------------------------------------------------------------------------

def test_output_onto_the_input_is_refused_however_spelled(tmp_path):
    src = png(tmp_path / "a.png", noise())
    before = sha(src)
    (tmp_path / "sub").mkdir()
    os.symlink(src, tmp_path / "link.png")
    os.link(src, tmp_path / "hard.png")
    for out in ("sub/../a.png", "link.png", "hard.png"):
        code, stdout, err = cli("a.png", "-o", out, *FAST, "--json", cwd=tmp_path)
        assert code == 1 and "input file itself" in json.loads(stdout)["error"], (out, err)
        no_traceback(err)
    assert sha(src) == before
    assert files_in(tmp_path) == ["a.png", "hard.png", "link.png", "sub"]


def test_worker_refuses_nan_pixels_and_a_huge_line_in_words(tmp_path):
    img = np.random.default_rng(4).random((40, 40, 1)).astype("<f4")
    img[3, 3] = np.nan
    img.tofile(tmp_path / "in.raw")
    job = {"op": "protect", "dir": str(tmp_path), "input": "in.raw", "output": "out.raw", "width": 40,
           "height": 40, "channels": 1, "format": "float", "params": {"quality": "fast"}}
    code, events = worker(job, tmp_path)
    assert code == 1 and events[-1]["kind"] == "input" and "NaN" in events[-1]["message"]
    code, events = worker('{"op": "protect", "junk": "' + "x" * 50_000_000 + "\n", tmp_path)
    assert code == 1 and events[-1]["kind"] == "input" and "not valid JSON" in events[-1]["message"]
    assert files_in(tmp_path) == ["in.raw"]
