"""A fast decoder for the one PNG layout fingerprint captures use: 8-bit grey, not interlaced.

Decoding is most of what a pack with a feature cache spends on a passthrough sample (Pillow:
about 2.4 ms for a 512 × 512 capture on one core). Here the chunks are walked in Python, the
IDAT stream is inflated by libdeflate (the ``deflate`` package; zlib when it is missing) into a
buffer of exactly the size the header implies, and the scanlines are unfiltered by
``fpl_png_unfilter`` of :mod:`fpload._native` (about 1 ms in all).

It is strict by refusal: anything but a plain, complete, well-formed 8-bit grey PNG — another
colour type or bit depth, interlacing, a bad checksum on any chunk but IDAT, a chunk running past
the end, IDAT chunks not in one run, a critical chunk other than IHDR/IDAT/IEND, an ancillary
chunk Pillow interprets other than a well-formed ``pHYs``, ``gAMA``, ``sRGB`` or ``tEXt`` (so
transparency, colour profiles, EXIF, XMP and animation are Pillow's: a file decoded here has one
frame and no orientation), no IEND, a stream that inflates
to another size or fails its Adler-32, a filter type outside 0–4, more pixels than Pillow's
decompression-bomb limit — makes :func:`decode_gray8` return None, and the caller decodes with
Pillow, which gives the pixels or the error it always gave. So what the fast path returns is
what Pillow returns; the tests hold it to that on every filter type and on mutated files.

    >>> import io, numpy as np
    >>> from PIL import Image
    >>> px = (np.arange(12, dtype=np.uint8) * 20).reshape(3, 4)
    >>> buf = io.BytesIO(); Image.fromarray(px).save(buf, format="PNG")
    >>> out = decode_gray8(buf.getvalue())
    >>> out is None or bool((out == px).all())   # None where the native library is not built
    True
    >>> decode_gray8(b"not a png") is None
    True
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from fpload import _native

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: ancillary chunks Pillow interprets that this decoder accepts, with the least length at which
#: Pillow's handler cannot fail; any other chunk Pillow has a handler for is left to Pillow
_ACCEPTED = {b"pHYs": 9, b"gAMA": 4, b"sRGB": 1, b"tEXt": 0}
#: tEXt keys from which Pillow's ``getexif`` reads EXIF or an XMP orientation: left to Pillow, so
#: that a file this decoder takes has no orientation (ingest relies on it)
_EXIF_TEXT_KEYS = {b"exif", b"Raw profile type exif", b"XML:com.adobe.xmp", b"xmp"}
#: chunks whose presence makes the image something this decoder does not handle

try:  # libdeflate: about 1.7x zlib's inflate speed on these streams
    import deflate as _deflate
except ImportError:  # pragma: no cover - deflate is a dependency; zlib computes the same bytes
    _deflate = None


def _inflate(stream: bytes, size: int) -> bytes | bytearray | None:
    """The zlib ``stream`` inflated, when it is valid and inflates to exactly ``size`` bytes."""
    if _deflate is not None:
        try:
            out = _deflate.zlib_decompress(stream, size)
        except _deflate.DeflateError:
            return None
        return out if len(out) == size else None
    try:
        d = zlib.decompressobj()
        out = d.decompress(stream, size + 1)
    except zlib.error:
        return None
    return out if len(out) == size and d.eof else None


def decode_gray8(data: bytes | bytearray | memoryview, max_pixels: Any = "pillow") -> np.ndarray | None:
    """The ``uint8 [height, width]`` pixels of an 8-bit grey, non-interlaced PNG, or None when
    ``data`` is anything else or the native library is not in use (decode it with Pillow then).
    ``max_pixels``: images with more pixels return None (default: Pillow's limit)."""
    if _native.lib() is None:
        return None
    mv = memoryview(data).cast("B")
    n = len(mv)
    if n < 8 + 25 + 12 or bytes(mv[:8]) != SIGNATURE:
        return None
    length, ctype = struct.unpack_from(">I4s", mv, 8)
    if ctype != b"IHDR" or length != 13:
        return None
    ihdr = bytes(mv[16:29])
    if zlib.crc32(ihdr, zlib.crc32(b"IHDR")) != struct.unpack_from(">I", mv, 29)[0]:
        return None
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", ihdr)
    if (depth, colour, compression, filtering, interlace) != (8, 0, 0, 0, 0):
        return None
    limit = Image.MAX_IMAGE_PIXELS if max_pixels == "pillow" else max_pixels
    if not 0 < width < 2 ** 31 or not 0 < height < 2 ** 31 or (limit and width * height > limit):
        return None
    idat: list[memoryview] = []
    idat_over = False
    text = 0
    pos = 33
    while True:
        if pos + 12 > n:
            return None  # no IEND
        length, ctype = struct.unpack_from(">I4s", mv, pos)
        if length >= 2 ** 31 or pos + 12 + length > n or not ctype.isalpha():
            return None
        if ctype == b"IEND":
            break
        if ctype == b"IDAT":
            if idat_over:
                return None  # IDAT chunks must be consecutive
            idat.append(mv[pos + 8:pos + 8 + length])
        else:
            if idat:
                idat_over = True
            critical = not ctype[0] & 0x20  # an upper-case first letter
            if critical:
                return None  # a critical chunk other than IDAT/IEND (PLTE, a second IHDR, unknown)
            body = mv[pos + 8:pos + 8 + length]
            if zlib.crc32(body, zlib.crc32(ctype)) != struct.unpack_from(">I", mv, pos + 8 + length)[0]:
                return None  # Pillow refuses a bad checksum before the image data
            if hasattr(PngImagePlugin.PngStream, "chunk_" + ctype.decode("ascii")):
                if ctype not in _ACCEPTED or length < _ACCEPTED[ctype]:
                    return None
                if ctype == b"tEXt":
                    key, _, value = bytes(body).partition(b"\0")
                    text += len(value) if key else 0
                    if key in _EXIF_TEXT_KEYS or text > PngImagePlugin.MAX_TEXT_MEMORY:
                        return None
        pos += 12 + length
    if not idat:
        return None
    raw = _inflate(b"".join(idat), height * (width + 1))
    if raw is None:
        return None
    try:
        return _native.png_unfilter(raw, height, width, 1)
    except ValueError:
        return None
