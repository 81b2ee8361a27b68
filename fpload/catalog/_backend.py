"""Where a catalog's tables live: one interface, two stores (a DuckDB file, a PostgreSQL database).

The :class:`~fpload.catalog.Catalog` holds the logic (revisions, digests, ingest, update, erasure)
and asks its :class:`Backend` only for storage operations: run shared SQL, hold a write
transaction, insert rows, fetch a revision's rows as Arrow. SQL is written once in the dialect both
stores agree on, with ``?`` placeholders (DuckDB's; the PostgreSQL backend turns them into
psycopg's ``%s``). Queries never run in the store: they run in DuckDB over the Arrow snapshot of
one revision (:mod:`fpload.catalog._query`), whichever the store.

A catalog location is a path (a DuckDB file, the default) or a ``postgresql://`` URL;
:func:`open_backend` picks the store. The password of a URL comes from ``PGPASSWORD`` or
``~/.pgpass`` (libpq reads them); messages name the URL without it (:func:`safe_url`).

Example::

    b = open_backend("postgresql://fp@db.internal:5432/catalog", read_only=True, lock_timeout=5)
    b.fetchall("SELECT max(rev) FROM revisions")
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

#: URL schemes that name a PostgreSQL catalog
PG_SCHEMES = ("postgresql", "postgres")


def is_url(location: str | Path) -> bool:
    """Whether a catalog location is a PostgreSQL URL (else it is a DuckDB file path).

    >>> is_url("postgresql://fp@db/catalog"), is_url("catalog.duckdb")
    (True, False)
    """
    return isinstance(location, str) and location.split("://", 1)[0].lower() in PG_SCHEMES and "://" in location


def safe_url(url: str) -> str:
    """The URL without any password, for messages and records.

    >>> safe_url("postgresql://fp:secret@db:5432/cat?sslmode=require")
    'postgresql://fp@db:5432/cat?sslmode=require'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Backend(ABC):
    """Storage operations a Catalog needs. ``name`` is how messages call the catalog."""

    name: str
    read_only: bool

    @abstractmethod
    def exists(self) -> bool:
        """Whether the catalog's tables exist (without creating anything)."""

    @abstractmethod
    def connect(self) -> None:
        """Connect if not connected (waiting for a locked file up to the lock timeout)."""

    @abstractmethod
    def release(self) -> None:
        """Drop the connection; the next call reconnects."""

    @abstractmethod
    def fetchall(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        """Run shared SQL (``?`` placeholders) and return all rows."""

    @abstractmethod
    def execute(self, sql: str, params: list | tuple = ()) -> None:
        """Run one shared SQL statement, discarding any result."""

    _depth: int = 0  # write() nesting: inner calls join the outermost transaction

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """A write transaction holding the catalog's writer lock: commits on success, rolls back
        on error. Two writers wait for each other; readers never wait for it. A ``write()`` inside
        another joins it."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            with self._transaction():
                yield
        finally:
            self._depth = 0

    @abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        """The outermost write transaction of this store, with its writer lock."""

    @abstractmethod
    def create_tables(self, ddl_types: dict[str, str] | None = None) -> None:
        """Create the schema's tables (inside :meth:`write`)."""

    @abstractmethod
    def insert_rows(self, table: pa.Table) -> None:
        """Append rows (sample columns plus ``valid_from``, ``valid_to``) to ``sample_rows``."""

    @abstractmethod
    def arrow(self, select: str) -> pa.Table:
        """The rows of a SELECT over ``sample_rows`` as Arrow, with DuckDB's types for the columns
        (so both stores give the same table)."""

    @abstractmethod
    def has_table(self, name: str) -> bool:
        """Whether ``name`` is a table of the catalog."""

    @abstractmethod
    def compact(self) -> None:
        """Rewrite storage so rows deleted by an erasure leave no bytes behind."""

    @abstractmethod
    def errors(self) -> contextlib.AbstractContextManager[None]:
        """Turn the store's errors on reading into one-line :class:`~fpload.errors.CatalogError`."""

    def close(self) -> None:
        self.release()

    @contextlib.contextmanager
    def duckdb_view(self, where: str) -> Iterator[Any]:
        """A DuckDB connection where ``sample_rows`` holds (at least) the rows matching ``where``
        (SQL over ``valid_from``/``valid_to``): for analyses written in DuckDB SQL (catalog diff)."""
        import duckdb

        from fpload.catalog._schema import SAMPLE_COLUMNS

        cols = ", ".join([*SAMPLE_COLUMNS, "valid_from", "valid_to"])
        rows = self.arrow(f"SELECT {cols} FROM sample_rows WHERE {where}")
        con = duckdb.connect(":memory:")
        try:
            con.register("_rows", rows)
            con.execute("CREATE TABLE sample_rows AS SELECT * FROM _rows")
            con.unregister("_rows")
            yield con
        finally:
            con.close()


def open_backend(location: str | Path, *, read_only: bool, lock_timeout: float) -> Backend:
    """The backend for a catalog location: a ``postgresql://`` URL, else a DuckDB file path."""
    if is_url(location):
        from fpload.catalog._pg_backend import PgBackend

        return PgBackend(str(location), read_only=read_only, lock_timeout=lock_timeout)
    from fpload.catalog._duckdb_backend import DuckDBBackend

    return DuckDBBackend(location, read_only=read_only, lock_timeout=lock_timeout)
