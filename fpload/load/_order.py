"""The loader's sample order: pure functions of (seed, epoch, split size), then (rank, world).

An epoch's *order* is a permutation of the split's positions ``0..n-1`` (position p is the p-th
sample of the split in ``samples.parquet`` order, i.e. shard order). A loader state is the
epoch and the number of samples of that order already consumed, ``consumed``: the consumed
samples are always a prefix of the order, whatever the world sizes that consumed them, so a
state resumes at any world size.

For one rank of ``world`` ranks, the rest of the epoch ``order[consumed:]`` is cut to the samples
the epoch keeps (all of them with ``last_batch="partial"``; a multiple of ``world × batch`` with
``"drop"``, the tail dropped) and dealt round robin: rank r reads ``kept[r::world]``. After every
rank has yielded b batches, the consumed prefix has grown by ``min(len(kept), world × b × batch)``.

Example::

    >>> from fpload.load._order import epoch_order, rank_positions
    >>> epoch_order(10, mode="none", seed=0, epoch=0).tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    >>> order = epoch_order(10, mode="none", seed=0, epoch=0)
    >>> rank_positions(order, 0, rank=1, world_size=2, batch_size=3, last_batch="drop").tolist()
    [1, 3, 5]
"""

from __future__ import annotations

import numpy as np

#: the shuffle modes of :class:`fpload.load.LoaderConfig`
SHUFFLE_MODES = ("global", "buffer", "none")
_TAGS = {"global": 1, "buffer": 2}


def _rng(mode: str, seed: int, epoch: int, n: int) -> np.random.Generator:
    # SeedSequence takes non-negative integers: the seed's 64 bits, the epoch, the split size
    return np.random.default_rng([seed % 2**64, epoch, n, _TAGS[mode]])


def epoch_order(n: int, *, mode: str, seed: int, epoch: int, buffer: int = 1024, batch_size: int = 1,
                last_batch: str = "partial") -> np.ndarray:
    """The order (split positions, int64) in which epoch ``epoch`` reads a split of ``n`` samples.

    - ``global``: a uniform random permutation keyed by (seed, epoch, n): a sample's position
      is independent of its place in the split and of its position in any other epoch.
    - ``buffer``: a local shuffle of the shard order: each sample moves by less than ``buffer``
      positions (keys ``p + U(0, buffer)`` sorted), keyed by (seed, epoch, n). Sequential reads,
      weak shuffling.
    - ``none``: the split's order. With ``last_batch="drop"`` it is rotated by
      ``epoch × batch_size`` so that the dropped tail moves every epoch and each sample is read
      at least once every ``world_size + 1`` epochs.
    """
    if mode not in SHUFFLE_MODES:
        raise ValueError(f"shuffle mode {mode!r} is not one of {', '.join(SHUFFLE_MODES)}")
    if n < 0 or epoch < 0:
        raise ValueError(f"split size and epoch must be >= 0, got n={n}, epoch={epoch}")
    if mode == "global":
        return _rng(mode, seed, epoch, n).permutation(n).astype(np.int64)
    if mode == "buffer":
        keys = np.arange(n, dtype=np.float64) + _rng(mode, seed, epoch, n).uniform(0.0, float(buffer), n)
        return np.argsort(keys, kind="stable").astype(np.int64)
    order = np.arange(n, dtype=np.int64)
    if last_batch == "drop" and n:
        order = np.roll(order, -((epoch * batch_size) % n))
    return order


def kept_count(remaining: int, world_size: int, batch_size: int, last_batch: str) -> int:
    """How many of the ``remaining`` samples of an epoch the ranks read: all of them
    (``partial``), or the largest multiple of ``world_size × batch_size`` (``drop``)."""
    if last_batch == "drop":
        step = world_size * batch_size
        return (remaining // step) * step
    return remaining


def rank_positions(order: np.ndarray, consumed: int, *, rank: int, world_size: int, batch_size: int,
                   last_batch: str) -> np.ndarray:
    """The split positions rank ``rank`` reads in the rest of an epoch whose first ``consumed``
    samples of ``order`` are already read."""
    rest = order[consumed:]
    kept = rest[:kept_count(len(rest), world_size, batch_size, last_batch)]
    return kept[rank::world_size]


def rank_batches(remaining: int, *, rank: int, world_size: int, batch_size: int, last_batch: str) -> int:
    """Batches rank ``rank`` yields from ``remaining`` unread samples of an epoch (its ``len``)."""
    kept = kept_count(remaining, world_size, batch_size, last_batch)
    mine = len(range(rank, kept, world_size))
    return -(-mine // batch_size)


def consumed_after(consumed: int, n: int, *, batches: int, world_size: int, batch_size: int,
                   last_batch: str) -> int:
    """The consumed prefix once every rank has yielded ``batches`` more batches (in lock step,
    as data-parallel training does); a rank with fewer batches has yielded all of its own."""
    kept = kept_count(n - consumed, world_size, batch_size, last_batch)
    return consumed + min(kept, world_size * batches * batch_size)
