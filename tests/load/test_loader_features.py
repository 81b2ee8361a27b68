"""Loader(..., features=[...]): feature rows gathered per batch, aligned with the images."""

import numpy as np
import pytest
import torch
import zarr

from fpload.pack import PackConfig
from fpload.errors import UsageError
from fpload.load import Loader
from fpload.pack import pack_version


@pytest.fixture(scope="module")
def version(tmp_path_factory, session_catalog):
    return pack_version(session_catalog, out=tmp_path_factory.mktemp("feat"), name="f", where="consent",
                        config=PackConfig(encoding="raw", shard_max_samples=8)).path


def test_gather_matches_a_direct_zarr_read(version):
    group = zarr.open_group(str(version / "features.zarr"), mode="r")
    quality, orientation = group["quality"][:], group["orientation"][:]
    loader = Loader(version, split="train", batch_size=5, device="cpu", augment=False,
                    features=["quality", "orientation"], rank=0, world_size=2)
    n = 0
    for images, labels, index, feats in loader:
        assert set(feats) == {"quality", "orientation"}
        assert feats["quality"].shape[0] == images.shape[0] == index.shape[0]
        assert np.array_equal(feats["quality"].numpy(), quality[index.numpy()])
        assert np.array_equal(feats["orientation"].numpy(), orientation[index.numpy()])
        n += len(index)
    assert n == loader.rank_size


def test_without_features_batches_stay_triples(version):
    batch = next(iter(Loader(version, split="train", batch_size=4, device="cpu", augment=False)))
    assert len(batch) == 3


def test_unknown_feature_is_a_clear_error(version):
    with pytest.raises(UsageError, match="no feature 'embedding'.*quality"):
        Loader(version, split="train", device="cpu", features=["embedding"])
