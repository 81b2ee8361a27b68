"""The version registry: find, open, list and verify published dataset versions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from fpload import formats
from fpload.errors import (IntegrityError, ShardNotFoundError, VersionErasedError, VersionError,
                           VersionNotFoundError)
from fpload.versions import _stamp
from fpload.versions._stamp import Pinned
from fpload.versions._store import is_remote, local_path

Level = Literal["none", "size", "stamp", "sha256"]
_UNSAFE = "leads out of the version folder"
_ID_NAME = re.compile(rf"[0-9a-f]{{{formats.VERSION_ID_HEX}}}")


@dataclass(frozen=True)
class Version:
    """A published, immutable dataset version (a folder holding ``manifest.json``).

    Example::

        v = open_version("versions/thumbs")          # the latest version of that name
        v.id, v.counts, v.shard_paths("train")
    """

    path: Path
    manifest: dict[str, Any] = field(repr=False)

    @property
    def id(self) -> str:
        return self.manifest["version_id"]

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.manifest["counts"])

    @property
    def splits(self) -> list[str]:
        """Split names in the version's order (the order of their global indices)."""
        return list(self.manifest["splits"])

    @property
    def encoding(self) -> str:
        return self.manifest["settings"]["encoding"]

    def shards(self, split: str | None = None) -> list[dict[str, Any]]:
        """Manifest entries of the shards (of one split, when given)."""
        if split is not None and split not in self.manifest["counts"]:
            raise VersionError(f"version {self.id} has no split {split!r} (splits: {', '.join(self.splits)})")
        return [s for s in self.manifest["shards"] if split is None or s["split"] == split]

    def shard_paths(self, split: str | None = None) -> list[Path]:
        return [self.path / formats.SHARDS_DIR / s["file"] for s in self.shards(split)]

    def index_paths(self, split: str | None = None) -> list[Path]:
        return [self.path / formats.SHARDS_DIR / s["index_file"] for s in self.shards(split)]

    def _read_samples(self) -> pa.Table:
        path = self.path / self.manifest["samples_file"]["file"]
        if not path.is_file():
            raise ShardNotFoundError(f"version {self.name}/{self.id}: {path} is missing")
        try:
            return pq.read_table(path)
        except (pa.ArrowException, OSError) as err:
            raise IntegrityError(f"version {self.name}/{self.id}: {path} is not a readable Parquet file "
                                 f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None

    @cached_property
    def samples(self) -> pa.Table:
        """``samples.parquet``: one row per sample, in global index order, checked against the
        manifest (rows, index, splits, shards, labels: :func:`fpload.formats.samples_problems`)."""
        table = self._read_samples()
        problems = formats.samples_problems(self.manifest, table)
        if problems:
            raise IntegrityError(f"version {self.name}/{self.id} is damaged: " + "; ".join(problems))
        return table

    def pinned(self, split: str | None = None, features: bool = False) -> list[Pinned]:
        """The files a reader of ``split`` (all splits when None) relies on, with the hash and size
        the manifest pins them to: shards, their indexes, samples.parquet, and the feature cache
        when ``features`` (and the version has one)."""
        base = self.path.absolute()
        shard_dir = base / formats.SHARDS_DIR
        items = []
        for s in self.shards(split):
            items.append(Pinned(f"{formats.SHARDS_DIR}/{s['file']}", shard_dir / s["file"], s["sha256"], s["bytes"]))
            items.append(Pinned(f"{formats.SHARDS_DIR}/{s['index_file']}", shard_dir / s["index_file"],
                                s["index_sha256"], None))
        sf = self.manifest["samples_file"]
        items.append(Pinned(sf["file"], base / sf["file"], sf["sha256"], sf["bytes"]))
        feats = self.manifest.get("features")
        if features and feats:
            items.append(Pinned(feats["file"], base / feats["file"], feats["sha256"], feats["bytes"], tree=True))
        return items

    def structure_problems(self) -> list[str]:
        """What is wrong with the manifest itself and where its files lie, without reading them:
        the manifest's hash against its ``version_id`` (and the folder's name, when it is an id),
        its counts, and file names that are not plain names or lead out of the folder by a link."""
        problems = formats.manifest_problems(self.manifest)
        root = self.path.resolve()
        if _ID_NAME.fullmatch(root.name) and root.name != self.id:
            problems.append(f"{formats.MANIFEST_NAME}: version_id {self.id} differs from its folder's "
                            f"name {root.name} (edited or moved)")
        if any(formats.NOT_PLAIN in p for p in problems):
            return problems
        for item in self.pinned(features=True):
            real = item.path.resolve()
            if real != root and root not in real.parents:
                problems.append(f"{item.label}: {_UNSAFE} (to {real})")
        return problems

    def check(self, level: Level = "size", split: str | None = None,
              features: bool | None = None) -> list[str]:
        """Problems with the version's files (empty when all is well), each naming its file.

        - ``size``: every shard and index of ``split`` exists, shards with the recorded size;
        - ``stamp``: the content of every file a loader of ``split`` reads (shards, indexes,
          samples.parquet, and features.zarr when ``features``) matches the manifest's sha256,
          hashing only files changed since this user last verified them (:mod:`._stamp`);
        - ``sha256``: the same, hashing every file; with ``split`` None (``fpload versions
          verify``) also the manifest, samples.parquet's rows and the indexes' sample counts.

        ``features`` defaults to True for the whole version, False for one split.
        """
        if level == "none":
            return []
        if level == "size":
            problems = []
            for item in self.pinned(split):
                if item.label.endswith(".tar") or item.label.endswith(".idx"):
                    if not item.path.is_file():
                        problems.append(f"{item.label}: missing ({item.path})")
                    elif item.size is not None and item.path.stat().st_size != item.size:
                        problems.append(f"{item.label}: {item.path.stat().st_size} bytes, "
                                        f"the manifest says {item.size} (altered)")
            return problems
        if level not in ("stamp", "sha256"):
            raise ValueError(f"verify level must be none, size, stamp or sha256, got {level!r}")
        whole = split is None
        problems = self.structure_problems() if whole else []
        if any(_UNSAFE in p or formats.NOT_PLAIN in p for p in problems):
            return problems  # never read a file the manifest places outside the version
        problems += _stamp.verify_pinned(self.id, self.pinned(split, whole if features is None else features),
                                         use_stamp=level == "stamp")
        if whole and not problems:
            problems += self._content_problems()
        return problems

    def _content_problems(self) -> list[str]:
        """samples.parquet against the manifest, and each shard index's sample count."""
        problems = formats.samples_problems(self.manifest, self._read_samples())
        for s in self.shards():
            head = (self.path / formats.SHARDS_DIR / s["index_file"]).read_text().split("\n", 1)[0].split()
            if len(head) != 2 or head[1] != str(s["samples"]):
                problems.append(f"{formats.SHARDS_DIR}/{s['index_file']}: index lists {head[1:]} samples, "
                                f"the manifest says {s['samples']}")
        return problems

    def require_intact(self, level: Level = "size", split: str | None = None,
                       features: bool | None = None) -> None:
        """Raise :class:`ShardNotFoundError` / :class:`IntegrityError` naming every bad file."""
        problems = self.check(level, split, features)
        if not problems:
            return
        msg = f"version {self.name}/{self.id} is damaged: " + "; ".join(problems)
        if any("missing" in p for p in problems):
            raise ShardNotFoundError(msg)
        raise IntegrityError(msg)

    def require_consistent(self) -> None:
        """Raise :class:`IntegrityError` (one line, naming the file) when the manifest does not
        hash to its id, a path leaves the folder, or samples.parquet disagrees with the manifest."""
        problems = self.structure_problems()
        if problems:
            raise IntegrityError(f"version {self.name}/{self.id} at {self.path} is damaged: " + "; ".join(problems))
        self.samples  # noqa: B018 -- reads and checks samples.parquet


def _is_version(path: Path) -> bool:
    return (path / formats.MANIFEST_NAME).is_file()


def list_versions(root: str | Path) -> list[Version]:
    """Every published version under ``root`` (a root, a name folder, or a version), oldest first.

    Listing reads each manifest but does not check its files (see :meth:`Version.check`).
    ``root`` may be an fsspec URL (``s3://bucket/versions``): then only versions whose manifest
    hashes to the id their prefix is named by are listed (see :mod:`fpload.versions._remote`)."""
    if is_remote(root):
        from fpload.versions._remote import list_remote

        return list_remote(str(root))
    root = local_path(root)
    if _is_version(root):
        return [open_version(root, check=False)]
    if not root.is_dir():
        raise VersionNotFoundError(f"no such folder: {root}")
    found = [p.parent for p in root.glob("*/manifest.json")] + [p.parent for p in root.glob("*/*/manifest.json")]
    # dot-folders (ROOT/.fpload governance files, NAME/.tmp-* of running packs) hold no versions
    versions = [open_version(p, check=False) for p in sorted(set(found))
                if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(versions, key=lambda v: (v.manifest.get("created_at", ""), v.name, v.id))


def _refuse_tombstone(path: Path) -> None:
    """Raise :class:`VersionErasedError` naming the successor when ``path`` is a tombstoned version."""
    stone = path / formats.TOMBSTONE_NAME
    if _is_version(path) or not stone.is_file():
        return
    try:
        t = json.loads(stone.read_text())
        succ, eid = t["successor"], t["erasure_id"]
    except (OSError, ValueError, KeyError, TypeError):
        raise VersionErasedError(f"version at {path} was erased (its {formats.TOMBSTONE_NAME} is unreadable)") from None
    where = f"{path.parent / succ}" if succ else "none (no sample was left)"
    raise VersionErasedError(f"version {path.parent.name}/{t.get('version_id', path.name)} was erased by erasure "
                             f"{eid}; use its successor {where}")


def _find(path: Path) -> Version:
    _refuse_tombstone(path)
    if _is_version(path):
        return Version(path=path, manifest=formats.read_manifest(path))
    if path.is_dir():
        candidates = [p.parent for p in path.glob("*/manifest.json") if not p.parent.name.startswith(".")]
        if candidates:
            versions = [Version(p, formats.read_manifest(p)) for p in candidates]
            return max(versions, key=lambda v: (v.manifest.get("created_at", ""), v.id))
    parent = path.parent
    if parent.is_dir():
        matches = [p for p in parent.iterdir() if p.name.startswith(path.name) and _is_version(p)]
        stones = [p for p in parent.iterdir() if p.name.startswith(path.name) and (p / formats.TOMBSTONE_NAME).is_file()]
        if not matches and len(stones) == 1:
            _refuse_tombstone(stones[0])
        if len(matches) == 1:
            return Version(path=matches[0], manifest=formats.read_manifest(matches[0]))
        if len(matches) > 1:
            raise VersionNotFoundError(f"{path}: ambiguous id prefix ({', '.join(sorted(m.name for m in matches))})")
    raise VersionNotFoundError(f"no published dataset version at {path}")


def open_version(path: str | Path | Version, *, check: bool = True) -> Version:
    """Open a version from ``ROOT/NAME/ID``, an id prefix ``ROOT/NAME/6aac``, or ``ROOT/NAME``
    (the latest version of that name).

    With ``check`` (the default) the manifest must hash to its own ``version_id``, name only
    files inside the version folder, and agree with samples.parquet (:meth:`Version.require_consistent`);
    otherwise :class:`IntegrityError` names the file. File contents are checked by
    :meth:`Version.check` (the loader's ``verify``) or ``fpload versions verify``.

    Example::

        v = open_version("versions/thumbs/6aac")   # an id prefix
        v = open_version("s3://team-data/versions/thumbs")   # the latest there; small files staged
    """
    if isinstance(path, Version):
        version = path
    elif is_remote(path):
        from fpload.versions._remote import open_remote

        version = open_remote(str(path))
    else:
        version = _find(local_path(path))
    if check:
        version.require_consistent()
    return version


def verify_version(path: str | Path | Version) -> list[str]:
    """Recompute every hash and count of a version; the list of problems (empty: intact)."""
    return open_version(path, check=False).check("sha256")


def describe(version: Version) -> dict[str, Any]:
    """A summary for ``fpload versions show``."""
    m = version.manifest
    return {
        "path": getattr(version, "url", None) or str(version.path), "name": m["name"], "version_id": m["version_id"],
        "created_at": m.get("created_at"), "parent": m.get("parent"), "samples": m["samples"],
        "labels": m["labels"], "counts": m["counts"], "encoding": m["settings"]["encoding"],
        "query": m.get("query"), "catalog": m.get("catalog"), "consent": m.get("consent"),
        "shards": len(m["shards"]), "bytes": sum(s["bytes"] for s in m["shards"]),
    }
