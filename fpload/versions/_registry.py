"""The version registry: find, open, list and verify published dataset versions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from fpload import formats
from fpload.errors import IntegrityError, ShardNotFoundError, VersionError, VersionNotFoundError


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

    @cached_property
    def samples(self) -> pa.Table:
        """``samples.parquet``: one row per sample, in global index order."""
        path = self.path / formats.SAMPLES_NAME
        if not path.exists():
            raise ShardNotFoundError(f"version {self.id}: {path} is missing")
        return pq.read_table(path)

    def check(self, level: Literal["none", "size", "sha256"] = "size",
              split: str | None = None) -> list[str]:
        """Problems with the version's files (empty when all is well), each naming its file.

        ``size`` checks that every shard and index exists with the recorded size; ``sha256`` also
        recomputes every hash and checks sample counts.
        """
        problems: list[str] = []
        if level == "none":
            return problems
        shard_dir = self.path / formats.SHARDS_DIR
        for s in self.shards(split):
            tar, idx = shard_dir / s["file"], shard_dir / s["index_file"]
            if not tar.exists():
                problems.append(f"shard {s['file']}: missing ({tar})")
                continue
            if not idx.exists():
                problems.append(f"shard {s['file']}: its index {s['index_file']} is missing")
            size = tar.stat().st_size
            if size != s["bytes"]:
                problems.append(f"shard {s['file']}: {size} bytes, manifest says {s['bytes']} (altered)")
                continue
            if level == "sha256":
                if formats.file_sha256(tar) != s["sha256"]:
                    problems.append(f"shard {s['file']}: sha256 differs from the manifest (altered)")
                if idx.exists():
                    if formats.file_sha256(idx) != s["index_sha256"]:
                        problems.append(f"shard {s['file']}: index {s['index_file']} altered (sha256 differs)")
                    else:
                        head = idx.read_text().split("\n", 1)[0].split()
                        if len(head) != 2 or int(head[1]) != s["samples"]:
                            problems.append(f"shard {s['file']}: index lists {head[1:]} samples, "
                                            f"manifest says {s['samples']}")
        if level == "sha256" and split is None:
            sf = self.manifest["samples_file"]
            path = self.path / sf["file"]
            if not path.exists():
                problems.append(f"{sf['file']}: missing")
            elif formats.file_sha256(path) != sf["sha256"]:
                problems.append(f"{sf['file']}: sha256 differs from the manifest (altered)")
            per_split: dict[str, int] = {}
            for s in self.shards():
                per_split[s["split"]] = per_split.get(s["split"], 0) + s["samples"]
            if per_split != self.manifest["counts"]:
                problems.append(f"manifest: shard sample counts {per_split} disagree with counts "
                                f"{self.manifest['counts']}")
            feats = self.manifest.get("features")
            if feats:
                fpath = self.path / feats["file"]
                if not fpath.is_dir():
                    problems.append(f"{feats['file']}: missing")
                else:
                    digest, size = formats.tree_digest(fpath)
                    if size != feats["bytes"] or digest != feats["sha256"]:
                        problems.append(f"{feats['file']}: {size} bytes / sha256 differ from the manifest (altered)")
            if formats.compute_version_id(self.manifest) != self.id:
                problems.append("manifest: content does not hash to its version_id (edited)")
        return problems

    def require_intact(self, level: Literal["none", "size", "sha256"] = "size",
                       split: str | None = None) -> None:
        """Raise :class:`ShardNotFoundError` / :class:`IntegrityError` naming every bad file."""
        problems = self.check(level, split)
        if not problems:
            return
        msg = f"version {self.name}/{self.id} is damaged: " + "; ".join(problems)
        if any("missing" in p for p in problems):
            raise ShardNotFoundError(msg)
        raise IntegrityError(msg)


def _is_version(path: Path) -> bool:
    return (path / formats.MANIFEST_NAME).is_file()


def list_versions(root: str | Path) -> list[Version]:
    """Every published version under ``root`` (a root, a name folder, or a version), oldest first."""
    root = Path(root)
    if _is_version(root):
        return [open_version(root)]
    if not root.is_dir():
        raise VersionNotFoundError(f"no such folder: {root}")
    found = [p.parent for p in root.glob("*/manifest.json")] + [p.parent for p in root.glob("*/*/manifest.json")]
    versions = [open_version(p) for p in sorted(set(found)) if not p.name.startswith(".")]
    return sorted(versions, key=lambda v: (v.manifest.get("created_at", ""), v.name, v.id))


def open_version(path: str | Path | Version) -> Version:
    """Open a version from ``ROOT/NAME/ID``, an id prefix ``ROOT/NAME/6aac``, or ``ROOT/NAME``
    (the latest version of that name)."""
    if isinstance(path, Version):
        return path
    path = Path(path)
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
        if len(matches) == 1:
            return Version(path=matches[0], manifest=formats.read_manifest(matches[0]))
        if len(matches) > 1:
            raise VersionNotFoundError(f"{path}: ambiguous id prefix ({', '.join(sorted(m.name for m in matches))})")
    raise VersionNotFoundError(f"no published dataset version at {path}")


def verify_version(path: str | Path | Version) -> list[str]:
    """Recompute every hash and count of a version; the list of problems (empty: intact)."""
    return open_version(path).check("sha256")


def describe(version: Version) -> dict[str, Any]:
    """A summary for ``fpload versions show``."""
    m = version.manifest
    return {
        "path": str(version.path), "name": m["name"], "version_id": m["version_id"],
        "created_at": m.get("created_at"), "parent": m.get("parent"), "samples": m["samples"],
        "labels": m["labels"], "counts": m["counts"], "encoding": m["settings"]["encoding"],
        "query": m["query"], "catalog": m["catalog"], "consent": m["consent"],
        "shards": len(m["shards"]), "bytes": sum(s["bytes"] for s in m["shards"]),
    }
