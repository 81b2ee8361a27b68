"""Parse a query with DuckDB's own parser and accept only one expression from an allow-list.

A query is the text of a SQL WHERE condition. It is parsed as ``SELECT 1 FROM samples WHERE
<text>`` (the text travels as a bound parameter of ``json_serialize_sql``, never pasted into SQL
that runs), and accepted only if:

- the parse is exactly one statement whose tree, WHERE aside, is that of the template (so a ``)``
  cannot close the WHERE and add a UNION, ORDER BY, LIMIT, GROUP BY or another statement);
- the text holds no comment (``--`` or ``/* */``), so nothing is hidden from a reader;
- every node of the WHERE tree is one of :data:`NODE_TYPES` (column references to the sample
  columns, constants, comparisons, AND/OR/NOT, IN lists, BETWEEN, IS NULL, CASE, COALESCE, casts
  to the plain types of :data:`CAST_TYPES`) or a call of a function of :data:`QUERY_FUNCTIONS`.

Everything else — subqueries, table functions, settings readers, window and aggregate functions,
parameters, lambdas, ``*`` — is refused with one line naming it. What runs is DuckDB's own
rendering of the accepted tree (:func:`render_select`), checked to parse back to the same tree.

Example::

    >>> tree = parse_where("finger IN (2, 7) AND quality >= 40")
    >>> render_select(tree, "sample_id")
    'SELECT sample_id FROM samples WHERE ((finger IN (2, 7)) AND (quality >= 40))'
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

import duckdb

from fpload.catalog._schema import SAMPLE_COLUMNS
from fpload.errors import QueryError

#: scalar functions (and the operators DuckDB spells as functions) a query may call
QUERY_FUNCTIONS: frozenset[str] = frozenset({
    # arithmetic, concatenation, LIKE / ILIKE / GLOB (and their NOT forms), JSON ->>
    "+", "-", "*", "/", "//", "%", "^", "**", "||", "~~", "!~~", "~~*", "!~~*", "~~~", "!~~~", "->>",
    # strings and regular expressions (RE2: linear time)
    "lower", "upper", "lcase", "ucase", "length", "len", "strlen", "char_length", "trim", "ltrim",
    "rtrim", "substr", "substring", "left", "right", "concat", "concat_ws", "contains", "starts_with",
    "ends_with", "prefix", "suffix", "replace", "reverse", "split_part", "strpos", "instr", "position",
    # lists (the ``consent_scope`` column): list_contains(consent_scope, 'training')
    "list_contains", "list_has", "list_has_any", "list_has_all", "array_contains", "array_length",
    "like_escape", "not_like_escape", "ilike_escape", "not_ilike_escape", "regexp_matches",
    "regexp_full_match", "regexp_extract", "regexp_replace", "nullif",
    # math
    "abs", "round", "floor", "ceil", "ceiling", "trunc", "sqrt", "ln", "log", "log2", "log10", "exp",
    "pow", "power", "greatest", "least", "sign", "isnan", "isinf", "isfinite",
    # dates and times (deterministic ones only: no now(), current_date, random())
    "year", "month", "day", "hour", "minute", "second", "dayofweek", "dayofyear", "dayofmonth",
    "week", "weekofyear", "quarter", "epoch", "epoch_ms", "date_part", "datepart", "date_trunc",
    "datetrunc", "date_diff", "datediff", "date_sub", "datesub", "strftime", "strptime", "make_date",
    "make_time", "make_timestamp", "to_timestamp", "last_day", "to_days", "to_hours", "to_minutes",
    "to_seconds", "to_months", "to_years", "to_weeks",
    # JSON (the ``extra`` column)
    "json_extract", "json_extract_string", "json_extract_path", "json_extract_path_text", "json_value",
    "json_exists", "json_type", "json_valid", "json_array_length", "json_contains",
})

#: the types a query may cast to (``x::INTEGER``, ``CAST(x AS DATE)``, ``TIMESTAMP '2026-01-01'``)
CAST_TYPES: frozenset[str] = frozenset({
    "BOOLEAN", "BOOL", "TINYINT", "SMALLINT", "INTEGER", "INT", "INT2", "INT4", "INT8", "BIGINT",
    "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "FLOAT", "FLOAT4", "FLOAT8", "REAL",
    "DOUBLE", "DECIMAL", "NUMERIC", "VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR", "DATE", "TIME",
    "TIMESTAMP", "DATETIME", "INTERVAL", "JSON",
})

#: expression node classes, and the node types of each, a query may hold
NODE_TYPES: dict[str, frozenset[str]] = {
    "COLUMN_REF": frozenset({"COLUMN_REF"}),
    "CONSTANT": frozenset({"VALUE_CONSTANT"}),
    "COMPARISON": frozenset({"COMPARE_EQUAL", "COMPARE_NOTEQUAL", "COMPARE_LESSTHAN",
                             "COMPARE_GREATERTHAN", "COMPARE_LESSTHANOREQUALTO",
                             "COMPARE_GREATERTHANOREQUALTO", "COMPARE_DISTINCT_FROM",
                             "COMPARE_NOT_DISTINCT_FROM"}),
    "CONJUNCTION": frozenset({"CONJUNCTION_AND", "CONJUNCTION_OR"}),
    "OPERATOR": frozenset({"OPERATOR_NOT", "OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL", "COMPARE_IN",
                           "COMPARE_NOT_IN", "OPERATOR_COALESCE"}),
    "BETWEEN": frozenset({"COMPARE_BETWEEN", "COMPARE_NOT_BETWEEN"}),
    "CASE": frozenset({"CASE_EXPR"}),
    "CAST": frozenset({"OPERATOR_CAST"}),
    "TYPE": frozenset({"TYPE"}),
    "FUNCTION": frozenset({"FUNCTION"}),
}

_WHAT = {
    "SUBQUERY": "a subquery (SELECT …, EXISTS, IN (SELECT …), ANY/ALL)",
    "WINDOW": "a window function (… OVER …)",
    "PARAMETER": "a parameter (? or $n)",
    "STAR": "'*' or COLUMNS(…)",
    "LAMBDA": "a lambda or the '->' operator (use json_extract(extra, '$.key'))",
    "POSITIONAL_REFERENCE": "a positional reference (#n)",
    "COLLATE": "COLLATE (use lower() to compare without case)",
}
_ALLOWED = ("allowed: the sample columns, constants, comparisons, AND/OR/NOT, IN (…), BETWEEN, "
            "IS NULL, LIKE, CASE, casts, and the functions in fpload.catalog.QUERY_FUNCTIONS")
_TEMPLATE = "SELECT 1 FROM samples WHERE "


_local = threading.local()


def _parser() -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection for parsing and rendering only (it never holds a table and
    has no file access): one per thread, made once, so a query does not pay for new connections."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(":memory:", config={"enable_external_access": False})
    return con


def _serialize(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    raw = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0]
    return json.loads(raw)


def _strip(node: Any) -> Any:
    """The tree without source positions (they differ between equal trees)."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in ("query_location", "query_location_length")}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


@functools.lru_cache(maxsize=None)
def _function_kinds() -> dict[str, str]:
    """DuckDB's own kind of every function name (scalar, aggregate, table, macro, pragma)."""
    con = duckdb.connect(":memory:")
    try:
        rows = con.execute("SELECT DISTINCT lower(function_name), function_type FROM duckdb_functions()").fetchall()
    finally:
        con.close()
    kinds: dict[str, str] = {}
    for name, kind in rows:
        kinds.setdefault(name, kind)
    return kinds


@functools.lru_cache(maxsize=None)
def _template_statement() -> str:
    con = duckdb.connect(":memory:")
    try:
        stmt = _serialize(con, _TEMPLATE + "TRUE")["statements"][0]
    finally:
        con.close()
    stmt["node"]["where_clause"] = None
    return json.dumps(_strip(stmt), sort_keys=True)


def _refuse(text: str, what: str) -> QueryError:
    return QueryError(f"query {text!r}: {what} is not allowed; a query is one condition over the "
                      f"sample columns ({_ALLOWED})")


def _check(node: Any, text: str) -> None:
    """Walk every expression node under ``node``; raise on the first one not allowed."""
    if isinstance(node, list):
        for item in node:
            _check(item, text)
        return
    if not isinstance(node, dict):
        return
    cls, typ = node.get("class"), node.get("type")
    if cls is not None:
        if cls not in NODE_TYPES:
            raise _refuse(text, _WHAT.get(cls, f"expression kind {cls}"))
        if typ not in NODE_TYPES[cls]:
            raise _refuse(text, f"the operator {typ}")
        if cls == "COLUMN_REF":
            names = node.get("column_names") or []
            col = ".".join(names)
            if len(names) != 1 or names[0].lower() not in SAMPLE_COLUMNS:
                raise QueryError(f"unknown column '{col}' in query {text!r} "
                                 f"(columns: {', '.join(SAMPLE_COLUMNS)})")
        elif cls == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if node.get("schema") or node.get("catalog"):
                raise _refuse(text, f"the qualified function name '{node.get('schema') or node.get('catalog')}.{name}'")
            if name not in QUERY_FUNCTIONS:
                kind = _function_kinds().get(name)
                label = f"{kind} function" if kind and kind != "scalar" else "function"
                raise _refuse(text, f"{label} '{name}'")
            if node.get("filter") is not None or node.get("distinct") or node.get("export_state") \
                    or (node.get("order_bys") or {}).get("orders"):
                raise _refuse(text, f"FILTER, DISTINCT or ORDER BY inside '{name}(…)'")
            for arg in node.get("arguments") or []:
                if isinstance(arg, dict) and arg.get("name"):
                    raise _refuse(text, f"the named argument '{arg['name']}' of '{name}'")
        elif cls == "TYPE":
            tname = str(node.get("type_name", "")).upper()
            if tname not in CAST_TYPES or node.get("schema") or node.get("catalog"):
                raise _refuse(text, f"a cast to type '{node.get('type_name')}'")
            for child in node.get("children") or []:
                if not (isinstance(child, dict) and child.get("class") == "CONSTANT"):
                    raise _refuse(text, f"a cast to type '{node.get('type_name')}(…)'")
        elif cls == "CAST" and "cast_type" in node:  # older DuckDB spells the target type so
            ctype = node["cast_type"]
            tname = str(ctype.get("id", "") if isinstance(ctype, dict) else ctype).upper()
            if tname not in CAST_TYPES:
                raise _refuse(text, f"a cast to type '{tname}'")
    for value in node.values():
        if isinstance(value, (dict, list)):
            _check(value, text)


def parse_where(text: str) -> dict[str, Any]:
    """Parse ``text`` as one WHERE condition and check it against the allow-list.

    Returns the expression tree (DuckDB's JSON form). Raises :class:`QueryError` naming what was
    refused: a syntax error, a comment, more than one expression or statement, an unknown column,
    or a node or function not allowed.

    >>> parse_where("finger = 2")["class"]
    'COMPARISON'
    """
    if not isinstance(text, str) or not text.strip():
        raise QueryError("the query is empty: give a SQL WHERE expression such as 'finger IN (2, 7)'")
    return json.loads(_parse_where_json(text))


@functools.lru_cache(maxsize=512)
def _parse_where_json(text: str) -> str:
    """:func:`parse_where`'s accepted tree as JSON, memoised per text (a pure function of the text
    and this DuckDB; refusals raise and are not kept), so a repeated query is not parsed again."""
    if "\x00" in text:
        raise QueryError(f"query {text!r} holds a NUL character")
    try:
        tokens = duckdb.tokenize(text)
    except (duckdb.Error, RuntimeError) as err:
        raise QueryError(f"syntax error in query {text!r}: {str(err).splitlines()[0]}") from None
    if any(kind == duckdb.token_type.comment for _, kind in tokens):
        raise QueryError(f"query {text!r} holds a comment ('--' or '/* */'): comments are not allowed "
                         "in a query, so that no text is hidden")
    con = _parser()
    try:
        parsed = _serialize(con, _TEMPLATE + text)
        # the same text in parentheses must parse to the same condition: text that adds a clause
        # after the condition, or closes the WHERE with ')', cannot parse both ways
        wrapped = _serialize(con, _TEMPLATE + "(" + text + "\n)")
    except duckdb.Error as err:
        raise QueryError(f"syntax error in query {text!r}: {str(err).splitlines()[0]}") from None
    if parsed.get("error"):
        msg = str(parsed.get("error_message") or "?").splitlines()[0]
        if parsed.get("error_type") == "parser":
            if ";" in text:
                raise QueryError(f"query {text!r} holds ';': queries are one read-only WHERE expression, "
                                 "not statements")
            raise QueryError(f"syntax error in query {text!r}: {msg}")
        raise QueryError(f"query {text!r} is not a single filter expression: queries are one read-only "
                         f"WHERE expression, not statements ({msg})")
    statements = parsed.get("statements") or []
    if len(statements) != 1:
        raise QueryError(f"query {text!r} holds {len(statements)} statements: queries are one read-only "
                         "WHERE expression (no ';', no statements)")
    stmt = statements[0]
    node = stmt.get("node") or {}
    where = node.get("where_clause")
    if node.get("type") != "SELECT_NODE" or where is None:
        raise QueryError(f"query {text!r} is not one WHERE expression (it combines selects with UNION, "
                         "INTERSECT or EXCEPT): queries are one read-only WHERE expression")
    _check(where, text)
    node["where_clause"] = None
    same = (not wrapped.get("error") and len(wrapped.get("statements") or []) == 1
            and _strip((wrapped["statements"][0].get("node") or {}).get("where_clause")) == _strip(where))
    if json.dumps(_strip(stmt), sort_keys=True) != _template_statement() or not same:
        raise QueryError(f"query {text!r} is more than one WHERE expression (it adds a UNION, ORDER BY, "
                         "LIMIT, GROUP BY, WINDOW or another clause after it): queries are one read-only "
                         "WHERE expression")
    return json.dumps(where, sort_keys=True)


@functools.lru_cache(maxsize=512)
def _render_json(template_sql: str, slot: str, where_json: str) -> str:
    """:func:`_render` with ``where`` placed in ``slot`` of the template, memoised per tree."""
    where = json.loads(where_json)
    if slot == "select_list":
        return _render(template_sql, lambda node: node["select_list"].__setitem__(0, where))
    return _render(template_sql, lambda node: node.__setitem__("where_clause", where))


def _render(template_sql: str, place) -> str:
    con = _parser()
    try:
        template = _serialize(con, template_sql)
        place(template["statements"][0]["node"])
        sql = con.execute("SELECT json_deserialize_sql(?)", [json.dumps(template)]).fetchone()[0]
        again = _serialize(con, sql)
    except duckdb.Error as err:
        raise QueryError(f"query could not be rendered: {str(err).splitlines()[0]}") from None
    ok = (not again.get("error") and len(again.get("statements") or []) == 1
          and _strip(again["statements"][0]) == _strip(template["statements"][0]))
    if not ok:
        raise QueryError(f"query could not be rendered faithfully by DuckDB ({sql!r}); rewrite it more simply")
    return sql


def render_value(where: dict[str, Any]) -> str:
    """DuckDB's SQL for ``SELECT <where> FROM samples`` (to learn the condition's type)."""
    return _render_json("SELECT TRUE FROM samples", "select_list", json.dumps(where, sort_keys=True))


def render_select(where: dict[str, Any], column: str) -> str:
    """DuckDB's SQL for ``SELECT <column> FROM samples WHERE <where>``, from an accepted tree.

    The rendering is parsed again and must give the same tree, so what runs is what was checked.
    """
    if column not in SAMPLE_COLUMNS and column != "_fpload_position":   # the sandbox's row positions
        raise QueryError(f"unknown column '{column}' (columns: {', '.join(SAMPLE_COLUMNS)})")
    return _render_json(f"SELECT {column} FROM samples WHERE TRUE", "where_clause",
                        json.dumps(where, sort_keys=True))
