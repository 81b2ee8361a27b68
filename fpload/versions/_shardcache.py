"""The node-local cache of remote versions' files, content-addressed by sha256.

A shard of a remote version lands in ``CACHE/shards/<sha256>`` (``CACHE`` is ``$FPLOAD_CACHE_DIR``,
else ``~/.cache/fpload``): it is downloaded into a temporary file of that folder while being
hashed, and renamed into place only when the hash is the manifest's, so a file under its hash is
verified by construction. Jobs and ranks on one node share the folder; two processes fetching the
same shard both write their own temporary file and the second rename replaces identical bytes.

The folder is bounded (``FPLOAD_SHARD_CACHE_GB``, default 50): before a download, the least
recently used shards (by the later of atime and mtime; every use touches the mtime) are evicted,
never one this process's running loaders hold. A fetch is retried with exponential backoff
(``FPLOAD_STORE_RETRIES``); a final failure is one :class:`StoreError` line naming the object, a
hash mismatch one :class:`IntegrityError` line naming it (the object changed after publishing).

Example::

    cache = ShardCache()
    path = cache.fetch(fs, "bucket/versions/thumbs/6aac/shards/train-000000.tar",
                       "s3://bucket/versions/thumbs/6aac/shards/train-000000.tar", sha256, size)
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fpload.config import env_cache_dir, env_shard_cache_bytes, env_store_retries
from fpload.errors import IntegrityError, ShardNotFoundError, StoreError
from fpload.versions._store import _reason

_HEX = re.compile(r"[0-9a-f]{64}")
#: temporary downloads untouched this long are someone's crashed fetch: removed on eviction
_STALE_TMP_S = 3600
#: shards (by sha256) held by running loaders of this process, never evicted
_HELD: Counter[str] = Counter()
_HELD_LOCK = threading.Lock()


def fetch_verified(fs: Any, remote: str, url: str, sha256: str, dest: Path, *, retries: int | None = None,
                   size: int | None = None) -> Path:
    """Download ``remote`` (of ``fs``, named ``url`` in errors) to ``dest`` through a temporary file
    beside it, hashing while writing; rename into place only when the sha256 is ``sha256``."""
    tries = retries or env_store_retries()
    dest.parent.mkdir(parents=True, exist_ok=True)
    last: BaseException | None = None
    for attempt in range(tries):
        tmp = dest.parent / f".tmp-{dest.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            h = hashlib.sha256()
            got = 0
            with fs.open(remote, "rb", block_size=8 << 20) as src, open(tmp, "wb") as out:
                for block in iter(lambda: src.read(8 << 20), b""):
                    h.update(block)
                    out.write(block)
                    got += len(block)
            digest = h.hexdigest()
            if digest != sha256:
                raise IntegrityError(f"{url}: sha256 {digest[:16]}… ({got} bytes) differs from the manifest's "
                                     f"{sha256[:16]}…" + (f" ({size} bytes)" if size is not None else "")
                                     + ": the object changed after publishing")
            os.replace(tmp, dest)
            return dest
        except IntegrityError:
            raise
        except FileNotFoundError as err:
            if "bucket" in str(err).lower():
                raise StoreError(f"{url}: {_reason(err)}") from None
            raise ShardNotFoundError(f"{url}: missing from the store (the version is damaged)") from None
        except Exception as err:  # noqa: BLE001 -- network errors of any fsspec backend
            last = err
            if attempt + 1 < tries:
                time.sleep(min(8.0, 0.25 * 2 ** attempt))
        finally:
            tmp.unlink(missing_ok=True)
    raise StoreError(f"{url}: cannot fetch after {tries} attempt(s): {_reason(last)}")


class ShardCache:
    """``CACHE/shards``: shards of remote versions under their sha256, bounded in size."""

    def __init__(self, root: Path | None = None, limit_bytes: int | None = None):
        self.root = root or env_cache_dir() / "shards"
        self.limit = limit_bytes if limit_bytes is not None else env_shard_cache_bytes()

    def path(self, sha256: str) -> Path:
        return self.root / sha256

    def has(self, sha256: str, size: int | None = None) -> bool:
        try:
            st = self.path(sha256).stat()
        except OSError:
            return False
        return size is None or st.st_size == size

    @staticmethod
    def hold(shas: list[str]) -> None:
        """Protect these shards from eviction (by this process) until :meth:`release`."""
        with _HELD_LOCK:
            _HELD.update(shas)

    @staticmethod
    def release(shas: list[str]) -> None:
        with _HELD_LOCK:
            _HELD.subtract(shas)
            for k in [k for k, n in _HELD.items() if n <= 0]:
                del _HELD[k]

    def fetch(self, fs: Any, remote: str, url: str, sha256: str, size: int) -> Path:
        """The local path of a shard, downloaded (and verified) unless already cached; touched as used."""
        path = self.path(sha256)
        if self.has(sha256, size):
            _touch(path)
            return path
        self.make_room(size)
        return fetch_verified(fs, remote, url, sha256, path, size=size)

    def make_room(self, incoming: int) -> None:
        """Evict least recently used shards (none held by this process) until ``incoming`` more
        bytes fit under the bound; remove stale temporary downloads."""
        entries = []
        total = 0
        now = time.time()
        try:
            scan = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        for e in scan:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if e.name.startswith(".tmp-"):
                if now - st.st_mtime > _STALE_TMP_S:
                    Path(e.path).unlink(missing_ok=True)
                continue
            if not _HEX.fullmatch(e.name):
                continue
            total += st.st_size
            entries.append((max(st.st_atime, st.st_mtime), e.name, st.st_size))
        if total + incoming <= self.limit:
            return
        with _HELD_LOCK:
            held = set(_HELD)
        for _, name, size in sorted(entries):
            if total + incoming <= self.limit:
                break
            if name in held:
                continue
            (self.root / name).unlink(missing_ok=True)
            total -= size


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # read-only cache or removed meanwhile: the reader fetches again if needed
        pass


class Prefetcher:
    """Fetches the shards of one split into the cache ahead of the reader, ``workers`` at a time,
    in order; :meth:`ready` blocks until shard ``k`` is local (fetching it again if another process
    evicted it meanwhile). The shards are held against eviction until :meth:`close`."""

    def __init__(self, cache: ShardCache, fs: Any, items: list[tuple[str, str, str, int]], workers: int = 4):
        #: ``(remote path, url, sha256, size)`` of each shard, in the split's order
        self.cache, self.fs, self.items = cache, fs, items
        self._shas = [sha for _, _, sha, _ in items]
        ShardCache.hold(self._shas)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="fpload-fetch")
        self._futures: list[Future] = [self._pool.submit(self._fetch, k) for k in range(len(items))]
        self._closed = False

    def _fetch(self, k: int) -> Path:
        remote, url, sha, size = self.items[k]
        return self.cache.fetch(self.fs, remote, url, sha, size)

    def ready(self, k: int) -> Path:
        """The local path of shard ``k``; raises the fetch's StoreError / IntegrityError."""
        path = self._futures[k].result()
        if not path.is_file():
            path = self._fetch(k)
        else:
            _touch(path)
        return path

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for f in self._futures:
            f.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        ShardCache.release(self._shas)

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
