"""Fixtures of the feature-cache tests: small catalogs and versions packed with features."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fpload.catalog import open_catalog
from fpload.pack import PackConfig
from fpload.pack import pack_version
from fpload.testing import make_captures


@pytest.fixture(scope="session")
def same_size(tmp_path_factory):
    """A catalog of 24 same-size (48×40) captures and its version (png, shards of 5)."""
    root = tmp_path_factory.mktemp("same_size")
    meta = make_captures(root / "caps", subjects=6, fingers=2, impressions=2, size=(48, 40), seed=3)
    cat = open_catalog(root / "cat.duckdb")
    cat.ingest(meta)
    res = pack_version(cat, out=root / "v", name="same", where="consent",
                       config=PackConfig(encoding="png", shard_max_samples=5))
    cat.close()
    return res


@pytest.fixture()
def copy_version(tmp_path):
    """Copy a published version somewhere it may be damaged: ``copy_version(res) -> Path``."""

    def copy(res) -> Path:
        dst = tmp_path / "copy" / res.name / res.version_id
        shutil.copytree(res.path, dst)
        return dst

    return copy
