"""Versions on an object store (``s3://bucket/prefix/NAME/ID``): open, list, verify, stream.

A remote version is published when ``manifest.json`` exists under its prefix, hashes to its
``version_id`` and that id is the prefix's last component (the packer writes it last); anything
else under a version prefix is a leftover that ``fpload versions gc`` collects.

Opening one *stages* its small files in ``CACHE/versions/<version_id>/`` (manifest, samples.parquet,
the shards' DALI indexes; features.zarr when asked for), each checked against the manifest's
sha256 while downloaded. Shards are not staged: the loader fetches them ahead of the reader into
the content-addressed shard cache (:mod:`._shardcache`). ``check`` compares the shards' sizes in
the store (``size``/``stamp``) or re-hashes every object as it streams (``sha256``).

Example::

    v = open_version("s3://team-data/versions/thumbs")      # the latest version of that name
    v.url, v.counts, v.check("sha256")
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fpload import formats
from fpload.config import env_cache_dir
from fpload.errors import IntegrityError, StoreError, VersionError, VersionNotFoundError
from fpload.versions import _stamp
from fpload.versions._registry import Level, Version, _ID_NAME
from fpload.versions._shardcache import Prefetcher, ShardCache, fetch_verified
from fpload.versions._stamp import Pinned
from fpload.versions._store import basename, filesystem, join, parent, require_bucket, store_errors


@dataclass(frozen=True)
class RemoteVersion(Version):
    """A published version in an object store; ``path`` is its local staging folder, ``url`` where it lives."""

    url: str = ""

    # -- where things are ----------------------------------------------------------------------
    def _fs(self):
        return filesystem(self.url)

    def _remote(self, rel: str) -> tuple[Any, str, str]:
        fs, base = self._fs()
        return fs, f"{base.rstrip('/')}/{rel}", join(self.url, rel)

    def stage(self, features: bool = False) -> None:
        """Download (verified) the small files a reader needs into :attr:`path`; the manifest last."""
        items = [(self.manifest["samples_file"]["file"], self.manifest["samples_file"]["sha256"])]
        items += [(f"{formats.SHARDS_DIR}/{s['index_file']}", s["index_sha256"]) for s in self.shards()]
        for rel, sha in items:
            dest = self.path / rel
            if not dest.is_file():
                fs, remote, url = self._remote(rel)
                fetch_verified(fs, remote, url, sha, dest)
        if features and self.manifest.get("features"):
            self._stage_features()
        target = self.path / formats.MANIFEST_NAME
        if not target.is_file():
            self.path.mkdir(parents=True, exist_ok=True)
            tmp = self.path / f".tmp-{formats.MANIFEST_NAME}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp.write_bytes(formats.pretty_json(self.manifest))
            tmp.replace(target)

    def _stage_features(self) -> None:
        fetch_feature_tree(self, self.path)

    def shard_paths(self, split: str | None = None) -> list[Path]:
        """Where the shards land in the node-local shard cache (fetched by :meth:`prefetch`)."""
        cache = ShardCache()
        return [cache.path(s["sha256"]) for s in self.shards(split)]

    def index_paths(self, split: str | None = None) -> list[Path]:
        self.stage()
        return super().index_paths(split)

    def _read_samples(self):
        self.stage()
        return super()._read_samples()

    def prefetch(self, split: str, workers: int = 4) -> Prefetcher:
        """Start fetching the shards of ``split`` into the shard cache; refuses a split larger than
        the cache's bound (the reader needs all of them every epoch)."""
        cache = ShardCache()
        shards = self.shards(split)
        need = sum(s["bytes"] for s in shards)
        if need > cache.limit:
            raise StoreError(f"split {split!r} of {self.url} has {need / 1e9:.2f} GB of shards, more than the "
                             f"shard cache's bound of {cache.limit / 1e9:.2f} GB (raise FPLOAD_SHARD_CACHE_GB)")
        fs, base = self._fs()
        items = [(f"{base.rstrip('/')}/{formats.SHARDS_DIR}/{s['file']}",
                  join(self.url, formats.SHARDS_DIR, s["file"]), s["sha256"], s["bytes"]) for s in shards]
        return Prefetcher(cache, fs, items, workers)

    # -- checks --------------------------------------------------------------------------------
    def _staged_pinned(self, split: str | None, features: bool) -> list[Pinned]:
        """The staged files a reader relies on (indexes, samples.parquet, features.zarr)."""
        self.stage(features=features)
        return [p for p in super().pinned(split, features) if not p.label.endswith(".tar")]

    def structure_problems(self) -> list[str]:
        problems = formats.manifest_problems(self.manifest)
        last = basename(self.url)
        if _ID_NAME.fullmatch(last) and last != self.id:
            problems.append(f"{formats.MANIFEST_NAME}: version_id {self.id} differs from its prefix's "
                            f"name {last} (edited or moved)")
        return problems

    def _remote_sizes(self) -> dict[str, int]:
        fs, remote, url = self._remote(formats.SHARDS_DIR)
        with store_errors(url, "listing the shards"):
            found = fs.find(remote, detail=True) if fs.exists(remote) else {}
        return {basename(k): int(v.get("size") or 0) for k, v in found.items()}

    def check(self, level: Level = "size", split: str | None = None,
              features: bool | None = None) -> list[str]:
        """As :meth:`Version.check`, against the store: ``size`` and ``stamp`` compare each shard's
        size in the store (its content is checked by hash when the loader fetches it) and the
        staged files' hashes; ``sha256`` re-hashes every object of the version as it streams."""
        if level == "none":
            return []
        if level not in ("size", "stamp", "sha256"):
            raise ValueError(f"verify level must be none, size, stamp or sha256, got {level!r}")
        whole = split is None
        feats = whole if features is None else features
        problems = self.structure_problems() if whole or level == "sha256" else []
        if any(formats.NOT_PLAIN in p for p in problems):
            return problems
        if level != "sha256":
            sizes = self._remote_sizes()
            for s in self.shards(split):
                for name, want in ((s["file"], s["bytes"]), (s["index_file"], None)):
                    got = sizes.get(name)
                    if got is None:
                        problems.append(f"{formats.SHARDS_DIR}/{name}: missing ({join(self.url, formats.SHARDS_DIR, name)})")
                    elif want is not None and got != want:
                        problems.append(f"{formats.SHARDS_DIR}/{name}: {got} bytes in the store, the manifest "
                                        f"says {want} (altered)")
            if problems:
                return problems
            try:
                return _stamp.verify_pinned(self.id, self._staged_pinned(split, feats), use_stamp=True)
            except (IntegrityError, StoreError) as err:
                return [str(err)]
        problems += self._hash_remote(split, feats)
        if whole and not problems:
            problems += self._content_problems()
        return problems

    def _hash_remote(self, split: str | None, features: bool) -> list[str]:
        """Stream every object of the version and compare its sha256 (and size) with the manifest."""
        items = []
        for s in self.shards(split):
            items.append((f"{formats.SHARDS_DIR}/{s['file']}", s["sha256"], s["bytes"]))
            items.append((f"{formats.SHARDS_DIR}/{s['index_file']}", s["index_sha256"], None))
        sf = self.manifest["samples_file"]
        items.append((sf["file"], sf["sha256"], sf["bytes"]))
        problems = []
        for rel, sha, size in items:
            fs, remote, url = self._remote(rel)
            try:
                with store_errors(url, "hashing"):
                    digest, got = _hash_object(fs, remote)
            except FileNotFoundError:
                problems.append(f"{rel}: missing ({url})")
                continue
            if digest != sha:
                problems.append(f"{rel}: sha256 differs from the manifest ({got} bytes; altered after "
                                f"publishing: {url})")
            elif size is not None and got != size:
                problems.append(f"{rel}: {got} bytes, the manifest says {size}")
        entry = self.manifest.get("features")
        if features and entry:
            fs, remote, url = self._remote(entry["file"])
            with store_errors(url, "hashing"):
                files = sorted(fs.find(remote))
                pairs = [(f[len(remote.rstrip('/')) + 1:], _hash_object(fs, f)[0]) for f in files]
            if formats.combine_tree_digest(pairs) != entry["sha256"]:
                problems.append(f"{entry['file']}: tree sha256 differs from the manifest (altered after "
                                f"publishing: {url})")
        return problems


def _hash_object(fs: Any, remote: str) -> tuple[str, int]:
    h = hashlib.sha256()
    got = 0
    with fs.open(remote, "rb", block_size=8 << 20) as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            h.update(block)
            got += len(block)
    return h.hexdigest(), got


def _staging(version_id: str) -> Path:
    return env_cache_dir() / "versions" / version_id


def _published(url: str, data: bytes) -> RemoteVersion | None:
    """The version whose manifest ``data`` was read at ``url``/manifest.json, if it is published
    there (valid, hashes to its id, the prefix is that id); None otherwise."""
    try:
        manifest = formats.parse_manifest(data, join(url, formats.MANIFEST_NAME))
    except VersionError:
        return None
    if formats.compute_version_id(manifest) != manifest["version_id"] or basename(url) != manifest["version_id"]:
        return None
    return RemoteVersion(path=_staging(manifest["version_id"]), manifest=manifest, url=url.rstrip("/"))


def _manifests(fs: Any, path: str, url: str, depth: int) -> dict[str, bytes]:
    """``{version url: manifest bytes}`` of the ``*/manifest.json`` (depth 1) or
    ``*/*/manifest.json`` (2) under ``path``, skipping hidden prefixes."""
    pattern = path.rstrip("/") + "/*" * depth + "/" + formats.MANIFEST_NAME
    found = [p for p in fs.glob(pattern) if not any(part.startswith(".") for part in
                                                     p[len(path.rstrip('/')) + 1:].split("/"))]
    if not found:
        return {}
    data = fs.cat(found)
    prefix = path.rstrip("/")
    return {join(url, p[len(prefix) + 1:].rsplit("/", 1)[0]): b for p, b in data.items()}


def list_remote(root: str) -> list[RemoteVersion]:
    """Every published version under the URL ``root`` (a root, a name prefix, or a version), oldest first."""
    fs, path = filesystem(root)
    require_bucket(fs, path, root)
    with store_errors(root, "listing versions"):
        own = _read(fs, path.rstrip("/") + "/" + formats.MANIFEST_NAME)
        if own is not None:
            v = _published(root, own)
            return [v] if v is not None else []
        found = {**_manifests(fs, path, root, 1), **_manifests(fs, path, root, 2)}
    versions = [v for v in (_published(u, b) for u, b in sorted(found.items())) if v is not None]
    return sorted(versions, key=lambda v: (v.manifest.get("created_at", ""), v.name, v.id))


def _read(fs: Any, path: str) -> bytes | None:
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None


def open_remote(url: str) -> RemoteVersion:
    """The version at ``url`` (``ROOT/NAME/ID``), an id prefix (``ROOT/NAME/6aac``) or a name
    (``ROOT/NAME``: its latest)."""
    url = url.rstrip("/")
    fs, path = filesystem(url)
    require_bucket(fs, path, url)
    with store_errors(url, "opening the version"):
        own = _read(fs, path + "/" + formats.MANIFEST_NAME)
        if own is not None:
            version = _published(url, own)
            if version is None:
                try:
                    manifest = formats.parse_manifest(own, join(url, formats.MANIFEST_NAME))
                except VersionError as err:
                    raise IntegrityError(f"version at {url} is damaged: {err}") from None
                version = RemoteVersion(path=_staging(manifest["version_id"]), manifest=manifest, url=url)
                problems = version.structure_problems() or ["its manifest does not match its id"]
                raise IntegrityError(f"version {version.name}/{version.id} at {url} is damaged: "
                                     + "; ".join(problems))
        else:
            stone = _read(fs, path + "/" + formats.TOMBSTONE_NAME)
            if stone is not None:
                _refuse_tombstone(url, stone)
            candidates = [v for v in (_published(u, b) for u, b in _manifests(fs, path, url, 1).items()) if v]
            if candidates:
                version = max(candidates, key=lambda v: (v.manifest.get("created_at", ""), v.id))
            else:
                stem = basename(url)
                siblings = _manifests(fs, parent(path), parent(url), 1) if stem else {}
                matches = [v for u, b in siblings.items() if basename(u).startswith(stem)
                           for v in [_published(u, b)] if v is not None]
                if len(matches) > 1:
                    raise VersionNotFoundError(f"{url}: ambiguous id prefix "
                                               f"({', '.join(sorted(m.id for m in matches))})")
                if not matches and stem:
                    stones = fs.glob(f"{parent(path)}/{stem}*/{formats.TOMBSTONE_NAME}")
                    if len(stones) == 1:
                        found = join(parent(url), stones[0].rsplit("/", 2)[-2])
                        _refuse_tombstone(found, fs.cat_file(stones[0]))
                if not matches:
                    raise VersionNotFoundError(f"no published dataset version at {url}")
                version = matches[0]
    return version  # its small files are staged when first read


def _refuse_tombstone(url: str, data: bytes) -> None:
    """Raise :class:`VersionErasedError` naming the successor: ``url`` holds the tombstone ``data``
    an erasure left in place of the version (see :mod:`fpload.erase._remote`)."""
    import json

    from fpload.errors import VersionErasedError

    try:
        t = json.loads(data)
        succ, eid = t["successor"], t["erasure_id"]
    except (ValueError, KeyError, TypeError):
        raise VersionErasedError(f"version at {url} was erased (its {formats.TOMBSTONE_NAME} is "
                                 "unreadable)") from None
    where = (t.get("successor_url") or join(parent(url), succ)) if succ else "none (no sample was left)"
    raise VersionErasedError(f"version {basename(parent(url))}/{t.get('version_id', basename(url))} was erased by "
                             f"erasure {eid}; use its successor {where}")


def list_tombstones(root: str | Path) -> list[dict[str, Any]]:
    """The tombstones an erasure left under ``root`` (a URL or a folder; ``*/tombstone.json`` and
    ``*/*/tombstone.json``): each record with ``url`` (the erased version's prefix or folder) added.

    Example: ``[t["successor"] for t in list_tombstones("s3://team-data/versions")]``"""
    import json

    from fpload.versions._store import is_remote, local_path

    if not is_remote(root):  # a local root: the same records, read from its folders
        base_dir = local_path(root)
        found = [p for pattern in (f"*/{formats.TOMBSTONE_NAME}", f"*/*/{formats.TOMBSTONE_NAME}")
                 for p in sorted(base_dir.glob(pattern))]
        out = []
        for stone in found:
            rel = stone.parent.relative_to(base_dir)
            if any(part.startswith(".") for part in rel.parts):
                continue
            try:
                record = json.loads(stone.read_text())
            except (OSError, ValueError):
                record = {}
            out.append({**record, "url": str(stone.parent)})
        return out
    fs, path = filesystem(root)
    base = path.rstrip("/")
    out = []
    with store_errors(root, "listing erased versions"):
        for pattern in (f"{base}/*/{formats.TOMBSTONE_NAME}", f"{base}/*/*/{formats.TOMBSTONE_NAME}"):
            for key in sorted(fs.glob(pattern)):
                rel = key[len(base) + 1:].rsplit("/", 1)[0]
                if any(part.startswith(".") for part in rel.split("/")):
                    continue
                try:
                    record = json.loads(fs.cat_file(key))
                except ValueError:
                    record = {}
                out.append({**record, "url": join(root, rel)})
    return out


def fetch_feature_tree(v: "RemoteVersion", dest: Path) -> None:
    """Fetch remote version ``v``'s feature cache into ``dest`` (its manifest's ``features.file``
    under ``dest``), checked against the manifest's tree digest before it is renamed into place;
    a cache already there (or staged meanwhile by another process) is kept."""
    entry = v.manifest["features"]
    target = dest / entry["file"]
    if (target / "zarr.json").is_file():
        return
    fs, remote, url = v._remote(entry["file"])
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-features-", dir=dest))
    try:
        with store_errors(url, "fetching the feature cache"):
            fs.get(remote.rstrip("/") + "/", str(tmp) + "/", recursive=True)
        digest, _ = formats.tree_digest(tmp)
        if digest != entry["sha256"]:
            raise IntegrityError(f"{url}: tree sha256 {digest[:16]}… differs from the manifest's "
                                 f"{entry['sha256'][:16]}…: the feature cache changed after publishing")
        try:
            tmp.rename(target)
        except OSError:  # another process staged it meanwhile
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
