"""Ingest: read a metadata file, validate every row, hash and probe every image.

All checks run before anything is written, so a bad row or image changes nothing. Every column
is read as the catalog schema says: CSV cells are read as text (``007`` and ``7`` stay two
subjects) and then converted per field, with a one-line error naming the row and field.

Example::

    >>> from fpload.catalog._ingest import read_metadata, parse_row
    >>> rows = read_metadata("captures/metadata.csv")           # doctest: +SKIP
    >>> parse_row(rows[0])["subject_id"]                         # doctest: +SKIP
    '007'
"""

from __future__ import annotations

import csv
import json
import math
import os
import posixpath
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import fsspec
import pyarrow as pa

from fpload.catalog._image import SUPPORTED_FORMATS, ImageLimits, probe_image  # noqa: F401 (re-export)
from fpload.catalog._schema import (IDENTITY_FIELDS, METADATA_FIELDS, OPTIONAL_METADATA, PURPOSE_NAME,
                                    REQUIRED_METADATA, SPLIT_NAME)
from fpload.errors import MetadataError

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
_INT_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUM_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: integer fields: (lowest, highest) allowed, within their catalog column types
INT_RANGES = {"finger": (0, 10), "impression": (0, 2**31 - 1), "ppi": (1, 100000)}


def read_metadata(path: str | Path, required: tuple[str, ...] = REQUIRED_METADATA) -> list[dict[str, Any]]:
    """Rows of a CSV, Parquet or JSONL metadata file, after checking it has the ``required`` columns.

    CSV cells are all read as text; a column named twice, a JSONL line that is not one JSON
    object, or text that is not UTF-8 is a :class:`MetadataError` naming the file and line.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".jsonl", ".ndjson", ".json"):
        raise MetadataError(f"{path}: unsupported metadata format '{suffix}' (use .csv, .parquet or .jsonl)")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MetadataError(f"metadata file not found: {path}") from None
    except OSError as err:
        raise MetadataError(f"{path}: cannot read ({err.strerror or err})") from None
    if not stat.S_ISREG(st.st_mode):
        raise MetadataError(f"{path}: not a regular file (a folder, device or FIFO); give a metadata file")
    try:
        if suffix == ".csv":
            columns, rows = _read_csv(path)
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            _check_unique(path, pq.read_schema(path).names)
            table = pq.read_table(path)
            columns = table.column_names
            rows = table.to_pylist()
        else:
            columns, rows = _read_jsonl(path)
    except OSError as err:
        raise MetadataError(f"{path}: cannot read ({_first_line(err)})") from None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
        if suffix == ".csv" and "UTF8" in str(err):
            _raise_first_non_utf8(path)
        raise MetadataError(f"{path}: cannot read as {suffix[1:]}: {_first_line(err)}") from None
    missing = [c for c in required if c not in columns]
    if missing and suffix in (".csv", ".parquet"):  # JSONL rows are objects: checked row by row
        raise MetadataError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(required: {', '.join(required)}; found: {', '.join(columns) or 'none'})"
        )
    if not rows:
        raise MetadataError(f"{path}: no rows")
    return rows


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _raise_first_non_utf8(path: Path) -> None:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise MetadataError(f"{path}: line {n} is not UTF-8 text ({err.reason} at byte {err.start}); "
                                    "save the file as UTF-8") from None


def _check_unique(path: Path, columns: list[str]) -> None:
    seen: set[str] = set()
    for c in columns:
        if c in seen:
            raise MetadataError(f"{path}: column {c!r} appears twice; each column may appear once")
        seen.add(c)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    import pyarrow.csv as pcsv

    with open(path, "rb") as fh:
        first = fh.readline()
    try:
        header = next(csv.reader([first.decode("utf-8-sig")]), None)
    except UnicodeDecodeError as err:
        raise MetadataError(f"{path}: line 1 is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise MetadataError(f"{path}: cannot read the CSV header ({err})") from None
    if not header:
        raise MetadataError(f"{path}: empty CSV file (the first line must name the columns)")
    _check_unique(path, header)
    # every column as text: subject ids like "007" must not become the integer 7
    table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
        column_types={name: pa.string() for name in header}, strings_can_be_null=False,
        auto_dict_encode=False, quoted_strings_can_be_null=False))
    if table.column_names != header:  # pyarrow saw another header than the csv module: refuse to guess
        raise MetadataError(f"{path}: cannot read the CSV header consistently ({', '.join(header)})")
    return header, table.to_pylist()


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k!r} appears twice")
        out[k] = v
    return out


def _read_jsonl(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise MetadataError(f"{path}: line {n} is not UTF-8 text ({err.reason} at byte {err.start})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line, object_pairs_hook=_no_duplicate_keys)
            except json.JSONDecodeError as err:
                raise MetadataError(f"{path}: line {n} is not valid JSON ({err.msg})") from None
            except (ValueError, RecursionError) as err:
                raise MetadataError(f"{path}: line {n}: {_first_line(err)}") from None
            if not isinstance(obj, dict):
                kind = "null" if obj is None else type(obj).__name__
                raise MetadataError(f"{path}: line {n} is a JSON {kind}, not an object; each line must be one "
                                    "object such as {\"file\": \"a.png\", \"subject_id\": \"S1\", ...}")
            rows.append(obj)
    columns = sorted({k for r in rows for k in r}) if rows else []
    return columns, rows


def _as_int(value: Any, field: str, lo: int | None = None, hi: int | None = None) -> int:
    bad = ValueError(f"'{field}' must be an integer, got {value!r}")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, int):
        out = value
    elif isinstance(value, str):
        text = value.strip()
        if _INT_TEXT.fullmatch(text):
            out = int(text)
        elif _NUM_TEXT.fullmatch(text):  # "7.0" as written by spreadsheets
            f = float(text)
            if not math.isfinite(f) or f != int(f):
                raise bad
            out = int(f)
        else:
            raise bad
    elif isinstance(value, (float, Decimal)):
        if not math.isfinite(value) or value != int(value):
            raise bad
        out = int(value)
    else:
        raise bad
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
    """A text field: text as written (stripped), or an integer's digits; never a float or a bool."""
    if _missing(value):
        raise ValueError(f"'{field}' is empty")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"'{field}' must be text, got {value!r} ({type(value).__name__}); quote it")
    if _CONTROL.search(value):
        raise ValueError(f"'{field}' holds a control character: {value!r}")
    return value.strip()


def _as_float(value: Any, field: str) -> float:
    bad = ValueError(f"'{field}' must be a number, got {value!r}")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, str):
        if not _NUM_TEXT.fullmatch(value.strip()):
            raise bad
        out = float(value)
    elif isinstance(value, (int, float, Decimal)):
        try:
            out = float(value)
        except OverflowError:
            raise bad from None
    else:
        raise bad
    if not math.isfinite(out):
        raise ValueError(f"'{field}' must be finite, got {value!r}")
    return out


def _as_time(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        out = value
    elif isinstance(value, date):
        out = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            out = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"'{field}' must be an ISO 8601 time, got {value!r}") from None
    else:
        raise ValueError(f"'{field}' must be an ISO 8601 time, got {value!r}")
    if out.tzinfo is not None:  # stored as UTC, without offset
        try:
            out = out.astimezone(timezone.utc).replace(tzinfo=None)
        except (OverflowError, ValueError):
            raise ValueError(f"'{field}' = {value!r} is out of range in UTC") from None
    return out


def _as_scope(value: Any, field: str) -> list[str]:
    """Consent purposes: a list, or text separated by ``;`` (as a CSV cell holds them); sorted, unique.

    >>> _as_scope("training; research;training", "consent_scope")
    ['research', 'training']
    """
    if isinstance(value, str):
        items: list[Any] = value.split(";")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ValueError(f"'{field}' must be purposes separated by ';' (e.g. training;evaluation), got {value!r}")
    out = set()
    for item in items:
        text = item.strip() if isinstance(item, str) else item
        if not isinstance(text, str) or not PURPOSE_NAME.fullmatch(text):
            raise ValueError(f"'{field}' holds {item!r}, not a purpose name (1-64 letters, digits, '_' or '-'; "
                             "several separated by ';', e.g. training;evaluation)")
        out.add(text)
    if not out:
        raise ValueError(f"'{field}' names no purpose; leave it empty for consent not limited by purpose, "
                         "or set consent to false")
    return sorted(out)


def _as_date(value: Any, field: str) -> date:
    """A calendar date: ISO text ``2027-12-31``, a date, or a time at midnight."""
    if isinstance(value, datetime):
        if value.time() != datetime.min.time() or value.tzinfo is not None:
            raise ValueError(f"'{field}' must be a date without a time, got {value!r}")
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"'{field}' must be an ISO 8601 date such as 2027-12-31, got {value!r}")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and value.strip() == "")


def parse_row(row: dict[str, Any]) -> dict[str, Any]:
    """Validate one metadata row into catalog fields (no image fields yet). Raises ValueError.

    >>> parse_row({"file": "a.png", "subject_id": "007", "finger": "2", "impression": 0,
    ...            "sensor": "optical", "ppi": 500, "consent": "yes"})["subject_id"]
    '007'
    """
    absent = [c for c in REQUIRED_METADATA if c not in row]
    if absent:
        raise ValueError(f"'{absent[0]}' is missing (required: {', '.join(REQUIRED_METADATA)})")
    out: dict[str, Any] = {
        "file": _as_str(row["file"], "file"),
        "subject_id": _as_str(row["subject_id"], "subject_id"),
        "finger": _as_int(row["finger"], "finger", *INT_RANGES["finger"]),
        "impression": _as_int(row["impression"], "impression", *INT_RANGES["impression"]),
        "sensor": _as_str(row["sensor"], "sensor"),
        "ppi": _as_int(row["ppi"], "ppi", *INT_RANGES["ppi"]),
        "consent": _as_bool(row["consent"], "consent"),
    }
    q = row.get("quality")
    out["quality"] = None if _missing(q) else _as_float(q, "quality")
    split = row.get("split")
    out["split"] = None if _missing(split) else _as_str(split, "split")
    if out["split"] is not None and not SPLIT_NAME.fullmatch(out["split"]):
        raise ValueError(f"'split' = {out['split']!r} is not a valid split name (letters, digits, '_')")
    syn = row.get("synthetic")
    out["synthetic"] = False if _missing(syn) else _as_bool(syn, "synthetic")
    cap = row.get("captured_at")
    out["captured_at"] = None if _missing(cap) else _as_time(cap, "captured_at")
    scope = row.get("consent_scope")
    out["consent_scope"] = None if _missing(scope) else _as_scope(scope, "consent_scope")
    until = row.get("consent_until")
    out["consent_until"] = None if _missing(until) else _as_date(until, "consent_until")
    known = set(REQUIRED_METADATA) | set(OPTIONAL_METADATA)
    extra = {k: v for k, v in row.items() if k not in known and not _missing(v)}
    try:
        out["extra"] = json.dumps(extra, sort_keys=True, default=str, allow_nan=False) if extra else None
    except (ValueError, TypeError, RecursionError) as err:
        raise ValueError(f"extra columns {', '.join(sorted(map(str, extra)))} cannot be stored as JSON "
                         f"({_first_line(err)})") from None
    return out


def resolve_uri(file: str, base: str, *, allow_outside: bool = False) -> str:
    """Absolute location of an image named by a metadata row; ValueError when it is outside ``base``.

    A relative ``file`` is taken relative to ``base``; the result, symlinks followed, must lie
    inside ``base`` unless ``allow_outside``. A URI (``s3://…``) needs its fsspec backend.

    >>> resolve_uri("images/a.png", "/data/captures")                 # doctest: +SKIP
    '/data/captures/images/a.png'
    """
    if file.startswith("file://"):
        file = file[len("file://"):]
    if base.startswith("file://"):
        base = base[len("file://"):]
    if "://" in base and "://" not in file and not file.startswith("/"):
        file = base.rstrip("/") + "/" + file
    if "://" in file:
        protocol, _, rest = file.partition("://")
        try:
            fsspec.get_filesystem_class(protocol)
        except ImportError as err:
            raise ValueError(f"{file}: no fsspec backend for {protocol}:// is installed ({_first_line(err)})") from None
        except ValueError:
            raise ValueError(f"{file}: unknown protocol {protocol}://") from None
        uri = f"{protocol}://{posixpath.normpath(rest)}"
        root = base.rstrip("/") + "/" if "://" in base else None
        if not allow_outside and (root is None or not uri.startswith(root)):
            raise ValueError(f"{file} is outside {base}; pass --allow-outside to read images elsewhere")
        return uri
    p = Path(file)
    if not p.is_absolute():
        p = Path(base) / p
    try:
        resolved = p.resolve()
        root = Path(base).resolve()
    except (OSError, RuntimeError) as err:  # RuntimeError: a symlink loop
        raise ValueError(f"{file}: cannot resolve the path ({_first_line(err)})") from None
    if not allow_outside:
        if not resolved.is_relative_to(root):
            raise ValueError(f"{file} leads outside {root} (to {resolved}); pass --allow-outside to read "
                             "images elsewhere")
    return str(resolved)


def _probe_extract(uri: str, limits: ImageLimits | None, job: Any) -> dict[str, Any]:
    """:func:`probe_image` that also runs a :class:`fpload.features.FeatureJob` on the pixels."""
    from fpload.features import run_extractors

    return probe_image(uri, limits, lambda pixels, sid: run_extractors(pixels, job, None, sid))


def iter_probed(uris: list[str], workers: int, limits: ImageLimits | None = None,
                job: Any = None) -> Iterator[dict[str, Any]]:
    """Probe images in threads (decoders release the GIL), in input order.

    With ``job`` (a :class:`fpload.features.FeatureJob`) each result also holds ``_features``;
    the extractors hold the GIL much of the time, so they run in ``workers`` processes (forked
    from a fork server, dying with this one, as the packer's), or in this process for one worker.
    """
    if job is None:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            yield from pool.map(lambda u: probe_image(u, limits), uris)
        return
    if workers <= 1:
        yield from (_probe_extract(u, limits, job) for u in uris)
        return
    import os
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial
    from multiprocessing import get_context

    from fpload.pack import _lifeline

    _lifeline.start_fork_server(["fpload.catalog._ingest", "fpload.features"])
    me = os.getpid()
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("forkserver"),
                             initializer=_lifeline.die_with, initargs=(me, _lifeline.start_time(me))) as pool:
        yield from pool.map(partial(_probe_extract, limits=limits, job=job), uris, chunksize=8)


def conflict_fields(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Identity fields on which two records of the same image bytes disagree."""
    return [f for f in IDENTITY_FIELDS if a.get(f) != b.get(f)]


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Metadata fields (:data:`METADATA_FIELDS`) on which two records of the same bytes differ."""
    return [f for f in METADATA_FIELDS if old.get(f) != new.get(f)]
