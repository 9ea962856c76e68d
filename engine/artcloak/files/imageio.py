"""Read and write image files keeping their format, bit depth and metadata.

`read(path)` gives the pixels as protect() takes them (H x W x C, uint8/uint16/float32) and an
ImageInfo with everything needed to write the result back the same way: PNG stays PNG (8 or
16 bit, grey/RGB, with or without alpha, every ancillary chunk copied verbatim), JPEG is written
at quality 95 without chroma subsampling (keeping EXIF, ICC, comments and other APP segments),
WebP stays lossless or lossy as it was, TIFF keeps 8-bit, 16-bit grey and float grey.
A grey or RGB PNG whose tRNS chunk names a transparent colour (a colour key) is read with an alpha
channel made from it (0 where the key is), so its transparent pixels are not changed, and written
back without it: the key's pixels byte for byte, the tRNS still naming them.
`write_atomic` writes through a temporary file in the target folder and renames it, so a failure
never leaves a half-written file and an existing file is replaced in one step; a failure to write is
an OutputError in words (files.destination).
Every image is opened through `open_image`, which checks the engine's pixel limit
(pixels.MAX_PIXELS) from the header before anything is decoded; Pillow's own, lower limit
(Image.MAX_IMAGE_PIXELS, a "decompression bomb" error) is switched off for that reason.
"""
from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .. import pixels as px
from ..errors import InputError
from . import destination, metadata, pngcodec

Image.MAX_IMAGE_PIXELS = None  # open_image checks the engine's one limit, pixels.MAX_PIXELS, instead

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".webp": "WEBP",
           ".tif": "TIFF", ".tiff": "TIFF"}
EXTENSION = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif"}
JPEG_QUALITY = 95
WEBP_QUALITY = 95
XMP_KEY = "XML:com.adobe.xmp"
# PNG chunks that describe the pixel encoding: only valid while colour type and bit depth stay the same
PNG_PIXEL_CHUNKS = {b"tRNS", b"bKGD", b"sBIT", b"hIST", b"sPLT", b"PLTE"}
PNG_DROP = {b"acTL", b"fcTL", b"fdAT"}  # animation: only the first frame is protected and written
TIFF_KEEP_TAGS = (269, 270, 271, 272, 305, 306, 315, 316, 33432)  # names, descriptions, dates, copyright
TIFF_COMPRESSIONS = {"raw", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate", "packbits"}


@dataclass
class ImageInfo:
    """Where the pixels came from and what to carry over when writing them back."""

    format: str  # PNG, JPEG, WEBP, TIFF or whatever Pillow named it
    mode: str = ""
    notes: list[str] = field(default_factory=list)  # conversions the user should know about
    xmp: str | None = None
    icc: bytes | None = None
    exif: bytes | None = None
    png_chunks: list[pngcodec.Chunk] = field(default_factory=list)
    png_same_encoding: bool = True  # pixel-encoding chunks stay valid
    jpeg_extra: bytes = b""  # raw APP segments Pillow does not write itself (IPTC, ...)
    comment: bytes | None = None
    dpi: tuple | None = None
    lossless: bool = True  # WebP: was the source lossless
    tiff_compression: str | None = None
    tiff_tags: dict = field(default_factory=dict)
    frames: int = 1
    colour_key: tuple[int, ...] | None = None  # PNG tRNS colour, in sample units: alpha was added for it


def format_for(path: Path, default: str | None = None) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower(), default)
    if fmt is None:
        raise InputError(f"cannot tell the image format from the name {Path(path).name!r}; "
                         f"use one of {', '.join(sorted(FORMATS))}")
    return fmt


# ---- reading -------------------------------------------------------------------------------------

def open_image(source: str | os.PathLike | io.BytesIO, what: str = "the image") -> Image.Image:
    """A lazily opened Pillow image whose size is within the engine's limit (checked from its header,
    before any pixel is decoded, with pixels.check_size's message)."""
    im = Image.open(source)
    try:
        px.check_size(im.width, im.height, what)
    except InputError:
        im.close()
        raise
    return im


def read(path: str | os.PathLike, pixels: bool = True) -> tuple[np.ndarray | None, ImageInfo]:
    """Pixels (H x W x C, C 1-4; uint8, uint16 or float32) and what is needed to write them back;
    `pixels=False`: the metadata alone, nothing decoded (None for the pixels)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not an image file") from None
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        if data.startswith(pngcodec.SIGNATURE):
            return _read_png(data, pixels)
        return _read_pillow(data, pixels)
    except InputError as e:
        raise InputError(f"{path.name}: {e}", e.hint) from None
    except UnidentifiedImageError:
        raise InputError(f"{path.name}: not an image file artcloak can read (unknown format or damaged)",
                         "Open it in an image editor and save it as PNG or JPEG.") from None
    except (OSError, ValueError, SyntaxError, struct.error) as e:
        raise InputError(f"{path.name}: not a readable image ({e})",
                         "Open it in an image editor and save it as PNG or JPEG.") from None


def _read_png(data: bytes, decode: bool = True) -> tuple[np.ndarray | None, ImageInfo]:
    png = pngcodec.parse(data)
    px.check_size(png.width, png.height)
    chunks = []
    info = ImageInfo("PNG")
    for ch in png.chunks:
        if ch.type == b"iTXt" and (fields := pngcodec.itxt_fields(ch)) and fields[0] == XMP_KEY:
            info.xmp = fields[1]
        elif ch.type in (b"iCCP", b"eXIf"):
            chunks.append(ch)  # copied verbatim to a PNG; decoded for a conversion to another format
            if ch.type == b"iCCP":
                info.icc = _iccp_profile(ch.data)
            else:
                info.exif = b"Exif\0\0" + ch.data
        elif ch.type in PNG_DROP:
            if ch.type == b"acTL":
                info.frames = struct.unpack(">I", ch.data[:4])[0] if len(ch.data) >= 4 else 2
        else:
            chunks.append(ch)
    if info.frames > 1:
        info.notes.append("animated PNG: only the first frame was protected and written")
    if not decode:
        return None, info
    if png.bit_depth == 16 and png.colour_type in pngcodec.CHANNELS:
        pixels = pngcodec.decode16(png)
        info.mode = f"{'L' if pixels.shape[2] <= 2 else 'RGB'}{'A' if pixels.shape[2] in (2, 4) else ''};16"
    else:
        im = open_image(io.BytesIO(data))
        pixels, notes = _pixels_of(im)
        info.mode, info.notes = im.mode, info.notes + notes
        if notes:  # palette / 1-bit images are rewritten as plain grey or RGB(A)
            info.png_same_encoding = False
    key = _colour_key(png, chunks, pixels)
    if key is not None:
        pixels = _with_key_alpha(pixels, key)
        info.colour_key = key if info.png_same_encoding else None  # else the alpha is written as such
    info.png_chunks = [c for c in chunks if info.png_same_encoding or c.type not in PNG_PIXEL_CHUNKS]
    return pixels, info


def _colour_key(png: pngcodec.PngFile, chunks: list[pngcodec.Chunk], pixels: np.ndarray
                ) -> tuple[int, ...] | None:
    """The transparent colour a grey or RGB PNG's tRNS chunk names, in the units of `pixels` (a
    1, 2 or 4-bit grey key scaled as the decoder scaled the samples); None without one."""
    trns = next((c.data for c in chunks if c.type == b"tRNS"), None)
    n = {0: 1, 2: 3}.get(png.colour_type)
    if trns is None or n is None or len(trns) < 2 * n or pixels.shape[2] != n:
        return None
    key = struct.unpack(f">{n}H", trns[: 2 * n])
    if png.bit_depth < 8:
        key = tuple(k * (255 // ((1 << png.bit_depth) - 1)) for k in key)
    elif png.bit_depth == 8:
        key = tuple(k & 0xFF for k in key)
    return key


def _with_key_alpha(pixels: np.ndarray, key: tuple[int, ...]) -> np.ndarray:
    """`pixels` with an alpha channel: 0 where every sample equals the key colour, else opaque."""
    top = np.iinfo(pixels.dtype).max
    opaque = ~np.all(pixels == np.asarray(key, pixels.dtype), axis=2)
    return np.concatenate([pixels, (opaque * top).astype(pixels.dtype)[..., None]], axis=2)


def _iccp_profile(data: bytes) -> bytes | None:
    import zlib

    try:
        return zlib.decompress(data.split(b"\0", 1)[1][1:])
    except (IndexError, zlib.error):
        return None


def _pixels_of(im: Image.Image) -> tuple[np.ndarray, list[str]]:
    """The image's pixels in a format protect() takes, and a note for every conversion made."""
    mode, notes = im.mode, []
    if mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "La", "RGBa", "RGBX"):
        if mode == "1":
            target = "L"
        elif mode in ("P", "PA"):
            has_alpha = mode == "PA" or "transparency" in im.info
            target = "RGBA" if has_alpha else "RGB"
        else:
            target = "RGBA" if mode in ("RGBa",) else ("LA" if mode == "La" else "RGB")
        notes.append(f"{ {'1': '1-bit', 'P': 'palette', 'PA': 'palette'}.get(mode, mode)} image converted "
                     f"to {target}")
        im = im.convert(target)
        mode = target
    arr = np.asarray(im)
    if mode.startswith("I;16"):
        arr = arr.astype(np.uint16)
    elif mode == "I":
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
            raise InputError("32-bit integer images are not supported; save it as 16-bit")
        arr = arr.astype(np.uint16)
    elif mode == "F":
        arr = arr.astype(np.float32)
    elif arr.dtype != np.uint8:
        raise InputError(f"unsupported pixel mode {mode}")
    if arr.ndim == 2:
        arr = arr[..., None]
    return np.ascontiguousarray(arr), notes


def _jpeg_app_segments(data: bytes) -> bytes:
    """Raw APPn/COM segments Pillow would drop on save (IPTC in APP13, FlashPix, ...), to copy over.

    JFIF (APP0), EXIF and XMP (APP1), ICC (APP2) and Adobe (APP14) are written by Pillow itself."""
    out, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA or marker == 0xD9:  # start of scan: no more metadata
            break
        length = struct.unpack(">H", data[pos + 2: pos + 4])[0]
        seg = data[pos: pos + 2 + length]
        body = seg[4:]
        keep = 0xE3 <= marker <= 0xEF and marker != 0xEE  # APP3-APP13, APP15
        if marker == 0xE1 and not body.startswith((b"Exif\0", b"http://ns.adobe.com/xap/1.0/\0")):
            keep = True  # e.g. extended XMP
        if keep:
            out.append(seg)
        pos += 2 + length
    return b"".join(out)


def _read_pillow(data: bytes, decode: bool = True) -> tuple[np.ndarray | None, ImageInfo]:
    im = open_image(io.BytesIO(data))
    fmt = im.format or "unknown"
    info = ImageInfo(fmt, mode=im.mode)
    info.frames = getattr(im, "n_frames", 1)
    if info.frames > 1:
        info.notes.append(f"{fmt} with {info.frames} frames: only the first was protected and written")
    if fmt == "TIFF":
        bits = im.tag_v2.get(258)
        if isinstance(bits, tuple) and len(bits) >= 3 and max(bits) > 8:
            raise InputError("16-bit colour TIFF files are not supported; save it as a 16-bit PNG")
        info.tiff_compression = im.info.get("compression")
        info.tiff_tags = {t: im.tag_v2[t] for t in TIFF_KEEP_TAGS if t in im.tag_v2}
    pixels, notes = _pixels_of(im) if decode else (None, [])
    info.notes += notes
    info.icc = im.info.get("icc_profile") if im.mode not in ("CMYK",) else None
    exif = im.info.get("exif")
    info.exif = exif if isinstance(exif, bytes) and exif else None
    xmp = im.info.get("xmp") or (im.tag_v2.get(700) if fmt == "TIFF" else None)
    if isinstance(xmp, bytes):
        xmp = xmp.decode("utf-8", "replace")
    info.xmp = xmp or None
    info.comment = im.info.get("comment")
    info.dpi = im.info.get("dpi")
    if fmt == "JPEG":
        info.jpeg_extra = _jpeg_app_segments(data)
    if fmt == "WEBP":
        info.lossless = b"VP8L" in data[12:64]
    return pixels, info


# ---- writing -------------------------------------------------------------------------------------

def _to_8bit(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)


def _pil(pixels: np.ndarray) -> Image.Image:
    c = pixels.shape[2]
    if pixels.dtype == np.uint8:
        return Image.fromarray(np.ascontiguousarray(pixels[..., 0] if c == 1 else pixels),
                               {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c])
    if c == 1 and pixels.dtype == np.uint16:
        return Image.fromarray(np.ascontiguousarray(pixels[..., 0]))  # mode I;16
    if c == 1 and pixels.dtype == np.float32:
        return Image.fromarray(np.ascontiguousarray(pixels[..., 0]))  # mode F
    raise InputError(f"cannot store {c}-channel {pixels.dtype} pixels in this format")


def encode(pixels: np.ndarray, info: ImageInfo, fmt: str, xmp: str | None) -> tuple[bytes, list[str]]:
    """The file bytes for `pixels` in `fmt`, carrying over `info`'s metadata with `xmp` as the
    XMP packet (None: keep the source's). Returns notes about anything changed on the way."""
    xmp = xmp if xmp is not None else info.xmp
    same = fmt == info.format
    if fmt == "PNG":
        return _encode_png(pixels, info, xmp, same)
    notes: list[str] = []
    pixels = _bit_depth_for(fmt, pixels, notes)
    kw = _carried_metadata(fmt, info, xmp)
    if fmt not in PILLOW_WRITERS:
        raise InputError(f"writing {fmt} files is not supported; name the output .png, .jpg, .webp or .tif")
    pixels = PILLOW_WRITERS[fmt](pixels, info, xmp, same, kw, notes)
    buf = io.BytesIO()
    _pil(pixels).save(buf, fmt, **kw)
    return buf.getvalue(), notes


def _encode_png(pixels: np.ndarray, info: ImageInfo, xmp: str | None, same: bool) -> tuple[bytes, list[str]]:
    """PNG through our own writer: Pillow drops the chunks it does not know (eXIf, ...), and a PNG
    source's chunks are copied verbatim. Float pixels become 16-bit, PNG's deepest."""
    notes: list[str] = []
    if pixels.dtype == np.float32:
        pixels = (np.clip(pixels, 0, 1) * 65535 + 0.5).astype(np.uint16)
        notes.append("float pixels written as 16-bit PNG")
    chunks = list(info.png_chunks) if same else _png_chunks_from(info)
    if same and info.colour_key is not None and pixels.shape[2] in (2, 4):
        pixels = _without_key_alpha(pixels, info.colour_key)
        trns = pngcodec.Chunk(b"tRNS", struct.pack(f">{len(info.colour_key)}H", *info.colour_key))
        chunks = [trns if c.type == b"tRNS" else c for c in chunks]
    if xmp:
        chunks.append(pngcodec.itxt(XMP_KEY, xmp))
    return pngcodec.encode(pixels, chunks), notes


def _without_key_alpha(pixels: np.ndarray, key: tuple[int, ...]) -> np.ndarray:
    """The colour of a colour-key image read with `_with_key_alpha`: its transparent pixels are the
    key again, and an opaque pixel the protection moved onto the key is moved one step off it (it
    would turn transparent)."""
    top = np.iinfo(pixels.dtype).max
    colour = pixels[..., :-1].copy()
    k = np.asarray(key, pixels.dtype)
    transparent = pixels[..., -1] == 0
    colour[transparent] = k
    onto = ~transparent & np.all(colour == k, axis=2)
    colour[onto, 0] = k[0] + 1 if k[0] < top else k[0] - 1
    return colour


def _bit_depth_for(fmt: str, pixels: np.ndarray, notes: list[str]) -> np.ndarray:
    """The pixels rounded to 8 bits where `fmt` stores no more (TIFF keeps 16-bit and float grey),
    with a note: the user should know the result lost precision."""
    deep_tiff = fmt == "TIFF" and pixels.shape[2] == 1
    if pixels.dtype != np.uint8 and not deep_tiff:
        notes.append(f"{fmt} stores 8 bits per channel: the {pixels.dtype} result was rounded to 8 bits")
        return _to_8bit(pixels)
    return pixels


def _carried_metadata(fmt: str, info: ImageInfo, xmp: str | None) -> dict:
    """Pillow's save arguments for what every format may carry over: the colour profile, EXIF, the
    XMP (JPEG, WebP; TIFF stores it as a tag) and the resolution (JPEG, TIFF)."""
    kw: dict = {}
    if info.icc:
        kw["icc_profile"] = info.icc
    if info.exif:
        kw["exif"] = info.exif if info.exif.startswith(b"Exif\0\0") else b"Exif\0\0" + info.exif
    if xmp and fmt in ("JPEG", "WEBP"):
        kw["xmp"] = xmp.encode("utf-8")
    if info.dpi and fmt in ("JPEG", "TIFF"):
        kw["dpi"] = tuple(round(float(d)) for d in info.dpi[:2])
    return kw


def _jpeg(pixels: np.ndarray, info: ImageInfo, xmp: str | None, same: bool, kw: dict,
          notes: list[str]) -> np.ndarray:
    """JPEG at high quality without chroma subsampling (the least loss of the protection), with a
    JPEG source's extra APP segments and its comment; alpha cannot be stored, so it is refused."""
    if pixels.shape[2] in (2, 4):
        raise InputError("JPEG has no alpha channel; write the result as PNG or WebP instead")
    kw.update(quality=JPEG_QUALITY, subsampling=0, optimize=True)
    if same and info.jpeg_extra:
        kw["extra"] = info.jpeg_extra
    if info.comment:
        kw["comment"] = info.comment
    notes.append(f"written as JPEG quality {JPEG_QUALITY} (4:4:4): "
                 "compression removes part of the protection")
    return pixels


def _webp(pixels: np.ndarray, info: ImageInfo, xmp: str | None, same: bool, kw: dict,
          notes: list[str]) -> np.ndarray:
    """WebP lossless unless the source was lossy WebP (then lossy, as the user chose); grey becomes
    RGB, which WebP needs."""
    c = pixels.shape[2]
    if c <= 2:
        pixels = np.repeat(pixels, 3, axis=2) if c == 1 else np.concatenate(
            [np.repeat(pixels[..., :1], 3, axis=2), pixels[..., 1:]], axis=2)
        notes.append("WebP has no grey mode: written as RGB")
    lossless = info.lossless or not same
    kw.update(lossless=True, exact=True, quality=100, method=4) if lossless else kw.update(
        quality=WEBP_QUALITY, method=6)
    if not lossless:
        notes.append(f"written as lossy WebP quality {WEBP_QUALITY} (as the source was): "
                     "compression removes part of the protection")
    return pixels


def _tiff(pixels: np.ndarray, info: ImageInfo, xmp: str | None, same: bool, kw: dict,
          notes: list[str]) -> np.ndarray:
    """TIFF with the source's lossless compression (else deflate), a TIFF source's descriptive
    tags, and the XMP as tag 700."""
    comp = info.tiff_compression if info.tiff_compression in TIFF_COMPRESSIONS else "tiff_deflate"
    kw["compression"] = comp
    tags = dict(info.tiff_tags) if same else {}
    if xmp:
        tags[700] = xmp.encode("utf-8")
    if tags:
        kw["tiffinfo"] = tags
    return pixels


# Formats Pillow writes: each adds its save arguments to `kw` and notes, and returns the pixels to save
PILLOW_WRITERS = {"JPEG": _jpeg, "WEBP": _webp, "TIFF": _tiff}


def is_exact(fmt: str, pixels: np.ndarray, info: ImageInfo) -> bool:
    """Whether writing `pixels` as `fmt` stores them exactly (no compression loss, no fewer bits)."""
    if fmt == "PNG":
        return pixels.dtype in (np.uint8, np.uint16)
    if fmt == "TIFF":
        return pixels.dtype == np.uint8 or pixels.shape[2] == 1
    if fmt == "WEBP":
        return pixels.dtype == np.uint8 and (info.lossless or info.format != "WEBP")
    return False


def _png_chunks_from(info: ImageInfo) -> list[pngcodec.Chunk]:
    """ICC, EXIF and text of a non-PNG source as PNG chunks (iCCP, eXIf)."""
    import zlib

    out = []
    if info.icc:
        out.append(pngcodec.Chunk(b"iCCP", b"icc\0\0" + zlib.compress(info.icc)))
    if info.exif:
        exif = info.exif[6:] if info.exif.startswith(b"Exif\0\0") else info.exif
        out.append(pngcodec.Chunk(b"eXIf", exif))
    return out


def write_atomic(path: str | os.PathLike, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` through a private temporary file in the same folder, then rename:
    readers see the old file or the whole new one, never a part; on failure nothing is left."""
    path = Path(path)
    try:
        fd, tmp = destination.temp_file(path)
    except OSError as e:
        raise destination.write_failure(e, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise destination.write_failure(e, path) from None
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write(path: str | os.PathLike, pixels: np.ndarray, info: ImageInfo, fmt: str | None = None,
          do_not_train: bool = True, notice: str | None = None) -> list[str]:
    """Encode and atomically write `pixels`; adds the "do not train" XMP (merged into the source's
    XMP) unless told not to. Returns notes about conversions and losses."""
    fmt = fmt or format_for(Path(path), info.format)
    xmp = metadata.do_not_train_xmp(info.xmp, notice) if do_not_train else None
    data, notes = encode(pixels, info, fmt, xmp)
    write_atomic(path, data)
    return notes
