"""erase_subject: remove a subject (or samples) from the catalog and every version, with a receipt.

The work is a journal of idempotent steps, ``ROOT/.fpload/erasures/<id>/journal.json`` under the
first root, rewritten atomically after each step: plan (what is where) → one successor per version
holding the samples → the catalog's rows deleted, a redaction recorded, the file rewritten → one
tombstone per old version → sources deleted (``delete_sources``) → receipts and ``erasure`` audit
records → the journal shredded and a ``done.json`` left (no sample id in it). A process killed at
any moment leaves a state the same command completes: it finds the unfinished journal by the
hash of its selection and carries on from the first step not done. Successors are all published
before any old version is destroyed, so the other subjects' bytes always exist somewhere.

A root may be an object-store URL (``s3://bucket/versions``): the journal then lives in the local
state folder (``FPLOAD_ERASE_STATE_DIR``, else ``CACHE/erasures``) and each step runs as
:mod:`fpload.erase._remote` describes (verified local copy, successor uploaded manifest last,
``tombstone.json`` left in the store, the old objects deleted).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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
from fpload.config import env_erase_crash_at, env_erase_state_dir
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


def local_root(root: str | Path) -> Path | str:
    """A ``--root`` as a local folder (a Path), or an object-store URL (a str without trailing
    slash; see :mod:`fpload.erase._remote`)."""
    from fpload.versions._store import is_remote, local_path

    if is_remote(root):
        return str(root).rstrip("/")
    return local_path(root)


def _is_url(root: Path | str) -> bool:
    return isinstance(root, str)


def _state_dir(roots: list[Path | str]) -> Path:
    """Where the journals live: ``ROOT/.fpload/erasures`` of the first root when it is local, else
    the local state folder (:func:`fpload.config.env_erase_state_dir`)."""
    return env_erase_state_dir() if _is_url(roots[0]) else erasures_dir(roots[0])


def _selection_key(subjects, samples, where, catalog: str | Path, roots: list[Path]) -> str:
    from fpload.catalog._backend import safe_url

    where_cat = safe_url(catalog) if isinstance(catalog, str) else str(catalog.resolve())  # a URL: no password
    text = formats.canonical_json({"subjects": sorted(subjects), "samples": sorted(samples), "where": where,
                                   "catalog": where_cat, "roots": [r if _is_url(r) else str(r.resolve()) for r in roots]})
    return hashlib.sha256(b"fpload-erasure-key:" + text).hexdigest()


def _versions_under(root: Path):
    """Published versions under a root: ``(version dir, manifest)`` of every ROOT/NAME/ID with a manifest."""
    for mpath in sorted(root.glob(f"*/*/{formats.MANIFEST_NAME}")):
        vdir = mpath.parent
        if vdir.name.startswith(".") or vdir.parent.name.startswith("."):
            continue
        yield vdir, formats.read_manifest(vdir)


def _remote_versions_under(root: str, ri: int, mirror: Path):
    """As :func:`_versions_under` for a URL root: ``(mirror dir, manifest, samples table, version)``,
    each samples.parquet downloaded (hash-checked) into the local mirror."""
    from fpload.erase import _remote

    for v in _remote.remote_versions(root):
        local = mirror / str(ri) / v.name / v.id
        yield local, v.manifest, _remote.read_samples(v, local), v


def _plan(cat, roots: list[Path | str], subjects: list[str], samples: list[str], where: str | None,
          timeout: float | None, mirror: Path | None = None) -> dict[str, Any]:
    ids = set(samples)
    if where is not None:
        ids |= set(select_ids(cat.snapshot(), where, timeout=timeout))
    rows = _redact.rows_of(cat, subjects=subjects, sample_ids=sorted(ids))
    ids |= {r["sample_id"] for r in rows}
    subj = set(subjects) | {r["subject_id"] for r in rows if r["sample_id"] in ids}
    found_versions = []
    tables = []
    for ri, root in enumerate(roots):
        if _is_url(root):
            listing = _remote_versions_under(root, ri, mirror)
        else:
            listing = ((vdir, m, pq.read_table(vdir / m["samples_file"]["file"],
                                               columns=["sample_id", "subject_id", "shard"]), None)
                       for vdir, m in _versions_under(root))
        for vdir, m, t, rv in listing:
            tables.append((root, vdir, m, t, rv))
            if subjects:
                by_subject = t.filter(pc.is_in(t.column("subject_id"), value_set=pa.array(sorted(subjects), pa.string())))
                ids |= set(by_subject.column("sample_id").to_pylist())
    for root, vdir, m, t, rv in tables:
        hit = t.filter(pc.is_in(t.column("sample_id"), value_set=pa.array(sorted(ids), pa.string())))
        if not hit.num_rows:
            if rv is not None:  # a mirrored samples.parquet of a version without the samples
                shutil.rmtree(vdir, ignore_errors=True)
            continue
        subj |= set(hit.column("subject_id").to_pylist())
        held = sorted(set(hit.column("shard").to_pylist()))
        entry = {"root": str(root), "path": str(vdir), "name": m["name"], "version_id": m["version_id"],
                 "samples": hit.num_rows, "held": held}
        if rv is not None:
            from fpload.erase import _remote

            _remote.fetch_version(rv, vdir)
            entry.update(path=rv.url, mirror=str(vdir),
                         held_sha256=sorted(s["sha256"] for s in m["shards"] if s["file"] in held))
        found_versions.append(entry)
    hashes: dict[str, dict[str, str]] = {}
    for v in found_versions:
        for sid, h in member_hashes(Path(v.get("mirror") or v["path"]), v["held"], ids).items():
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
                  purge_object_versions: bool = False, break_lock: bool = False,
                  who: str | None = None, query_timeout: float | None = None) -> dict[str, Any]:
    """Erase subjects / samples from ``catalog`` and every version under ``roots``; the receipt.

    ``subjects`` erases every sample any revision ever gave those subject ids (and any sample a
    version lists under them); ``samples`` names sample ids; ``where`` selects ids in the catalog's
    query sandbox at the head. The receipt (a dict, also written to ``ROOT/.fpload/receipts/<id>.json``
    of every root and to ``receipt`` when given) names subjects and samples only by hashes. Running
    the same call again after a crash completes the erasure; after success it returns the receipt.
    ``purge_object_versions`` also deletes the noncurrent versions (S3 versioning) of the old
    versions' objects in an object-store root (see :func:`fpload.erase._remote.purge_object_versions`).
    Each root's erasure lock is held for the whole run (:mod:`fpload.erase._lock`): a second erasure
    of a root meanwhile raises :class:`~fpload.errors.RootLockedError`; ``break_lock`` takes over a
    lock whose holder is known to be dead (a lock past ``FPLOAD_ERASE_LOCK_HOURS`` is taken over anyway).

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
        if _is_url(r):
            from fpload.erase._remote import check_root

            check_root(r)   # one line naming the URL: missing bucket, unreachable, refused
            if purge_object_versions:
                from fpload.erase._remote import check_purge_supported

                check_purge_supported(r)
        elif not r.is_dir():
            raise UsageError(f"--root {r} is not a folder")
    from fpload.erase._lock import erase_lock

    # one erasure per root at a time: the lease lock ROOT/.fpload/locks/erase.json (see ._lock)
    with erase_lock(roots, break_lock=break_lock):
        return _erase_locked(catalog, roots, reason=reason, subjects=subjects, samples=samples, where=where,
                             delete_sources=delete_sources, receipt=receipt,
                             purge_object_versions=purge_object_versions, who=who, query_timeout=query_timeout)


def _erase_locked(catalog, roots, *, reason, subjects, samples, where, delete_sources, receipt,
                  purge_object_versions, who, query_timeout) -> dict[str, Any]:
    """:func:`erase_subject` once the arguments are checked and the roots' locks are held."""
    from fpload.catalog._backend import is_url, safe_url

    # a PostgreSQL URL stays a URL: this run connects with it as given, while the journal and the
    # receipt keep it without any password
    location = str(catalog) if is_url(str(catalog)) else Path(catalog)
    catalog = safe_url(location) if isinstance(location, str) else location
    key = _selection_key(subjects, samples, where, catalog, roots)
    state = _state_dir(roots)
    mirror = None
    if any(_is_url(r) for r in roots):
        mirror = env_erase_state_dir() / f"mirror-{key[:16]}"
    journal_path, journal = _find_journal(state, key)
    if journal is None:
        cat = open_catalog(location, create=False)
        try:
            plan = _plan(cat, roots, list(subjects), list(samples), where, query_timeout, mirror)
        finally:
            cat.close()
        if not plan["sample_ids"]:
            if mirror is not None:
                shutil.rmtree(mirror, ignore_errors=True)
            done = _find_done(state, key)
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
        if mirror is not None:
            journal["mirror"] = str(mirror)
            journal["purge_object_versions"] = bool(purge_object_versions)
        if _is_url(roots[0]):
            journal["state_dir"] = str(state / eid)
        journal_path = state / eid / "journal.json"
        _write_atomic(journal_path, formats.pretty_json(journal))
    crash_point("planned")
    return _run(journal_path, journal, receipt, location)


def _find_journal(state: Path, key: str) -> tuple[Path | None, dict | None]:
    for path in sorted(state.glob("*/journal.json")):
        try:
            j = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if j.get("key") == key:
            return path, j
    return None, None


def _find_done(state: Path, key: str) -> dict | None:
    for path in sorted(state.glob("*/done.json"), reverse=True):
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if d.get("key") == key and Path(d.get("receipt", "")).is_file():
            return d
    return None


def _successor_step(v: dict[str, Any], ids: set[str], eid: str) -> dict[str, Any]:
    """Build (and for a remote version, upload) the successor of the version ``v`` of a plan."""
    if "mirror" not in v:
        return build_successor(Path(v["path"]), ids, erasure_id=eid, crash=crash_point)
    from fpload.erase import _remote
    from fpload.pack._remote import upload_version

    local = Path(v["mirror"])
    _remote.fetch_version(_remote.open_at(v["path"]), local)  # kept from the plan unless removed meanwhile
    res = build_successor(local, ids, erasure_id=eid, crash=crash_point)
    if res["successor"]:
        url, _ = upload_version(Path(res["path"]), v["root"], v["name"], res["successor"])
        res.update(path=url, local_path=res["path"])
    return res


def _tombstone_step(v: dict[str, Any], succ: dict[str, Any], j: dict[str, Any]) -> int:
    eid = j["erasure_id"]
    record = {"erasure_id": eid, "version_id": v["version_id"], "name": v["name"],
              "successor": succ["successor"], "samples_removed": v["samples"]}
    if "mirror" not in v:
        destroyed = tombstone(Path(v["path"]), version_id=v["version_id"], successor=succ["successor"],
                              erasure_id=eid, reason=j["reason"], held=v["held"], crash=crash_point)
        _receipt.append_once(v["root"], "tombstone", eid, record, match="version_id")
        return len(destroyed)
    from fpload.erase import _remote

    deleted = _remote.tombstone_remote(v["path"], version_id=v["version_id"], successor=succ["successor"],
                                       successor_url=succ["path"], erasure_id=eid, reason=j["reason"],
                                       held_sha256=v["held_sha256"], time=_now(), crash=crash_point)
    _remote.put_once(_remote.governance_url(v["root"], "audit", f"{eid}-tombstone-{v['version_id']}.json"),
                     formats.pretty_json({"kind": "tombstone", "payload": record}))
    _remote.shred_tree(Path(v["mirror"]))   # the local copy held the samples
    if succ.get("local_path"):
        shutil.rmtree(succ["local_path"], ignore_errors=True)
    return len(deleted)


def _run(journal_path: Path, j: dict[str, Any], receipt_out: str | Path | None,
         location: str | Path | None = None) -> dict[str, Any]:
    def save() -> None:
        _write_atomic(journal_path, formats.pretty_json(j))

    plan, done, eid = j["plan"], j["done"], j["erasure_id"]
    ids = set(plan["sample_ids"])
    for v in plan["versions"]:
        step = f"successor:{v['path']}"
        if step not in done:
            done[step] = _successor_step(v, ids, eid)
            save()
            crash_point("successor")
        if done[step].get("successor") and "mirror" not in v and f"lineage:{v['path']}" not in done:
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
            done[step] = {"destroyed": _tombstone_step(v, done[f"successor:{v['path']}"], j)}
            if "mirror" in v:
                from fpload.erase._remote import bucket_versioning

                done[step]["bucket_versioning"] = bucket_versioning(v["path"])
            save()
            crash_point("tombstone")
        step = f"purge:{v['path']}"
        if "mirror" in v and j.get("purge_object_versions") and step not in done:
            from fpload.erase._remote import purge_object_versions

            done[step] = {"deleted": purge_object_versions(v["path"])}
            save()
        step = f"unindex:{v['path']}"
        if step not in done and "mirror" not in v:  # the old version's lineage keeps its other samples, not S's
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
    if j.get("mirror"):  # nothing of the mirror is needed any more (each version's was shredded)
        from fpload.erase._remote import shred_tree

        shred_tree(Path(j["mirror"]))
    if "receipt" not in done:  # built once, so a rerun writes the same bytes the audit record hashes
        done["receipt"] = _receipt.build_receipt(j)
        save()
    receipt = done["receipt"]
    data = formats.pretty_json(receipt)
    local_roots = [r for r in j["roots"] if not _is_remote_text(r)]
    paths = [Path(r) / ".fpload" / "receipts" / f"{eid}.json" for r in local_roots]
    if len(local_roots) < len(j["roots"]):
        paths.append(journal_path.with_name("receipt.json"))  # this machine's copy (the store has one)
        if _is_remote_text(j["roots"][0]):
            paths.insert(0, paths.pop())
    if receipt_out is not None:
        paths.append(Path(receipt_out))
    for p in paths:
        _write_atomic(p, data)
    digest = hashlib.sha256(data).hexdigest()
    if len(local_roots) < len(j["roots"]):
        from fpload.erase import _remote

        for r in j["roots"]:
            if _is_remote_text(r):
                _remote.put_once(_remote.governance_url(r, "receipts", f"{eid}.json"), data)
    crash_point("receipt")
    for r in j["roots"]:
        record = _receipt.erasure_record(receipt, digest)
        if _is_remote_text(r):
            from fpload.erase import _remote

            _remote.put_once(_remote.governance_url(r, "audit", f"{eid}-erasure.json"),
                             formats.pretty_json({"kind": "erasure", "payload": record}))
        else:
            _receipt.append_once(r, "erasure", eid, record, match=None)
    crash_point("audit")
    _write_atomic(journal_path.with_name("done.json"), formats.pretty_json(
        {"erasure_id": eid, "key": j["key"], "receipt": str(paths[0].resolve()), "finished_at": _now()}))
    shred(journal_path)
    return receipt


def _is_remote_text(root: str) -> bool:
    from fpload.versions._store import is_remote

    return is_remote(root)
