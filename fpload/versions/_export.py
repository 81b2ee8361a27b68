"""Export a version as ANSI/NIST-ITL transactions, so data packed with fpload reaches the tools and
vendors that speak the standard (``fpload versions export VERSION --format an2 --out DIR``).

One transaction per subject, ``DIR/<subject>.an2`` (the subject id when it is a plain name of
letters, digits, ``-`` and ``_``, else its ``subject_ref`` hash): Type-1 (1.009 TCN = subject),
Type-2 (2.015 = subject), one Type-14 per sample in global index order with FGP, IMP, ppi (14.008
SLC 1, 14.009/14.010), FQM quality, MMS model = sensor, FCD = capture date, and the image the
version holds: PNG, JPEG and JPEG 2000 members as they are (so a passthrough version of such
sources keeps every sample id), raw pixels encoded as PNG. The shards are checked against the
manifest's sha256 first. Files are written under a temporary name and renamed.

Example::

    >>> from fpload.versions._export import export_an2
    >>> export_an2("versions/thumbs", "exported/", split="test")     # doctest: +SKIP
    {'files': 12, 'samples': 96, 'out': 'exported'}
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from fpload import formats
from fpload.errors import IntegrityError, UsageError

_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_FORMAT_OF_EXT = {"png": "png", "jpg": "jpeg", "jp2": "jp2"}


def _file_name(subject: str) -> str:
    return f"{subject}.an2" if _PLAIN.fullmatch(subject) else f"{formats.subject_ref(subject)}.an2"


def _image_of(members: dict[str, bytes]) -> tuple[bytes, str]:
    """(bytes, format) of a sample's image member; raw pixels become PNG."""
    for ext, fmt in _FORMAT_OF_EXT.items():
        if ext in members:
            return members[ext], fmt
    from PIL import Image

    if "raw" in members or "lz4" in members:
        h, w, _c = np.frombuffer(members["shape"], dtype="<i4")
        payload = members.get("raw")
        if payload is None:
            import lz4.block

            payload = lz4.block.decompress(members["lz4"], uncompressed_size=int(h) * int(w))
        img = Image.fromarray(np.frombuffer(payload, np.uint8).reshape(int(h), int(w)))
    else:
        ext = next(e for e in members if e in ("tiff", "bmp"))
        with Image.open(io.BytesIO(members[ext])) as src:
            img = src.convert("L")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue(), "png"


def export_an2(version: str | Path, out: str | Path, *, split: str | None = None) -> dict[str, Any]:
    """Write ``version`` (all splits, or one ``split``) into the folder ``out`` as one ANSI/NIST-ITL
    transaction per subject; returns ``{"files", "samples", "out"}``. :class:`IntegrityError` when a
    shard does not match its manifest; nothing is written then."""
    from fpload.catalog._an2 import build_transaction
    from fpload.versions import open_version

    v = open_version(version)
    if split is not None and split not in v.counts:
        raise UsageError(f"version {v.name}/{v.id} has no split {split!r} (splits: {', '.join(v.splits)})")
    problems = v.check("sha256", split)
    if problems:
        raise IntegrityError(f"version {v.name}/{v.id}: " + "; ".join(problems[:3]))
    rows = v.samples.to_pylist()
    if split is not None:
        rows = [r for r in rows if r["split"] == split]
    wanted = {r["sample_id"] for r in rows}
    members: dict[str, dict[str, bytes]] = defaultdict(dict)
    for path in v.shard_paths(split):
        with tarfile.open(path) as tar:
            for m in tar.getmembers():
                key, _, ext = m.name.partition(".")
                if key in wanted and m.isfile() and ext not in ("json", "cls", "idx"):
                    members[key][ext] = tar.extractfile(m).read()  # type: ignore[union-attr]
    by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["index"]):
        if r["sample_id"] not in members:
            raise IntegrityError(f"version {v.name}/{v.id}: sample {r['sample_id']} is in samples.parquet but "
                                 "in no shard")
        image, fmt = _image_of(members[r["sample_id"]])
        by_subject[r["subject_id"]].append({"image": image, "format": fmt, "width": r["width"], "height": r["height"],
                                            "finger": r["finger"], "impression": r["impression"], "ppi": r["ppi"],
                                            "quality": r["quality"], "sensor": r["sensor"],
                                            "captured_at": r["captured_at"]})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for subject, images in sorted(by_subject.items()):
        path = out / _file_name(subject)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(build_transaction(subject, images, tot="FPLOAD", ori="FPLOAD"))
        os.replace(tmp, path)
    return {"files": len(by_subject), "samples": len(rows), "out": str(out)}
