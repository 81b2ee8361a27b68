"""The loader's order as pure functions: shuffle quality, rank dealing, drop, elastic resume."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpload.load._order import consumed_after, epoch_order, kept_count, rank_batches, rank_positions


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two position vectors (positions are already ranks: Pearson of them)."""
    return float(np.corrcoef(a, b)[0, 1])


def _positions(order: np.ndarray) -> np.ndarray:
    """pos[s] = where sample s is read in this order."""
    pos = np.empty_like(order)
    pos[order] = np.arange(len(order))
    return pos


def test_global_order_quality_at_ten_thousand_samples():
    n = 10_000
    e0, e1 = (epoch_order(n, mode="global", seed=7, epoch=e) for e in (0, 1))
    assert sorted(e0.tolist()) == list(range(n))
    p0, p1 = _positions(e0), _positions(e1)
    # a sample's position in one epoch says nothing of its position in the next
    assert abs(spearman(p0, p1)) < 0.05
    # nor of its position in samples.parquet (the split's order)
    assert abs(spearman(np.arange(n), p0)) < 0.05
    assert abs(spearman(np.arange(n), p1)) < 0.05
    # pure function of (seed, epoch, n)
    assert np.array_equal(e0, epoch_order(n, mode="global", seed=7, epoch=0))
    assert not np.array_equal(e0, epoch_order(n, mode="global", seed=8, epoch=0))


def test_buffer_moves_samples_less_than_the_buffer_and_none_keeps_the_split_order():
    n = 5_000
    b = epoch_order(n, mode="buffer", seed=1, epoch=0, buffer=64)
    assert sorted(b.tolist()) == list(range(n))
    moved = np.abs(_positions(b) - np.arange(n))
    assert moved.max() < 64 and moved.mean() > 5
    assert spearman(np.arange(n), _positions(b)) > 0.99  # weak: the shard order survives
    assert epoch_order(n, mode="none", seed=1, epoch=3).tolist() == list(range(n))


def test_every_rank_reads_a_random_sample_of_the_whole_split():
    n, world = 10_000, 4
    order = epoch_order(n, mode="global", seed=0, epoch=0)
    for rank in range(world):
        mine = rank_positions(order, 0, rank=rank, world_size=world, batch_size=32, last_batch="partial")
        # spread over the whole split, not a contiguous range: every tenth of the split is hit
        counts = np.bincount(mine * 10 // n, minlength=10)
        assert counts.min() > 0.8 * len(mine) / 10


@pytest.mark.parametrize("world,expect_missing", [(1, [9]), (2, [3, 4, 8, 9])])
def test_the_issue_examples_drop_at_most_a_batch_per_rank_and_not_the_same_samples(world, expect_missing):
    """10 samples, batch 3, no shuffling, last_batch=drop: the old loader never read sample 9 with
    one rank, nor 3, 4, 8, 9 with two. Now what is dropped moves, and three epochs read all."""
    n, batch = 10, 3
    seen = set()
    for epoch in range(3):
        order = epoch_order(n, mode="none", seed=0, epoch=epoch, batch_size=batch, last_batch="drop")
        got = [rank_positions(order, 0, rank=r, world_size=world, batch_size=batch, last_batch="drop")
               for r in range(world)]
        assert all(len(g) == len(got[0]) and len(g) % batch == 0 for g in got)  # same full batches per rank
        assert n - sum(map(len, got)) < world * batch
        seen |= {int(k) for g in got for k in g}
    assert seen == set(range(n)) and set(expect_missing) <= seen


def test_global_drop_drops_a_different_random_subset_each_epoch():
    n, batch, world = 103, 8, 2
    dropped, seen = [], set()
    for epoch in range(6):
        order = epoch_order(n, mode="global", seed=3, epoch=epoch)
        kept = {int(k) for r in range(world)
                for k in rank_positions(order, 0, rank=r, world_size=world, batch_size=batch, last_batch="drop")}
        dropped.append(frozenset(range(n)) - kept)
        seen |= kept
    assert all(len(d) == n - kept_count(n, world, batch, "drop") for d in dropped)
    assert len(set(dropped)) == len(dropped) and seen == set(range(n))


def _read(order, consumed, world, batch, last_batch, steps=None):
    """Run ``world`` ranks in lock step for ``steps`` batches (all when None): what each read, and
    the consumed prefix afterwards."""
    n = len(order)
    streams = [rank_positions(order, consumed, rank=r, world_size=world, batch_size=batch, last_batch=last_batch)
               for r in range(world)]
    total = max(rank_batches(n - consumed, rank=r, world_size=world, batch_size=batch, last_batch=last_batch)
                for r in range(world))
    steps = total if steps is None else min(steps, total)
    read = [int(k) for s in streams for k in s[:steps * batch]]
    return read, consumed_after(consumed, n, batches=steps, world_size=world, batch_size=batch,
                                last_batch=last_batch)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), batch=st.integers(1, 9), worlds=st.lists(st.integers(1, 6), min_size=1, max_size=4),
       steps=st.lists(st.integers(0, 20), min_size=4, max_size=4), mode=st.sampled_from(["global", "buffer", "none"]),
       seed=st.integers(0, 2**63))
def test_elastic_resume_reads_every_unconsumed_sample_once(n, batch, worlds, steps, mode, seed):
    """Any chain of world sizes, each stopped after some lock-step batches, then one running to the
    end of the epoch: every sample of the split is read exactly once (last_batch=partial)."""
    order = epoch_order(n, mode=mode, seed=seed, epoch=2, buffer=16)
    consumed, read = 0, []
    for world, k in zip(worlds, steps):
        got, consumed = _read(order, consumed, world, batch, "partial", steps=k)
        read += got
        assert set(order[:consumed].tolist()) == set(read)  # the consumed samples are a prefix
    got, consumed = _read(order, consumed, worlds[-1] + 1, batch, "partial")
    read += got
    assert consumed == n and sorted(read) == list(range(n))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), batch=st.integers(1, 9), a=st.integers(1, 6), b=st.integers(1, 6),
       k=st.integers(0, 20))
def test_elastic_resume_with_drop_reads_no_sample_twice(n, batch, a, b, k):
    order = epoch_order(n, mode="global", seed=1, epoch=0)
    first, consumed = _read(order, 0, a, batch, "drop", steps=k)
    rest, _ = _read(order, consumed, b, batch, "drop")
    both = first + rest
    assert len(both) == len(set(both)) and n - len(both) < max(a, b) * batch
