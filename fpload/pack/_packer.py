"""pack_version: a catalog query frozen into an immutable, content-addressed dataset version."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import time
import uuid
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

import fpload
from fpload import formats
from fpload.audit import record_publish, sync_lineage
from fpload.catalog import Catalog, combine_where
from fpload.catalog._query import run_where
from fpload.errors import ConsentError, UsageError, VersionConflictError, VersionNotFoundError
from fpload.pack import _lifeline
from fpload.pack._config import PackConfig
from fpload.pack._consent import consent_counts, effective_consent, with_head_consent
from fpload.pack._encode import encode_batch, resample_rows, transcode_summary
from fpload.pack._plan import PackPlan, plan_version
from fpload.pack._ray import starts_shard
from fpload.pack._shard import ShardInfo, ShardWriter
from fpload.versions._store import is_remote, local_path

_CHUNK = 16


@dataclass(frozen=True)
class PackResult:
    """Where a version was published, and whether this call wrote it or found it there.

    ``path`` is the version's folder, or its URL (a ``str``) when ``out`` was an object store."""

    path: Path | str
    version_id: str
    name: str
    samples: int
    counts: dict[str, int]
    created: bool
    bytes: int
    #: samples whose features were computed (any extractor ran), and whose features were all
    #: copied from the parent version's cache; both 0 when the pack wrote no feature cache
    features_computed: int = 0
    features_reused: int = 0
    #: samples whose features were all copied from other versions under ``out`` (``reuse=True``);
    #: the manifest counts them as computed, so the version id does not depend on those versions
    features_found: int = 0

    @property
    def manifest(self) -> dict[str, Any]:
        if isinstance(self.path, str):
            from fpload.versions import open_version

            return open_version(self.path, check=False).manifest
        return formats.read_manifest(self.path)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _encoded(tasks: Iterable[tuple], workers: int) -> Iterator[tuple[list[tuple[str, bytes]], Any]]:
    """Members (and computed features) of every task, in order; encoding runs in ``workers`` processes, a bounded window ahead."""
    if workers <= 1:
        for chunk in _chunks(tasks, _CHUNK):
            yield from encode_batch(chunk)
        return
    ctx = get_context("forkserver")
    # the fork server imports the encoders once; every worker forked from it starts warm. Fork
    # server and workers die with this process, even on SIGKILL (see fpload.pack._lifeline).
    _lifeline.start_fork_server(["fpload.pack._encode", "fpload.features"])
    me = os.getpid()
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_lifeline.die_with,
                             initargs=(me, _lifeline.start_time(me))) as pool:
        pending: deque = deque()
        chunks = _chunks(tasks, _CHUNK)
        for chunk in chunks:
            pending.append(pool.submit(encode_batch, chunk))
            if len(pending) >= 4 * workers:
                break
        while pending:
            done = pending.popleft().result()
            nxt = next(chunks, None)
            if nxt is not None:
                pending.append(pool.submit(encode_batch, nxt))
            yield from done


def _validate_name(name: str) -> None:
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise UsageError(f"version name {name!r} must be letters, digits, '-', '_' or '.', not starting with '.'")


#: a pack's temporary folder ``.tmp-HOST-PID-RANDOM`` that no process has written to for this many
#: seconds (24 h) is removed by the next pack of that name, from any host
STALE_TMP_AGE_S = 24 * 3600


def _host() -> str:
    """This host's name as it appears in temporary folder names (letters, digits, '-', '_', '.')."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in socket.gethostname()) or "unknown-host"


def _tmp_name() -> str:
    """A temporary folder name that no other pack, on this host or another, can be using."""
    return f".tmp-{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _tmp_owner(name: str) -> tuple[str | None, int] | None:
    """``(host, pid)`` of a temporary folder name; host None for the old ``.tmp-PID-RANDOM`` form."""
    if not name.startswith(".tmp-"):
        return None
    parts = name[len(".tmp-"):].rsplit("-", 2)
    try:
        if len(parts) == 3 and parts[0]:
            return parts[0], int(parts[1])
        if len(parts) == 2:
            return None, int(parts[0])
    except ValueError:
        pass
    return None


def _last_touched(path: Path) -> float:
    """Latest modification time of a folder, its entries and their entries (a live pack writes there)."""
    latest = path.lstat().st_mtime
    for entry in os.scandir(path):
        latest = max(latest, entry.stat(follow_symlinks=False).st_mtime)
        if entry.is_dir(follow_symlinks=False):
            for sub in os.scandir(entry.path):
                latest = max(latest, sub.stat(follow_symlinks=False).st_mtime)
    return latest


def _tmp_is_stale(name: str, last_touched: float, now: float) -> bool:
    """Whether a temporary folder is provably abandoned.

    Made on this host by a process that is no longer alive: yes. Otherwise (another host, whose
    processes cannot be seen from here; the old name without a host; a live pid on this host, which
    may be a reused one) only once nothing in it has changed for :data:`STALE_TMP_AGE_S` seconds.
    """
    owner = _tmp_owner(name)
    if owner is None:
        return False
    host, pid = owner
    if host == _host() and not _lifeline.alive(pid):
        return True
    return now - last_touched > STALE_TMP_AGE_S


def _clean_stale_tmp(name_dir: Path) -> None:
    """Remove the temporary folders of crashed packs (see :func:`_tmp_is_stale`); keep everything else."""
    now = time.time()
    for tmp in name_dir.glob(".tmp-*"):
        try:
            stale = tmp.is_dir() and not tmp.is_symlink() and _tmp_is_stale(tmp.name, _last_touched(tmp), now)
        except OSError:  # removed meanwhile by its pack, or unreadable: not ours to judge
            continue
        if stale:
            shutil.rmtree(tmp, ignore_errors=True)


def _resolve_parent(out: Path, name: str, parent: str | Path | None):
    """The parent version: ``latest`` (of ``name``), an id or id prefix under ``out/name``, or a path."""
    from fpload.versions import open_version

    if parent is None:
        return None
    text = str(parent)
    try:
        if text == "latest":
            return open_version(out / name)
        if text and all(c in "0123456789abcdef" for c in text):
            return open_version(out / name / text)
        return open_version(Path(text))
    except VersionNotFoundError as err:
        raise VersionNotFoundError(
            f"parent {text!r}: {err} (give 'latest', a version id or id prefix under {out / name}, "
            "or the path of a version)") from None


def _feature_writer(tmp: Path, plan: PackPlan, cfg: PackConfig, parent, reuse_root: Path | None = None,
                    catalog_path: Any = None):
    """The feature cache writer of this pack, or None when the config disables features; with
    ``reuse_root``, outputs any checked version there holds are copied (fpload.features._reuse)."""
    fcfg = getattr(cfg, "features", None)
    if fcfg is None or not fcfg.enabled:
        return None
    from fpload.features import FeatureWriter, open_features, resolve_extractors

    job = resolve_extractors(fcfg)
    # a parent without a cache gives nothing to reuse; a damaged one is an error naming it
    parent_cache = open_features(parent) if parent is not None and parent.manifest.get("features") else None
    if parent_cache is not None and parent.manifest.get("settings", {}).get("resample_to_ppi") != cfg.resample_to_ppi:
        parent_cache = None  # features of pixels at another scale: nothing to reuse
    chunk = formats.features_chunk_samples(cfg.shard_max_samples, len(plan.rows))
    writer = FeatureWriter(tmp / formats.FEATURES_NAME, job, fcfg, [r["sample_id"] for r in plan.rows],
                           [(r["height"], r["width"]) for r in plan.rows], chunk, parent_cache)
    if reuse_root is not None:
        from fpload.features._reuse import add_root_sources

        add_root_sources(writer, reuse_root, exclude={parent.id} if parent is not None else None)
        if isinstance(catalog_path, Path):  # features computed at ingest (fpload.features._store)
            from fpload.features._reuse import add_store_sources
            from fpload.features._store import store_root

            add_store_sources(writer, store_root(catalog_path))
    return writer


def _write_samples(plan: PackPlan, shard_of: list[str], path: Path) -> None:
    cols = ["index", "sample_id", "split", "label", "label_key", "subject_id", "finger", "impression",
            "sensor", "ppi", "width", "height", "format", "quality", "consent", "synthetic",
            "captured_at", "uri", "extra"]
    data = {c: [r[c] for r in plan.rows] for c in cols}
    data["shard"] = shard_of
    table = pa.table(data)
    table = table.cast(table.schema.set(table.schema.get_field_index("index"),
                                        pa.field("index", pa.int64())))
    pq.write_table(table, path, compression="zstd")


def _progress(total: int, show: bool):
    if not show:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("packing"), BarColumn(), MofNCompleteColumn(), TextColumn("samples"),
                    TimeRemainingColumn(), transient=True)


def pack_version(catalog: Catalog, *, out: str | Path, name: str, where: str | None = None,
                 filter: str | Path | None = None, config: PackConfig | None = None,
                 revision: int | None = None, parent: str | Path | None = None, workers: int = 1,
                 progress: bool = False, query_timeout: float | None = None,
                 query_memory_limit: str | None = None, consent_date: date | str | None = None,
                 engine: str = "local", address: str | None = None, reuse: bool = True,
                 _shards_to: Any = None) -> PackResult:
    """Select samples from ``catalog`` and publish them as version ``out/name/<version_id>``.

    Everything is written under a temporary folder ``out/name/.tmp-HOST-PID-RANDOM`` that is
    renamed into place once the manifest is in it, so a crash leaves no half version and a rerun
    finishes the work; a later pack removes a crashed pack's folder once that is provably dead (this
    host, pid gone) or untouched for :data:`STALE_TMP_AGE_S` (24 h). The catalog is released as
    soon as the samples are planned, and the encode processes die with this one. The same query,
    catalog revision and config (and parent) give the same ``version_id`` and byte-identical
    files; packing an existing version again is a no-op that returns it.

    ``out`` may be an fsspec URL (``s3://bucket/versions``): the version is packed locally, then
    uploaded with its manifest last, the commit point (see :mod:`fpload.pack._remote`);
    ``PackResult.path`` is then the version's URL.

    With ``config.features`` enabled (the default) the encode workers also compute the feature
    cache ``features.zarr`` in the same pass. ``parent`` (``"latest"``, a version id or id prefix
    under ``out/name``, or a version's path) is resolved and its full id recorded; features of
    samples its cache already holds with the same extractors are copied, not recomputed
    (``PackResult.features_computed`` / ``features_reused`` count them). With ``reuse`` (the
    default) the outputs of samples that any other version under ``out`` holds, from the same
    extractor identity and in a cache whose hash checks out, are copied too
    (``PackResult.features_found``; see :mod:`fpload.features._reuse`): the files and the version
    id are the same as without; ``reuse=False`` computes everything the parent does not give.

    Consent is read at the catalog's head whatever ``revision`` is packed: the query and the
    consent check see each sample's consent as of the latest revision (a sample no longer there
    has none), so packing an older revision cannot undo a withdrawal; the manifest's
    ``consent.checked_at`` records that revision. ``query_timeout`` / ``query_memory_limit``
    bound the query as in :meth:`Catalog.query`.

    Consent may be limited by purpose and time (``consent_scope``, ``consent_until``): a sample
    counts as consented only if ``config.purpose`` (when set) is in its scope (when set) and
    ``consent_date`` (an ISO date or ``date``; default: today in UTC) is not after its
    ``consent_until``. The manifest records the purpose, and the date whenever it was given or
    the catalog holds any ``consent_until`` (then it enters the version id: pass ``consent_date``
    to reproduce a version on another day).

    ``engine="ray"`` encodes on a Ray cluster (``address``: ``"auto"``, ``"ray://HOST:10001"``,
    or None for Ray's default), one task per shard, writing into the same temporary folder (a
    filesystem every node must see) or, for an object-store ``out``, straight to a temporary prefix
    of the store (only the store and its credentials are shared); the version id and files are the
    same as a local pack's (see :mod:`fpload.pack._ray`); ``workers`` is then unused.
    (``_shards_to`` is internal: :func:`fpload.pack._remote.pack_remote` passes its store prefix.)

    Example::

        cat = open_catalog("catalog.duckdb")
        res = pack_version(cat, where="finger IN (2, 7) AND consent", out="versions",
                           name="index-fingers", config=PackConfig(encoding="raw"), workers=2)
        print(res.path, res.counts)
        pack_version(cat, where="consent", out="/shared/versions", name="all", engine="ray", address="auto")
    """
    from fpload._ray import check_engine

    check_engine(engine, address)
    _validate_name(name)
    if is_remote(out):  # an object store: pack locally, upload, manifest last (fpload.pack._remote)
        from fpload.pack._remote import pack_remote

        return pack_remote(pack_version, catalog, out=str(out), name=name, where=where, filter=filter,
                           config=config, revision=revision, parent=parent, workers=workers, progress=progress,
                           query_timeout=query_timeout, query_memory_limit=query_memory_limit,
                           consent_date=consent_date, engine=engine, address=address, reuse=reuse)
    out = local_path(out)
    cfg = config or PackConfig()
    rev = catalog.revision(revision)
    head = catalog.revision()
    query = combine_where(where, filter)
    snapshot = catalog.snapshot(rev.rev)
    if head.rev != rev.rev:
        snapshot = with_head_consent(snapshot, catalog.snapshot(head.rev))
    catalog_path = catalog.path
    catalog.release()  # the snapshots hold every row the pack needs: let other processes use the catalog
    on, recorded_date = _consent_date(consent_date, snapshot)
    declared = snapshot
    snapshot = effective_consent(snapshot, cfg.purpose, on)
    selection = run_where(snapshot, query, timeout=query_timeout, memory_limit=query_memory_limit)
    try:
        plan = plan_version(selection, cfg)
    except ConsentError as err:
        import pyarrow.compute as pc

        picked = declared.filter(pc.is_in(declared.column("sample_id"), value_set=selection.column("sample_id")))
        why = consent_counts(picked, cfg.purpose, on)
        parts = [f"{why['without_consent']} withdrawn or never given"]
        if cfg.purpose is not None:
            parts.append(f"{why['outside_purpose']} not for purpose {cfg.purpose!r}")
        parts.append(f"{why['expired']} past consent_until on {on.isoformat()}")
        where_read = "" if head.rev == rev.rev else (f"; consent is read at the catalog's latest revision "
                                                     f"{head.rev}, whatever revision is packed")
        raise ConsentError(f"{err} ({', '.join(parts)}{where_read})") from None
    settings = cfg.to_dict()
    resample_rows(plan.rows, cfg.resample_to_ppi)  # sizes and ppi as packed (no-op when unset)

    name_dir = Path(out) / name
    name_dir.mkdir(parents=True, exist_ok=True)
    _clean_stale_tmp(name_dir)
    parent_version = _resolve_parent(Path(out), name, parent)
    tmp = name_dir / _tmp_name()
    (tmp / formats.SHARDS_DIR).mkdir(parents=True)
    try:
        features = _feature_writer(tmp, plan, cfg, parent_version, Path(out) if reuse else None, catalog_path)
        if engine == "ray":
            from fpload.pack import _ray

            shards, shard_of = _ray.write_shards(plan, settings, tmp / formats.SHARDS_DIR, cfg, progress,
                                                 features, address, store=_shards_to)
        else:
            shards, shard_of = _write_shards(plan, settings, tmp / formats.SHARDS_DIR, cfg, workers, progress,
                                             features)
        _write_samples(plan, shard_of, tmp / formats.SAMPLES_NAME)
        manifest = {
            "schema_version": formats.MANIFEST_SCHEMA_VERSION,
            "name": name,
            "parent": parent_version.id if parent_version is not None else None,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "writer": f"fpload {fpload.__version__}",
            "query": {"where": query, "filter_file": Path(filter).name if filter else None},
            "catalog": {"revision": rev.rev, "digest": rev.digest},
            "settings": settings,
            "consent": {"allow_without_consent": cfg.allow_without_consent,
                        "samples_without_consent": plan.without_consent,
                        "checked_at": {"revision": head.rev, "digest": head.digest},
                        # recorded when they can matter (as before when neither does)
                        **({"purpose": cfg.purpose} if cfg.purpose is not None else {}),
                        **({"date": recorded_date} if recorded_date is not None else {})},
            "samples": len(plan.rows),
            "labels": plan.labels,
            "splits": plan.splits,
            "counts": plan.counts(),
            "shards": [s.to_dict() for s in shards],
            "samples_file": {"file": formats.SAMPLES_NAME,
                             "sha256": formats.file_sha256(tmp / formats.SAMPLES_NAME),
                             "bytes": (tmp / formats.SAMPLES_NAME).stat().st_size},
        }
        transcoded = transcode_summary(plan.rows, settings)  # WSQ under passthrough, resampling
        if transcoded is not None:
            manifest["transcoded"] = transcoded
        if features is not None:
            manifest["features"] = features.close()
        manifest["version_id"] = formats.compute_version_id(manifest)
        (tmp / formats.MANIFEST_NAME).write_bytes(formats.pretty_json(manifest))
        final = name_dir / manifest["version_id"]
        created = _publish(tmp, final, manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # lineage + publish record (idempotent); also repairs versions a crash left unindexed
    record_publish(out, final)
    sync_lineage(out, on_error="skip")
    feat = manifest.get("features") or {}
    return PackResult(path=final, version_id=manifest["version_id"], name=name, samples=len(plan.rows),
                      counts=manifest["counts"], created=created,
                      bytes=sum(s.bytes for s in shards),
                      features_computed=feat.get("computed", 0) - (features.found if features is not None else 0),
                      features_reused=feat.get("reused", 0),
                      features_found=features.found if features is not None else 0)


def _consent_date(given: date | str | None, snapshot: pa.Table) -> tuple[date, str | None]:
    """The date consent is judged at, and what the manifest records of it: the given date, or
    today's (UTC) recorded only when some row has a ``consent_until`` (so the date can matter)."""
    if isinstance(given, datetime):
        given = given.date()
    if isinstance(given, str):
        try:
            given = date.fromisoformat(given.strip())
        except ValueError:
            raise UsageError(f"consent date {given!r} is not an ISO 8601 date such as 2026-12-31") from None
    if given is not None:
        return given, given.isoformat()
    today = datetime.now(timezone.utc).date()
    ends = "consent_until" in snapshot.column_names and snapshot.column("consent_until").null_count < snapshot.num_rows
    return today, today.isoformat() if ends else None


def _publish(tmp: Path, final: Path, manifest: dict[str, Any]) -> bool:
    if final.exists():
        try:
            existing = formats.read_manifest(final)
        except Exception:
            existing = None
        if existing is not None and formats.compute_version_id(existing) == manifest["version_id"]:
            return False
        raise VersionConflictError(
            f"{final} already exists but does not hold version {manifest['version_id']} "
            "(a different or damaged version under that name and id); nothing was changed — "
            "move it away or run `fpload versions verify` on it")
    os.rename(tmp, final)
    return True


def _write_shards(plan: PackPlan, settings: dict[str, Any], shard_dir: Path, cfg: PackConfig,
                  workers: int, progress: bool, features=None) -> tuple[list[ShardInfo], list[str]]:
    max_bytes = int(cfg.shard_max_mb * 1e6) if cfg.shard_max_mb else None
    max_samples = cfg.shard_max_samples
    shards: list[ShardInfo] = []
    shard_of: list[str] = []
    numbers: dict[str, int] = {}
    writer: ShardWriter | None = None
    bar = _progress(len(plan.rows), progress)
    task = bar.add_task("pack", total=len(plan.rows)) if bar else None
    if features is None:
        tasks: Iterable[tuple] = ((r, settings) for r in plan.rows)
    else:
        job = features.job
        tasks = ((r, settings, job, features.compute_set(i)) for i, r in enumerate(plan.rows))
    if bar:
        bar.start()
    try:
        for row, (members, feats) in zip(plan.rows, _encoded(tasks, workers)):
            if features is not None:
                features.add(row["index"], feats)
            size = sum(len(d) + 1024 for _, d in members)
            if writer is not None and starts_shard(writer.split, writer.samples, writer.bytes_written,
                                                   row["split"], size, max_samples, max_bytes):
                shards.append(writer.close())
                writer = None
            if writer is None:
                n = numbers.get(row["split"], 0)
                numbers[row["split"]] = n + 1
                writer = ShardWriter(shard_dir / formats.shard_name(row["split"], n), row["split"])
            writer.add(row["sample_id"], members)
            shard_of.append(writer.stem.name + ".tar")
            if bar:
                bar.advance(task)
        if writer is not None:
            shards.append(writer.close())
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if bar:
            bar.stop()
    return shards, shard_of
