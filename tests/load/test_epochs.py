"""Honest epochs: one for = one epoch, exact len, drop moves, no silent second iterator, set_epoch."""

import pytest

from fpload.errors import UsageError
from fpload.load import Loader
from fpload.pack import PackConfig, pack_version
from fpload.testing import make_captures


@pytest.fixture(scope="module")
def ten(tmp_path_factory):
    """A version whose train split holds exactly the 10 samples 0..9, in shards of 3."""
    from fpload.catalog import open_catalog

    root = tmp_path_factory.mktemp("ten")
    cat = open_catalog(root / "c.duckdb")
    cat.ingest(make_captures(root / "caps", subjects=5, fingers=2, impressions=1, size=[(24, 20)], seed=4))
    res = pack_version(cat, out=root, name="ten", where="consent",
                       config=PackConfig(encoding="raw", shard_max_samples=3, splits={"train": 1.0}))
    cat.close()
    assert res.counts == {"train": 10}
    return res.path


def _ids(loader):
    return [[int(k) for k in i] for _, _, i in loader]


@pytest.mark.parametrize("world,once_missing", [(1, {9}), (2, {3, 4, 8, 9})])
def test_drop_without_shuffle_reads_every_sample_within_three_epochs(ten, world, once_missing):
    """The issue's examples: 10 samples, batch 3, no shuffling, last_batch=drop."""
    loaders = [Loader(ten, batch_size=3, device="cpu", shuffle="none", augment=False, last_batch="drop",
                      rank=r, world_size=world) for r in range(world)]
    seen = set()
    for _ in range(3):
        epoch = [_ids(loader) for loader in loaders]
        assert all(len(e) == len(loader) == len(epoch[0]) for e, loader in zip(epoch, loaders))
        got = [k for e in epoch for b in e for k in b]
        assert all(len(b) == 3 for e in epoch for b in e)
        assert len(got) == len(set(got)) and 10 - len(got) < 3 * world
        seen |= set(got)
    assert once_missing <= seen and seen == set(range(10))


def test_global_drop_reads_every_sample_within_a_few_epochs(ten):
    loader = Loader(ten, batch_size=4, device="cpu", augment=False, last_batch="drop", seed=5)
    dropped, seen = [], set()
    for _ in range(8):
        got = {k for b in _ids(loader) for k in b}
        assert len(got) == 8
        dropped.append(frozenset(range(10)) - got)
        seen |= got
    assert seen == set(range(10)) and len(set(dropped)) > 1


@pytest.mark.parametrize("last_batch", ["partial", "drop"])
@pytest.mark.parametrize("world", [1, 3])
def test_len_is_exact(ten, last_batch, world):
    for rank in range(world):
        loader = Loader(ten, batch_size=2, device="cpu", augment=False, last_batch=last_batch, rank=rank,
                        world_size=world)
        for _ in range(2):
            n = len(loader)
            assert len(_ids(loader)) == n


def test_a_second_live_iterator_is_an_error(ten):
    loader = Loader(ten, batch_size=3, device="cpu", augment=False)
    it = iter(loader)
    next(it)
    with pytest.raises(UsageError, match="still live"):
        iter(loader)
    with pytest.raises(UsageError, match="still live"):
        loader.set_epoch(3)
    it.close()
    assert loader.epoch == 1  # closing early ended epoch 0
    assert len(_ids(loader)) == len(loader)


def test_breaking_out_ends_the_epoch_and_set_epoch_jumps(ten):
    ref = Loader(ten, batch_size=3, device="cpu", augment=False, seed=2)
    epochs = [_ids(ref) for _ in range(3)]
    assert epochs[0] != epochs[1] != epochs[2]
    loader = Loader(ten, batch_size=3, device="cpu", augment=False, seed=2)
    for k, batch in enumerate(loader):
        if k == 1:
            break
    assert loader.epoch == 1 and _ids(loader) == epochs[1]  # the next for is the next epoch, whole
    loader.set_epoch(0)
    assert _ids(loader) == epochs[0]
    loader.set_epoch(2)
    assert _ids(loader) == epochs[2] and loader.epoch == 3
    with pytest.raises(UsageError, match="epoch must be an integer"):
        loader.set_epoch(-1)
