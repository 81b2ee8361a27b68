"""The embedded catalog store: one DuckDB file (the default, for one machine, the demo and tests).

DuckDB lets one process write a file or many read it (see :mod:`fpload.catalog._lock`), so the
connection is held only while working: it is made on first use and dropped after each write and
whenever the Catalog releases it.

Example::

    b = DuckDBBackend("catalog.duckdb", read_only=False, lock_timeout=60)
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa

from fpload.catalog import _lock
from fpload.catalog._backend import Backend
from fpload.catalog._schema import SAMPLE_COLUMNS, ddl
from fpload.errors import CatalogError

_COLS = ", ".join([*SAMPLE_COLUMNS, "valid_from", "valid_to"])


class DuckDBBackend(Backend):
    """A catalog in a DuckDB file (``":memory:"``: in memory, kept until closed)."""

    def __init__(self, path: str | Path, *, read_only: bool, lock_timeout: float):
        self.path = Path(path)
        self.name = str(path)
        self.read_only = read_only
        self._timeout = lock_timeout
        self._in_memory = str(path) == ":memory:"
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._closed = False
        self._depth = 0

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            self.connect()
        return self._conn

    def exists(self) -> bool:
        if self._in_memory:
            return self._conn is not None and self.has_table("meta")
        return self.path.exists()

    def connect(self) -> None:
        if self._conn is None:
            self._conn = _lock.connect(self.path, read_only=self.read_only, timeout=self._timeout)

    def release(self) -> None:
        if self._conn is not None and self._depth == 0 and not (self._in_memory and not self._closed):
            conn, self._conn = self._conn, None
            conn.close()

    def close(self) -> None:
        self._closed = True
        self.release()

    def fetchall(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()

    def execute(self, sql: str, params: list | tuple = ()) -> None:
        self.con.execute(sql, list(params))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # the read-write connection holds DuckDB's exclusive file lock: no other process writes
        con = self.con
        con.execute("BEGIN")
        try:
            yield
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def create_tables(self, ddl_types: dict[str, str] | None = None) -> None:
        self.con.execute(ddl())

    def insert_rows(self, table: pa.Table) -> None:
        self.con.register("_new_rows", table)
        try:
            self.con.execute(f"INSERT INTO sample_rows ({_COLS}) SELECT {_COLS} FROM _new_rows")
        finally:
            self.con.unregister("_new_rows")

    def arrow(self, select: str) -> pa.Table:
        return self.con.sql(select).to_arrow_table()

    def has_table(self, name: str) -> bool:
        return bool(self.con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                     [name]).fetchall()[0][0])

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except duckdb.CatalogException:
            raise
        except duckdb.Error as err:
            raise CatalogError(f"catalog {self.name} is damaged or unreadable: {str(err).splitlines()[0]} "
                               "(restore it from a backup)") from None

    @contextlib.contextmanager
    def duckdb_view(self, where: str) -> Iterator[duckdb.DuckDBPyConnection]:
        yield self.con   # the file's own sample_rows

    def compact(self) -> None:
        """Rewrite the file (``COPY FROM DATABASE``) to ``<catalog>.erase-tmp``, fsync it and rename it
        over the catalog: DuckDB keeps deleted rows' bytes in free blocks, which CHECKPOINT and VACUUM
        leave readable. A crash leaves the old file (rows deleted, blocks not yet freed); a rerun
        compacts again. Run it while no other process writes the catalog."""
        if self._in_memory:
            return
        path = self.path
        tmp = path.with_name(path.name + ".erase-tmp")
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        con = self.con
        try:
            con.execute("CHECKPOINT")
            name = con.execute("SELECT current_database()").fetchall()[0][0]
            con.execute(f"ATTACH '{str(tmp).replace(chr(39), chr(39) * 2)}' AS fpload_fresh")
            try:
                con.execute(f'COPY FROM DATABASE "{name}" TO fpload_fresh')
            finally:
                con.execute("DETACH fpload_fresh")
        finally:
            self.release()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
