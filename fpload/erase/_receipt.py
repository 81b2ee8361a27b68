"""Erasure receipts, their audit records, and ``erase verify``: the scan for any trace left.

A receipt names subjects and samples only by hashes (:func:`~fpload.formats.subject_ref`,
:func:`~fpload.formats.sample_ref`) and keeps the domain-separated sha256 of each erased
sample's image and metadata members (:func:`member_ref`), so it proves what was erased without
holding it. :func:`verify_receipt` re-scans the catalog and every file under the roots:

- catalog rows (any revision) whose sample or subject hashes to a ref of the receipt;
- in every file's bytes, any run of 32 hex digits that is an erased sample id;
- every tar member, and every whole file, whose :func:`member_ref` is an erased member's; any
  file whose sha256 starts with an erased sample id (a copy of a source image);
- every Parquet string column (samples.parquet, lineage files) and every feature cache's
  ``sample_id`` array for an erased sample id or subject;
- each tombstoned version holds nothing but its tombstone, and its successor opens.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fpload import formats
from fpload.audit import RecordLog
from fpload.formats import sample_ref, subject_ref
from fpload.erase._successor import member_ref

RECEIPT_SCHEMA_VERSION = 1
_HEX_RUN = re.compile(rb"[0-9a-f]{32,}")


def audit_log(root: str | Path) -> RecordLog:
    """The audit log of a version root: ``ROOT/.fpload/audit.jsonl``."""
    return RecordLog(Path(root) / ".fpload" / "audit.jsonl")


def append_once(root: str | Path, kind: str, erasure_id: str, payload: dict[str, Any],
                match: str | None) -> None:
    """Append a record unless the log already has one of ``kind`` for this erasure (and the same
    ``payload[match]``): a rerun after a crash adds no duplicate."""
    log = audit_log(root)
    log.path.parent.mkdir(parents=True, exist_ok=True)
    for rec in log.records(kind):
        p = rec.get("payload", {})
        if p.get("erasure_id") == erasure_id and (match is None or p.get(match) == payload.get(match)):
            return
    log.append(kind, payload)


def build_receipt(j: dict[str, Any]) -> dict[str, Any]:
    """The receipt of a finished erasure journal (no sample or subject id in clear)."""
    plan, done = j["plan"], j["done"]
    from fpload.versions._store import join

    versions = []
    for v in plan["versions"]:
        s = done[f"successor:{v['path']}"]
        remote = "mirror" in v   # a version on an object store (see fpload.erase._remote)
        versions.append({"root": v["root"], "name": v["name"], "version_id": v["version_id"],
                         "samples_removed": v["samples"], "shards_held": len(v["held"]),
                         "successor": s["successor"], "successor_path": s["path"],
                         "shards_rewritten": len(s["shards_rewritten"]), "shards_reused": s["shards_kept"],
                         "tombstone": join(v["path"], formats.TOMBSTONE_NAME) if remote
                         else str(Path(v["path"]) / formats.TOMBSTONE_NAME),
                         "files_destroyed": done[f"tombstone:{v['path']}"]["destroyed"],
                         **({"deletion": _store_deletion(),
                             "bucket_versioning": done[f"tombstone:{v['path']}"].get("bucket_versioning"),
                             "noncurrent_versions_deleted": done.get(f"purge:{v['path']}", {}).get("deleted")}
                            if remote else {})})
    return {
        "schema_version": RECEIPT_SCHEMA_VERSION, "erasure_id": j["erasure_id"], "reason": j["reason"],
        "who": j["who"], "started_at": j["started_at"], "catalog": j["catalog"], "roots": j["roots"],
        "where_sha256": j.get("where_sha256"),
        "subject_refs": plan["subject_refs"], "affected_subject_refs": plan["affected_subject_refs"],
        "samples": [{"sample_ref": sample_ref(s), "members": plan["member_hashes"].get(sample_ref(s), {})}
                    for s in plan["sample_ids"]],
        "found": {"catalog_rows": plan["catalog_samples"], "versions": len(plan["versions"]),
                  "sources": plan["sources"]},
        "catalog_result": done["catalog"],
        "versions": versions,
        "sources": {"listed": plan["sources"], "deleted": done.get("sources", {}).get("deleted", []),
                    "kept_by_user": not j["delete_sources"]},
        **({"state_dir": j["state_dir"]} if j.get("state_dir") else {}),
        **({"mirror": j["mirror"]} if j.get("mirror") else {}),
    }


def _store_deletion() -> str:
    from fpload.erase._remote import STORE_DELETION

    return STORE_DELETION


def erasure_record(receipt: dict[str, Any], digest: str) -> dict[str, Any]:
    """Payload of the ``erasure`` audit record: ids, counts and the receipt's sha256."""
    return {"erasure_id": receipt["erasure_id"], "receipt_sha256": digest, "subject_refs": receipt["subject_refs"],
            "samples": len(receipt["samples"]), "catalog_revision": receipt["catalog_result"]["revision"],
            "versions": [{"version_id": v["version_id"], "successor": v["successor"]} for v in receipt["versions"]]}


def _hex_hits(data: bytes, ids: set[str]) -> set[str]:
    hits = set()
    for m in _HEX_RUN.finditer(data):
        run = m.group()
        for i in range(len(run) - 31):
            if sample_ref(run[i:i + 32].decode()) in ids:
                hits.add(run[i:i + 32].decode())
    return hits


def _scan_file(path: Path, refs: set[str], members: set[str], label: str) -> list[str]:
    return _scan_bytes(path.read_bytes(), path.name, refs, members, label)


def _scan_bytes(data: bytes, name: str, refs: set[str], members: set[str], label: str) -> list[str]:
    """The traces in one file's bytes (``name`` tells a tar or a Parquet file by its suffix)."""
    import io

    found = [f"{label}: holds erased sample id (ref {sample_ref(h)[:12]})" for h in sorted(_hex_hits(data, refs))]
    if member_ref(data) in members or sample_ref(hashlib.sha256(data).hexdigest()[:32]) in refs:
        found.append(f"{label}: is a copy of an erased image")
    if name.endswith(".tar"):
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for info in tar:
                    fh = tar.extractfile(info) if info.isfile() else None
                    if fh is not None and member_ref(fh.read()) in members:
                        found.append(f"{label}: member {info.name} holds an erased sample's bytes")
        except tarfile.TarError:
            pass
    if name.endswith(".parquet"):
        try:
            table = pq.read_table(io.BytesIO(data))
        except (pa.ArrowException, OSError):
            return found
        for name in table.column_names:
            col = table.column(name)
            if pa.types.is_string(col.type):
                for value in set(col.to_pylist()) - {None}:
                    if sample_ref(value) in refs:
                        found.append(f"{label}: column {name} holds an erased sample id")
    return found


def _scan_zarr(group_dir: Path, refs: set[str], subjects: set[str], label: str) -> list[str]:
    import zarr

    try:
        arr = zarr.open_group(str(group_dir), mode="r", zarr_format=3)[formats.FEATURES_SAMPLE_ID]
        rows = np.asarray(arr[:])
    except Exception:  # not a feature cache
        return []
    ids = {bytes(r).hex() for r in rows.reshape(-1, formats.FEATURES_SAMPLE_ID_BYTES)} if rows.dtype == np.uint8 \
        else {str(x) for x in rows.ravel()}
    return [f"{label}: sample_id array holds an erased sample" for s in sorted(ids) if sample_ref(s) in refs]


def verify_receipt(receipt_path: str | Path, *, catalog: str | Path | None = None,
                   roots: list[str | Path] | None = None) -> list[str]:
    """Every trace of the receipt's samples left in the catalog and under the roots (empty: none).

    ``catalog`` / ``roots`` default to those the receipt names.

    >>> verify_receipt("versions/.fpload/receipts/20250101T120000-1a2b3c4d.json")   # doctest: +SKIP
    []
    """
    from fpload.catalog import open_catalog
    from fpload.versions import open_version

    r = json.loads(_read_receipt(receipt_path))
    refs = {s["sample_ref"] for s in r["samples"]}
    members = {h for s in r["samples"] for h in s["members"].values()}
    subjects = set(r["subject_refs"])
    from fpload.catalog._backend import is_url

    catalog = catalog or r["catalog"]
    catalog = str(catalog) if is_url(str(catalog)) else Path(catalog)
    from fpload.erase._erase import local_root

    roots = [local_root(x) for x in (roots or r["roots"])]   # Paths, or URLs (str) of object stores
    problems: list[str] = []
    cat = open_catalog(catalog, create=False, read_only=True)
    try:
        rows = cat._backend.fetchall("SELECT DISTINCT sample_id, subject_id FROM sample_rows")
    finally:
        cat.close()
    for sid, subj in rows:
        if sample_ref(sid) in refs:
            problems.append(f"{catalog}: sample_rows holds an erased sample (ref {sample_ref(sid)[:12]})")
        elif subject_ref(subj) in subjects:
            problems.append(f"{catalog}: sample_rows holds a row of an erased subject (ref {subject_ref(subj)[:12]})")
    if isinstance(catalog, Path):   # a file's bytes are scanned too; a server's files are not reachable
        problems += _scan_file(catalog, refs, members, str(catalog))
        for extra in (catalog.with_name(catalog.name + ".wal"), catalog.with_name(catalog.name + ".erase-tmp")):
            if extra.exists():
                problems += _scan_file(extra, refs, members, str(extra))
    for root in roots:
        if isinstance(root, str):
            from fpload.erase._remote import scan_root

            problems += scan_root(root, refs, members, subjects,
                                  lambda data, name, label: _scan_bytes(data, name, refs, members, label), _scan_zarr)
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                problems += _scan_file(path, refs, members, str(path))
            elif path.is_dir() and (path / "zarr.json").is_file():
                problems += _scan_zarr(path, refs, subjects, str(path))
    for key in ("state_dir", "mirror"):  # this machine's journal folder and copies of a remote erasure
        state = Path(r[key]) if r.get(key) else None
        if state is None or not state.is_dir():
            continue
        for path in sorted(state.rglob("*")):
            if path.is_file() and not path.is_symlink():
                problems += _scan_file(path, refs, members, str(path))
    for v in r["versions"]:
        if "deletion" in v:  # on an object store
            from fpload.erase._remote import tombstone_problems
            from fpload.versions._store import parent

            problems += tombstone_problems(parent(v["tombstone"]))
            if v["successor"]:
                try:
                    open_version(v["successor_path"])
                except Exception as err:  # any failure to open is a finding, named
                    problems.append(f"{v['successor_path']}: successor does not open ({err})")
            continue
        vdir = Path(v["tombstone"]).parent
        left = [p.name for p in vdir.iterdir() if p.name != formats.TOMBSTONE_NAME] if vdir.is_dir() else []
        if left:
            problems.append(f"{vdir}: tombstoned version still holds {', '.join(sorted(left)[:3])}")
        if not (vdir / formats.TOMBSTONE_NAME).is_file():
            problems.append(f"{vdir}: {formats.TOMBSTONE_NAME} is missing")
        if v["successor"]:
            try:
                open_version(v["successor_path"])
            except Exception as err:  # any failure to open is a finding, named
                problems.append(f"{v['successor_path']}: successor does not open ({err})")
    return problems


def _read_receipt(location: str | Path) -> str:
    """A receipt's text, from a file or an object-store URL (``ROOT/.fpload/receipts/ID.json``)."""
    from fpload.versions._store import filesystem, is_remote, store_errors

    if not is_remote(location):
        return Path(location).read_text()
    fs, path = filesystem(str(location))
    with store_errors(str(location), "reading the receipt"):
        return fs.cat_file(path).decode()
