"""A small PNG reader/writer for what Pillow cannot do: 16-bit colour (48/64-bit) and grey+alpha,
and verbatim access to a file's ancillary chunks (so metadata can be carried over unchanged).

Only non-interlaced 16-bit images are decoded here; everything else is read with Pillow.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel (no palette here)
COLOUR_TYPE = {1: 0, 3: 2, 2: 4, 4: 6}


@dataclass
class Chunk:
    type: bytes
    data: bytes
    after_idat: bool = False


@dataclass
class PngFile:
    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlace: int
    chunks: list[Chunk] = field(default_factory=list)  # everything but IHDR/IDAT/IEND, in file order
    idat: bytes = b""


def parse(data: bytes) -> PngFile:
    """Split a PNG file into its header, chunks and compressed image data (CRCs checked)."""
    if not data.startswith(SIGNATURE):
        raise InputError("not a PNG file")
    pos, chunks, idat, seen_idat, ihdr = 8, [], [], False, None
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos: pos + 8])
        body = data[pos + 8: pos + 8 + length]
        crc = data[pos + 8 + length: pos + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise InputError("the PNG file is truncated")
        if struct.unpack(">I", crc)[0] != zlib.crc32(ctype + body) & 0xFFFFFFFF:
            raise InputError(f"the PNG file is corrupt (bad checksum in its {ctype.decode('latin-1')} chunk)")
        pos += 12 + length
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat.append(body)
            seen_idat = True
        elif ctype == b"IEND":
            break
        else:
            chunks.append(Chunk(ctype, body, seen_idat))
    if ihdr is None:
        raise InputError("the PNG file has no header")
    w, h, depth, ctype_, _, _, interlace = ihdr
    return PngFile(w, h, depth, ctype_, interlace, chunks, b"".join(idat))


def _unfilter(raw: np.ndarray, h: int, w: int, bpp: int) -> np.ndarray:
    """Undo PNG row filters. Each pixel depends on its left, upper and upper-left neighbours, so the
    work proceeds along anti-diagonals (r + c constant), each vectorised: H + W numpy steps."""
    rows = raw.reshape(h, 1 + w * bpp)
    ftype = rows[:, 0].astype(np.int16)
    if ftype.max(initial=0) > 4:
        raise InputError("the PNG file is corrupt (unknown row filter)")
    filt = rows[:, 1:].reshape(h, w, bpp).astype(np.int16)
    out = np.zeros((h + 1, w + 1, bpp), np.int16)  # row 0 and column 0: the zero border
    if np.all(ftype <= 2) and not np.any(ftype == 1):  # None/Up only: one pass per row, no diagonals
        for r in range(h):
            out[r + 1, 1:] = (filt[r] + (out[r, 1:] if ftype[r] == 2 else 0)) & 0xFF
        return out[1:, 1:].astype(np.uint8)
    for d in range(h + w - 1):
        r = np.arange(max(0, d - w + 1), min(h, d + 1))
        c = d - r
        a, b, cc = out[r + 1, c], out[r, c + 1], out[r, c]
        t = ftype[r][:, None]
        pa, pb, pc = np.abs(b - cc), np.abs(a - cc), np.abs(a + b - 2 * cc)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, cc))
        pred = np.select([t == 1, t == 2, t == 3, t == 4], [a, b, (a + b) >> 1, paeth], 0)
        out[r + 1, c + 1] = (filt[r, c] + pred) & 0xFF
    return out[1:, 1:].astype(np.uint8)


def decode16(png: PngFile) -> np.ndarray:
    """H x W x C uint16 pixels of a non-interlaced 16-bit PNG."""
    if png.bit_depth != 16 or png.colour_type not in CHANNELS:
        raise InputError("decode16 handles 16-bit grey/RGB images only")
    if png.interlace:
        raise InputError("interlaced 16-bit PNG files are not supported; save the file without interlacing")
    c = CHANNELS[png.colour_type]
    try:
        raw = np.frombuffer(zlib.decompress(png.idat), np.uint8)
    except zlib.error as e:
        raise InputError(f"the PNG file is corrupt ({e})") from None
    if raw.size != png.height * (1 + png.width * c * 2):
        raise InputError("the PNG file is corrupt (wrong amount of image data)")
    data = _unfilter(raw, png.height, png.width, c * 2)
    return data.reshape(png.height, png.width, c, 2).view(">u2")[..., 0].astype(np.uint16)


def _chunk(ctype: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(ctype + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", crc)


FILTER_BAND = 256  # rows Paeth-filtered at a time (the int16 temporaries stay a few MB)
DEFLATE_PART = 8 << 20  # bytes of filtered rows each thread compresses as one part of the stream
WINDOW = 32 << 10  # deflate's window: each part starts knowing the previous part's last 32 KB


def _filter_paeth(img: np.ndarray) -> bytes:
    """Every row Paeth-filtered (vectorised: filtering reads only unfiltered bytes), a band at a time."""
    bpp = img.shape[2] * img.itemsize if img.ndim == 3 else img.itemsize
    parts = []
    for top in range(0, img.shape[0], FILTER_BAND):
        x = img[top: top + FILTER_BAND].reshape(min(FILTER_BAND, img.shape[0] - top), -1).astype(np.int16)
        above = img[top - 1].reshape(1, -1).astype(np.int16) if top else np.zeros((1, x.shape[1]), np.int16)
        b = np.concatenate([above, x[:-1]])
        a = np.zeros_like(x)
        a[:, bpp:] = x[:, :-bpp]
        c = np.zeros_like(x)
        c[:, bpp:] = b[:, :-bpp]
        pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
        pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        rows = ((x - pred) & 0xFF).astype(np.uint8)
        parts.append(np.concatenate([np.full((len(rows), 1), 4, np.uint8), rows], axis=1).tobytes())
    return b"".join(parts)


def _deflate(data: bytes, level: int) -> bytes:
    """zlib's stream of `data`, compressed in DEFLATE_PART parts on the engine's threads (zlib lets
    go of the GIL), each primed with the previous part's last WINDOW bytes, as pigz does: the same
    stream any inflater reads, a few hundred bytes longer, in about 1/threads of the time. The parts
    do not depend on the thread count, so the file does not either."""
    if len(data) <= DEFLATE_PART:
        return zlib.compress(data, level)
    from concurrent.futures import ThreadPoolExecutor

    from ..runtime import engine_threads

    view = memoryview(data)
    starts = range(0, len(data), DEFLATE_PART)

    def part(start: int) -> bytes:
        last = start + DEFLATE_PART >= len(data)
        comp = zlib.compressobj(level, zlib.DEFLATED, -15, zdict=view[max(0, start - WINDOW): start]) \
            if start else zlib.compressobj(level, zlib.DEFLATED, -15)
        return comp.compress(view[start: start + DEFLATE_PART]) + comp.flush(
            zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    with ThreadPoolExecutor(engine_threads()) as pool:
        body = b"".join(pool.map(part, starts))
    header = zlib.compress(b"", level)[:2]  # the zlib header this level writes
    return header + body + struct.pack(">I", zlib.adler32(data))


LEVEL = 5  # zlib's level: on photos 3% larger files than 6 (Pillow's default) in half the time


def encode(pixels: np.ndarray, chunks: list[Chunk] = (), level: int = LEVEL) -> bytes:
    """A PNG file of H x W x C (C 1-4) uint8 or uint16 pixels, with the given ancillary chunks."""
    h, w, c = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    data = pixels.astype(">u2").view(np.uint8).reshape(h, w, c * 2) if depth == 16 else pixels
    body = _deflate(_filter_paeth(np.ascontiguousarray(data)), level)
    out = [SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, COLOUR_TYPE[c], 0, 0, 0))]
    out += [_chunk(k.type, k.data) for k in chunks if not k.after_idat]
    out += [_chunk(b"IDAT", body[i: i + (1 << 20)]) for i in range(0, max(1, len(body)), 1 << 20)]
    out += [_chunk(k.type, k.data) for k in chunks if k.after_idat]
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def itxt(keyword: str, text: str) -> Chunk:
    """An uncompressed international text chunk (how XMP is stored in PNG)."""
    return Chunk(b"iTXt", keyword.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8"))


def itxt_fields(chunk: Chunk) -> tuple[str, str] | None:
    """(keyword, text) of an iTXt chunk, or None when it is malformed."""
    try:
        key, rest = chunk.data.split(b"\0", 1)
        compressed, _method, rest = rest[0], rest[1], rest[2:]
        _lang, rest = rest.split(b"\0", 1)
        _tkey, text = rest.split(b"\0", 1)
        if compressed:
            text = zlib.decompress(text)
        return key.decode("latin-1"), text.decode("utf-8")
    except (ValueError, IndexError, zlib.error, UnicodeDecodeError):
        return None
