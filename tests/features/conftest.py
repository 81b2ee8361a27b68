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


def _write_schema1(version: Path, dest_root: Path) -> Path:
    """Copy a published version under ``dest_root/NAME/`` with its feature cache in the schema-1
    layout (fpload before the uint8 sample ids): ``sample_id`` as a ``string``/``vlen-utf8`` array
    written as the old writer did, schema_version 1 in the group and the manifest, the manifest's
    digests and version_id recomputed so the copy is an intact published version. Returns its path."""
    import json

    import numpy as np
    import zarr
    from zarr.codecs import ZstdCodec

    from fpload import formats

    manifest = json.loads((version / formats.MANIFEST_NAME).read_text())
    entry = manifest["features"]
    tmp = dest_root / manifest["name"] / ".converting"
    shutil.copytree(version, tmp)
    cache = tmp / entry["file"]
    ids = [bytes(r).hex() for r in zarr.open_array(str(cache / formats.FEATURES_SAMPLE_ID), mode="r")[...]]
    shutil.rmtree(cache / formats.FEATURES_SAMPLE_ID)
    group_meta = json.loads((cache / "zarr.json").read_text())
    group_meta["attributes"][formats.FEATURES_GROUP_ATTR]["schema_version"] = 1
    (cache / "zarr.json").write_text(json.dumps(group_meta))
    group = zarr.open_group(str(cache), mode="a", zarr_format=3)
    arr = group.create_array(
        formats.FEATURES_SAMPLE_ID, shape=(len(ids),), chunks=(entry["chunk_samples"],), dtype=str,
        compressors=ZstdCodec(level=entry["codec"]["level"], checksum=False), dimension_names=("sample",),
        attributes={"description": "sample_id of each row (samples.parquet order)"})
    arr[...] = np.asarray(ids, dtype=str)
    entry["schema_version"] = 1
    entry["sha256"], entry["bytes"] = formats.tree_digest(cache)
    manifest["version_id"] = formats.compute_version_id(manifest)
    (tmp / formats.MANIFEST_NAME).write_bytes(formats.pretty_json(manifest))
    dest = tmp.parent / manifest["version_id"]
    tmp.rename(dest)
    return dest


@pytest.fixture(scope="session")
def same_size_v1(same_size, tmp_path_factory):
    """``same_size`` with its feature cache in the schema-1 layout (see :func:`_write_schema1`)."""
    return _write_schema1(same_size.path, tmp_path_factory.mktemp("schema1"))


@pytest.fixture()
def to_schema1():
    """``to_schema1(version_path, root) -> Path``: a schema-1 copy of a version under ``root``."""
    return _write_schema1
