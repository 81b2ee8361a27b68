"""Biometric records as ingest sources: ANSI/NIST-ITL transactions and ISO/IEC 19794-4 records.

Each finger image in a record becomes one catalog row. Its ``uri`` names the record inside the
file, ``<file>#<kind>/<index>`` (:data:`RECORD_URI`):

- ``scans/card7.an2#type14/3``: the ANSI/NIST-ITL record at position 3 of the transaction
  (position 0 is the Type-1 header), a Type-14 (or legacy Type-4) finger image;
- ``scans/p12.fir#iso19794-4/0``: finger view 0 of an ISO/IEC 19794-4 record.

:func:`read_source_bytes` reads the image bytes back from such a uri (the packer's way in), and
the ``sample_id`` hashes those image bytes (the same bytes give the same id as the image file).
Transactions are parsed with IDEMIA's ``nistitl`` (``pip install 'fpload[nist]'``), after a walk
of the record lengths that refuses a zero-length binary record (on which ``nistitl`` loops
forever). The mapping of record fields to catalog columns is in :mod:`fpload.catalog._an2`.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable

from fpload.catalog import _iso19794
from fpload.catalog._image import ImageLimits, probe_bytes, read_image_bytes
from fpload.errors import ImageError, RecordError

#: a catalog uri that names an image inside a record: ``<file>#type4/<i>``, ``#type14/<i>``, ``#iso19794-4/<i>``
RECORD_URI = re.compile(r"(?P<file>.+)#(?P<kind>type4|type14|iso19794-4)/(?P<index>[0-9]{1,6})", re.ASCII | re.DOTALL)
#: file name endings ``catalog ingest`` reads as ANSI/NIST-ITL transactions in a folder
AN2_SUFFIXES = (".an2", ".eft", ".nist", ".an1", ".int", ".ebts")
#: file name endings read as ISO/IEC 19794-4 records in a folder
ISO_SUFFIXES = (".fir", ".iso", ".19794")
#: largest transaction or record file read, in bytes (its images each obey the image limits)
RECORD_MAX_BYTES = 2 << 30
_INSTALL_HINT = "pip install 'fpload[nist]'"


def record_uri(file: str, kind: str, index: int) -> str:
    """The uri of image ``index`` of ``kind`` in ``file``.

    >>> record_uri("/data/a.an2", "type14", 3)
    '/data/a.an2#type14/3'
    """
    return f"{file}#{kind}/{index}"


def split_record_uri(uri: str) -> tuple[str, str, int] | None:
    """``(file, kind, index)`` of a record uri; None for a plain image file.

    >>> split_record_uri("/data/a.an2#type14/3"), split_record_uri("/data/a.png")
    (('/data/a.an2', 'type14', 3), None)
    """
    m = RECORD_URI.fullmatch(uri)
    return (m["file"], m["kind"], int(m["index"])) if m else None


def read_source_bytes(uri: str, max_bytes: int | None) -> bytes:
    """The image bytes a catalog uri names: a plain image file, or one image inside a record.

    The record file is read with the same rules as an image file (regular files only, at most
    :data:`RECORD_MAX_BYTES`), parsed, and the named image taken out; :class:`ImageError` naming
    the uri when the record is gone, changed shape or no longer holds that image.
    """
    parts = split_record_uri(uri)
    if parts is None:
        return read_image_bytes(uri, max_bytes)
    file, kind, index = parts
    data = read_image_bytes(file, RECORD_MAX_BYTES)
    try:
        if kind == "iso19794-4":
            rec = _iso19794.read_record(data, file)
            if index >= len(rec["views"]):
                raise RecordError(f"{file}: has {len(rec['views'])} finger views, not a view {index}")
            return _iso19794.view_bytes(data, rec["views"][index])
        from fpload.catalog._an2 import image_of

        return image_of(data, file, index)
    except RecordError as err:
        raise ImageError(f"{uri}: {err}") from None


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The record files named: files as given, folders searched recursively for the known endings
    (:data:`AN2_SUFFIXES`, :data:`ISO_SUFFIXES`), sorted; :class:`RecordError` when none is found."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in AN2_SUFFIXES + ISO_SUFFIXES))
        elif p.exists():
            out.append(p)
        else:
            raise RecordError(f"{p}: no such record file or folder")
    if not out:
        raise RecordError(f"no record files ({', '.join(AN2_SUFFIXES + ISO_SUFFIXES)}) in "
                          f"{', '.join(map(str, paths)) or 'the arguments'}")
    return out


def _iso_rows(data: bytes, file: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    from fpload.catalog._an2 import finger_of

    rec = _iso19794.read_record(data, file)
    if rec["pixel_depth"] != 8:
        raise RecordError(f"{file}: pixel depth {rec['pixel_depth']} bits (fpload reads 8-bit grey images)")
    if rec["compression"] not in ("wsq", "jpeg", "jp2", "png"):
        raise RecordError(f"{file}: image compression {rec['compression']} is not supported (WSQ, JPEG, "
                          "JPEG 2000 or PNG); uncompressed records are not read yet")
    rows, skipped = [], {}
    for v in rec["views"]:
        where = f"{file}: view {v['view']}"
        finger = finger_of(v["finger"], where)
        if finger is None:
            skipped[f"finger position {v['finger']}"] = skipped.get(f"finger position {v['finger']}", 0) + 1
            continue
        q = v["quality"]
        rows.append({
            "_image": _iso19794.view_bytes(data, v), "_expect": (rec["compression"], v["width"], v["height"]),
            "uri": record_uri(file, "iso19794-4", v["view"]), "subject_id": Path(file).stem,
            "finger": finger, "impression": v["impression"],
            "sensor": f"device {rec['device']:#06x}" if rec["device"] else "unknown", "ppi": rec["ppi"],
            "quality": float(q) if q <= 100 else None, "captured_at": None,
            "extra": {"record": {"format": "ISO/IEC 19794-4:2005", "fgp": v["finger"], "view": v["view_number"],
                                 "device": rec["device"], "acquisition_level": rec["acquisition_level"],
                                 **({"ppi_vertical": rec["ppi_vertical"]} if rec["ppi_vertical"] != rec["ppi"] else {})}},
        })
    return rows, skipped


def read_record_rows(paths: Iterable[str | Path], *, subject_field: str, keep_fields: tuple[str, ...] = (),
                     limits: ImageLimits | None = None, workers: int = 4,
                     ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Catalog rows (without consent, split and other metadata-file columns) of every finger image
    in the record files, probed; and the count of skipped images or records per reason.

    Files are read, parsed and their images probed in ``workers`` threads, one file per task, so
    memory holds a few files at a time, not the whole folder. Every record is checked before
    anything is returned: :class:`RecordError` or :class:`ImageError` naming the file and record
    on the first problem.
    """
    from fpload.catalog._an2 import parse_field_name

    limits = limits or ImageLimits()
    subject = parse_field_name(subject_field, "--subject-field", types=(1, 2))
    keep = tuple(parse_field_name(f, "--keep-field") for f in keep_fields)
    rows: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for got, skip in pool.map(lambda p: _file_rows(p, subject, keep, limits), expand_paths(paths)):
            rows.extend(got)
            for k, v in skip.items():
                skipped[k] = skipped.get(k, 0) + v
    return rows, skipped


def _file_rows(path: Path, subject: tuple[int, int], keep: tuple[tuple[int, int], ...],
               limits: ImageLimits) -> tuple[list[dict[str, Any]], dict[str, int]]:
    from fpload.catalog._an2 import an2_rows

    file = str(path.resolve())
    data = read_image_bytes(file, RECORD_MAX_BYTES)
    got, skip = _iso_rows(data, file) if _iso19794.is_record(data) else an2_rows(data, file, subject, keep)
    for row in got:
        row.update(_probe(row, limits))
        row["_row"] = row["uri"]
    return got, skip


def _probe(row: dict[str, Any], limits: ImageLimits) -> dict[str, Any]:
    info = probe_bytes(row.pop("_image"), row["uri"], limits)
    fmt, width, height = row.pop("_expect")
    if fmt is not None and info["format"] != fmt:
        raise RecordError(f"{row['uri']}: the record says the image is {fmt}, its bytes are {info['format']}")
    if (width, height) != (info["width"], info["height"]):
        raise RecordError(f"{row['uri']}: the record says {width}×{height} pixels, the image has "
                          f"{info['width']}×{info['height']} (wrong lengths)")
    return info


#: metadata-file columns that override or add to what records say, per subject (the join key)
RECORD_METADATA_COLUMNS = ("consent", "consent_scope", "consent_until", "split", "synthetic", "sensor", "quality")


def finish_rows(rows: list[dict[str, Any]], *, consent: bool = False, metadata: str | Path | None = None) -> None:
    """Give record rows the columns records do not carry (in place): ``consent`` (default: the
    ``consent`` argument, False unless told), ``split``, ``synthetic`` and the consent limits, from
    a metadata file joined on ``subject_id`` when given; ``extra`` becomes JSON text.

    The metadata file (CSV, Parquet or JSONL) has a ``subject_id`` column and any of
    :data:`RECORD_METADATA_COLUMNS`; its other columns go to the subject's samples' ``extra``.
    A subject listed twice is a :class:`MetadataError`; subjects no record holds are ignored.
    """
    import json

    from fpload.catalog import _ingest
    from fpload.errors import MetadataError

    by_subject: dict[str, dict[str, Any]] = {}
    if metadata is not None:
        for n, raw in enumerate(_ingest.read_metadata(metadata, required=("subject_id",)), 1):
            try:
                sid = _ingest._as_str(raw.get("subject_id"), "subject_id")
                parsed = _ingest.parse_row({"file": "-", "finger": 0, "impression": 0, "sensor": "-", "ppi": 1,
                                            "consent": consent, **raw, "subject_id": sid})
            except ValueError as err:
                raise MetadataError(f"{metadata}: row {n} (subject_id={raw.get('subject_id')!r}): {err}") from None
            if sid in by_subject:
                raise MetadataError(f"{metadata}: row {n}: subject {sid!r} appears twice (the file is joined to "
                                    "records on subject_id, one row per subject)")
            given = {c: parsed[c] for c in RECORD_METADATA_COLUMNS if c in raw and not _ingest._missing(raw[c])}
            given["_extra"] = json.loads(parsed["extra"]) if parsed["extra"] else {}
            by_subject[sid] = given
    for row in rows:
        row.update({"consent": consent, "split": None, "synthetic": False, "consent_scope": None,
                    "consent_until": None})
        over = by_subject.get(row["subject_id"], {})
        row.update({k: v for k, v in over.items() if k != "_extra"})
        extra = {**row["extra"], **over.get("_extra", {})}
        row["extra"] = json.dumps(extra, sort_keys=True, default=str) if extra else None
