"""Verified stamps: hash each file of a version once per machine, re-hash only what changed.

A stamp is a per-user JSON file, ``CACHE/verified/<version_id>.json`` (``CACHE`` is
``$FPLOAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/fpload``, else ``~/.cache/fpload``). For every file
whose content matched the manifest it records the file's absolute path, its *key*
``(size, mtime_ns, inode, device, ctime_ns)`` and its sha256. A later check trusts a recorded hash
only while the key is unchanged: any write, truncation, rename-over, copy or ``touch`` changes
mtime, ctime or the inode, so that file is hashed again. A file whose ctime is younger than
:data:`RACY_NS` when it is hashed is checked but not stamped (a write in the same clock tick
would leave its key unchanged), as git does for its index.

Example::

    problems = verify_pinned(version_id, [Pinned("shards/train-000000.tar", path, sha, size)])
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fpload import formats
from fpload.config import env_cache_dir

#: files changed less than this long before they are hashed are not stamped (clock granularity)
RACY_NS = 100_000_000


@dataclass(frozen=True)
class Pinned:
    """One file (or, with ``tree``, a folder) the manifest pins: ``label`` is how errors name it
    (relative to the version folder); ``size`` is None when the manifest records none."""

    label: str
    path: Path
    sha256: str
    size: int | None
    tree: bool = False


def cache_dir() -> Path:
    """The folder of this user's verified stamps."""
    return env_cache_dir() / "verified"


def _hash_file(path: Path) -> str:
    """sha256 of one file (the one place stamps hash; tests wrap it to count what is hashed)."""
    return formats.file_sha256(path)


def _key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns]


def _load(version_id: str) -> dict[str, Any]:
    try:
        data = json.loads((cache_dir() / f"{version_id}.json").read_text())
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) and data.get("version_id") == version_id else None
    return files if isinstance(files, dict) else {}


def _save(version_id: str, entries: dict[str, Any]) -> None:
    """Merge ``entries`` into the stamp, written atomically; a cache that cannot be written only
    means the next check hashes again."""
    if not entries:
        return
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = {**_load(version_id), **entries}
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{version_id}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(formats.canonical_json({"version_id": version_id, "files": files}))
            os.replace(tmp, folder / f"{version_id}.json")
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass


class _Checker:
    def __init__(self, version_id: str, use_stamp: bool):
        self.stamped = _load(version_id) if use_stamp else {}
        self.fresh: dict[str, Any] = {}
        self.start = time.time_ns()

    def _digest(self, path: Path, st: os.stat_result) -> tuple[str, dict[str, Any] | None]:
        """The file's sha256 (from the stamp when its key is unchanged) and its new stamp entry."""
        key = _key(st)
        entry = self.stamped.get(str(path))
        if isinstance(entry, dict) and entry.get("key") == key and isinstance(entry.get("sha256"), str):
            return entry["sha256"], entry
        digest = _hash_file(path)
        try:
            after = _key(os.stat(path))
        except OSError:
            after = None
        stable = after == key and st.st_ctime_ns < self.start - RACY_NS
        return digest, ({"key": key, "sha256": digest} if stable else None)

    def file(self, item: Pinned) -> list[str]:
        try:
            st = os.stat(item.path)
        except FileNotFoundError:
            return [f"{item.label}: missing ({item.path})"]
        except OSError as err:
            return [f"{item.label}: cannot be read ({err.strerror})"]
        if not stat.S_ISREG(st.st_mode):
            return [f"{item.label}: not a regular file"]
        if item.size is not None and st.st_size != item.size:
            return [f"{item.label}: {st.st_size} bytes, the manifest says {item.size} (altered)"]
        try:
            digest, entry = self._digest(item.path, st)
        except OSError as err:
            return [f"{item.label}: cannot be read ({err.strerror})"]
        if digest != item.sha256:
            return [f"{item.label}: sha256 differs from the manifest (altered)"]
        if entry is not None:
            self.fresh[str(item.path)] = entry
        return []

    def tree(self, item: Pinned) -> list[str]:
        if item.path.is_symlink() or not item.path.is_dir():
            return [f"{item.label}: missing or not a folder ({item.path})"]
        pairs, entries, total, changed = [], {}, 0, []
        seen: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(item.path):
            for name in sorted(dirnames + filenames):
                p = Path(dirpath) / name
                rel = p.relative_to(item.path).as_posix()
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    return [f"{item.label}/{rel}: a symbolic link (a version holds no links)"]
                if stat.S_ISDIR(st.st_mode):
                    continue
                if not stat.S_ISREG(st.st_mode):
                    return [f"{item.label}/{rel}: not a regular file"]
                try:
                    digest, entry = self._digest(p, st)
                except OSError as err:
                    return [f"{item.label}/{rel}: cannot be read ({err.strerror})"]
                seen.add(str(p))
                prev = self.stamped.get(str(p))
                if isinstance(prev, dict) and prev.get("sha256") not in (None, digest):
                    changed.append(rel)
                pairs.append((rel, digest))
                total += st.st_size
                if entry is not None:
                    entries[str(p)] = entry
        if total == item.size and formats.combine_tree_digest(pairs) == item.sha256:
            self.fresh.update(entries)
            return []
        prefix = str(item.path) + os.sep
        gone = sorted(Path(k).relative_to(item.path).as_posix() for k in self.stamped
                      if k.startswith(prefix) and k not in seen)
        detail = "; ".join([f"{item.label}/{r}: missing" for r in gone]
                           + [f"{item.label}/{r}: altered" for r in changed])
        return [f"{item.label}: {total} bytes / sha256 over its files differ from the manifest (altered)"
                + (f" ({detail})" if detail else "")]


def verify_pinned(version_id: str, items: list[Pinned], *, use_stamp: bool = True) -> list[str]:
    """Check every pinned file's content against the manifest; the problems, each naming its
    file. With ``use_stamp`` a file whose key matches this user's stamp is not hashed again, and
    the files found intact are stamped; without it every file is hashed and no stamp is read or
    written."""
    checker = _Checker(version_id, use_stamp)
    problems: list[str] = []
    for item in items:
        problems += checker.tree(item) if item.tree else checker.file(item)
    if use_stamp:
        _save(version_id, checker.fresh)
    return problems
