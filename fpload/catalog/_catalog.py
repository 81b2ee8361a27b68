"""The Catalog: a revisioned DuckDB file of samples and their metadata."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from fpload.catalog import _ingest, _lock
from fpload.catalog._backend import is_url, open_backend
from fpload.catalog._catalog_ingest import IngestMixin
from fpload.catalog._query import load_filter, run_where, select_ids
from fpload.catalog._sqlcheck import parse_where
from fpload.catalog._schema import (ADDED_IN, CATALOG_SCHEMA_VERSION, MIGRATIONS, READABLE_SCHEMA_VERSIONS,
                                    SAMPLE_COLUMNS, UPDATABLE)
from fpload.errors import CatalogError, NoMatchError, RevisionNotFoundError, UsageError
from fpload.formats import canonical_json

_COLS = ", ".join(SAMPLE_COLUMNS)


@dataclass(frozen=True)
class Revision:
    """One catalog revision: what an ingest or change did, and a digest chaining all changes."""

    rev: int
    created_at: datetime
    op: str
    message: str | None
    added: int
    changed: int
    samples: int
    digest: str

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["created_at"] = self.created_at.isoformat()
        return d


class _SnapshotCache:
    """A small in-process LRU of revision snapshots (Arrow tables are immutable, so shared)."""

    def __init__(self, entries: int = 4, max_bytes: int = 4 << 30):
        self.entries, self.max_bytes = entries, max_bytes
        self._d: OrderedDict[tuple, pa.Table] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> pa.Table | None:
        with self._lock:
            t = self._d.get(key)
            if t is not None:
                self._d.move_to_end(key)
            return t

    def put(self, key: tuple, table: pa.Table) -> None:
        with self._lock:
            self._d[key] = table
            self._d.move_to_end(key)
            while len(self._d) > self.entries or (
                    len(self._d) > 1 and sum(t.nbytes for t in self._d.values()) > self.max_bytes):
                self._d.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


_snapshot_cache = _SnapshotCache()


def _row_hash(row: dict[str, Any]) -> str:
    content = {c: (row[c].isoformat() if isinstance(row[c], (datetime, date)) else row[c]) for c in SAMPLE_COLUMNS}
    return hashlib.sha256(canonical_json(content)).hexdigest()


class Catalog(IngestMixin):
    """A revisioned catalog of fingerprint samples in one DuckDB file.

    Every ingest or change creates a revision; queries run as of any revision.

    Example::

        cat = open_catalog("catalog.duckdb")
        cat.ingest("captures/metadata.csv")                 # revision 1
        cat.update("subject_id = 'S17'", {"consent": False})  # revision 2: consent withdrawn
        cat.query("finger IN (2, 7) AND consent", revision=1)
    """

    def __init__(self, path: str | Path, *, read_only: bool = False, lock_timeout: float | None = None):
        self._backend = open_backend(path, read_only=read_only, lock_timeout=_lock.lock_timeout(lock_timeout))
        #: the catalog's location: a DuckDB file's Path, or a PostgreSQL URL without its password
        self.path = self._backend.path
        self.read_only = read_only
        self._closed = False
        self._id: str | None = None
        self._schema_version = CATALOG_SCHEMA_VERSION
        try:
            exists = self._backend.exists()
            if read_only and not exists:
                raise CatalogError(f"catalog not found: {self.path} (create it with `fpload catalog ingest`)")
            self._connect(create=not exists)
        finally:
            self.release()

    # -- lifecycle -------------------------------------------------------------------------
    # DuckDB lets one process write a file or many read it (see fpload.catalog._lock), so a Catalog
    # holds its connection only while it works: it connects on first use, and lets go after each
    # revision it commits and whenever ``release()`` is called (a pack does, once it has its snapshot).
    # A PostgreSQL catalog (fpload.catalog._pg_backend) follows the same rhythm.
    @property
    def _con(self):
        """The store's open connection, (re)connecting first if released."""
        if self._closed:
            raise CatalogError(f"catalog {self.path} is closed; open it again with open_catalog()")
        return self._backend.con

    def _connect(self, *, create: bool) -> None:
        self._backend.connect()
        try:
            # another process may have created it while this one waited for the lock
            if create:
                with self._backend.write():
                    if not self._backend.has_table("meta"):
                        self._create()
            self._check_schema()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Close the connection so other processes may write; the next use reconnects.

        >>> snap = cat.snapshot(); cat.release()   # long work on ``snap`` holds no lock  # doctest: +SKIP
        """
        self._backend.release()

    def _create(self) -> None:
        b = self._backend
        b.create_tables()
        b.execute("INSERT INTO meta VALUES ('schema_version', ?), ('catalog_id', ?)",
                  [str(CATALOG_SCHEMA_VERSION), uuid.uuid4().hex])
        b.execute("INSERT INTO revisions VALUES (0, ?, 'create', 'empty catalog', 0, 0, 0, ?)",
                  [datetime.now(timezone.utc).replace(tzinfo=None), hashlib.sha256(b"fpload-catalog").hexdigest()])

    def _check_schema(self) -> None:
        if not self._backend.has_table("meta"):
            kind = "a DuckDB file" if not is_url(str(self.path)) else "a database"
            raise CatalogError(f"{self.path} is {kind} but not an fpload catalog")
        found = self._one("SELECT value FROM meta WHERE key = 'schema_version'")
        readable = {str(v): v for v in READABLE_SCHEMA_VERSIONS}
        if found is None or found[0] not in readable:
            raise CatalogError(
                f"{self.path}: catalog schema version {found[0] if found else None!r} is not supported "
                f"(this fpload reads {', '.join(readable)})")
        self._schema_version = readable[found[0]]
        if self._schema_version < CATALOG_SCHEMA_VERSION and not self.read_only:
            self._migrate()

    def _migrate(self) -> None:
        """Bring an older catalog to :data:`CATALOG_SCHEMA_VERSION` in place, in one transaction
        (a crash leaves the old version, which the next writer migrates)."""
        with self._backend.write():
            for v in range(self._schema_version, CATALOG_SCHEMA_VERSION):
                for stmt in MIGRATIONS[v]:
                    self._backend.execute(stmt)
            self._backend.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                                  [str(CATALOG_SCHEMA_VERSION)])
        self._schema_version = CATALOG_SCHEMA_VERSION

    @property
    def schema_version(self) -> int:
        """The schema version of the file (an older one only while opened read-only)."""
        return self._schema_version

    @property
    def catalog_id(self) -> str:
        """The catalog's id (a random hex made at creation, kept by ``fpload catalog migrate``)."""
        return self._one("SELECT value FROM meta WHERE key = 'catalog_id'")[0]

    def _columns_sql(self, alias: str = "") -> str:
        """The select list of :data:`SAMPLE_COLUMNS`; columns the file's older schema lacks are NULL."""
        missing = {c: t for v, cols in ADDED_IN.items() if v > self._schema_version for c, t in cols.items()}
        pre = f"{alias}." if alias else ""
        return ", ".join(f"NULL::{missing[c]} AS {c}" if c in missing else f"{pre}{c}" for c in SAMPLE_COLUMNS)

    def close(self) -> None:
        """Close the catalog for good; a later use raises :class:`CatalogError`."""
        self._closed = True
        self._backend.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _one(self, sql: str, params: list | None = None):
        """First row of a query (fetching all, so no result stays open on the connection)."""
        if self._closed:
            raise CatalogError(f"catalog {self.path} is closed; open it again with open_catalog()")
        with self._damaged():
            rows = self._backend.fetchall(sql, params or [])
        return rows[0] if rows else None

    def _damaged(self):
        """Turn the store's errors on reading (a truncated file, a lost server) into one CatalogError."""
        return self._backend.errors()

    @contextlib.contextmanager
    def _writing(self):
        """One write transaction under the writer lock, from reading the head to committing the
        revision (so concurrent writers land one after the other); the connection is let go after."""
        if self._closed:
            raise CatalogError(f"catalog {self.path} is closed; open it again with open_catalog()")
        try:
            with self._backend.write():
                yield
        finally:
            self.release()  # let other processes in as soon as the revision is written

    # -- revisions -------------------------------------------------------------------------
    @property
    def head(self) -> int:
        """The latest revision number."""
        return self._one("SELECT max(rev) FROM revisions")[0]

    def revisions(self) -> list[Revision]:
        """All revisions, oldest first."""
        with self._damaged():
            rows = self._backend.fetchall("SELECT * FROM revisions ORDER BY rev")
        return [Revision(*r) for r in rows]

    def revision(self, rev: int | None = None) -> Revision:
        """One revision (the head when ``rev`` is None)."""
        rev = self.head if rev is None else rev
        row = self._one("SELECT * FROM revisions WHERE rev = ?", [rev])
        if row is None:
            raise RevisionNotFoundError(f"{self.path}: no revision {rev} (revisions 0–{self.head})")
        return Revision(*row)

    def _commit_revision(self, op: str, message: str | None, new_rows: list[dict[str, Any]],
                         closed_ids: list[str]) -> int:
        """Write a new revision: close ``closed_ids`` and insert ``new_rows``, in one transaction
        (the caller's :meth:`_writing`, when it read the rows under the writer lock)."""
        with self._writing():
            return self._commit_in_lock(op, message, new_rows, closed_ids)

    def _commit_in_lock(self, op: str, message: str | None, new_rows: list[dict[str, Any]],
                        closed_ids: list[str]) -> int:
        prev = self.revision()
        rev = prev.rev + 1
        # columns added by later schema versions are optional: rows made without them hold NULL
        optional = {c: None for cols in ADDED_IN.values() for c in cols}
        new_rows = [{**optional, **r} for r in new_rows]
        hashes = sorted(_row_hash(r) for r in new_rows) + sorted(f"-{s}" for s in closed_ids)
        digest = hashlib.sha256("\n".join([prev.digest, op, *hashes]).encode()).hexdigest()
        b = self._backend
        if closed_ids:
            b.execute("UPDATE sample_rows SET valid_to = ? WHERE valid_to IS NULL AND sample_id IN "
                      "(SELECT unnest(?::VARCHAR[]))", [rev, closed_ids])
        if new_rows:
            b.insert_rows(pa.Table.from_pylist(
                [{**{c: r[c] for c in SAMPLE_COLUMNS}, "valid_from": rev, "valid_to": None} for r in new_rows],
                schema=self._arrow_schema(with_validity=True)))
        samples = self._one("SELECT count(*) FROM sample_rows WHERE valid_to IS NULL")[0]
        added = len(new_rows) - len(closed_ids) if op != "update" else 0
        changed = len(closed_ids)
        b.execute("INSERT INTO revisions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  [rev, datetime.now(timezone.utc).replace(tzinfo=None), op, message,
                   added, changed, samples, digest])
        return rev

    @staticmethod
    def _arrow_schema(with_validity: bool = False) -> pa.Schema:
        types = {"VARCHAR": pa.string(), "TINYINT": pa.int8(), "INTEGER": pa.int32(),
                 "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(), "TIMESTAMP": pa.timestamp("us"),
                 "JSON": pa.string(), "VARCHAR[]": pa.list_(pa.string()), "DATE": pa.date32()}
        fields = [(c, types[t]) for c, t in SAMPLE_COLUMNS.items()]
        if with_validity:
            fields += [("valid_from", pa.int32()), ("valid_to", pa.int32())]
        return pa.schema(fields)

    # -- reading ---------------------------------------------------------------------------
    def snapshot(self, revision: int | None = None) -> pa.Table:
        """Every sample as of ``revision`` (the head when None), ordered by sample_id.

        Snapshots are cached in this process per (catalog id, revision, digest, latest erasure), so
        repeated queries of one revision do not read the store again; an erasure (which deletes
        rows of old revisions) makes new keys.
        """
        rev = self.revision(revision)
        with self._damaged():
            if self._id is None:
                self._id = self.catalog_id
            erased = self._backend.fetchall("SELECT digest FROM revisions WHERE op = 'erase' ORDER BY rev DESC LIMIT 1")
            key = (self._id, rev.rev, rev.digest, erased[0][0] if erased else None, self._schema_version)
            snap = _snapshot_cache.get(key)
            if snap is None:
                snap = self._backend.arrow(
                    f"SELECT {self._columns_sql()} FROM sample_rows WHERE valid_from <= {rev.rev} AND "
                    f"(valid_to IS NULL OR valid_to > {rev.rev})").sort_by("sample_id")
                _snapshot_cache.put(key, snap)
            return snap

    def query(self, where: str | None = None, *, filter: str | Path | None = None,
              revision: int | None = None, columns: list[str] | None = None,
              limit: int | None = None, timeout: float | None = None,
              memory_limit: str | None = None) -> pa.Table:
        """Samples matching a SQL WHERE expression and/or a YAML filter file, as of a revision.

        The query is checked against an allow-list and runs read-only in a sandbox, stopped after
        ``timeout`` seconds or at ``memory_limit`` (defaults: ``FPLOAD_QUERY_TIMEOUT`` /
        ``FPLOAD_QUERY_MEMORY``, else 30 s and 2GB); it selects ids, and the rows are the
        snapshot's own (see :mod:`fpload.catalog._query`).

        >>> cat.query("finger IN (2, 7) AND quality >= 40 AND consent")   # doctest: +SKIP
        >>> cat.query("json_extract_string(extra, '$.site') = 'lab-a'", timeout=5, memory_limit="512MB")  # doctest: +SKIP
        """
        where = combine_where(where, filter)
        return run_where(self.snapshot(revision), where, columns=columns, limit=limit, timeout=timeout,
                         memory_limit=memory_limit)

    def stats(self, revision: int | None = None) -> dict[str, Any]:
        """Counts of samples, subjects, fingers, sensors, splits and consent as of a revision."""
        snap = self.snapshot(revision)
        con = duckdb.connect(":memory:")
        con.register("s", snap)

        def counts(col: str) -> dict[str, int]:
            rows = con.execute(f"SELECT coalesce(CAST({col} AS VARCHAR), '(none)'), count(*) FROM s "
                               f"GROUP BY 1 ORDER BY 1").fetchall()
            return {k: v for k, v in rows}

        total, subjects, qmin, qmean, qmax = con.execute(
            "SELECT count(*), count(DISTINCT subject_id), min(quality), avg(quality), max(quality) FROM s"
        ).fetchall()[0]
        out = {
            "revision": self.revision(revision).rev,
            "samples": total,
            "subjects": subjects,
            "quality": {"min": qmin, "mean": qmean, "max": qmax},
            "finger": counts("finger"), "sensor": counts("sensor"), "split": counts("split"),
            "consent": counts("consent"), "synthetic": counts("synthetic"), "format": counts("format"),
        }
        con.close()
        return out

    # -- writing ---------------------------------------------------------------------------
    def _current_rows(self, sample_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not sample_ids:
            return {}
        with self._damaged():
            rows = self._backend.fetchall(
                f"SELECT {self._columns_sql()} FROM sample_rows WHERE valid_to IS NULL AND sample_id IN "
                "(SELECT unnest(?::VARCHAR[]))", [sample_ids])
        cols = list(SAMPLE_COLUMNS)
        return {r[0]: dict(zip(cols, r)) for r in rows}

    def update(self, where: str, changes: dict[str, Any], *, message: str | None = None,
               timeout: float | None = None, memory_limit: str | None = None) -> tuple[int | None, int]:
        """Change fields of the samples matching ``where``; returns ``(revision, samples changed)``.

        Only :data:`UPDATABLE` fields may change. Old values stay readable at older revisions.
        ``where`` selects ids in the query sandbox over the head's snapshot (never against the
        catalog file); those samples are then changed by id, each once. A query matching no sample
        raises :class:`NoMatchError`; ``(None, 0)`` means every matched sample already held the
        values. ``timeout`` / ``memory_limit`` bound the query as in :meth:`query`.

        >>> cat.update("subject_id = 'S17'", {"consent": False}, message="consent withdrawn")  # doctest: +SKIP
        """
        if not changes:
            raise UsageError("nothing to change: give at least one field=value")
        bad = [k for k in changes if k not in UPDATABLE]
        if bad:
            raise UsageError(f"field '{bad[0]}' cannot be changed (changeable: {', '.join(UPDATABLE)})")
        probe = {"file": "x", "subject_id": "x", "finger": 0, "impression": 0, "sensor": "x", "ppi": 1,
                 "consent": True}
        try:
            parsed = _ingest.parse_row({**probe, **changes})
        except ValueError as err:
            raise UsageError(f"bad value: {err}") from None
        values = {k: parsed[k] for k in changes}
        with self._writing():   # select and change under the writer lock: no lost update
            head = self.revision()
            matched = select_ids(self.snapshot(head.rev), where, timeout=timeout, memory_limit=memory_limit)
            if not matched:
                raise NoMatchError(f"query {where!r} matches no sample at revision {head.rev} of {self.path}: "
                                   "nothing changed (check it with `fpload catalog query`)")
            current = self._current_rows(matched)
            new_rows = []
            for sid in matched:
                row = dict(current[sid])
                if all(row[k] == v for k, v in values.items()):
                    continue
                row.update(values)
                new_rows.append(row)
            if not new_rows:
                return None, 0
            closed = [r["sample_id"] for r in new_rows]
            desc = ", ".join(f"{k}={v}" for k, v in values.items())
            rev = self._commit_in_lock("update", message or f"set {desc} where {where}", new_rows, closed)
            return rev, len(new_rows)

    def set_values(self, column: str, values: dict[str, Any], message: str) -> tuple[int | None, int]:
        """Set one :data:`UPDATABLE` column per sample (``{sample_id: value}``) in one revision.

        Returns ``(revision, samples changed)``; ``(None, 0)`` when no value differs. Every
        sample id must be in the catalog's head; ``message`` is stored with the revision (say
        where the values came from, e.g. the extractor and its version).

        >>> cat.set_values("quality", {"3f1c...": 71.5}, "quality from features of all/6aac")  # doctest: +SKIP
        """
        if column not in UPDATABLE:
            raise UsageError(f"field '{column}' cannot be changed (changeable: {', '.join(UPDATABLE)})")
        if not values:
            return None, 0
        probe = {"file": "x", "subject_id": "x", "finger": 0, "impression": 0, "sensor": "x", "ppi": 1,
                 "consent": True}
        parsed: dict[str, Any] = {}
        for sid, value in values.items():
            try:
                parsed[sid] = _ingest.parse_row({**probe, column: value})[column]
            except ValueError as err:
                raise UsageError(f"sample {sid}: bad value for {column}: {err}") from None
        with self._writing():
            current = self._current_rows(list(parsed))
            missing = [s for s in parsed if s not in current]
            if missing:
                raise UsageError(f"{len(missing)} sample id(s) are not in catalog {self.path} "
                                 f"(e.g. {', '.join(missing[:3])})")
            new_rows = []
            for sid, value in parsed.items():
                row = current[sid]
                if row[column] != value:
                    new_rows.append({**row, column: value})
            if not new_rows:
                return None, 0
            rev = self._commit_in_lock("update", message, new_rows, [r["sample_id"] for r in new_rows])
            return rev, len(new_rows)

    def erase_samples(self, sample_ids: list[str], *, erasure_id: str, reason: str,
                      who: str) -> dict[str, Any]:
        """Delete these samples' rows at every revision, record a redaction, rewrite the file.

        >>> cat.erase_samples(ids, erasure_id="9c1e...", reason="consent withdrawn", who="dpo")  # doctest: +SKIP
        """
        from fpload.catalog import _redact

        report = _redact.erase_rows(self, sample_ids, erasure_id=erasure_id, reason=reason, who=who)
        _redact.compact_catalog(self)
        return report


def combine_where(where: str | None, filter: str | Path | None) -> str | None:
    """AND a WHERE expression with a YAML filter file's expression (either may be absent).

    Each part is first checked on its own to be one allowed expression
    (:func:`fpload.catalog._sqlcheck.parse_where`), so putting it in parentheses cannot change
    what the other part selects.
    """
    parts = []
    if filter is not None:
        parts.append(load_filter(filter))
    if where is not None:
        parse_where(where)
        parts.append(f"({where})")
    return " AND ".join(parts) if parts else None


def open_catalog(path: str | Path, *, create: bool = True, read_only: bool = False,
                 lock_timeout: float | None = None) -> Catalog:
    """Open (and by default create) a catalog: a DuckDB file path, or a PostgreSQL URL.

    ``read_only`` catalogs share the file with other readers; a writer (or a reader, while another
    process writes) waits up to ``lock_timeout`` seconds (default: ``FPLOAD_CATALOG_TIMEOUT`` or 60)
    and then raises :class:`~fpload.errors.CatalogBusyError`. A ``postgresql://user@host:port/db``
    URL opens the catalog's tables in that (existing) database, creating them if needed; the
    password comes from ``PGPASSWORD`` or ``~/.pgpass``, never from logs. Writers there wait for
    each other up to ``lock_timeout``; readers never wait.

    >>> cat = open_catalog("catalog.duckdb")                               # doctest: +SKIP
    >>> reader = open_catalog("catalog.duckdb", read_only=True, lock_timeout=5)  # doctest: +SKIP
    >>> team = open_catalog("postgresql://fp@db.internal:5432/fingerprints")     # doctest: +SKIP
    """
    if not create and not is_url(path) and not Path(path).exists():
        raise CatalogError(f"catalog not found: {path} (create it with `fpload catalog ingest`)")
    if not create and is_url(path):
        return Catalog(path, read_only=True, lock_timeout=lock_timeout) if read_only else \
            _existing(path, lock_timeout)
    return Catalog(path, read_only=read_only, lock_timeout=lock_timeout)


def _existing(url: str, lock_timeout: float | None) -> Catalog:
    """A PostgreSQL catalog opened for writing that must already exist."""
    probe = Catalog(url, read_only=True, lock_timeout=lock_timeout)   # raises "catalog not found"
    probe.close()
    return Catalog(url, read_only=False, lock_timeout=lock_timeout)
