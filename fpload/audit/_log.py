"""An append-only, hash-chained log of JSON records (the audit trail's storage).

One file of JSON lines. Every record holds ``seq`` (0, 1, 2, ...), ``kind``, ``time`` (UTC),
``host``, ``user``, ``payload`` (any JSON object), ``prev`` (the previous record's hash; 64 zeros for
the first) and ``hash`` (sha256 of the record's canonical JSON without ``hash``). Editing,
reordering or deleting a record breaks the chain; :meth:`RecordLog.verify` names the first broken
record. Deleting the *last* records keeps the chain valid, so a second file, ``<log>.head``,
holds the count and the last hash after every append, and ``verify`` compares it: a truncated log is
caught unless both files are rewritten together (the limit of any log without an outside anchor;
:meth:`RecordLog.head` returns the anchor to keep elsewhere, e.g. in a receipt).

Appends take an exclusive ``flock`` on the log, so concurrent writers on one machine (or a
filesystem with working locks) serialise; every append is flushed and fsynced before it returns.

Example::

    >>> import tempfile, pathlib
    >>> log = RecordLog(pathlib.Path(tempfile.mkdtemp()) / "audit.jsonl")
    >>> rec = log.append("read", {"version_id": "ab12", "split": "train"})
    >>> rec["seq"], len(rec["hash"])
    (0, 64)
    >>> log.verify()
    []
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fpload.errors import DataError
from fpload.formats import canonical_json

GENESIS = "0" * 64
RECORD_KEYS = ("seq", "kind", "time", "host", "user", "payload", "prev", "hash")


class LogCorruptError(DataError):
    """A record log whose chain, head or lines do not check out (``verify`` lists every problem)."""


def record_hash(record: dict[str, Any]) -> str:
    """sha256 of a record's canonical JSON without its ``hash`` field."""
    return hashlib.sha256(canonical_json({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return str(os.getuid())


class RecordLog:
    """An append-only, hash-chained JSON-lines file (see the module docstring).

    ``kind`` names what a record is (``lineage``, ``read``, ``redaction``, ``receipt``, ...);
    ``payload`` must be a JSON object. Reading never locks.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")

    def __repr__(self) -> str:
        return f"RecordLog({str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------
    def _lines(self) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return
        with fh:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    obj = json.loads(raw)
                except ValueError:
                    yield lineno, None, raw.decode("utf-8", "replace")[:80]
                    continue
                yield lineno, obj if isinstance(obj, dict) else None, raw.decode("utf-8", "replace")[:80]

    def records(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        """The records in order (of one ``kind`` if given); an unreadable line is a LogCorruptError."""
        for lineno, rec, text in self._lines():
            if rec is None:
                raise LogCorruptError(f"{self.path}:{lineno}: not a JSON record ({text!r}); run `fpload audit verify`")
            if kind is None or rec.get("kind") == kind:
                yield rec

    def head(self) -> dict[str, Any]:
        """``{"count": N, "hash": last hash}`` of the log as it is now (GENESIS when empty)."""
        count, last = 0, GENESIS
        for rec in self.records():
            count, last = count + 1, rec.get("hash", "")
        return {"count": count, "hash": last}

    def verify(self) -> list[str]:
        """Every problem of the log, one line each naming the record; empty when it checks out."""
        problems: list[str] = []
        prev, count = GENESIS, 0
        for lineno, rec, text in self._lines():
            where = f"{self.path}:{lineno}"
            if rec is None:
                problems.append(f"{where}: not a JSON record ({text!r})")
                prev = None  # type: ignore[assignment]
                count += 1
                continue
            if set(rec) != set(RECORD_KEYS):
                problems.append(f"{where}: fields {sorted(rec)} are not the record fields {list(RECORD_KEYS)}")
            if rec.get("seq") != count:
                problems.append(f"{where}: seq {rec.get('seq')!r} where {count} was expected "
                                "(a record was deleted, inserted or reordered)")
            if prev is not None and rec.get("prev") != prev:
                problems.append(f"{where}: prev does not match the hash of the record before it "
                                "(a record before it was edited, deleted or reordered)")
            if rec.get("hash") != record_hash(rec):
                problems.append(f"{where}: hash does not match the record's content (the record was edited)")
            prev, count = rec.get("hash"), count + 1
        try:
            anchor = json.loads(self.head_path.read_text())
        except FileNotFoundError:
            if count:
                problems.append(f"{self.head_path}: missing (the log has {count} records)")
            return problems
        except ValueError:
            problems.append(f"{self.head_path}: not JSON")
            return problems
        if anchor.get("count") != count or anchor.get("hash") != prev:
            problems.append(f"{self.head_path}: says {anchor.get('count')} records ending in "
                            f"{str(anchor.get('hash'))[:12]}, the log has {count} ending in {str(prev)[:12]} "
                            "(records were removed from its end, or appended without the log)")
        return problems

    # -- writing ---------------------------------------------------------------------------
    def append(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Append one record (under an exclusive lock), fsync it, update the head; returns it.

        Refuses (LogCorruptError) to extend a log whose last record does not check out; reads only
        that record, so an append costs the same at any length of the log.
        """
        if not kind or not isinstance(kind, str):
            raise ValueError(f"record kind must be a non-empty string, got {kind!r}")
        if not isinstance(payload, dict):
            raise ValueError(f"record payload must be a JSON object, got {type(payload).__name__}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = self._tail()
            record = {"seq": seq, "kind": kind,
                      "time": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                      "host": socket.gethostname(), "user": _user(), "payload": payload, "prev": prev}
            record["hash"] = record_hash(record)
            os.write(fd, canonical_json(record) + b"\n")
            os.fsync(fd)
            tmp = self.head_path.with_name(f".{self.head_path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"count": seq + 1, "hash": record["hash"]}, sort_keys=True) + "\n")
            os.replace(tmp, self.head_path)
            return record
        finally:
            os.close(fd)  # releases the lock

    def _tail(self) -> tuple[int, str]:
        """(next seq, last hash), checking the last record's own hash.

        Reads only the log's last line, so an append costs the same at any length; the records
        before it are :meth:`verify`'s to check.
        """
        raw = self._last_line()
        if raw is None:
            return 0, GENESIS
        try:
            last = json.loads(raw)
        except ValueError:
            last = None
        if not isinstance(last, dict):
            count = sum(1 for _ in self._lines())
            raise LogCorruptError(f"{self.path}: line {count} is not a JSON record "
                                  f"({raw.decode('utf-8', 'replace')[:80]!r}); run `fpload audit verify`")
        seq = last.get("seq")
        if last.get("hash") != record_hash(last) or not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise LogCorruptError(f"{self.path}: its last record (seq {seq!r}) does not check "
                                  "out; run `fpload audit verify`")
        return seq + 1, last["hash"]

    def _last_line(self) -> bytes | None:
        """The last non-empty line of the log (None when it has none), read from its end."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return None
        with fh:
            end = fh.seek(0, os.SEEK_END)
            tail, pos = b"", end
            while pos > 0:
                step = min(1 << 16, pos)
                pos -= step
                fh.seek(pos)
                tail = fh.read(step) + tail
                body = tail.rstrip(b"\n")
                if b"\n" in body or pos == 0:
                    line = body.rsplit(b"\n", 1)[-1]
                    return line if line.strip() else None
            return None
