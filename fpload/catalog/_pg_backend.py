"""The team catalog store: a PostgreSQL database (``postgresql://user@host:port/db``), via psycopg 3.

- **Credentials**: never in the URL in practice; libpq reads ``PGPASSWORD`` or ``~/.pgpass``
  (``PGPASSFILE``), and every message names the URL without a password (:func:`safe_url`).
- **Writers** hold ``pg_advisory_xact_lock`` on one key for their whole transaction, from reading
  what the catalog holds to writing the revision: two ingests or updates at once both land, one
  after the other, as two revisions, and neither loses the other's rows. The wait is bounded by the
  catalog lock timeout (``FPLOAD_CATALOG_TIMEOUT``), then :class:`CatalogBusyError`.
- **Readers** use plain MVCC reads (a read-only session): they never wait for a writer and never
  hold one up.
- **Snapshots** leave the server as one ``COPY ... TO STDOUT (FORMAT csv)`` stream, parsed by
  pyarrow and typed by DuckDB, so a revision's table is the same, type for type, as the DuckDB
  file's.

Example::

    b = PgBackend("postgresql://fp@db.internal/catalog", read_only=True, lock_timeout=60)
"""

from __future__ import annotations

import contextlib
import io
import re
from typing import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv

from fpload.catalog._backend import Backend, safe_url
from fpload.catalog._schema import SAMPLE_COLUMNS, ddl
from fpload.errors import CatalogBusyError, CatalogError

#: how the schema's DuckDB types are stored in PostgreSQL (``extra`` stays text: its exact bytes
#: enter the revision digest, which jsonb would reformat)
PG_TYPES = {"TINYINT": "SMALLINT", "DOUBLE": "DOUBLE PRECISION", "JSON": "TEXT", "VARCHAR[]": "TEXT[]"}
#: the advisory lock writers hold (one per database): b"fpload" as a number
WRITER_LOCK = 0x66706C6F6164
#: seconds to wait for the server to answer a connection, unless the URL says (``connect_timeout``)
CONNECT_TIMEOUT = 10
_TYPES = {**SAMPLE_COLUMNS, "valid_from": "INTEGER", "valid_to": "INTEGER"}
_PLACEHOLDER = re.compile(r"\?")


def _pg_sql(sql: str) -> str:
    """Shared SQL (``?`` placeholders) in psycopg's form (``%s``, a literal ``%`` doubled)."""
    return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))


def _reason(err: Exception) -> str:
    """libpq's reason for a failed connection, in one line."""
    text = " ".join(str(err).split())
    if "failed: " in text:
        text = text.rsplit("failed: ", 1)[1]
    return text.replace("FATAL: ", "").strip()


class PgBackend(Backend):
    """A catalog in a PostgreSQL database."""

    def __init__(self, url: str, *, read_only: bool, lock_timeout: float):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise CatalogError(f"catalog {safe_url(url)}: PostgreSQL catalogs need psycopg "
                               "(pip install 'fpload[postgres]')") from None
        self.url = url
        self.name = safe_url(url)
        self.path = self.name
        self.read_only = read_only
        self._timeout = lock_timeout
        self._conn = None
        self._tx = None
        self._depth = 0

    # -- connection ------------------------------------------------------------------------
    @property
    def con(self):
        if self._conn is None:
            self.connect()
        return self._conn

    def connect(self) -> None:
        if self._conn is not None:
            return
        import psycopg

        opts = "-c DateStyle=ISO -c extra_float_digits=1 -c TimeZone=UTC"
        if self.read_only:
            opts += " -c default_transaction_read_only=on"
        kwargs = {"autocommit": True, "options": opts}
        if "connect_timeout" not in self.url:
            kwargs["connect_timeout"] = CONNECT_TIMEOUT
        try:
            self._conn = psycopg.connect(self.url, **kwargs)
        except psycopg.OperationalError as err:
            reason = _reason(err)
            hint = ""
            if "password" in reason:
                hint = " (give the password in PGPASSWORD or a ~/.pgpass line for this host, port, database and user)"
            elif "does not exist" in reason and "database" in reason:
                hint = " (create it first, e.g. `createdb`, or ask your database administrator)"
            elif "refused" in reason or "timeout" in reason or "could not translate" in reason:
                hint = " (is the server running and reachable from here?)"
            raise CatalogError(f"cannot connect to catalog {self.name}: {reason}{hint}") from None
        except psycopg.ProgrammingError as err:   # a malformed URL
            raise CatalogError(f"invalid catalog URL {self.name}: {_reason(err)}") from None

    def release(self) -> None:
        if self._conn is not None and self._depth == 0:
            conn, self._conn = self._conn, None
            conn.close()

    # -- statements ------------------------------------------------------------------------
    def fetchall(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        cur = self.con.execute(_pg_sql(sql), list(params))
        return cur.fetchall() if cur.description is not None else []

    def execute(self, sql: str, params: list | tuple = ()) -> None:
        self.con.execute(_pg_sql(sql), list(params))

    def exists(self) -> bool:
        return self.has_table("meta")

    def has_table(self, name: str) -> bool:
        return bool(self.fetchall("SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                                  "AND table_schema = current_schema()", [name])[0][0])

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        import psycopg

        con = self.con
        with con.transaction():
            self._lock(con, psycopg)
            yield

    def _lock(self, con, psycopg) -> None:
        """Take the writer lock for this transaction, waiting up to the lock timeout."""
        busy = CatalogBusyError(f"catalog {self.name} is being written by another process; waited "
                                f"{self._timeout:g} s for it (set FPLOAD_CATALOG_TIMEOUT to wait longer)")
        if self._timeout == 0:
            if not con.execute("SELECT pg_try_advisory_xact_lock(%s)", [WRITER_LOCK]).fetchone()[0]:
                raise busy
            return
        con.execute(f"SET LOCAL lock_timeout = '{int(self._timeout * 1000)}ms'")
        try:
            with con.transaction():   # a savepoint: a timed-out wait leaves the transaction usable
                con.execute("SELECT pg_advisory_xact_lock(%s)", [WRITER_LOCK])
        except psycopg.errors.LockNotAvailable:
            raise busy from None
        con.execute("SET LOCAL lock_timeout = 0")

    def create_tables(self, ddl_types: dict[str, str] | None = None) -> None:
        for stmt in ddl(PG_TYPES).split(";"):
            if stmt.strip():
                self.con.execute(stmt)
        # writers look up a sample's open row; as-of reads scan by revision
        self.con.execute("CREATE INDEX IF NOT EXISTS sample_rows_open ON sample_rows (sample_id) "
                         "WHERE valid_to IS NULL")
        self.con.execute("CREATE INDEX IF NOT EXISTS sample_rows_from ON sample_rows (valid_from)")

    def insert_rows(self, table: pa.Table) -> None:
        cols = table.column_names
        with self.con.cursor() as cur:
            with cur.copy(f"COPY sample_rows ({', '.join(cols)}) FROM STDIN") as copy:
                for row in table.to_pylist():
                    copy.write_row([row[c] for c in cols])

    def arrow(self, select: str) -> pa.Table:
        """Run ``select`` in PostgreSQL, stream it out as CSV, and type it as DuckDB would."""
        import duckdb

        cur = self.con.execute(f"SELECT * FROM ({select}) q LIMIT 0")
        names = [d.name for d in cur.description]
        outer = ", ".join(f"array_to_json({n})::text AS {n}" if _TYPES.get(n, "").endswith("[]") else n
                          for n in names)
        buf = io.BytesIO()
        with self.con.cursor() as c:
            with c.copy(f"COPY (SELECT {outer} FROM ({select}) q) TO STDOUT (FORMAT csv)") as copy:
                for chunk in copy:
                    buf.write(chunk)
        buf.seek(0)
        if not buf.getbuffer().nbytes:   # no rows: pyarrow reads no empty CSV
            raw = pa.table({n: pa.array([], pa.string()) for n in names})
        else:
            raw = self._read_csv(buf, names)
        typed = []
        for n in names:
            t = _TYPES.get(n, "VARCHAR")
            typed.append(f"from_json({n}, '[\"VARCHAR\"]') AS {n}" if t.endswith("[]") else f"CAST({n} AS {t}) AS {n}")
        con = duckdb.connect(":memory:")
        try:
            con.register("_raw", raw)
            return con.sql(f"SELECT {', '.join(typed)} FROM _raw").to_arrow_table()
        finally:
            con.close()

    @staticmethod
    def _read_csv(buf: io.BytesIO, names: list[str]) -> pa.Table:
        """PostgreSQL's CSV: NULL is an empty field, an empty string a quoted one (``""``)."""
        return pacsv.read_csv(
            buf, read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 null_values=[""], strings_can_be_null=True,
                                                 quoted_strings_can_be_null=False))

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
            raise
        except psycopg.OperationalError as err:
            raise CatalogError(f"catalog {self.name}: lost the server: {_reason(err)}") from None

    def compact(self) -> None:
        """``VACUUM FULL`` rewrites ``sample_rows`` without the deleted rows' tuples. (The server's
        write-ahead log and backups keep them until they are recycled: see the README.)"""
        self.con.execute("VACUUM FULL sample_rows")
        self.release()
