"""The `artcloak` command: a real batch (with a bad file in it), formats kept, inputs never touched,
exit codes; plus format round trips of the file reader/writer."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from artcloak import cli
from artcloak.files import imageio, pngcodec
from PIL import Image, PngImagePlugin


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth shapes plus fine texture: something the optimizer can work on."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    rng = np.random.default_rng(seed)
    img = np.stack([0.5 + 0.4 * np.sin(6 * x), 0.5 + 0.4 * np.cos(5 * y), x * y], axis=2)
    return np.clip(img + 0.04 * rng.standard_normal((h, w, 3)), 0, 1)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def batch(tmp_path_factory, models_dir):
    """One real `artcloak protect --json` over three good files and a bad one, run in-process."""
    d = tmp_path_factory.mktemp("batch")
    rgba = np.dstack([np.rint(_photo(64, 72) * 255), np.full((64, 72), 255)]).astype(np.uint8)
    rgba[:16, :16, 3] = 0  # fully transparent corner: must stay exactly as it was
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "my drawing")
    Image.fromarray(rgba, "RGBA").save(d / "rgba.png", pnginfo=info)
    deep = np.rint(_photo(64, 64, 1)[..., 1:2] * 65535).astype(np.uint16)  # 16-bit grey
    (d / "deep.png").write_bytes(pngcodec.encode(deep))
    Image.fromarray(np.rint(_photo(64, 80, 3) * 255).astype(np.uint8)).save(d / "photo.jpg", quality=92)
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    names = ["rgba.png", "deep.png", "broken.png", "photo.jpg"]
    before = {n: _sha(d / n) for n in names}
    out = d / "out"
    argv = ["protect", *[str(d / n) for n in names], "--out-dir", str(out), "--quality", "fast", "--json"]
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(argv)
    records = {os.path.basename(r["input"]): r for r in map(json.loads, buf.getvalue().splitlines())}
    return {"dir": d, "out": out, "code": code, "records": records, "before": before, "names": names}


def test_batch_reports_bad_file_and_writes_the_others(batch):
    assert batch["code"] == 1  # some failed
    recs = batch["records"]
    assert set(recs) == set(batch["names"])  # one JSON line per input, in --json mode nothing else
    assert recs["broken.png"]["ok"] is False and recs["broken.png"]["kind"] == "input"
    assert recs["broken.png"]["error"]
    assert not (batch["out"] / "broken.png").exists()
    for n in ("rgba.png", "deep.png", "photo.jpg"):
        assert recs[n]["ok"] is True and (batch["out"] / n).is_file(), recs[n]
    assert not [p for p in batch["out"].iterdir() if p.name.startswith(".")]  # no temporary files left


def test_inputs_never_modified(batch):
    for n, digest in batch["before"].items():
        assert _sha(batch["dir"] / n) == digest


def test_formats_kept(batch):
    out = batch["out"]
    rgba, info = imageio.read(out / "rgba.png")
    src, _ = imageio.read(batch["dir"] / "rgba.png")
    assert rgba.dtype == np.uint8 and rgba.shape == (64, 72, 4)
    assert np.array_equal(rgba[..., 3], src[..., 3]) and np.array_equal(rgba[:16, :16], src[:16, :16])
    assert not np.array_equal(rgba, src)  # it was protected
    assert any(c.type == b"tEXt" and b"my drawing" in c.data for c in info.png_chunks)
    deep = pngcodec.parse((out / "deep.png").read_bytes())
    assert (deep.bit_depth, deep.colour_type) == (16, 0)  # 16-bit grey stays 16-bit grey
    deep_px, _ = imageio.read(out / "deep.png")
    assert deep_px.dtype == np.uint16 and deep_px.shape == (64, 64, 1)
    assert len(np.unique(deep_px & 0xFF)) > 16  # real 16-bit values, not 8-bit ones scaled up
    assert not np.array_equal(deep_px, imageio.read(batch["dir"] / "deep.png")[0])
    with Image.open(out / "photo.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB"


def test_report_and_what_jpeg_costs(batch):
    recs = batch["records"]
    for n in ("rgba.png", "deep.png", "photo.jpg"):
        rep = recs[n]["report"]
        assert {"psnr", "ssim", "linf", "flat_change"} <= set(rep["perceptual"])
        assert "taef2" in rep["models"] and "noise_ratio" in rep["models"]["taef2"]
        assert recs[n]["metadata"]["do_not_train"] is True
    jpg = recs["photo.jpg"]
    assert "as_written" in jpg and "taef2" in jpg["as_written"]["models"]
    assert any("JPEG" in note for note in jpg["notes"])
    assert "as_written" not in recs["rgba.png"]  # lossless: the file holds exactly the result


def test_summary_line_says_what_a_model_would_learn(batch):
    """The CLI's line per file carries the same headline words as the GIMP message (report_text)."""
    rec = batch["records"]["photo.jpg"]
    head = rec["report"]["headline"]
    assert head["model"] == "taef2" and head["view"] == "train512"
    assert head["copy_psnr"] == rec["report"]["models"]["taef2"]["after.train512.copy_psnr"]
    line = cli.protect.summary_line(rec)
    assert (f"A model trained on this image would reproduce it with a change of {head['copy_psnr']:.1f} dB "
            f"PSNR (lower = stronger); you see {head['psnr']:.1f} dB.") in line
    assert "than random noise of the same visibility" in line
    assert rec["report"]["text"].splitlines()[0] in line  # the plug-ins' text starts the same


def test_verify_cli_on_a_protected_file(batch, tmp_path, capsys):
    fig = tmp_path / "fig.png"
    code = cli.main(["verify", str(batch["dir"] / "photo.jpg"), str(batch["out"] / "photo.jpg"), "--json",
                     "--transforms", "train512,jpeg75,resize512,noise", "--figure", str(fig)])
    assert code == 0
    rep = json.loads(capsys.readouterr().out)
    assert {"psnr", "ssim", "linf", "flat_change"} <= set(rep["perceptual"])
    f2 = rep["models"]["taef2"]
    for key in ("latent_shift", "noise_ratio", "amplification", "after.jpeg75.noise_ratio",
                "after.noise.amplification", "copy_psnr", "copy_over_noise", "after.train512.copy_psnr",
                "after.train512.copy_over_noise", "after.jpeg75.copy_psnr", "after.noise.copy_over_noise"):
        assert key in f2
    assert "amplification" not in rep["models"]["taesana"] and "copy_psnr" not in rep["models"]["taesana"]
    assert rep["summary"]["taef2"]["copy_psnr"] == f2["after.train512.copy_psnr"]
    assert rep["headline"] == {"model": "taef2", "view": "train512",
                               "copy_psnr": f2["after.train512.copy_psnr"],
                               "copy_over_noise": f2["after.train512.copy_over_noise"],
                               "psnr": rep["perceptual"]["psnr"]}
    assert max(rep["models"][m]["noise_ratio"] for m in ("taef2", "taesana")) > 1.3  # a real effect
    assert rep["metadata"]["do_not_train"] is True and rep["metadata"]["tdm_reservation"] == 1
    with Image.open(fig) as im:
        assert im.width >= 3 * 64 and im.height > 3 * 64  # header row + one row per model


def test_usage_errors_exit_2(tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(img)
    assert cli.main(["protect", str(img)]) == 2  # no -o / --out-dir
    assert cli.main(["protect", str(img), str(img), "-o", str(tmp_path / "x.png")]) == 2
    assert cli.main(["protect", str(img), "-o", str(tmp_path / "x.png"), "--intensity", "extreme"]) == 2
    assert cli.main(["protect", str(img), "-o", str(tmp_path / "x.bmp")]) == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["protect", str(img), "--bogus"])
    assert e.value.code == 2
    assert "intensity must be one of" in capsys.readouterr().err


def test_output_onto_its_input_is_refused(tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(img)
    before = _sha(img)
    assert cli.main(["protect", str(img), "--out-dir", str(tmp_path), "--json"]) == 1
    rec = json.loads(capsys.readouterr().out)
    assert rec["ok"] is False and "input file itself" in rec["error"]
    assert _sha(img) == before


def test_param_options_come_from_the_schema():
    from artcloak.params import schema

    text = cli.build_parser()._subparsers._group_actions[0].choices["protect"].format_help()
    for entry in schema():
        assert f"--{entry['name']}" in text


def test_models_command_and_entry_point(models_dir):
    exe = os.path.join(os.path.dirname(sys.executable), "artcloak")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "artcloak.cli"]
    out = subprocess.run(cmd + ["models", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rep = {m["name"]: m for m in json.loads(out.stdout)["models"]}
    assert set(rep) >= {"taesd", "taesdxl", "taesd3", "taef1", "taef2", "taesana"}
    assert rep["taef2"]["encoder"]["hash_ok"] and rep["taef2"]["decoder"]["hash_ok"]
    assert rep["taesana"]["encoder"]["found"] and not rep["taesana"]["decoder"]["found"]
    assert not rep["taesd"]["encoder"]["found"] and rep["taesd"]["encoder"]["url"].startswith("https://")
    assert subprocess.run(cmd + ["verify"], capture_output=True, timeout=120).returncode == 2


# ---- file formats, without the optimizer ----------------------------------------------------------

@pytest.mark.parametrize("case", ["L8", "LA8", "RGB8", "RGBA8", "L16", "LA16", "RGB16", "RGBA16"])
def test_png_round_trip_exact(tmp_path, case):
    c = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[case.rstrip("0123456789")]
    dtype = np.uint16 if case.endswith("16") else np.uint8
    rng = np.random.default_rng(1)
    px = (rng.random((33, 47, c)) * np.iinfo(dtype).max).astype(dtype)
    px[:5] = px[:1]  # some runs, so several PNG filters get used by other encoders
    src = tmp_path / "src.png"
    src.write_bytes(pngcodec.encode(px))
    got, info = imageio.read(src)
    assert got.dtype == dtype and np.array_equal(got, px)
    imageio.write(tmp_path / "out.png", got, info)
    again, _ = imageio.read(tmp_path / "out.png")
    assert again.dtype == dtype and np.array_equal(again, px)
    with Image.open(tmp_path / "out.png") as im:  # an independent decoder reads what we wrote
        im.load()
        if case in ("L8", "RGB8", "RGBA8", "L16"):
            ref = np.asarray(im)
            assert np.array_equal(ref.reshape(px.shape).astype(dtype), px)


def test_pillow_written_16bit_png_with_filters_decodes(tmp_path):
    px = (np.random.default_rng(2).random((50, 61)) * 65535).astype(np.uint16)
    Image.fromarray(px).save(tmp_path / "g.png")  # mode I;16  # Pillow's own (adaptive) filtering
    got, _ = imageio.read(tmp_path / "g.png")
    assert np.array_equal(got[..., 0], px)


@pytest.mark.parametrize("fmt,mode", [("WEBP", "RGBA"), ("WEBP", "RGB"), ("TIFF", "RGB"), ("TIFF", "I;16"),
                                      ("TIFF", "F"), ("JPEG", "L")])
def test_other_formats_kept(tmp_path, fmt, mode):
    rng = np.random.default_rng(3)
    shape = (30, 40) if mode in ("L", "I;16", "F") else (30, 40, len(mode))
    if mode == "F":
        px = rng.random(shape).astype(np.float32)
    else:
        dtype = np.uint16 if mode == "I;16" else np.uint8
        px = (rng.random(shape) * np.iinfo(dtype).max).astype(dtype)
    ext = imageio.EXTENSION[fmt]
    kw = {"lossless": True, "exact": True} if fmt == "WEBP" else {}
    Image.fromarray(px, None if mode in ("I;16", "F") else mode).save(tmp_path / f"src{ext}", **kw)
    got, info = imageio.read(tmp_path / f"src{ext}")
    imageio.write(tmp_path / f"out{ext}", got, info)
    with Image.open(tmp_path / f"out{ext}") as im:
        assert im.format == fmt and im.mode == mode
        same = np.array_equal(np.asarray(im), px)
        assert same == (fmt != "JPEG")
    assert imageio.is_exact(fmt, got, info) == same  # decides whether the CLI measures the file again


def test_palette_png_becomes_rgb(tmp_path):
    Image.fromarray((np.arange(40 * 40).reshape(40, 40) % 7).astype(np.uint8), "L").convert("P").save(
        tmp_path / "p.png")
    px, info = imageio.read(tmp_path / "p.png")
    assert px.shape[2] == 3 and info.notes and "palette" in info.notes[0]


def test_alpha_into_jpeg_is_refused_before_any_work(tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 40, 4), np.uint8), "RGBA").save(img)
    assert cli.main(["protect", str(img), "-o", str(tmp_path / "a.jpg"), "--json"]) == 1
    rec = json.loads(capsys.readouterr().out)
    assert rec["kind"] == "input" and "alpha" in rec["error"] and "PNG" in rec["hint"]
    assert not (tmp_path / "a.jpg").exists()


def test_errors_in_words_name_the_file_then_the_hint(tmp_path, capsys):
    """Without --json a failure is one `artcloak: <file>: <error>` line and its hint below (protect
    and verify print them alike)."""
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 40, 4), np.uint8), "RGBA").save(img)
    assert cli.main(["protect", str(img), "-o", str(tmp_path / "a.jpg")]) == 1
    err = capsys.readouterr().err.splitlines()
    line = next(i for i, s in enumerate(err) if s.startswith(f"artcloak: {img}: "))
    assert "alpha" in err[line] and err[line + 1].startswith("  hint: ") and "PNG" in err[line + 1]
    assert cli.main(["verify", str(img), str(tmp_path / "missing.png")]) == 1
    assert capsys.readouterr().err.strip().startswith("artcloak: ")
