"""Read-only catalog queries: a SQL WHERE expression or a YAML filter, checked, then run in a sandbox.

A query is parsed by DuckDB's own parser and accepted only as one condition built from an
allow-list (:mod:`fpload.catalog._sqlcheck`). DuckDB's rendering of the accepted tree then runs
against the snapshot of the asked revision, handed as an Arrow table to a fresh in-memory DuckDB
that has file access, spilling, Python replacement scans and configuration changes switched off,
holds no other table, and stops the query at a time and a memory limit (:class:`QueryLimits`). The
query yields sample ids only; rows are then taken from the snapshot by id. So no query text can
change the catalog, add, repeat or alter a row, read another table, a setting or a file, or run
without bound.
"""

from __future__ import annotations

import re
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from fpload._frozen import read_yaml
from fpload._threads import thread_pool
from fpload.catalog import _derived
from fpload.catalog._schema import SAMPLE_COLUMNS
from fpload.catalog._sqlcheck import parse_where, render_select, render_value
from fpload.config import env_query_limit_texts
from fpload.errors import ConfigError, QueryError

#: a query's time limit in seconds, and its memory limit, unless set otherwise
DEFAULT_TIMEOUT = 30.0
DEFAULT_MEMORY = "2GB"

_OPS = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_FILTER_KEYS = {"where", "match", "description"}


def _literal(value: Any, where: str) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ConfigError(f"{where}: value {value!r} must be a number, string, boolean or null")


def compile_filter(spec: dict[str, Any], source: str = "filter") -> str:
    """Turn a YAML filter mapping into a SQL WHERE expression.

    ``match`` maps a column to a scalar (equality), a list (``IN``) or a mapping of operators
    (``eq ne lt lte gt gte in not_in is_null``); ``where`` adds a raw SQL expression. All parts
    are joined with ``AND``.

    >>> compile_filter({"match": {"finger": [2, 7], "quality": {"gte": 40}, "consent": True}})
    '(finger IN (2, 7)) AND (quality >= 40) AND (consent = TRUE)'
    """
    if not isinstance(spec, dict):
        raise ConfigError(f"{source}: a filter must be a mapping with 'where' and/or 'match'")
    unknown = set(spec) - _FILTER_KEYS
    if unknown:
        raise ConfigError(
            f"{source}: key '{sorted(unknown)[0]}': unknown key (allowed: {', '.join(sorted(_FILTER_KEYS))})"
        )
    parts: list[str] = []
    match = spec.get("match") or {}
    if not isinstance(match, dict):
        raise ConfigError(f"{source}: key 'match' must map column names to conditions")
    for column, cond in match.items():
        where = f"{source}: key 'match.{column}'"
        if column not in SAMPLE_COLUMNS:
            raise ConfigError(f"{where}: unknown column (allowed: {', '.join(SAMPLE_COLUMNS)})")
        if isinstance(cond, list):
            if not cond:
                raise ConfigError(f"{where}: an empty list matches nothing")
            parts.append(f"{column} IN ({', '.join(_literal(v, where) for v in cond)})")
        elif isinstance(cond, dict):
            for op, value in cond.items():
                if op in _OPS:
                    parts.append(f"{column} {_OPS[op]} {_literal(value, where)}")
                elif op in ("in", "not_in"):
                    if not isinstance(value, list) or not value:
                        raise ConfigError(f"{where}.{op}: expects a non-empty list")
                    neg = "NOT " if op == "not_in" else ""
                    parts.append(f"{column} {neg}IN ({', '.join(_literal(v, where) for v in value)})")
                elif op == "is_null":
                    parts.append(f"{column} IS {'' if value else 'NOT '}NULL")
                else:
                    allowed = ", ".join([*_OPS, "in", "not_in", "is_null"])
                    raise ConfigError(f"{where}: unknown operator '{op}' (allowed: {allowed})")
        else:
            parts.append(f"{column} = {_literal(cond, where)}")
    raw = spec.get("where")
    if raw is not None:
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigError(f"{source}: key 'where' must be a non-empty SQL expression")
        try:
            parse_where(raw.strip())
        except QueryError as err:
            raise ConfigError(f"{source}: key 'where': {err}") from None
        parts.append(raw.strip())
    if not parts:
        raise ConfigError(f"{source}: the filter selects nothing: give 'where' or 'match'")
    combined = " AND ".join(f"({p})" for p in parts)
    try:
        parse_where(combined)
    except QueryError as err:
        raise ConfigError(f"{source}: {err}") from None
    return combined


def load_filter(path: str | Path) -> str:
    """Read a YAML filter file (see ``configs/filters/``) into a WHERE expression."""
    return compile_filter(read_yaml(path, "filter"), source=str(path))


_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class QueryLimits:
    """The time and memory a query may use in the sandbox.

    >>> QueryLimits.resolve(timeout=5, memory_limit="512MB")
    QueryLimits(timeout=5.0, memory_limit='512MB')
    """

    timeout: float = DEFAULT_TIMEOUT
    memory_limit: str = DEFAULT_MEMORY

    @classmethod
    def resolve(cls, timeout: float | None = None, memory_limit: str | None = None) -> "QueryLimits":
        """The limits to use: the arguments given, else ``FPLOAD_QUERY_TIMEOUT`` /
        ``FPLOAD_QUERY_MEMORY`` (see :func:`env_query_limits`), else 30 s and 2GB."""
        env_timeout, env_memory = env_query_limits()
        if timeout is None:
            timeout = env_timeout
        elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0 \
                or timeout == float("inf"):
            raise ConfigError(f"query timeout {timeout!r} must be a positive number of seconds")
        memory = env_memory if memory_limit is None else _memory("query memory limit", memory_limit)
        return cls(float(timeout), memory)


def _memory(what: str, value: Any) -> str:
    text = str(value)
    m = _MEMORY.match(text)
    if isinstance(value, bool) or m is None or float(m.group(1)) <= 0:
        raise ConfigError(f"{what} {value!r} must be a positive size such as 2GB, 512MB or 1.5GiB")
    return f"{m.group(1)}{(m.group(2) or 'B').upper()}"


def env_query_limits() -> tuple[float, str]:
    """``FPLOAD_QUERY_TIMEOUT`` (seconds, default 30) and ``FPLOAD_QUERY_MEMORY`` (default 2GB)."""
    raw_timeout, raw_memory = env_query_limit_texts()
    raw = raw_timeout
    timeout = DEFAULT_TIMEOUT
    if raw:
        try:
            timeout = float(raw)
        except ValueError:
            timeout = -1.0
        if not 0 < timeout < float("inf"):
            raise ConfigError(f"FPLOAD_QUERY_TIMEOUT={raw!r} must be a positive number of seconds")
    memory = _memory("FPLOAD_QUERY_MEMORY", raw_memory) if raw_memory else DEFAULT_MEMORY
    return timeout, memory


#: the sandbox databases, one per memory limit (made once per process; queries use cursors of them)
_SANDBOXES: dict[str, duckdb.DuckDBPyConnection] = {}
_SANDBOX_LOCK = threading.Lock()
#: the column of row positions the sandbox sees beside the sample columns (no query may name it)
POSITION = "_fpload_position"
#: rows per Arrow batch the sandbox scans (DuckDB's row-group size): one thread per batch
SCAN_BATCH_ROWS = 122_880
#: below this many cells (rows × columns) the chosen rows are taken in this thread, above it one
#: column per thread (Arrow's take releases the GIL)
PARALLEL_TAKE_CELLS = 1_000_000


def _sandbox(limits: QueryLimits) -> duckdb.DuckDBPyConnection:
    """A fresh connection (a cursor) to an in-memory DuckDB that has no file access, no spilling to
    disk, no Python replacement scans, the memory limit set, and its configuration locked, so no
    query can change it. The database is made once per memory limit and holds no table: each
    query's cursor sees only what is registered on it, and closing the cursor drops that. (Queries
    at the same time in one process with the same memory limit share that limit.)"""
    with _SANDBOX_LOCK:
        db = _SANDBOXES.get(limits.memory_limit)
        if db is None:
            db = duckdb.connect(":memory:", config={"enable_external_access": False, "temp_directory": "",
                                                    "memory_limit": limits.memory_limit})
            db.execute("SET GLOBAL python_enable_replacements = false")
            db.execute("SET GLOBAL lock_configuration = true")
            if len(_SANDBOXES) >= 4:   # a few limits in use at most; a dropped one lives on in its open cursors
                _SANDBOXES.pop(next(iter(_SANDBOXES)))
            _SANDBOXES[limits.memory_limit] = db
        return db.cursor()


def _clean(message: str) -> str:
    first = message.strip().splitlines()[0]
    return re.sub(r"^[\w ]+ Error: ", "", first)


def _execute(con: duckdb.DuckDBPyConnection, sql: str, limits: QueryLimits, where: str | None) -> pa.Table:
    """Run ``sql`` on the sandbox within ``limits``; stopping it at the time limit or the memory
    limit raises :class:`QueryError` naming the limit and how to raise it."""
    timer = threading.Timer(limits.timeout, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.InterruptException:
        raise QueryError(
            f"query {where!r} stopped at its time limit of {limits.timeout:g} s; raise it with "
            "--query-timeout SECONDS or FPLOAD_QUERY_TIMEOUT (timeout= in Python)") from None
    except duckdb.OutOfMemoryException:
        raise QueryError(
            f"query {where!r} stopped at its memory limit of {limits.memory_limit}; raise it with "
            "--query-memory SIZE or FPLOAD_QUERY_MEMORY (memory_limit= in Python)") from None
    finally:
        timer.cancel()


def select_ids(snapshot: pa.Table, where: str, *, timeout: float | None = None,
               memory_limit: str | None = None) -> list[str]:
    """The sample ids of ``snapshot`` matching the WHERE expression, distinct, in snapshot order.

    The expression is checked by :func:`~fpload.catalog._sqlcheck.parse_where` and DuckDB's
    rendering of the checked tree runs in a sandbox that holds only ``snapshot`` (as the table
    ``samples``), within the time and memory limits (:class:`QueryLimits`).

    >>> select_ids(cat.snapshot(), "finger = 2 AND consent")   # doctest: +SKIP
    ['0a1f…', …]
    """
    positions = _match(snapshot, where, timeout, memory_limit)
    return list(dict.fromkeys(snapshot.column("sample_id").take(positions).to_pylist()))


def _match(snapshot: pa.Table, where: str, timeout: float | None, memory_limit: str | None) -> pa.Array:
    """The positions of the rows of ``snapshot`` the sandboxed query selected: ascending, each once.

    The sandbox sees the snapshot with one more column of row positions (:data:`POSITION`, which
    no query may name: only sample columns pass the allow-list) and returns the positions of the
    matching rows, so rows are taken from the trusted snapshot without matching ids again; every
    position is checked to be one of the snapshot's."""
    limits = QueryLimits.resolve(timeout, memory_limit)
    # JSON paths of `extra` become derived columns, extracted once per snapshot (fpload.catalog._derived)
    tree, calls = _derived.split_json_paths(parse_where(where))
    sql = render_select(tree, POSITION)
    n = snapshot.num_rows
    con = _sandbox(limits)
    try:
        view = _batched(snapshot.append_column(POSITION, pa.array(np.arange(n, dtype=np.int64))))
        con.register("samples", view)
        try:
            if calls:
                def compute(call: dict[str, Any]) -> pa.ChunkedArray:
                    return _execute(con, render_value(call), limits, where).column(0)

                for name, column in _derived.derived_columns(snapshot, calls, compute).items():
                    view = view.append_column(name, column)
                con.unregister("samples")
                con.register("samples", _batched(view))
            kind = str(con.sql(render_value(tree)).types[0])
            if kind not in ("BOOLEAN", '"NULL"', "NULL"):
                raise QueryError(f"query {where!r} is a {kind}, not a condition: write a comparison "
                                 "such as 'finger = 2' or 'consent'")
            got = _execute(con, sql, limits, where)
        except QueryError:
            raise
        except duckdb.BinderException as err:
            msg = _clean(str(err))
            m = re.search(r'column "([^"]+)" not found', msg)
            if m:
                raise QueryError(f"unknown column '{m.group(1)}' in query {where!r} "
                                 f"(columns: {', '.join(snapshot.column_names)})") from None
            raise QueryError(f"invalid query {where!r}: {msg}") from None
        except duckdb.Error as err:
            raise QueryError(f"invalid query {where!r}: {_clean(str(err))}") from None
    finally:
        con.close()
    pos = got.column(POSITION).to_numpy()
    if len(pos) and (pos.min() < 0 or pos.max() >= n):   # cannot happen: the positions are ours
        raise QueryError(f"query {where!r} returned a row position outside the snapshot")
    chosen = np.zeros(n, dtype=bool)
    chosen[pos] = True
    return pa.array(np.flatnonzero(chosen))


def run_where(snapshot: pa.Table, where: str | None, *, columns: list[str] | None = None,
              limit: int | None = None, timeout: float | None = None,
              memory_limit: str | None = None) -> pa.Table:
    """Rows of ``snapshot`` whose ids match the WHERE expression, taken from ``snapshot`` itself.

    The query selects sample ids only (:func:`select_ids`); the rows returned are the snapshot's
    own, each once, in snapshot order, so no query can add, repeat or alter a row. Raises
    :class:`QueryError` for a syntax error, an unknown column, anything outside the allow-list,
    or a query stopped at its time or memory limit.

    >>> run_where(cat.snapshot(), "finger IN (2, 7)", columns=["sample_id", "finger"])  # doctest: +SKIP
    """
    cols = columns or list(snapshot.column_names)
    for c in cols:
        if c not in snapshot.column_names:
            raise QueryError(f"unknown column '{c}' (columns: {', '.join(snapshot.column_names)})")
    rows = snapshot.select(cols)   # the columns first: only what is asked for is copied
    if where is not None:
        positions = _match(snapshot, where, timeout, memory_limit)
        if len(positions) != snapshot.num_rows:
            rows = _take(rows, positions)
    if limit is not None:
        rows = rows.slice(0, max(int(limit), 0))
    return rows


def _batched(view: pa.Table) -> pa.Table:
    """``view`` as batches of :data:`SCAN_BATCH_ROWS` rows (zero-copy slices), which DuckDB's threads
    scan in parallel."""
    if view.num_rows <= SCAN_BATCH_ROWS:
        return view
    return pa.Table.from_batches(view.to_batches(max_chunksize=SCAN_BATCH_ROWS), schema=view.schema)


def _take(rows: pa.Table, positions: pa.Array) -> pa.Table:
    """``rows.take(positions)``, one column per thread when the result is large."""
    if len(positions) * rows.num_columns < PARALLEL_TAKE_CELLS or rows.num_columns < 2 or (os.cpu_count() or 1) < 2:
        return rows.take(positions)
    pool = thread_pool("fpload-take", min(8, os.cpu_count() or 1))
    columns = list(pool.map(lambda c: c.take(positions), rows.columns))
    return pa.Table.from_arrays(columns, schema=rows.schema)
