"""erase_subject: remove a subject (or samples) from the catalog and every version, with a receipt.

The work is a journal of idempotent steps, ``ROOT/.fpload/erasures/<id>/journal.json`` under the
first root, rewritten atomically after each step: plan (what is where) → one successor per version
holding the samples → the catalog's rows deleted, a redaction recorded, the file rewritten → one
tombstone per old version → sources deleted (``delete_sources``) → receipts and ``erasure`` audit
records → the journal shredded and a ``done.json`` left (no sample id in it). A process killed at
any moment leaves a state the same command completes: it finds the unfinished journal by the
hash of its selection and carries on from the first step not done. Successors are all published
before any old version is destroyed, so the other subjects' bytes always exist somewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fpload import formats
from fpload.catalog import open_catalog, select_ids
from fpload.catalog import _redact
from fpload.formats import sample_ref, subject_ref
from fpload.config import env_erase_crash_at
from fpload.erase import _receipt
from fpload.audit._lineage import record_publish, remove_from_lineage
from fpload.erase._successor import build_successor, member_hashes, shred, tombstone
from fpload.errors import NoMatchError, UsageError

JOURNAL_SCHEMA_VERSION = 1
_passes: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL when ``FPLOAD_ERASE_CRASH_AT`` names this point (tests)."""
    want = env_erase_crash_at()
    if not want:
        return
    point, _, nth = want.partition(":")
    if point != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(part, path)


def erasures_dir(root: str | Path) -> Path:
    """Where a root keeps the journals of its erasures: ``ROOT/.fpload/erasures``."""
    return Path(root) / ".fpload" / "erasures"


def local_root(root: str | Path) -> Path:
    """A ``--root`` as a local folder; a version root on an object store is refused in one line
    (erasure rewrites and tombstones versions in place, which it does on local roots only)."""
    from fpload.versions._store import is_remote, local_path

    if is_remote(root):
        raise UsageError(f"--root {root}: erasure works on local version roots only; a version on an object "
                         "store cannot be tombstoned in place yet (copy the root to a local folder, erase there, then "
                         "upload the successors and delete the old versions' objects)")
    return local_path(root)


def _selection_key(subjects, samples, where, catalog: str | Path, roots: list[Path]) -> str:
    from fpload.catalog._backend import safe_url

    where_cat = safe_url(catalog) if isinstance(catalog, str) else str(catalog.resolve())  # a URL: no password
    text = formats.canonical_json({"subjects": sorted(subjects), "samples": sorted(samples), "where": where,
                                   "catalog": where_cat, "roots": [str(r.resolve()) for r in roots]})
    return hashlib.sha256(b"fpload-erasure-key:" + text).hexdigest()


def _versions_under(root: Path):
    """Published versions under a root: ``(version dir, manifest)`` of every ROOT/NAME/ID with a manifest."""
    for mpath in sorted(root.glob(f"*/*/{formats.MANIFEST_NAME}")):
        vdir = mpath.parent
        if vdir.name.startswith(".") or vdir.parent.name.startswith("."):
            continue
        yield vdir, formats.read_manifest(vdir)


def _plan(cat, roots: list[Path], subjects: list[str], samples: list[str], where: str | None,
          timeout: float | None) -> dict[str, Any]:
    ids = set(samples)
    if where is not None:
        ids |= set(select_ids(cat.snapshot(), where, timeout=timeout))
    rows = _redact.rows_of(cat, subjects=subjects, sample_ids=sorted(ids))
    ids |= {r["sample_id"] for r in rows}
    subj = set(subjects) | {r["subject_id"] for r in rows if r["sample_id"] in ids}
    found_versions = []
    tables = []
    for root in roots:
        for vdir, m in _versions_under(root):
            t = pq.read_table(vdir / m["samples_file"]["file"], columns=["sample_id", "subject_id", "shard"])
            tables.append((root, vdir, m, t))
            if subjects:
                by_subject = t.filter(pc.is_in(t.column("subject_id"), value_set=pa.array(sorted(subjects), pa.string())))
                ids |= set(by_subject.column("sample_id").to_pylist())
    for root, vdir, m, t in tables:
        hit = t.filter(pc.is_in(t.column("sample_id"), value_set=pa.array(sorted(ids), pa.string())))
        if hit.num_rows:
            subj |= set(hit.column("subject_id").to_pylist())
            found_versions.append({"root": str(root), "path": str(vdir), "name": m["name"],
                                   "version_id": m["version_id"], "samples": hit.num_rows,
                                   "held": sorted(set(hit.column("shard").to_pylist()))})
    hashes: dict[str, dict[str, str]] = {}
    for v in found_versions:
        for sid, h in member_hashes(Path(v["path"]), v["held"], ids).items():
            hashes.setdefault(sample_ref(sid), {}).update(h)
    catalog_rows = len(_redact.rows_of(cat, sample_ids=sorted(ids))) if ids else 0
    sources = sorted({r["uri"] for r in _redact.rows_of(cat, sample_ids=sorted(ids))}) if ids else []
    sources, shared = _source_files(cat, sources, ids)
    return {"sample_ids": sorted(ids), "subject_refs": sorted(subject_ref(s) for s in subjects),
            "affected_subject_refs": sorted(subject_ref(s) for s in subj),
            "versions": found_versions, "member_hashes": hashes,
            "catalog_samples": catalog_rows, "sources": sources,
            **({"sources_shared": shared} if shared else {})}


def _source_files(cat, uris: list[str], ids: set[str]) -> tuple[list[str], list[str]]:
    """The files behind source uris, and those of them that also hold samples not being erased.

    A record uri (``scans/a.an2#type14/3``) names an image inside a biometric record file: the
    file is the source. It is deleted only when every sample ever catalogued from it is erased;
    otherwise it is listed (kept, the receipt shows it) and named in the second list.
    """
    from fpload.catalog._records import split_record_uri

    files = {split_record_uri(u)[0] if split_record_uri(u) else u for u in uris}
    containers = {split_record_uri(u)[0] for u in uris if split_record_uri(u)}
    if not containers:
        return sorted(files), []
    with cat._damaged():
        rows = cat._backend.fetchall("SELECT DISTINCT sample_id, uri FROM sample_rows WHERE uri LIKE ?", ["%#%"])
    cat.release()
    shared = {parts[0] for sid, uri in rows if sid not in ids
              for parts in [split_record_uri(uri)] if parts and parts[0] in containers}
    return sorted(files), sorted(shared)


def erase_subject(catalog: str | Path, roots: list[str | Path], *, reason: str,
                  subjects: list[str] = (), samples: list[str] = (), where: str | None = None,
                  delete_sources: bool = False, receipt: str | Path | None = None,
                  who: str | None = None, query_timeout: float | None = None) -> dict[str, Any]:
    """Erase subjects / samples from ``catalog`` and every version under ``roots``; the receipt.

    ``subjects`` erases every sample any revision ever gave those subject ids (and any sample a
    version lists under them); ``samples`` names sample ids; ``where`` selects ids in the catalog's
    query sandbox at the head. The receipt (a dict, also written to ``ROOT/.fpload/receipts/<id>.json``
    of every root and to ``receipt`` when given) names subjects and samples only by hashes. Running
    the same call again after a crash completes the erasure; after success it returns the receipt.

    Example::

        r = erase_subject("catalog.duckdb", ["versions"], subjects=["S17"], reason="consent withdrawn (ticket 4411)")
        r["erasure_id"], [v["successor"] for v in r["versions"]]
    """
    if not reason or not reason.strip():
        raise UsageError("--reason is required: say why (e.g. 'consent withdrawn, ticket 4411')")
    if not (subjects or samples or where):
        raise UsageError("say what to erase: --subject, --sample or --where")
    for s in subjects:
        if s and s in reason:
            raise UsageError("the reason names the subject in clear; the reason is kept in the audit trail and "
                             "the catalog forever, so describe the request without the subject id")
    roots = [local_root(r) for r in roots]
    if not roots:
        raise UsageError("give at least one --root (a folder that `fpload pack --out` writes to)")
    for r in roots:
        if not r.is_dir():
            raise UsageError(f"--root {r} is not a folder")
    from fpload.catalog._backend import is_url, safe_url

    # a PostgreSQL URL stays a URL: this run connects with it as given, while the journal and the
    # receipt keep it without any password
    location = str(catalog) if is_url(str(catalog)) else Path(catalog)
    catalog = safe_url(location) if isinstance(location, str) else location
    key = _selection_key(subjects, samples, where, catalog, roots)
    journal_path, journal = _find_journal(roots[0], key)
    if journal is None:
        cat = open_catalog(location, create=False)
        try:
            plan = _plan(cat, roots, list(subjects), list(samples), where, query_timeout)
        finally:
            cat.close()
        if not plan["sample_ids"]:
            done = _find_done(roots[0], key)
            if done is not None:
                return json.loads(Path(done["receipt"]).read_text())
            raise NoMatchError(f"nothing to erase: no sample of the selection is in {catalog} or under "
                               f"{', '.join(map(str, roots))}")
        eid = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        journal = {"schema_version": JOURNAL_SCHEMA_VERSION, "erasure_id": eid, "key": key, "reason": reason,
                   "who": who or _redact.who_am_i(), "started_at": _now(), "catalog": str(catalog),
                   "roots": [str(r) for r in roots], "delete_sources": delete_sources,
                   "where_sha256": hashlib.sha256((where or "").encode()).hexdigest() if where else None,
                   "plan": plan, "done": {}}
        journal_path = erasures_dir(roots[0]) / eid / "journal.json"
        _write_atomic(journal_path, formats.pretty_json(journal))
    crash_point("planned")
    return _run(journal_path, journal, receipt, location)


def _find_journal(root: Path, key: str) -> tuple[Path | None, dict | None]:
    for path in sorted(erasures_dir(root).glob("*/journal.json")):
        try:
            j = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if j.get("key") == key:
            return path, j
    return None, None


def _find_done(root: Path, key: str) -> dict | None:
    for path in sorted(erasures_dir(root).glob("*/done.json"), reverse=True):
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if d.get("key") == key and Path(d.get("receipt", "")).is_file():
            return d
    return None


def _run(journal_path: Path, j: dict[str, Any], receipt_out: str | Path | None,
         location: str | Path | None = None) -> dict[str, Any]:
    def save() -> None:
        _write_atomic(journal_path, formats.pretty_json(j))

    plan, done, eid = j["plan"], j["done"], j["erasure_id"]
    ids = set(plan["sample_ids"])
    for v in plan["versions"]:
        step = f"successor:{v['path']}"
        if step not in done:
            done[step] = build_successor(Path(v["path"]), ids, erasure_id=eid, crash=crash_point)
            save()
            crash_point("successor")
        if done[step].get("successor") and f"lineage:{v['path']}" not in done:
            record_publish(v["root"], done[step]["path"])  # idempotent: the successor's lineage
            done[f"lineage:{v['path']}"] = True
            save()
    if "catalog" not in done:
        cat = open_catalog(location or j["catalog"], create=False)   # as given: a URL may hold the password
        try:
            report = _redact.erase_rows(cat, sorted(ids), erasure_id=eid, reason=j["reason"], who=j["who"])
            crash_point("catalog-deleted")
            _redact.compact_catalog(cat)
        finally:
            cat.close()
        done["catalog"] = {"revision": report["revision"], "rows_deleted": report["rows_deleted"], "compacted": True}
        save()
        crash_point("catalog")
    for v in plan["versions"]:
        step = f"tombstone:{v['path']}"
        if step not in done:
            succ = done[f"successor:{v['path']}"]
            destroyed = tombstone(Path(v["path"]), version_id=v["version_id"], successor=succ["successor"],
                                  erasure_id=eid, reason=j["reason"], held=v["held"], crash=crash_point)
            _receipt.append_once(v["root"], "tombstone", eid, {
                "erasure_id": eid, "version_id": v["version_id"], "name": v["name"],
                "successor": succ["successor"], "samples_removed": v["samples"]}, match="version_id")
            done[step] = {"destroyed": len(destroyed)}
            save()
            crash_point("tombstone")
        step = f"unindex:{v['path']}"
        if step not in done:  # the old version's lineage keeps its other samples, not S's
            done[step] = {"rows_removed": remove_from_lineage(v["root"], v["version_id"], ids, erasure_id=eid)}
            save()
    if j["delete_sources"] and "sources" not in done:
        deleted = []
        shared = set(plan.get("sources_shared", ()))  # record files that also hold others' samples
        for uri in plan["sources"]:
            p = Path(uri)
            if uri not in shared and p.is_file():
                shred(p)
                deleted.append(uri)
        done["sources"] = {"deleted": deleted}
        save()
        crash_point("sources")
    if "receipt" not in done:  # built once, so a rerun writes the same bytes the audit record hashes
        done["receipt"] = _receipt.build_receipt(j)
        save()
    receipt = done["receipt"]
    data = formats.pretty_json(receipt)
    paths = [Path(r) / ".fpload" / "receipts" / f"{eid}.json" for r in j["roots"]]
    if receipt_out is not None:
        paths.append(Path(receipt_out))
    for p in paths:
        _write_atomic(p, data)
    crash_point("receipt")
    digest = hashlib.sha256(data).hexdigest()
    for r in j["roots"]:
        _receipt.append_once(r, "erasure", eid, _receipt.erasure_record(receipt, digest), match=None)
    crash_point("audit")
    _write_atomic(journal_path.with_name("done.json"), formats.pretty_json(
        {"erasure_id": eid, "key": j["key"], "receipt": str(paths[0].resolve()), "finished_at": _now()}))
    shred(journal_path)
    return receipt
