"""JSON paths of ``extra`` extracted once per snapshot: repeated queries on a key do not parse a
million JSON documents again.

A query's accepted tree (:func:`fpload.catalog._sqlcheck.parse_where`) may call
``json_extract_string(extra, '$.site')`` or ``extra ->> '$.site'``: DuckDB then parses every row's
JSON on every query (≈ 60–130 ms at 10^6 rows on 2 cores), the cost of every other condition
several times over. :func:`split_json_paths` replaces each such call whose path is a string
constant by a reference to a derived column (``_fpload_json_0``, …: no query can name one, the
allow-list admits sample columns only), and :func:`derived_columns` computes those columns in the
sandbox with the very call they replace, over the same snapshot, once per (snapshot, call), under
the query's limits. The values compared are therefore DuckDB's own results of the same function on
the same rows; only the parsing is not repeated. Kept: :data:`MAX_COLUMNS` columns (LRU), each tied
to the snapshot object it was computed from (the catalog caches one snapshot per revision).

Example::

    tree, paths = split_json_paths(parse_where("json_extract_string(extra, '$.site') = 'lab-2'"))
    # tree compares column _fpload_json_0; paths == {'_fpload_json_0': <the call's tree>}
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any, Callable

import pyarrow as pa

from fpload.catalog._sqlcheck import _strip

#: prefix of the derived columns' names (never a sample column)
PREFIX = "_fpload_json_"
#: calls replaced: both return VARCHAR, so the derived column has the type the call has
FUNCTIONS = frozenset({"json_extract_string", "->>"})
#: derived columns kept across queries (each ≈ 10–20 MB at 10^6 rows)
MAX_COLUMNS = 16

_CACHE: OrderedDict[tuple[int, str], tuple[pa.Table, pa.ChunkedArray]] = OrderedDict()
_LOCK = threading.Lock()


def _expr(arg: Any) -> Any:
    """An argument's expression (DuckDB ≥ 1.4 wraps arguments as ``{"expression": …, "name": …}``)."""
    return arg.get("expression", arg) if isinstance(arg, dict) and "class" not in arg else arg


def _is_json_path(node: dict[str, Any]) -> bool:
    """``json_extract_string(extra, 'CONSTANT')`` or ``extra ->> 'CONSTANT'``."""
    if node.get("class") != "FUNCTION" or str(node.get("function_name", "")).lower() not in FUNCTIONS:
        return False
    args = [_expr(a) for a in node.get("arguments") or []]
    if len(args) != 2 or not all(isinstance(a, dict) for a in args):
        return False
    col, path = args
    names = col.get("column_names") or []
    literal = path.get("literal") if isinstance(path.get("literal"), dict) else {}
    return (col.get("class") == "COLUMN_REF" and len(names) == 1 and names[0].lower() == "extra"
            and path.get("class") == "CONSTANT" and literal.get("kind") == "STRING")


def split_json_paths(tree: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``tree`` with every JSON path call of ``extra`` replaced by a derived column reference, and
    the calls by column name (equal calls share one column)."""
    found: dict[str, str] = {}
    calls: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        if _is_json_path(node):
            key = json.dumps(_strip(node), sort_keys=True)
            name = found.setdefault(key, f"{PREFIX}{len(found)}")
            calls[name] = _strip(node)
            return {"alias": node.get("alias", ""), "class": "COLUMN_REF", "column_names": [name],
                    "type": "COLUMN_REF"}
        return {k: walk(v) for k, v in node.items()}

    return walk(tree), calls


def derived_columns(snapshot: pa.Table, calls: dict[str, dict[str, Any]],
                    compute: Callable[[dict[str, Any]], pa.ChunkedArray]) -> dict[str, pa.ChunkedArray]:
    """The column of every call over ``snapshot``: kept from an earlier query of this snapshot
    object, else ``compute(call)`` (which runs the call in the sandbox and must return one value
    per snapshot row, in snapshot order)."""
    out: dict[str, pa.ChunkedArray] = {}
    for name, call in calls.items():
        key = (id(snapshot), json.dumps(call, sort_keys=True))
        with _LOCK:
            hit = _CACHE.get(key)
            if hit is not None and hit[0] is snapshot:
                _CACHE.move_to_end(key)
                out[name] = hit[1]
                continue
        column = compute(call)
        if len(column) != snapshot.num_rows:   # cannot happen: a projection keeps every row
            raise RuntimeError(f"derived column of {len(column)} rows for a snapshot of {snapshot.num_rows}")
        with _LOCK:
            _CACHE[key] = (snapshot, column)
            while len(_CACHE) > MAX_COLUMNS:
                _CACHE.popitem(last=False)
        out[name] = column
    return out


def clear() -> None:
    """Drop every kept column (tests; a process that wants the memory back)."""
    with _LOCK:
        _CACHE.clear()
