"""The erasure lock: a lease object ``ROOT/.fpload/locks/erase.json`` on each root of an erasure.

Two erasures of one root at once could interleave their steps (two successors of one version, a
tombstone over the other's successor), so ``erase_subject`` holds this lock on every root for its
whole run and releases it in a ``finally``. The lock is taken by an *atomic exclusive create*, the
one primitive every store offers:

- a local folder: the record is written to a temporary file and hard-linked to ``erase.json``
  (``link`` fails when the name exists: whole content, no partial lock);
- S3: ``PUT`` with ``If-None-Match: *`` (s3fs ``pipe_file(mode="create")``; the store refuses with
  412 when the object exists);
- GCS: an upload with ``ifGenerationMatch=0`` (gcsfs ``pipe_file(mode="create")``);
- any other fsspec store (``memory://``): its ``mode="create"``.

The record names its holder (host, pid, user), when it was taken and when it expires
(``FPLOAD_ERASE_LOCK_HOURS``, 24 h). A second erasure while the lock is live fails at once with one
:class:`fpload.errors.RootLockedError` line naming the lock object, its holder and its age. A lock
past its expiry is stale and is taken over, and so is one whose holder ran on this host and whose
process is gone (a killed erasure is completed by rerunning the command); ``break_lock`` (``fpload erase --break-lock``) takes over
a live one (the holder is known to be dead). The takeover replaces exactly the record that was read,
so of two processes taking over the same stale lock one wins (and a release deletes the lock only
if it is still the holder's copy, by the same conditions):

- S3: ``PUT`` with ``If-Match: <ETag read>`` (compare-and-swap);
- GCS: ``DELETE`` with ``ifGenerationMatch=<generation read>``, then the exclusive create;
- a local folder: the re-read, compare and replace run under ``flock`` on ``erase.json.guard``
  (as does the release's compare and delete);
- other stores: delete and exclusive create; a takeover racing another takeover can lose the
  other's fresh lock there (the remaining race, for stores without conditional writes).

Example::

    with erase_lock(["s3://team-data/versions"]):
        ...   # the erasure's steps
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from fpload.config import env_erase_lock_seconds
from fpload.errors import RootLockedError
from fpload.versions._store import filesystem, is_remote, join, store_errors

LOCK_PARTS = (".fpload", "locks", "erase.json")
_memory_guard = threading.Lock()


def lock_location(root: str | Path) -> str:
    """Where the erasure lock of ``root`` lives (a URL or a local path, as text)."""
    return join(str(root), *LOCK_PARTS) if is_remote(root) else str(Path(root).joinpath(*LOCK_PARTS))


def _record(root: str, expiry_s: float) -> dict[str, Any]:
    now = time.time()
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 -- no user name in a container: the pid and host still say who
        user = "?"
    return {"schema_version": 1, "kind": "erase", "root": root, "token": uuid.uuid4().hex,
            "host": socket.gethostname(), "pid": os.getpid(), "user": user,
            "acquired_at": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
            "acquired_ts": now, "expires_ts": now + expiry_s}


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def _parse(data: bytes | None) -> dict[str, Any]:
    try:
        rec = json.loads(data or b"")
        return rec if isinstance(rec, dict) else {}
    except ValueError:
        return {}


def held_message(where: str, rec: dict[str, Any], now: float | None = None) -> str:
    """The one line a refused erasure prints: the lock object, its holder, its age, how to break it."""
    now = time.time() if now is None else now
    holder = f"{rec.get('user', '?')}@{rec.get('host', '?')} pid {rec.get('pid', '?')}" if rec else "an unknown holder"
    since = rec.get("acquired_ts")
    age = f"taken {_age(now - since)} ago" if isinstance(since, (int, float)) else "age unknown"
    exp = rec.get("expires_ts")
    left = f", expires in {_age(exp - now)}" if isinstance(exp, (int, float)) else ""
    return (f"{where}: another erasure of this root holds the lock ({holder}, {age}{left}); wait for it "
            "to finish, or if that process is dead rerun with --break-lock")


def _dead_here(rec: dict[str, Any]) -> bool:
    """Whether the holder ran on this host and its process is gone (a killed erasure: rerunning the
    command completes it). A reused pid looks alive: the lock is then refused, the safe side."""
    pid = rec.get("pid")
    if rec.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:   # alive, another user's
        return False
    return False


def _stale(rec: dict[str, Any], mtime: float | None, now: float, expiry_s: float) -> bool:
    if _dead_here(rec):
        return True
    exp = rec.get("expires_ts")
    if isinstance(exp, (int, float)):
        return now >= exp
    # an unreadable record (a lock torn by a crash mid-write on a store without whole-object writes)
    return mtime is not None and now - mtime >= expiry_s


def _precondition_failed(err: BaseException) -> bool:
    """Whether a store refused a conditional request (HTTP 412: the object changed meanwhile)."""
    for e in (err, err.__cause__, err.__context__):
        if e is None:
            continue
        if getattr(e, "code", None) == 412 or getattr(e, "status", None) == 412:
            return True
        code = getattr(e, "response", {}).get("Error", {}).get("Code") if isinstance(getattr(e, "response", None), dict) else None
        if code in ("PreconditionFailed", "412"):
            return True
        text = str(e).lower().replace("-", "")
        if "precondition" in text or "conditionnotmet" in text:
            return True
    return False


class _Lock:
    """One root's lock; :meth:`acquire` then :meth:`release`."""

    def __init__(self, root: str | Path, expiry_s: float) -> None:
        self.root = str(root)
        self.where = lock_location(root)
        self.expiry_s = expiry_s
        self.rec = _record(self.root, expiry_s)
        self.data = json.dumps(self.rec, indent=2, sort_keys=True).encode()
        self.remote = is_remote(root)
        if self.remote:
            self.fs, self.path = filesystem(self.where)
            self.proto = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        else:
            self.path = Path(self.where)

    # -- primitives --------------------------------------------------------------------------
    def _create(self) -> bool:
        """The atomic exclusive create; False when the lock object exists."""
        if not self.remote:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".tmp-{self.path.name}-{self.rec['token']}")
            tmp.write_bytes(self.data)
            try:
                os.link(tmp, self.path)
                return True
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
        try:
            self.fs.pipe_file(self.path, self.data, mode="create")
            return True
        except FileExistsError:
            return False

    def _read(self) -> tuple[bytes | None, dict[str, Any]]:
        """The lock object's bytes (None: absent) and what identifies this copy of it (ETag, generation, mtime)."""
        if not self.remote:
            try:
                return self.path.read_bytes(), {"mtime": self.path.stat().st_mtime}
            except FileNotFoundError:
                return None, {}
        try:
            self.fs.invalidate_cache(self.path)
            info = self.fs.info(self.path)
            data = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return None, {}
        mtime = info.get("LastModified") or info.get("mtime") or info.get("updated")
        if isinstance(mtime, datetime):
            mtime = mtime.timestamp()
        return data, {"etag": info.get("ETag"), "generation": info.get("generation"),
                      "mtime": mtime if isinstance(mtime, (int, float)) else None}

    def _replace(self, seen: bytes, ident: dict[str, Any]) -> bool:
        """Replace the lock object that was read as ``seen`` (``ident``) by ours, atomically where
        the store allows it; False when it changed meanwhile (another process took it over)."""
        if not self.remote:
            import fcntl

            guard = self.path.with_name(self.path.name + ".guard")
            with open(guard, "a+b") as g:
                fcntl.flock(g, fcntl.LOCK_EX)
                try:
                    now, _ = self._read()
                    if now != seen:
                        return False
                    tmp = self.path.with_name(f".tmp-{self.path.name}-{self.rec['token']}")
                    tmp.write_bytes(self.data)
                    os.replace(tmp, self.path)
                    return True
                finally:
                    fcntl.flock(g, fcntl.LOCK_UN)
        if self.proto in ("s3", "s3a") and ident.get("etag"):
            try:
                self.fs.pipe_file(self.path, self.data, IfMatch=ident["etag"])
                return True
            except (FileExistsError, FileNotFoundError):
                return False
            except OSError as err:
                if _precondition_failed(err):
                    return False
                raise
        if self.proto in ("gs", "gcs") and ident.get("generation"):
            return self._delete_if(ident) and self._create()
        with _memory_guard:   # other stores: delete and create (the race the module names)
            now, _ = self._read()
            if now != seen:
                return False
            self.fs.rm_file(self.path)
            return self._create()

    # -- the lock ----------------------------------------------------------------------------
    def acquire(self, break_lock: bool = False) -> None:
        with store_errors(self.where, "taking the erasure lock"):
            for _ in range(3):
                # read first: a held lock is refused without writing (and a store that ignores the
                # create precondition, as some emulators do, still refuses in sequence); the
                # exclusive create is what decides a race
                seen, ident = self._read()
                if seen is None:
                    if self._create():
                        return
                    continue   # created by another between our read and create: read it
                rec = _parse(seen)
                if not (break_lock or _stale(rec, ident.get("mtime"), time.time(), self.expiry_s)):
                    raise RootLockedError(held_message(self.where, rec))
                if self._replace(seen, ident):
                    return
                seen, _ = self._read()   # another process took it over first: it holds it now
                raise RootLockedError(held_message(self.where, _parse(seen)))
        raise RootLockedError(f"{self.where}: the erasure lock keeps changing hands; try again")

    def _delete_if(self, ident: dict[str, Any]) -> bool:
        """Delete the lock object only if it is still the copy ``ident`` names (S3 ``If-Match`` on
        the ETag, GCS ``ifGenerationMatch``; other stores unconditionally); False when it changed."""
        try:
            if self.proto in ("s3", "s3a") and ident.get("etag"):
                bucket, key, _ = self.fs.split_path(self.path)
                self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=ident["etag"])
            elif self.proto in ("gs", "gcs") and ident.get("generation"):
                bucket, key, _ = self.fs.split_path(self.path)
                self.fs.call("DELETE", "b/{}/o/{}", bucket, key, ifGenerationMatch=str(ident["generation"]))
            else:
                self.fs.rm_file(self.path)
        except (FileNotFoundError, FileExistsError):
            return False
        except OSError as err:
            if _precondition_failed(err):
                return False
            raise
        finally:
            self.fs.invalidate_cache(self.path)
        return True

    def release(self) -> None:
        """Delete the lock object if it is still ours: the copy read is deleted only if unchanged
        (conditional delete; locally under the guard's flock), so a lock another erasure took over
        after ours expired is left to it."""
        with contextlib.suppress(Exception), store_errors(self.where, "releasing the erasure lock"):
            if self.remote:
                seen, ident = self._read()
                if seen is not None and _parse(seen).get("token") == self.rec["token"]:
                    self._delete_if(ident)
                return
            import fcntl

            with open(self.path.with_name(self.path.name + ".guard"), "a+b") as g:
                fcntl.flock(g, fcntl.LOCK_EX)
                seen, _ = self._read()
                if seen is not None and _parse(seen).get("token") == self.rec["token"]:
                    self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def erase_lock(roots: list[str | Path], *, break_lock: bool = False,
               expiry_s: float | None = None) -> Iterator[list[str]]:
    """Hold the erasure lock of every root in ``roots`` (taken in a fixed order, all released on
    exit, also after an error); yields the lock locations. Raises :class:`RootLockedError` when one
    is held by a live erasure (``break_lock`` takes it over anyway)."""
    expiry = env_erase_lock_seconds() if expiry_s is None else expiry_s
    held: list[_Lock] = []
    try:
        for root in sorted({str(r) for r in roots}):
            lock = _Lock(root, expiry)
            lock.acquire(break_lock)
            held.append(lock)
        yield [lock.where for lock in held]
    finally:
        for lock in reversed(held):
            lock.release()
