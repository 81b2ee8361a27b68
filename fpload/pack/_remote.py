"""Publishing a version to an object store (``--out s3://bucket/versions``), which has no rename.

The version is packed locally first (into a temporary folder under ``$TMPDIR``, exactly as a
local pack), then every file is uploaded under its final prefix ``ROOT/NAME/VERSION_ID/`` and
``manifest.json`` is written LAST: it is the commit point. Readers treat a version as published
only when its manifest exists there and hashes to the id the prefix is named by, so a crashed
upload is never seen; ``fpload versions gc ROOT`` removes what it left. Two packers of the same
version write byte-identical files (the id is the hash of the content); the second to look finds
the manifest and does nothing.

With ``engine="ray"`` the shards never pass through the driver: each Ray task streams its shard
and DALI index to a temporary prefix ``ROOT/NAME/.tmp-HOST-PID-RANDOM/shards/`` on the store
(:class:`StoreShards`); the driver packs the rest (features, samples, manifest) locally, then
:func:`upload_version` copies the shards server-side to ``ROOT/NAME/VERSION_ID/shards/``, uploads
its own files, checks every object's size and writes the manifest last; the temporary prefix is
removed whatever happens (best effort: ``fpload versions gc ROOT`` finds one a crash left).

Example::

    res = pack_version(cat, where="consent", out="s3://team-data/versions", name="thumbs")
    res.path   # 's3://team-data/versions/thumbs/6aac…'
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fpload import formats
from fpload.errors import StoreError, VersionConflictError, VersionError
from fpload.versions._store import filesystem, join, require_bucket, store_errors


def _existing(fs: Any, path: str, url: str, version_id: str) -> bool:
    """Whether ``url`` already holds the published version ``version_id``; raise when it holds a
    manifest of something else (a damaged or different version)."""
    try:
        data = fs.cat_file(f"{path}/{formats.MANIFEST_NAME}")
    except FileNotFoundError:
        return False
    try:
        manifest = formats.parse_manifest(data, join(url, formats.MANIFEST_NAME))
    except VersionError:
        manifest = None
    if manifest is not None and manifest.get("version_id") == version_id \
            and formats.compute_version_id(manifest) == version_id:
        return True
    raise VersionConflictError(f"{url} already holds a manifest that is not version {version_id} (a different "
                               "or damaged version under that name and id); nothing was changed — remove it "
                               "or run `fpload versions verify` on it")


@dataclass
class StoreShards:
    """Shards Ray tasks wrote to a temporary prefix of the store, to be published by copies.

    ``url`` is ``ROOT/NAME/.tmp-HOST-PID-RANDOM`` (the local packer's temporary folder name, which
    ``fpload versions gc`` recognises); ``sources`` maps each file's path in the version
    (``shards/train-000000.tar``) to its path under ``url`` and its size as written.

    Example::

        store = StoreShards("s3://team-data/versions/thumbs/.tmp-node1-4242-0badc0de")
        store.add("shards/train-000000.tar", "shards/~part-000000.tar", 1_048_576)
        upload_version(local, "s3://team-data/versions", "thumbs", version_id, store)
        store.remove()
    """

    url: str
    sources: dict[str, tuple[str, int]] = field(default_factory=dict)

    def add(self, rel: str, src: str, size: int) -> None:
        """Publish ``url/src`` (``size`` bytes) as ``rel`` in the version."""
        self.sources[rel] = (src, size)

    def remove(self) -> None:
        """Delete the temporary prefix (best effort: what stays is found by ``fpload versions gc``)."""
        try:
            fs, path = filesystem(self.url)
            fs.rm(path, recursive=True)
        except Exception:  # noqa: BLE001 - nothing there, or the store is gone: gc collects it
            pass


def upload_version(local: Path, root: str, name: str, version_id: str,
                   shards: StoreShards | None = None) -> tuple[str, bool]:
    """Upload the packed version folder ``local`` to ``root/name/version_id``, manifest last.

    ``shards``: files already in the store (written there by Ray tasks), copied server-side (no
    bytes through this process) before the manifest; their sizes are checked like the uploads'.
    Returns the version's URL and whether this call published it (False: it was already there)."""
    url = join(root, name, version_id)
    fs, path = filesystem(url)
    require_bucket(fs, path, url)
    with store_errors(url, "publishing"):
        if _existing(fs, path, url, version_id):
            return url, False
        files = sorted(p for p in local.rglob("*") if p.is_file() and p.name != formats.MANIFEST_NAME)
        expected = {f.relative_to(local).as_posix(): f.stat().st_size for f in files}
        if shards is not None:
            _, tmp_path = filesystem(shards.url)
            for rel, (src, size) in sorted(shards.sources.items()):
                if rel in expected or rel == formats.MANIFEST_NAME:
                    raise StoreError(f"{join(url, rel)}: both a Ray task and the driver wrote it; nothing was published")
                fs.copy(f"{tmp_path}/{src}", f"{path}/{rel}")  # s3fs: CopyObject, server-side
                expected[rel] = size
        for f in files:
            fs.put_file(str(f), f"{path}/{f.relative_to(local).as_posix()}")
        # every object is there with its size before the commit point is written
        fs.invalidate_cache(path)
        sizes = {k[len(path) + 1:]: int(v.get("size") or 0) for k, v in fs.find(path, detail=True).items()}
        for rel, size in sorted(expected.items()):
            if sizes.get(rel) != size:
                raise StoreError(f"{join(url, rel)}: upload incomplete ({sizes.get(rel)} of {size} "
                                 "bytes in the store); the version was not published")
        if _existing(fs, path, url, version_id):  # a concurrent packer committed meanwhile
            return url, False
        fs.pipe_file(f"{path}/{formats.MANIFEST_NAME}", (local / formats.MANIFEST_NAME).read_bytes())
    return url, True


def _local_parent(out: str, name: str, parent: str | Path | None) -> str | None:
    """The parent version as a local staged folder (with its feature cache) a local pack can read."""
    if parent is None:
        return None
    from fpload.versions import open_version
    from fpload.versions._store import is_remote

    text = str(parent)
    if text == "latest":
        text = join(out, name)
    elif text and all(c in "0123456789abcdef" for c in text):
        text = join(out, name, text)
    if not is_remote(text):
        return text
    version = open_version(text)
    version.stage(features=True)
    return str(version.path)


def pack_remote(pack: Callable[..., Any], catalog, *, out: str, name: str, parent: str | Path | None = None,
                **kwargs: Any):
    """Pack with ``pack`` (:func:`fpload.pack.pack_version`) into a local temporary root, then
    :func:`upload_version` to ``out``; the :class:`PackResult` with ``path`` the version's URL.

    With ``engine="ray"`` the Ray tasks write the shards to a temporary prefix of ``out`` instead
    (:class:`StoreShards`), removed when this returns or fails."""
    local_parent = _local_parent(out, name, parent)
    shards = None
    if kwargs.get("engine") == "ray":
        from fpload.pack._packer import _tmp_name

        shards = StoreShards(join(out, name, _tmp_name()))
        fs, path = filesystem(shards.url)
        require_bucket(fs, path, out)  # before any task runs: one line, not a task failing four times
        kwargs["_shards_to"] = shards
    try:
        with tempfile.TemporaryDirectory(prefix="fpload-pack-") as tmp:
            res = pack(catalog, out=Path(tmp), name=name, parent=local_parent, **kwargs)
            url, created = upload_version(Path(res.path), out, name, res.version_id, shards)
    finally:
        if shards is not None:
            shards.remove()
    return dataclasses.replace(res, path=url, created=created)
