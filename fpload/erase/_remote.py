"""Erasure on a version root in an object store (``s3://bucket/versions``, any fsspec URL).

An object store has no rename and no in-place overwrite, so the steps of :mod:`._erase` run as:

- **plan**: every published version under the root is listed (:func:`list_remote`); its
  samples.parquet is downloaded (hash-checked against the manifest) into a local *mirror*
  (``STATE/mirror-<key>/<root>/<NAME>/<ID>``, ``STATE`` = :func:`fpload.config.env_erase_state_dir`);
  a version holding an erased sample is mirrored whole (every shard, index and the feature cache,
  each checked against the manifest's sha256) and the others' mirrors are removed;
- **successor**: :func:`~._successor.build_successor` builds it beside the mirror, exactly as for a
  local root, and :func:`fpload.pack._remote.upload_version` publishes it (manifest last: the
  commit point; a rerun finds it published);
- **tombstone**: ``tombstone.json`` is written under the old version's prefix (the record
  ``versions show`` reports), its ``manifest.json`` deleted (it is no longer published), then every
  other object under the prefix; the local mirror is overwritten and deleted, and this machine's
  staged copy and cached shards of the old version are too;
- **receipt / audit**: the receipt is put at ``ROOT/.fpload/receipts/<ID>.json`` and each audit
  record as its own object ``ROOT/.fpload/audit/<ID>-<kind>[-<version>].json`` (objects are
  written once; a store has no append), a copy of the receipt stays in the local state folder.

Deleting an object removes its *current* version only: a bucket with versioning, replication,
object lock or backups keeps earlier copies, which fpload cannot reach (:data:`STORE_DELETION`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from fpload import formats
from fpload.config import env_cache_dir
from fpload.erase._successor import shred
from fpload.versions._remote import fetch_feature_tree
from fpload.versions._shardcache import ShardCache, fetch_verified
from fpload.versions._store import filesystem, join, require_bucket, store_errors

#: what a receipt says about deletion on an object store
STORE_DELETION = ("current objects deleted: a bucket with versioning, replication, object lock or backups may "
                  "keep earlier copies of them, which this erasure cannot reach (delete those versions with the "
                  "store's own tools, or set a lifecycle rule that expires noncurrent versions)")


def remote_versions(root: str):
    """Published versions under the URL ``root`` (:class:`RemoteVersion`, oldest first)."""
    from fpload.versions._remote import list_remote

    return list_remote(root)


def fetch_samples(v, dest: Path) -> Path:
    """samples.parquet of the remote version ``v`` into ``dest`` (hash-checked), with its manifest."""
    entry = v.manifest["samples_file"]
    target = dest / entry["file"]
    if not target.is_file():
        fs, remote, url = v._remote(entry["file"])
        fetch_verified(fs, remote, url, entry["sha256"], target, size=entry.get("bytes"))
    (dest / formats.MANIFEST_NAME).write_bytes(formats.pretty_json(v.manifest))
    return target


def read_samples(v, dest: Path):
    return pq.read_table(fetch_samples(v, dest), columns=["sample_id", "subject_id", "shard"])


def fetch_version(v, dest: Path) -> Path:
    """A verified local copy of the whole remote version ``v`` at ``dest``: every shard and index
    (sha256 as in the manifest), samples.parquet, the feature cache (tree digest), the manifest.
    Files already there (from an interrupted run) are kept: each was renamed into place only
    after its hash matched."""
    fetch_samples(v, dest)
    for s in v.manifest["shards"]:
        for name, sha, size in ((s["file"], s["sha256"], s["bytes"]), (s["index_file"], s["index_sha256"], None)):
            target = dest / formats.SHARDS_DIR / name
            if not target.is_file():
                fs, remote, url = v._remote(f"{formats.SHARDS_DIR}/{name}")
                fetch_verified(fs, remote, url, sha, target, size=size)
    if v.manifest.get("features"):
        fetch_feature_tree(v, dest)
    return dest


def open_at(url: str):
    """The remote version published at exactly ``url``."""
    from fpload.versions._remote import open_remote

    return open_remote(url)


def shred_tree(path: Path) -> None:
    """Overwrite and delete every file under ``path``, then the folders."""
    if not path.exists():
        return
    for p in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if p.is_file() and not p.is_symlink():
            shred(p)
    shutil.rmtree(path, ignore_errors=True)


def tombstone_remote(url: str, *, version_id: str, successor: str | None, successor_url: str | None,
                     erasure_id: str, reason: str, held_sha256: list[str], time: str, crash=None) -> list[str]:
    """Tombstone the remote version at ``url``: put ``tombstone.json``, delete ``manifest.json``
    (unpublished from then on), then every other object under the prefix; then this machine's
    staged copy and cached shards of it. Idempotent; returns the objects deleted (relative)."""

    fs, path = filesystem(url)
    path = path.rstrip("/")
    stone = f"{path}/{formats.TOMBSTONE_NAME}"
    deleted = []
    with store_errors(url, "tombstoning"):
        if not fs.exists(stone):
            body = {"schema_version": 1, "version_id": version_id, "successor": successor,
                    "successor_url": successor_url, "erasure_id": erasure_id, "reason": reason, "time": time,
                    "deletion": STORE_DELETION}
            fs.pipe_file(stone, formats.pretty_json(body))
        if crash:
            crash("tombstone-written")
        manifest = f"{path}/{formats.MANIFEST_NAME}"
        if fs.exists(manifest):
            fs.rm_file(manifest)
            deleted.append(formats.MANIFEST_NAME)
        fs.invalidate_cache(path)
        for key in sorted(fs.find(path)):
            if key.rstrip("/") == stone:
                continue
            fs.rm_file(key)
            deleted.append(key[len(path) + 1:])
            if crash:
                crash("destroying")
    shred_tree(env_cache_dir() / "versions" / version_id)  # this machine's staged small files
    cache = ShardCache()
    for sha in held_sha256:
        shred(cache.path(sha))
    return deleted


def bucket_versioning(url: str) -> bool | None:
    """Whether the bucket of ``url`` keeps earlier versions of objects (S3 versioning, GCS object
    versioning); None when the store cannot say (another store, or the credentials may not read the
    setting)."""
    fs, path = filesystem(url)
    bucket = path.strip("/").split("/", 1)[0]
    probe = getattr(fs, "is_bucket_versioned", None)
    try:
        if probe is not None:
            return bool(probe(bucket))
        if _protocol(fs) in ("gs", "gcs"):   # the GCS bucket resource has versioning.enabled when it is on
            return bool((fs.info(bucket).get("versioning") or {}).get("enabled"))
    except Exception:  # noqa: BLE001 -- a refused GetBucketVersioning: unknown, said so in the receipt
        return None
    return None


def _protocol(fs: Any) -> str:
    return fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]


def check_purge_supported(root: str) -> None:
    """Raise UsageError unless ``--purge-object-versions`` can act on ``root`` (an S3 root): on
    another store it would delete nothing and the receipt would say no noncurrent version was left."""
    from fpload.errors import UsageError

    fs, _ = filesystem(root)
    if getattr(fs, "call_s3", None) is None:
        raise UsageError(f"--purge-object-versions works on S3 roots only, not {root}; on GCS delete the "
                         "noncurrent generations with the store's tools (gcloud storage rm --all-versions) or a "
                         "lifecycle rule")


def purge_object_versions(url: str) -> int:
    """Delete every noncurrent object version and delete marker under the version prefix ``url``
    (an S3 bucket with versioning), except the current ``tombstone.json``; the number deleted.

    A bucket under object lock (or credentials without ``s3:DeleteObjectVersion``) refuses: one
    :class:`StoreError` line naming the URL, and the erasure can be rerun once that is settled."""
    fs, path = filesystem(url)
    call = getattr(fs, "call_s3", None)
    if call is None:
        return 0
    bucket, _, prefix = path.strip("/").partition("/")
    prefix = prefix.rstrip("/") + "/"
    stone = prefix + formats.TOMBSTONE_NAME
    deleted = 0
    with store_errors(url, "deleting noncurrent object versions"):
        marker: dict[str, str] = {}
        while True:
            page = call("list_object_versions", Bucket=bucket, Prefix=prefix, **marker)
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                if item["Key"] == stone and item.get("IsLatest"):
                    continue
                call("delete_object", Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
                deleted += 1
            if not page.get("IsTruncated"):
                break
            marker = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
    return deleted


def put_once(url: str, data: bytes) -> None:
    """Write the object ``url`` unless it exists with these bytes (a rerun writes nothing new)."""
    fs, path = filesystem(url)
    with store_errors(url, "writing"):
        try:
            if fs.cat_file(path) == data:
                return
        except FileNotFoundError:
            pass
        fs.pipe_file(path, data)


def governance_url(root: str, *parts: str) -> str:
    return join(root, ".fpload", *parts)


def check_root(root: str) -> None:
    """Raise StoreError (one line naming ``root``) when its bucket is missing or unreachable."""
    fs, path = filesystem(root)
    require_bucket(fs, path, root)


def scan_root(root: str, refs: set[str], members: set[str], subjects: set[str], scan_bytes, scan_zarr) -> list[str]:
    """Every trace of the erased samples in the objects under the URL ``root``: each object's bytes
    (``scan_bytes``) and each feature cache (downloaded, then ``scan_zarr``)."""
    fs, path = filesystem(root)
    path = path.rstrip("/")
    problems: list[str] = []
    with store_errors(root, "scanning"):
        keys = sorted(fs.find(path))
        for key in keys:
            problems += scan_bytes(fs.cat_file(key), key.rsplit("/", 1)[-1], join(root, key[len(path) + 1:]))
        groups = sorted({k[:-len("/zarr.json")] for k in keys if k.endswith("/zarr.json")
                         and f"{k[:-len('/zarr.json')]}/{formats.FEATURES_SAMPLE_ID}/zarr.json" in keys})
        for g in groups:
            with tempfile.TemporaryDirectory(prefix="fpload-verify-") as tmp:
                fs.get(g + "/", tmp + "/", recursive=True)
                problems += scan_zarr(Path(tmp), refs, subjects, join(root, g[len(path) + 1:]))
    return problems


def tombstone_problems(url: str) -> list[str]:
    """What a tombstoned remote version still holds besides its tombstone (empty: nothing)."""
    fs, path = filesystem(url)
    path = path.rstrip("/")
    with store_errors(url, "listing"):
        keys = [k[len(path) + 1:] for k in fs.find(path)]
    problems = []
    left = sorted(k for k in keys if k != formats.TOMBSTONE_NAME)
    if left:
        problems.append(f"{url}: tombstoned version still holds {', '.join(left[:3])}")
    if formats.TOMBSTONE_NAME not in keys:
        problems.append(f"{url}: {formats.TOMBSTONE_NAME} is missing")
    return problems


def tombstone_of(url: str) -> dict[str, Any] | None:
    """The tombstone record at the version prefix ``url`` (None when there is none)."""
    import json

    fs, path = filesystem(url)
    try:
        return json.loads(fs.cat_file(f"{path.rstrip('/')}/{formats.TOMBSTONE_NAME}"))
    except FileNotFoundError:
        return None
    except ValueError:
        return {}
