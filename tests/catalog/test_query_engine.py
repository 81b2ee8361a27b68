"""The query engine's fast paths keep its contract: rows come from the snapshot by position, each
once, in snapshot order, exactly those the condition selects; memoised parses are never shared;
a sandbox cursor keeps nothing of the previous query and cannot change its configuration."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpload.catalog import _query
from fpload.catalog._query import QueryLimits, run_where, select_ids
from fpload.catalog._sqlcheck import parse_where
from fpload.errors import QueryError

WHERES = ["finger = 2", "finger IN (2, 7) AND quality >= 40", "consent", "NOT consent OR quality < 10",
          "subject_id LIKE 'S1%'", "quality IS NULL", "finger > 100"]


def _reference(table: pa.Table, where: str, columns: list[str]) -> pa.Table:
    """The rows a plain DuckDB filter keeps, in table order."""
    con = duckdb.connect(":memory:")
    con.register("t", table.append_column("_i", pa.array(range(table.num_rows), pa.int64())))
    keep = [r[0] for r in con.execute(f"SELECT _i FROM t WHERE {where} ORDER BY _i").fetchall()]
    con.close()
    return table.select(columns).take(pa.array(keep, pa.int64()))


rows = st.lists(st.tuples(st.integers(1, 10), st.one_of(st.none(), st.floats(0, 100)), st.booleans(),
                          st.integers(0, 300)), max_size=60)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows, where=st.sampled_from(WHERES), ids_only=st.booleans())
def test_rows_are_exactly_those_selected_in_snapshot_order(rows, where, ids_only):
    table = pa.table({
        "sample_id": [f"{i:032x}" for i in range(len(rows))],
        "subject_id": [f"S{r[3]}" for r in rows],
        "finger": pa.array([r[0] for r in rows], pa.int8()),
        "quality": pa.array([r[1] for r in rows], pa.float64()),
        "consent": [r[2] for r in rows]})
    columns = ["sample_id"] if ids_only else None
    got = run_where(table, where, columns=columns)
    want = _reference(table, where, columns or table.column_names)
    assert got.equals(want)
    assert select_ids(table, where) == want.column("sample_id").to_pylist()


def test_a_memoised_parse_is_a_fresh_tree_each_time():
    first = parse_where("finger = 2 AND consent")
    first["class"] = "SUBQUERY"   # a caller that mutates its tree ...
    first.clear()
    again = parse_where("finger = 2 AND consent")
    assert again["class"] == "CONJUNCTION" and again is not first   # ... changes nobody else's


def test_a_refused_query_stays_refused_when_repeated():
    for _ in range(2):
        with pytest.raises(QueryError, match="not allowed"):
            parse_where("finger IN (SELECT 1)")


def test_a_sandbox_cursor_starts_empty_and_locked():
    limits = QueryLimits.resolve(timeout=5, memory_limit="256MB")
    con = _query._sandbox(limits)
    con.register("samples", pa.table({"x": [1]}))
    assert con.sql("SELECT count(*) FROM samples").fetchall() == [(1,)]
    con.close()
    con = _query._sandbox(limits)
    try:
        with pytest.raises(duckdb.CatalogException):
            con.sql("SELECT * FROM samples").fetchall()       # the previous query's table is gone
        for setting in ("memory_limit = '100GB'", "enable_external_access = true",
                        "python_enable_replacements = true"):
            with pytest.raises(duckdb.Error):
                con.execute(f"SET {setting}")
        local = pa.table({"secret": [1]})  # noqa: F841 - a Python variable a replacement scan would find
        with pytest.raises(duckdb.CatalogException):
            con.sql("SELECT * FROM local").fetchall()
    finally:
        con.close()


def test_the_position_column_cannot_be_named_by_a_query():
    table = pa.table({"sample_id": ["a", "b"], "finger": pa.array([1, 2], pa.int8())})
    with pytest.raises(QueryError, match="unknown column '_fpload_position'"):
        run_where(table, "_fpload_position = 0")


def test_sandbox_databases_stay_few_and_an_evicted_one_serves_its_open_cursor():
    cursors = [_query._sandbox(QueryLimits.resolve(memory_limit=f"{300 + i}MB")) for i in range(6)]
    assert len(_query._SANDBOXES) <= 4
    try:
        for i, con in enumerate(cursors):
            con.register("samples", pa.table({"x": [i]}))
            assert con.sql("SELECT x FROM samples").fetchall() == [(i,)]
            with pytest.raises(duckdb.Error):
                con.execute("SET memory_limit = '100GB'")
    finally:
        for con in cursors:
            con.close()
