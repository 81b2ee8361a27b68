"""Synthetic fingerprints as the formats real data arrives in: WSQ images and biometric records.

- :func:`write_wsq` writes one image as WSQ (NBIS, bitrate 2.25, about 5:1; lossy, as real WSQ is);
- :func:`write_records` turns a finished synthesis (its ``metadata.jsonl`` and images) into
  ANSI/NIST-ITL transactions (``records/<subject>.an2``: Type-1, Type-2, one Type-14 per image,
  the image bytes unchanged, so their sample ids equal the image files') or ISO/IEC 19794-4
  records (``records/<subject>.fir``, one finger view per image).

Both need ``pip install 'fpload[nist]'``. Example::

    fpload synth --out data --subjects 4 --fingers 2 --impressions 2 --format wsq --records an2
    fpload catalog ingest data/records --consent --catalog cat.duckdb
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

#: what ``--records`` writes: kind → (folder, file suffix)
RECORD_KINDS = {"an2": ("records", ".an2"), "iso": ("records", ".fir")}
_FORMAT_OF_SUFFIX = {".png": "png", ".jp2": "jp2", ".wsq": "wsq"}


def write_wsq(pixels: np.ndarray, path: Path) -> None:
    """Write 8-bit grey ``pixels`` as a WSQ file (under a temporary name, then renamed)."""
    from fpload.catalog._wsq import encode_wsq

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(encode_wsq(pixels))
    os.replace(tmp, path)


def write_records(out: str | Path, kind: str) -> list[Path]:
    """Write the synthesis in ``out`` as records of ``kind`` (``an2`` or ``iso``), one file per
    subject under ``out/records/``; returns the files, sorted. Same input, same bytes."""
    from fpload.catalog._an2 import build_transaction
    from fpload.catalog._iso19794 import write_record
    from fpload.errors import UsageError
    from fpload.synth._generate import METADATA_NAME

    if kind not in RECORD_KINDS:
        raise UsageError(f"--records: unknown kind {kind!r}; allowed: {', '.join(RECORD_KINDS)}")
    root = Path(out)
    folder, suffix = RECORD_KINDS[kind]
    (root / folder).mkdir(exist_ok=True)
    by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in (root / METADATA_NAME).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_subject[row["subject_id"]].append(row)
    written = []
    for subject, rows in sorted(by_subject.items()):
        images = [{"image": (root / r["file"]).read_bytes(), "format": _FORMAT_OF_SUFFIX[Path(r["file"]).suffix],
                   "width": r["width"], "height": r["height"], "finger": r["finger"], "impression": 0,
                   "ppi": r["ppi"], "quality": r["quality"], "sensor": r["sensor"]} for r in rows]
        if kind == "an2":
            data = build_transaction(subject, images)
        else:
            data = write_record([{**im, "quality": int(round(im["quality"]))} for im in images],
                                ppi=images[0]["ppi"], compression=images[0]["format"])
        path = root / folder / f"{subject}{suffix}"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        written.append(path)
    return written
