"""Queries over snapshots larger than one scan batch: the sandbox scans the snapshot as several
Arrow batches (in parallel) and large results are taken one column per thread; the rows must be
exactly those a plain filter of the snapshot gives, in snapshot order."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fpload.catalog import _query
from fpload.catalog._query import run_where


@pytest.fixture(scope="module")
def big() -> pa.Table:
    n = 2 * _query.SCAN_BATCH_ROWS + 12_345   # three scan batches, the last one partial
    rng = np.random.default_rng(3)
    idx = np.arange(n)
    return pa.table({
        "sample_id": pa.array([f"{i:032x}" for i in idx]),
        "subject_id": pa.array([f"S{i // 10:06d}" for i in idx]),
        "finger": pa.array((idx % 10 + 1).astype(np.int8)),
        "quality": pa.array(rng.uniform(0, 100, n)),
        "consent": pa.array(rng.random(n) > 0.1),
        "extra": pa.array([json.dumps({"site": f"lab-{i % 4}"}) for i in idx]),
    })


@pytest.mark.parametrize("where, expected", [
    ("consent", lambda t: t["consent"]),
    ("finger IN (2, 7) AND quality >= 40", lambda t: pc.and_(pc.is_in(t["finger"], pa.array([2, 7], pa.int8())),
                                                             pc.greater_equal(t["quality"], 40))),
    ("json_extract_string(extra, '$.site') = 'lab-2'", lambda t: pc.equal(t["extra"], '{"site": "lab-2"}')),
    ("subject_id = 'S012345'", lambda t: pc.equal(t["subject_id"], "S012345")),
])
def test_rows_are_a_plain_filter_in_snapshot_order(big, where, expected, monkeypatch):
    want = big.filter(expected(big))
    got = run_where(big, where)
    assert got.equals(want)
    # the threaded take and the plain one give the same table
    monkeypatch.setattr(_query, "PARALLEL_TAKE_CELLS", 10 ** 12)
    assert run_where(big, where).equals(want)
    monkeypatch.setattr(_query, "PARALLEL_TAKE_CELLS", 1)
    assert run_where(big, where, columns=["sample_id", "quality"]).equals(want.select(["sample_id", "quality"]))


def test_a_forked_child_takes_with_its_own_threads(big):
    """A process forked after a large query (the pool's threads do not survive a fork) still gets
    its rows rather than waiting forever on the parent's pool."""
    import multiprocessing

    want = run_where(big, "consent")          # makes this process's pool
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_rows_in_child, (big,)).get(timeout=120)
    assert got == want.num_rows


def _rows_in_child(table: pa.Table) -> int:
    return run_where(table, "consent").num_rows
