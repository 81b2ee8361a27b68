"""ISO/IEC 19794-4:2005 finger image records: a reader and a writer of the binary layout.

No maintained parser of this format exists on PyPI (checked when this was written), so the
layout is read here by the standard's tables, every length checked against the bytes present.
All integers are big-endian.

General record header (32 bytes)::

    format id "FIR\\0" (4) | version "010\\0" (4) | record length (6) | capture device id (2)
    | image acquisition level (2) | number of finger views (1) | scale units (1: ppi, 2: ppcm)
    | scan resolution h, v (2, 2) | image resolution h, v (2, 2) | pixel depth in bits (1)
    | image compression (1: 0 raw, 1 raw bit-packed, 2 WSQ, 3 JPEG, 4 JPEG 2000, 5 PNG) | reserved (2)

then per finger view a 14-byte header and the image::

    view length incl. header (4) | finger position (1) | count of views (1) | view number (1)
    | image quality (1, 0-100; 254 not computed, 255 failed) | impression type (1)
    | horizontal line length (2) | vertical line length (2) | reserved (1) | image data

Example::

    >>> rec = write_record([{"finger": 2, "impression": 0, "quality": 61, "width": 3, "height": 2,
    ...                      "image": b"\\x89PNG..."}], ppi=500, compression=5)
    >>> [v["finger"] for v in read_record(rec, "a.fir")["views"]]
    [2]
"""

from __future__ import annotations

import struct
from typing import Any

from fpload.errors import RecordError

MAGIC = b"FIR\x00"
VERSION = b"010\x00"
_HEADER = struct.Struct(">4s4s6sHHBBHHHHBBH")
_VIEW = struct.Struct(">IBBBBBHHB")
#: image compression code → what the image bytes are
COMPRESSION = {0: "raw", 1: "raw-bitpacked", 2: "wsq", 3: "jpeg", 4: "jp2", 5: "png"}
_COMPRESSION_CODE = {"wsq": 2, "jpeg": 3, "jp2": 4, "png": 5}


def is_record(data: bytes) -> bool:
    """Whether ``data`` starts like an ISO/IEC 19794-4 record."""
    return data[:4] == MAGIC


def read_record(data: bytes, where: str) -> dict[str, Any]:
    """The header fields and finger views of one record; :class:`RecordError` naming ``where`` and
    the view on any inconsistency (truncated, wrong lengths, unknown version)."""
    if len(data) < _HEADER.size or not is_record(data):
        raise RecordError(f"{where}: not an ISO/IEC 19794-4 finger image record (no 'FIR' header)")
    (_, version, length6, device, level, count, units, shr, svr, ihr, ivr, depth, comp,
     _res) = _HEADER.unpack_from(data)
    if version != VERSION:
        raise RecordError(f"{where}: ISO/IEC 19794-4 version {version[:3].decode('latin-1')!r} is not supported "
                          "(fpload reads version 010, the 2005 edition)")
    length = int.from_bytes(length6, "big")
    if length != len(data):
        raise RecordError(f"{where}: record length field says {length} bytes, the file has {len(data)} "
                          "(truncated, or wrong lengths)")
    if units not in (1, 2):
        raise RecordError(f"{where}: scale units {units} (allowed: 1 pixels per inch, 2 pixels per cm); "
                          "the resolution is missing or unknown")
    if ihr == 0 or ivr == 0:
        raise RecordError(f"{where}: image resolution is 0 (missing)")
    views, pos = [], _HEADER.size
    for n in range(count):
        if pos + _VIEW.size > len(data):
            raise RecordError(f"{where}: view {n}: truncated (header past the end of the record)")
        vlen, fgp, nviews, vno, quality, imp, hll, vll, _r = _VIEW.unpack_from(data, pos)
        if vlen < _VIEW.size or pos + vlen > len(data):
            raise RecordError(f"{where}: view {n}: length {vlen} does not fit the record "
                              f"({len(data) - pos} bytes left; at least {_VIEW.size})")
        views.append({"view": n, "finger": fgp, "view_number": vno, "views": nviews, "quality": quality,
                      "impression": imp, "width": hll, "height": vll,
                      "offset": pos + _VIEW.size, "length": vlen - _VIEW.size})
        pos += vlen
    if pos != len(data):
        raise RecordError(f"{where}: {len(data) - pos} bytes after the last of {count} views (wrong lengths)")
    ppi_h = ihr if units == 1 else round(ihr * 2.54)
    ppi_v = ivr if units == 1 else round(ivr * 2.54)
    return {"device": device, "acquisition_level": level, "scale_units": units, "ppi": ppi_h,
            "ppi_vertical": ppi_v, "scan_ppi": shr if units == 1 else round(shr * 2.54),
            "pixel_depth": depth, "compression": COMPRESSION.get(comp, f"code {comp}"), "views": views}


def view_bytes(data: bytes, view: dict[str, Any]) -> bytes:
    """The image bytes of one view returned by :func:`read_record`."""
    return data[view["offset"]:view["offset"] + view["length"]]


def write_record(views: list[dict[str, Any]], *, ppi: int, compression: int | str, device: int = 0) -> bytes:
    """An ISO/IEC 19794-4:2005 record of ``views`` (dicts with finger, impression, quality, width,
    height, image bytes), all at ``ppi`` and in one ``compression`` (a code or wsq/jpeg/jp2/png)."""
    comp = _COMPRESSION_CODE[compression] if isinstance(compression, str) else compression
    body = b"".join(_VIEW.pack(_VIEW.size + len(v["image"]), v["finger"], 1, 1, int(v.get("quality", 254)),
                               v.get("impression", 0), v["width"], v["height"], 0) + v["image"] for v in views)
    length = _HEADER.size + len(body)
    header = _HEADER.pack(MAGIC, VERSION, length.to_bytes(6, "big"), device, 31, len(views), 1, ppi, ppi, ppi,
                          ppi, 8, comp, 0)
    return header + body
