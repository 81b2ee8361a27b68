"""The lineage index of a version root: which published version holds which sample and subject.

A version root ``ROOT`` (the ``--out`` of ``fpload pack``) keeps its governance files under
``ROOT/.fpload/``. Publishing ``ROOT/NAME/ID`` writes ``ROOT/.fpload/lineage/ID.parquet`` (one row
per sample: ``sample_id``, ``subject_ref``, ``split``; sorted by subject so a subject's rows lie in
one row group) and appends a ``publish`` record to the root's audit log naming the file's sha256.

The index lives beside the versions, not in the catalog: a root outlives the catalog it was packed
from, may hold versions of several catalogs, and is what a consent withdrawal must search.
Subjects are named by :func:`subject_ref` (a sha256 of the id), never in clear.

Publishing is the manifest's rename; the lineage follows it. A crash between the two leaves a
published version without lineage (or lineage without its ``publish`` record): packing that
version again, ``fpload versions find`` (missing lineage files) and ``fpload audit`` (both)
repair it from the version's own ``samples.parquet`` (:func:`sync_lineage`); ``fpload audit
verify`` reports what is still missing.

Example::

    from fpload.audit import find_versions
    for hit in find_versions("versions", subject="S042"):
        print(hit["name"], hit["version_id"], hit["state"], hit["splits"])
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fpload import formats
from fpload.audit._log import RecordLog
from fpload.errors import DataError, FploadError, UsageError

#: format version of the lineage files (parquet key-value metadata ``fpload.lineage``)
LINEAGE_SCHEMA_VERSION = 1
GOVERNANCE_DIR = ".fpload"
LINEAGE_DIR = "lineage"
TOMBSTONE_NAME = "tombstone.json"
#: rows per Parquet row group: a subject lookup reads about one group per version
ROW_GROUP = 4096
_SCHEMA = pa.schema([("sample_id", pa.string()), ("subject_ref", pa.string()), ("split", pa.string())])


def audit_log(root: str | Path) -> RecordLog:
    """The audit log of a version root: ``ROOT/.fpload/audit.jsonl`` (publish, read, erasure records).

    >>> audit_log("versions").path.as_posix()
    'versions/.fpload/audit.jsonl'
    """
    return RecordLog(Path(root) / GOVERNANCE_DIR / "audit.jsonl")


def subject_ref(subject_id: str) -> str:
    """:func:`fpload.formats.subject_ref`, with a usage error for an empty id (a CLI argument)."""
    try:
        return formats.subject_ref(subject_id)
    except ValueError as err:
        raise UsageError(str(err)) from None


def lineage_dir(root: str | Path) -> Path:
    return Path(root) / GOVERNANCE_DIR / LINEAGE_DIR


def lineage_path(root: str | Path, version_id: str) -> Path:
    """``ROOT/.fpload/lineage/<version_id>.parquet``."""
    return lineage_dir(root) / f"{version_id}.parquet"


def lineage_table(samples: pa.Table) -> pa.Table:
    """The lineage rows of a version from its ``samples.parquet`` table (sample_id, subject_id, split),
    sorted by (subject_ref, sample_id)."""
    subjects = samples.column("subject_id").to_pylist()
    refs = {s: subject_ref(s) for s in set(subjects) if s}
    table = pa.table({"sample_id": samples.column("sample_id").cast(pa.string()),
                      "subject_ref": pa.array([refs.get(s) for s in subjects], pa.string()),
                      "split": samples.column("split").cast(pa.string())}, schema=_SCHEMA)
    return table.sort_by([("subject_ref", "ascending"), ("sample_id", "ascending")])


def write_lineage_file(path: Path, table: pa.Table, *, version_id: str, name: str) -> str:
    """Write a lineage file atomically (temporary name, fsync, rename); returns its sha256."""
    meta = {"schema_version": LINEAGE_SCHEMA_VERSION, "version_id": version_id, "name": name}
    table = table.replace_schema_metadata({"fpload.lineage": json.dumps(meta, sort_keys=True)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP,
                       use_dictionary=["subject_ref", "split"])
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return formats.file_sha256(path)


def read_lineage_meta(path: Path) -> dict[str, Any]:
    """The ``fpload.lineage`` metadata of a lineage file (version_id, name, schema_version)."""
    try:
        raw = (pq.read_schema(path).metadata or {}).get(b"fpload.lineage")
        meta = json.loads(raw) if raw else None
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable lineage file ({str(err).splitlines()[0][:120]})") from None
    if not isinstance(meta, dict) or meta.get("schema_version") != LINEAGE_SCHEMA_VERSION:
        raise DataError(f"{path}: lineage schema_version {meta.get('schema_version') if isinstance(meta, dict) else None!r} "
                        f"is not supported by this fpload (it reads {LINEAGE_SCHEMA_VERSION})")
    return meta


def _latest_lineage(log: RecordLog) -> dict[str, dict[str, Any]]:
    """version_id -> the last record naming that version's lineage file (``payload.lineage``)."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in log.records():
        p = rec.get("payload") or {}
        if isinstance(p, dict) and isinstance(p.get("lineage"), dict) and p.get("version_id"):
            latest[p["version_id"]] = rec
    return latest


def record_publish(root: str | Path, version: Any) -> dict[str, Any] | None:
    """Index a published version of ``root``: write its lineage file if missing and append its
    ``publish`` record if the log has none. Idempotent: a second call adds nothing.

    ``version`` is a :class:`fpload.versions.Version` or its folder. Returns the record appended, or
    None when the version was already indexed.

    Example::

        res = pack_version(cat, out="versions", name="thumbs", where="consent")
        record_publish("versions", res.path)      # the packer already did: returns None
    """
    from fpload.versions import open_version

    v = open_version(version, check=False)
    root = Path(root)
    path = lineage_path(root, v.id)
    log = audit_log(root)
    known = _latest_lineage(log).get(v.id)
    if path.is_file() and known is not None:
        return None
    # a file no record names was written just before a crash (or put there): written anew
    table = lineage_table(v.samples)
    sha, rows = write_lineage_file(path, table, version_id=v.id, name=v.name), table.num_rows
    lineage = {"file": path.relative_to(root).as_posix(), "sha256": sha, "rows": rows}
    if known is not None:  # the file was lost after its record
        return log.append("lineage", {"version_id": v.id, "name": v.name, "reason": "rewritten after loss",
                                      "lineage": lineage})
    m = v.manifest
    return log.append("publish", {
        "version_id": v.id, "name": v.name, "path": f"{v.name}/{v.id}", "parent": m.get("parent"),
        "created_at": m.get("created_at"), "samples": m.get("samples"), "counts": m.get("counts"),
        "catalog": m.get("catalog"), "lineage": lineage})


def remove_from_lineage(root: str | Path, version_id: str, sample_ids: set[str], *, erasure_id: str) -> int:
    """Rewrite a version's lineage file without ``sample_ids`` (an erasure): the new file is written
    beside it, the old one overwritten with zeros, then replaced; a ``lineage`` record names the new
    file. Returns the rows removed. Safe to rerun after a crash at any point.
    """
    root = Path(root)
    path = lineage_path(root, version_id)
    pending = path.with_name(path.name + ".erasing")
    removed = 0
    if not pending.is_file():
        if not path.is_file():
            return 0
        table = pq.read_table(path)
        keep = pc.invert(pc.is_in(table["sample_id"], value_set=pa.array(sorted(sample_ids))))
        kept = table.filter(keep)
        removed = table.num_rows - kept.num_rows
        if removed == 0:
            _record_lineage(root, version_id, path, erasure_id)  # a crash after the rewrite: record it
            return 0
        write_lineage_file(pending, kept, version_id=version_id, name=read_lineage_meta(path).get("name") or "")
    if path.is_file():  # destroy the old bytes, not just the name
        size = path.stat().st_size
        with open(path, "r+b") as fh:
            fh.write(b"\0" * size)
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(pending, path)
    _record_lineage(root, version_id, path, erasure_id)
    return removed


def _record_lineage(root: Path, version_id: str, path: Path, erasure_id: str) -> None:
    """Append a ``lineage`` record for a rewritten file unless the log's latest one names it already."""
    log = audit_log(root)
    sha = formats.file_sha256(path)
    latest = _latest_lineage(log).get(version_id)
    if latest is not None and latest["payload"]["lineage"].get("sha256") == sha:
        return
    log.append("lineage", {
        "version_id": version_id, "name": read_lineage_meta(path).get("name") or "",
        "reason": f"erasure {erasure_id}",
        "lineage": {"file": path.relative_to(root).as_posix(), "sha256": sha, "rows": pq.read_metadata(path).num_rows}})


def _live_folders(root: Path) -> dict[str, Path]:
    """version id -> folder of every live version ``ROOT/NAME/ID`` (holding a manifest), by name only."""
    found = {}
    for manifest in root.glob(f"*/*/{formats.MANIFEST_NAME}"):
        folder = manifest.parent
        if folder.name.startswith(".") or folder.parent.name.startswith("."):
            continue
        found[folder.name] = folder
    return found


def sync_lineage(root: str | Path, *, records: bool = True, on_error: str = "raise") -> list[str]:
    """Repair the index after a crash: index every live version of ``root`` whose lineage file is
    missing (and, with ``records``, whose ``publish`` record is missing). Returns the repaired ids.

    ``on_error="skip"`` leaves a version that cannot be indexed (damaged samples.parquet) for
    ``fpload audit verify`` to name, instead of raising; a root that cannot be written raises
    OSError either way.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    root = Path(root)
    live = _live_folders(root)
    if records:
        known = _latest_lineage(audit_log(root))
        todo = [vid for vid in live if vid not in known or not lineage_path(root, vid).is_file()]
    else:
        todo = [vid for vid in live if not lineage_path(root, vid).is_file()]
    repaired = []
    for vid in sorted(todo):
        try:
            if record_publish(root, live[vid]) is not None:
                repaired.append(vid)
        except OSError:
            raise
        except FploadError:
            if on_error == "raise":
                raise
    return repaired


def version_state(root: Path, name: str | None, version_id: str) -> dict[str, Any]:
    """``{"state": live|erased|missing, "path", "successor"}`` of a version named by the index."""
    folder = root / name / version_id if name else None
    if folder is not None and (folder / formats.MANIFEST_NAME).is_file():
        return {"state": "live", "path": str(folder), "successor": None}
    if folder is not None and (folder / TOMBSTONE_NAME).is_file():
        try:
            stone = json.loads((folder / TOMBSTONE_NAME).read_text())
        except (OSError, ValueError):
            stone = {}
        return {"state": "erased", "path": str(folder),
                "successor": stone.get("successor") if isinstance(stone, dict) else None}
    return {"state": "missing", "path": str(folder) if folder else None, "successor": None}


def _search(files: list[Path], extra: pa.Table | None, where_sql: str, params: list[Any],
            ids: pa.Table | None) -> list[dict[str, Any]]:
    """Per (version, split): matching samples and (unless ``ids``) the sample ids."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET threads TO 2")
        sources = []
        if files:
            file_list = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
            sources.append(f"SELECT regexp_extract(filename, '([0-9a-f]+)[.]parquet$', 1) AS version_id, "
                           f"sample_id, subject_ref, split FROM read_parquet({file_list}, filename = true)")
        if extra is not None:
            con.register("unindexed", extra)
            sources.append("SELECT version_id, sample_id, subject_ref, split FROM unindexed")
        if ids is not None:
            con.register("wanted", ids)
        listed = "NULL" if ids is not None else "list(sample_id ORDER BY sample_id)"
        sql = (f"SELECT version_id, split, count(*) AS samples, "
               f"{listed} AS sample_ids FROM ({' UNION ALL '.join(sources)}) WHERE {where_sql} GROUP BY ALL")
        cur = con.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]
    finally:
        con.close()


def _unindexed(root: Path) -> tuple[pa.Table | None, dict[str, str]]:
    """Index the live versions of ``root`` that have no lineage file; where the root cannot be
    written, their lineage rows in memory (searched all the same) and their names."""
    from fpload.versions import open_version

    try:
        sync_lineage(root, records=False)
        return None, {}
    except OSError:
        pass
    tables, names = [], {}
    for vid, folder in sorted(_live_folders(root).items()):
        if lineage_path(root, vid).is_file():
            continue
        v = open_version(folder, check=False)
        t = lineage_table(v.samples)
        tables.append(t.add_column(0, "version_id", pa.array([vid] * t.num_rows, pa.string())))
        names[vid] = v.name
    return (pa.concat_tables(tables) if tables else None), names


def find_versions(root: str | Path, *, subject: str | None = None, sample: str | None = None,
                  sample_ids: Iterable[str] | None = None, repair: bool = True) -> list[dict[str, Any]]:
    """Every version of ``root`` that holds the subject, the sample, or any of ``sample_ids``
    (exactly one of the three), from the lineage index, with its state.

    Each hit: ``version_id``, ``name``, ``state`` (``live``; ``erased``: a tombstone replaced the
    manifest; ``missing``: the folder is gone), ``successor`` (of an erased one), ``path``,
    ``samples`` (how many of the asked samples it holds), ``splits`` (count per split)
    and, for a subject or a sample, ``sample_ids``. With ``repair`` (default) live
    versions published without lineage (a crash) are indexed first; where the root is read-only,
    they are searched from their ``samples.parquet`` instead.

    Example::

        find_versions("versions", subject="S042")
        ids = select_ids(cat.snapshot(), "sensor = 'old'")
        find_versions("versions", sample_ids=ids)
    """
    given = [x is not None for x in (subject, sample, sample_ids)]
    if sum(given) != 1:
        raise UsageError("give exactly one of --subject, --sample or --where")
    root = Path(root)
    if not root.is_dir():
        from fpload.errors import VersionNotFoundError

        raise VersionNotFoundError(f"no such version root: {root}")
    extra, names = _unindexed(root) if repair else (None, {})
    files = sorted(lineage_dir(root).glob("*.parquet"))
    if not files and extra is None:
        return []
    ids = None
    if subject is not None:
        where_sql, params = "subject_ref = ?", [subject_ref(subject)]
    elif sample is not None:
        where_sql, params = "sample_id = ?", [sample]
    else:
        ids = pa.table({"sample_id": pa.array(sorted(set(sample_ids or [])), pa.string())})
        if ids.num_rows == 0:
            return []
        where_sql, params = "sample_id IN (SELECT sample_id FROM wanted)", []
    hits: dict[str, dict[str, Any]] = {}
    for row in _search(files, extra, where_sql, params, ids):
        hit = hits.setdefault(row["version_id"], {"version_id": row["version_id"], "samples": 0,
                                                   "splits": {}})
        hit["samples"] += row["samples"]
        hit["splits"][row["split"]] = row["samples"]
        if ids is None:
            hit["sample_ids"] = sorted(hit.get("sample_ids", []) + row["sample_ids"])
    out = []
    for vid, hit in hits.items():
        hit["name"] = names[vid] if vid in names else read_lineage_meta(lineage_path(root, vid)).get("name")
        hit.update(version_state(root, hit["name"], vid))
        out.append(hit)
    return sorted(out, key=lambda h: (h["name"] or "", h["version_id"]))


def lineage_problems(root: str | Path) -> list[str]:
    """What is wrong with the lineage index of ``root``, one line each naming the file or version:
    a lineage file that differs from the sha256 its last record names, or is gone; a lineage file no
    record names; a live version without lineage."""
    root = Path(root)
    log = audit_log(root)
    problems = []
    try:
        latest = _latest_lineage(log)
    except DataError as err:
        return [str(err)]
    for vid, rec in sorted(latest.items()):
        lin = rec["payload"]["lineage"]
        path = root / str(lin.get("file", ""))
        where = f"record seq {rec.get('seq')} ({rec.get('kind')} of {rec['payload'].get('name')}/{vid})"
        if not path.is_file():
            problems.append(f"{path}: missing, {where} names it")
        elif formats.file_sha256(path) != lin.get("sha256"):
            problems.append(f"{path}: sha256 differs from the one {where} names (edited or replaced)")
    for path in sorted(lineage_dir(root).glob("*.parquet")):
        if path.stem not in latest:
            problems.append(f"{path}: no record names this lineage file (run `fpload audit` to record it)")
    for vid, folder in sorted(_live_folders(root).items()):
        if vid not in latest and not lineage_path(root, vid).is_file():
            problems.append(f"{folder}: a published version without lineage (run `fpload audit` to index it)")
    return problems
