"""``fpload versions gc``: find (and with ``delete``, remove) what crashed packs left behind.

On an object store a version is published only when its ``manifest.json`` hashes to the id its
prefix is named by (the packer writes it last). Objects under a version prefix ``[NAME/]ID/`` with
no such manifest are leftovers of a pack that died mid-upload — once the newest of them is older
than ``min_age_s`` (``FPLOAD_GC_AGE_HOURS``, 24 h), so a pack still uploading is left alone; the
``tombstone.json`` an erasure leaves in place of a version is kept (:mod:`fpload.erase`). The
temporary prefixes ``[NAME/].tmp-HOST-PID-RANDOM/`` that Ray tasks write shards to
(:mod:`fpload.pack._ray`) are leftovers once their driver is gone: a dead pid of this host, or no
object newer than ``min_age_s``. In a local root the leftovers are the ``NAME/.tmp-*`` folders of
crashed packs (the same rule as the packer's own clean-up: this host's dead pid, or untouched for
24 h).

Example::

    for item in collect_garbage("s3://team-data/versions"):       # dry run
        print(item.prefix, item.objects, item.bytes)
    collect_garbage("s3://team-data/versions", delete=True)
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fpload import formats
from fpload.config import env_gc_age_seconds
from fpload.errors import VersionError
from fpload.versions._registry import _ID_NAME
from fpload.versions._store import filesystem, is_remote, join, local_path, require_bucket, store_errors


@dataclass(frozen=True)
class Leftover:
    """An unpublished version prefix (or temporary folder): what ``gc`` removes."""

    prefix: str
    objects: int
    bytes: int
    age_s: float
    removed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mtime(info: dict[str, Any]) -> float:
    value = info.get("LastModified") or info.get("mtime") or info.get("last_modified") or info.get("updated")
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()  # unknown age: treated as new, never collected


def _published(fs: Any, path: str, version_id: str) -> bool:
    try:
        manifest = formats.parse_manifest(fs.cat_file(f"{path}/{formats.MANIFEST_NAME}"), path)
    except (FileNotFoundError, VersionError):
        return False
    return manifest.get("version_id") == version_id and formats.compute_version_id(manifest) == version_id


def collect_garbage(root: str | Path, *, delete: bool = False, min_age_s: float | None = None) -> list[Leftover]:
    """The leftovers of crashed packs under ``root`` (a versions root or ``ROOT/NAME``), oldest
    activity first; with ``delete`` they are removed (``Leftover.removed``)."""
    age = env_gc_age_seconds() if min_age_s is None else min_age_s
    if not is_remote(root):
        return _local(local_path(root), delete, age)
    from fpload.pack._packer import _tmp_is_stale

    url = str(root).rstrip("/")
    fs, path = filesystem(url)
    require_bucket(fs, path, url)
    base = path.rstrip("/")
    now = time.time()
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    with store_errors(url, "listing objects"):
        found = fs.find(base, detail=True)
        for key, info in found.items():
            parts = key[len(base) + 1:].split("/")
            if parts[-1] == formats.TOMBSTONE_NAME:  # an erased version's record (fpload.erase), kept
                continue
            for depth in (0, 1):  # ROOT/NAME/ID/... or, for a name prefix, NAME/ID/... (or .tmp-*)
                if len(parts) > depth + 1 and (_ID_NAME.fullmatch(parts[depth]) or parts[depth].startswith(".tmp-")):
                    groups.setdefault("/".join(parts[:depth + 1]), []).append((key, info))
                    break
        out = []
        for rel, objs in sorted(groups.items()):
            vid = rel.rsplit("/", 1)[-1]
            newest = max(_mtime(i) for _, i in objs)
            if vid.startswith(".tmp-"):  # a Ray pack's shards: its driver's host and pid, or the age
                if not (_tmp_is_stale(vid, newest, now) or now - newest >= age):
                    continue
            elif _published(fs, f"{base}/{rel}", vid) or now - newest < age:
                continue
            if delete:
                fs.rm([k for k, _ in objs])
            out.append(Leftover(join(url, rel), len(objs), sum(int(i.get("size") or 0) for _, i in objs),
                                now - newest, delete))
    return sorted(out, key=lambda x: -x.age_s)


def _local(root: Path, delete: bool, age: float) -> list[Leftover]:
    from fpload.pack._packer import _last_touched, _tmp_is_stale

    if not root.is_dir():
        from fpload.errors import VersionNotFoundError

        raise VersionNotFoundError(f"no such folder: {root}")
    now = time.time()
    out = []
    for tmp in sorted(list(root.glob(".tmp-*")) + list(root.glob("*/.tmp-*"))):
        try:
            if not tmp.is_dir() or tmp.is_symlink():
                continue
            touched = _last_touched(tmp)
            if not (_tmp_is_stale(tmp.name, touched, now) or now - touched >= age):
                continue
            files = [p for p in tmp.rglob("*") if p.is_file()]
            size = sum(p.stat().st_size for p in files)
        except OSError:
            continue
        if delete:
            shutil.rmtree(tmp, ignore_errors=True)
        out.append(Leftover(str(tmp), len(files), size, now - touched, delete))
    return out
