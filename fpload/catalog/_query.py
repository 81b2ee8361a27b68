"""Read-only catalog queries: a SQL WHERE expression or a YAML filter, run in a sandbox.

The expression never touches the catalog file: the snapshot of the asked revision is handed as an
Arrow table to a fresh in-memory DuckDB that has file access, Python replacement scans and
configuration changes switched off, and holds no other table. So no query text can change the
catalog, read another table, or read a file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from fpload._frozen import read_yaml
from fpload.catalog._schema import SAMPLE_COLUMNS
from fpload.errors import ConfigError, QueryError

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
        parts.append(raw.strip())
    if not parts:
        raise ConfigError(f"{source}: the filter selects nothing: give 'where' or 'match'")
    return " AND ".join(f"({p})" for p in parts)


def load_filter(path: str | Path) -> str:
    """Read a YAML filter file (see ``configs/filters/``) into a WHERE expression."""
    return compile_filter(read_yaml(path, "filter"), source=str(path))


def _sandbox() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config={"enable_external_access": False})
    con.execute("SET python_enable_replacements = false")
    return con


def _clean(message: str) -> str:
    first = message.strip().splitlines()[0]
    return re.sub(r"^\w+ Error: ", "", first)


def run_where(snapshot: pa.Table, where: str | None, *, columns: list[str] | None = None,
              order_by: str | None = "sample_id", limit: int | None = None) -> pa.Table:
    """Rows of ``snapshot`` matching the WHERE expression, computed in the sandbox.

    Raises :class:`QueryError` for a syntax error, an unknown column, more than one statement, or
    any attempt to reach beyond the samples (another table, a file, a setting).
    """
    if where is not None and not where.strip():
        raise QueryError("the query is empty: give a SQL WHERE expression such as 'finger IN (2, 7)'")
    cols = columns or list(snapshot.column_names)
    for c in cols:
        if c not in snapshot.column_names:
            raise QueryError(f"unknown column '{c}' (columns: {', '.join(snapshot.column_names)})")
    select = ", ".join(f'"{c}"' for c in cols)
    sql = f"SELECT {select} FROM samples"
    if where is not None:
        sql += f" WHERE ({where})"
    if order_by:
        sql += f" ORDER BY {order_by}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    con = _sandbox()
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.ParserException as err:
            if ";" in (where or ""):
                raise QueryError(f"query {where!r} holds ';': queries are one read-only WHERE "
                                 "expression, not statements") from None
            raise QueryError(f"syntax error in query {where!r}: {_clean(str(err))}") from None
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise QueryError(
                f"query {where!r} is not a single filter expression: queries are read-only "
                "WHERE expressions (no ';', no statements)"
            )
        con.register("samples", snapshot)
        con.execute("SET lock_configuration = true")
        try:
            return con.sql(sql).to_arrow_table()
        except duckdb.BinderException as err:
            msg = _clean(str(err))
            m = re.search(r'column "([^"]+)" not found', msg)
            if m:
                raise QueryError(
                    f"unknown column '{m.group(1)}' in query {where!r} "
                    f"(columns: {', '.join(snapshot.column_names)})"
                ) from None
            raise QueryError(f"invalid query {where!r}: {msg}") from None
        except duckdb.CatalogException as err:
            raise QueryError(
                f"query {where!r} refers to something other than the samples: {_clean(str(err))}; "
                "queries may read only the sample columns"
            ) from None
        except duckdb.PermissionException:
            raise QueryError(
                f"query {where!r} tries to read a file or change a setting: queries may read only "
                "the sample columns"
            ) from None
        except duckdb.Error as err:
            raise QueryError(f"invalid query {where!r}: {_clean(str(err))}") from None
    finally:
        con.close()
