"""Ingest: read a metadata file, validate every row, hash and probe every image.

All checks run before anything is written, so a bad row or image changes nothing.
"""

from __future__ import annotations

import io
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import fsspec
import pyarrow as pa
from PIL import Image, UnidentifiedImageError

from fpload.catalog._schema import IDENTITY_FIELDS, OPTIONAL_METADATA, REQUIRED_METADATA
from fpload.errors import ImageError, MetadataError
from fpload.formats import sample_key

#: PIL format name → catalog ``format`` value
SUPPORTED_FORMATS = {"PNG": "png", "JPEG": "jpeg", "JPEG2000": "jp2", "TIFF": "tiff", "BMP": "bmp"}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def read_metadata(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV, Parquet or JSONL metadata file, after checking the required columns."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            import pyarrow.csv as pcsv

            # every column as text: subject ids like "007" must not become integers
            table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
                column_types={}, strings_can_be_null=True, auto_dict_encode=False),
                read_options=pcsv.ReadOptions(autogenerate_column_names=False))
            table = table.cast(pa.schema([(f.name, pa.string()) for f in table.schema]))
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            rows = []
            with open(path) as fh:
                for n, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as err:
                            raise MetadataError(f"{path}: line {n} is not valid JSON ({err.msg})") from None
            table = None
        else:
            raise MetadataError(f"{path}: unsupported metadata format '{suffix}' (use .csv, .parquet or .jsonl)")
    except FileNotFoundError:
        raise MetadataError(f"metadata file not found: {path}") from None
    except pa.ArrowInvalid as err:
        raise MetadataError(f"{path}: cannot read as {suffix[1:]}: {err}") from None
    if table is not None:
        columns = table.column_names
        rows = table.to_pylist()
    else:
        columns = sorted({k for r in rows for k in r}) if rows else []
    missing = [c for c in REQUIRED_METADATA if c not in columns]
    if missing:
        raise MetadataError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(required: {', '.join(REQUIRED_METADATA)}; found: {', '.join(columns) or 'none'})"
        )
    if not rows:
        raise MetadataError(f"{path}: no rows")
    return rows


def _as_int(value: Any, field: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool):
        raise ValueError(f"'{field}' must be an integer, got {value!r}")
    try:
        f = float(value)
        if not math.isfinite(f) or f != int(f):
            raise ValueError
        out = int(f)
    except (TypeError, ValueError):
        raise ValueError(f"'{field}' must be an integer, got {value!r}") from None
    if (lo is not None and out < lo) or (hi is not None and out > hi):
        rng = f"{lo}–{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"'{field}' = {out} is out of range ({rng})")
    return out


def _as_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"'{field}' must be true or false, got {value!r}")


def _as_str(value: Any, field: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        raise ValueError(f"'{field}' is empty")
    if isinstance(value, float) and value == int(value):
        value = int(value)
    return str(value).strip()


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and value.strip() == "")


def parse_row(row: dict[str, Any]) -> dict[str, Any]:
    """Validate one metadata row into catalog fields (no image fields yet). Raises ValueError."""
    out: dict[str, Any] = {
        "file": _as_str(row["file"], "file"),
        "subject_id": _as_str(row["subject_id"], "subject_id"),
        "finger": _as_int(row["finger"], "finger", 0, 10),
        "impression": _as_int(row["impression"], "impression", 0),
        "sensor": _as_str(row["sensor"], "sensor"),
        "ppi": _as_int(row["ppi"], "ppi", 1, 100000),
        "consent": _as_bool(row["consent"], "consent"),
    }
    q = row.get("quality")
    if _missing(q):
        out["quality"] = None
    else:
        try:
            out["quality"] = float(q)
        except (TypeError, ValueError):
            raise ValueError(f"'quality' must be a number, got {q!r}") from None
        if not math.isfinite(out["quality"]):
            raise ValueError(f"'quality' must be finite, got {q!r}")
    split = row.get("split")
    out["split"] = None if _missing(split) else _as_str(split, "split")
    syn = row.get("synthetic")
    out["synthetic"] = False if _missing(syn) else _as_bool(syn, "synthetic")
    cap = row.get("captured_at")
    if _missing(cap):
        out["captured_at"] = None
    elif isinstance(cap, datetime):
        out["captured_at"] = cap
    else:
        try:
            out["captured_at"] = datetime.fromisoformat(str(cap))
        except ValueError:
            raise ValueError(f"'captured_at' must be an ISO 8601 time, got {cap!r}") from None
    known = set(REQUIRED_METADATA) | set(OPTIONAL_METADATA)
    extra = {k: v for k, v in row.items() if k not in known and not _missing(v)}
    out["extra"] = json.dumps(extra, sort_keys=True, default=str) if extra else None
    return out


def resolve_uri(file: str, base: str) -> str:
    """Absolute location of an image named by a metadata row."""
    if "://" in file:
        return file
    p = Path(file)
    if not p.is_absolute():
        p = Path(base) / p
    return str(p.resolve())


def probe_image(uri: str) -> dict[str, Any]:
    """Read, hash and fully decode one image; ImageError names the file on any problem."""
    try:
        with fsspec.open(uri, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ImageError(f"{uri}: image file not found") from None
    except OSError as err:
        raise ImageError(f"{uri}: cannot read ({err})") from None
    if not data:
        raise ImageError(f"{uri}: image file is empty")
    if data[:4] in (b"\xff\xa0\xff\xa8",):
        raise ImageError(f"{uri}: WSQ images are not supported yet (convert to PNG or JPEG 2000)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            img.load()  # a full decode: catches truncated and corrupt files
            width, height = img.size
    except UnidentifiedImageError:
        raise ImageError(f"{uri}: not an image (or a format fpload cannot read)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{uri}: corrupt or truncated image ({err})") from None
    if fmt not in SUPPORTED_FORMATS:
        raise ImageError(f"{uri}: unsupported image format {fmt} (supported: {', '.join(SUPPORTED_FORMATS)})")
    return {"sample_id": sample_key(data), "width": width, "height": height,
            "format": SUPPORTED_FORMATS[fmt]}


@dataclass(frozen=True)
class IngestPlan:
    """Rows to add, and what was recognised as already present."""

    new_rows: list[dict[str, Any]]
    duplicates: int
    total: int


def iter_probed(uris: list[str], workers: int) -> Iterator[dict[str, Any]]:
    """Probe images in threads (decoders release the GIL), in input order."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        yield from pool.map(probe_image, uris)


def conflict_fields(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Identity fields on which two records of the same image bytes disagree."""
    return [f for f in IDENTITY_FIELDS if a.get(f) != b.get(f)]
