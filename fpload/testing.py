"""Tiny, deterministic test data: the one fixture factory of the test suite.

Two kinds: :func:`make_synth_captures` writes realistic synthetic fingerprints (``fpload.synth``,
the embedded default data, at least 128×128); :func:`make_captures` writes toy ridge images of any
small size, for tests about shapes, mixed sizes and damaged files that must stay fast.

Example::

    from fpload.testing import make_synth_captures
    meta = make_synth_captures(tmp_path / "caps", subjects=4, fingers=2, impressions=2)
    open_catalog(tmp_path / "cat.duckdb").ingest(meta)
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image


def make_synth_captures(out: str | Path, *, subjects: int = 4, fingers: int = 2, impressions: int = 2,
                        size: int = 128, seed: int = 0, fmt: str = "png") -> Path:
    """Synthetic fingerprints from :func:`fpload.synth.synthesize` (one process, no progress bar);
    returns the metadata file (``metadata.jsonl``)."""
    from fpload.synth import synthesize

    res = synthesize(out, subjects=subjects, fingers=fingers, impressions=impressions, seed=seed,
                     size=size, fmt=fmt, workers=1, progress=False)
    return Path(res.metadata_path)


def ridge_image(rng: np.random.Generator, size: tuple[int, int], period: float = 9.0) -> np.ndarray:
    """A small ridge-like 8-bit grayscale image: a curved sinusoid pattern plus noise."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    theta = rng.uniform(0, np.pi)
    r = np.hypot(y - cy, x - cx)
    phase = 2 * np.pi * (r + 0.3 * (np.cos(theta) * x + np.sin(theta) * y)) / period
    img = 128 + 100 * np.cos(phase) + rng.normal(0, 8, size=(h, w))
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(img: np.ndarray, fmt: str = "png") -> bytes:
    """Encode an 8-bit image as PNG, JPEG, JPEG 2000 or WSQ (needs fpload[nist]) bytes (deterministic)."""
    if fmt == "wsq":
        from fpload.catalog._wsq import encode_wsq

        return encode_wsq(img)
    buf = io.BytesIO()
    pil_fmt = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "jp2": "JPEG2000"}[fmt]
    kwargs = {"quality": 95} if pil_fmt == "JPEG" else {}
    if pil_fmt == "JPEG2000":
        kwargs = {"irreversible": False}
    Image.fromarray(img).save(buf, format=pil_fmt, **kwargs)
    return buf.getvalue()


def make_captures(out: str | Path, *, subjects: int = 4, fingers: int = 2, impressions: int = 2,
                  size: tuple[int, int] | list[tuple[int, int]] = (48, 40), seed: int = 0,
                  fmt: str = "png", metadata: str = "csv", split: str | None = None,
                  consent: bool = True) -> Path:
    """Write ``subjects × fingers × impressions`` small images and a metadata file; return its path.

    ``size`` may be a list of sizes used in turn (mixed sizes in one set). ``metadata`` is
    ``csv``, ``jsonl`` or ``parquet``.
    """
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = size if isinstance(size, list) else [size]
    rows = []
    n = 0
    for s in range(subjects):
        for f in range(1, fingers + 1):
            for i in range(impressions):
                img = ridge_image(rng, sizes[n % len(sizes)])
                n += 1
                name = f"images/s{s:03d}_f{f:02d}_i{i}.{'jpg' if fmt == 'jpeg' else fmt}"
                (out / name).write_bytes(encode(img, fmt))
                rows.append({"file": name, "subject_id": f"S{s:03d}", "finger": f, "impression": i,
                             "sensor": "toy-sensor", "ppi": 500, "consent": consent,
                             "quality": float(40 + (s * 7 + f * 3 + i) % 60), "split": split,
                             "synthetic": True, "site": "lab-a"})
    if metadata == "csv":
        path = out / "metadata.csv"
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    elif metadata == "jsonl":
        path = out / "metadata.jsonl"
        path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    elif metadata == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = out / "metadata.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        raise ValueError(f"metadata must be csv, jsonl or parquet, got {metadata!r}")
    return path


def make_records(out: str | Path, *, subjects: int = 2, fingers: int = 2, impressions: int = 1,
                 size: tuple[int, int] = (80, 64), ppi: int = 500, seed: int = 0, fmt: str = "wsq",
                 kind: str = "an2") -> Path:
    """Write one biometric record per subject into the folder ``out`` (created); return it.

    ``kind``: ``an2`` (ANSI/NIST-ITL transaction ``S000.an2``: Type-1, Type-2 with 2.015 = subject,
    one Type-14 per image with FGP, IMP 0, ppi, FQM quality, MMS model ``toy-sensor``) or ``iso``
    (ISO/IEC 19794-4 record ``S000.fir``). Images: toy ridges of ``size`` (h, w) encoded as ``fmt``.
    Needs fpload[nist].
    """
    from datetime import datetime

    from fpload.catalog._an2 import build_transaction
    from fpload.catalog._iso19794 import write_record

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for s in range(subjects):
        images = []
        for f in range(1, fingers + 1):
            for i in range(impressions):
                img = ridge_image(rng, size)
                images.append({"image": encode(img, fmt), "format": fmt, "width": size[1], "height": size[0],
                               "finger": f, "impression": 0, "ppi": ppi, "quality": 40 + (s * 7 + f * 3 + i) % 60,
                               "sensor": "toy-sensor", "captured_at": datetime(2024, 5, 1 + i)})
        if kind == "an2":
            (out / f"S{s:03d}.an2").write_bytes(build_transaction(f"S{s:03d}", images))
        elif kind == "iso":
            (out / f"S{s:03d}.fir").write_bytes(write_record(images, ppi=ppi, compression=fmt))
        else:
            raise ValueError(f"kind must be an2 or iso, got {kind!r}")
    return out
