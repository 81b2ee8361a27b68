"""JSON paths of ``extra`` extracted once per snapshot (fpload.catalog._derived): the same rows as
DuckDB evaluating the call in every query, computed once per (snapshot, call), and the derived
columns cannot be named by a query."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from fpload.catalog import _derived, _query
from fpload.catalog._query import run_where
from fpload.errors import QueryError

EXTRAS = [{"site": "lab-1", "n": 3, "deep": {"k": "a"}}, {"site": "lab-2"}, {}, {"site": None, "n": 4.5},
          {"site": "lab-2", "deep": {"k": "b"}, "list": [1, 2]}, {"n": "3"}, {"site": "LAB-2", "deep": {}}]


@pytest.fixture()
def snap() -> pa.Table:
    n = 5 * len(EXTRAS)
    return pa.table({"sample_id": [f"s{i:03d}" for i in range(n)], "finger": pa.array([i % 10 for i in range(n)], pa.int8()),
                     "extra": [None if i == 3 else json.dumps(EXTRAS[i % len(EXTRAS)]) for i in range(n)]})


def _plain(snapshot, where):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_derived, "FUNCTIONS", frozenset())   # DuckDB evaluates the call itself
        return run_where(snapshot, where)


QUERIES = [
    "json_extract_string(extra, '$.site') = 'lab-2'",
    "extra ->> '$.site' = 'lab-2' AND finger > 2",
    "json_extract_string(extra, '$.deep.k') IN ('a', 'b') OR extra->>'$.n' = '3'",
    "json_extract_string(extra, '$.site') IS NULL",
    "coalesce(json_extract_string(extra, '$.site'), 'none') = 'none'",
    "lower(extra ->> '$.site') = 'lab-2' AND json_extract_string(extra, '$.site') <> 'lab-2'",
    "CAST(json_extract_string(extra, '$.n') AS DOUBLE) > 3",
    "json_extract_string(extra, '$.list') = '[1,2]'",
]


@pytest.mark.parametrize("where", QUERIES)
def test_same_rows_as_duckdb_evaluating_the_call(snap, where):
    _derived.clear()
    assert run_where(snap, where).equals(_plain(snap, where))
    assert run_where(snap, where).equals(_plain(snap, where))   # from the kept column


@settings(max_examples=40, deadline=None)
@given(key=st.sampled_from(["site", "n", "deep", "deep.k", "list", "missing"]),
       value=st.sampled_from(["lab-2", "3", "4.5", "a", "", "lab-1"]),
       op=st.sampled_from(["=", "<>", "<", ">=", "LIKE"]))
def test_any_path_and_comparison_agrees(key, value, op):
    snapshot = pa.table({"sample_id": [f"s{i}" for i in range(len(EXTRAS))],
                         "extra": [json.dumps(e) for e in EXTRAS]})
    where = f"json_extract_string(extra, '$.{key}') {op} '{value}'"
    assert run_where(snapshot, where).equals(_plain(snapshot, where))


def test_computed_once_per_snapshot_and_call(snap, monkeypatch):
    _derived.clear()
    calls = []
    real = _query._execute

    def counting(con, sql, limits, where):
        calls.append(sql)
        return real(con, sql, limits, where)

    monkeypatch.setattr(_query, "_execute", counting)
    run_where(snap, "json_extract_string(extra, '$.site') = 'lab-2'")
    run_where(snap, "json_extract_string(extra, '$.site') = 'lab-1' AND extra->>'$.n' = '3'")
    run_where(snap, "json_extract_string(extra, '$.site') LIKE 'lab%'")
    derived = [s for s in calls if "_fpload_position" not in s]
    # '$.site' once, '$.n' once; every query's own SELECT of positions besides
    assert len(derived) == 2 and len(calls) == 5
    other = pa.table(snap.to_pydict())   # another snapshot object (another revision): computed again
    run_where(other, "json_extract_string(extra, '$.site') = 'lab-2'")
    assert len([s for s in calls if "_fpload_position" not in s]) == 3


@pytest.mark.parametrize("where", ["_fpload_json_0 = 'lab-2'", "json_extract_string(extra, '$.site') = _fpload_json_0"])
def test_derived_columns_cannot_be_named(snap, where):
    run_where(snap, "json_extract_string(extra, '$.site') = 'lab-2'")
    with pytest.raises(QueryError, match="unknown column '_fpload_json_0'"):
        run_where(snap, where)


def test_a_bad_path_is_a_query_error(snap):
    with pytest.raises(QueryError, match=r"invalid query"):
        run_where(snap, "json_extract_string(extra, '$[') = 'x'")
