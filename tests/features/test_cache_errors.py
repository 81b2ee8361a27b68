"""A corrupt or mismatched feature cache gives a clear error naming the array and the version."""

import json
import shutil

import numpy as np
import pytest
import zarr

from fpload.errors import IntegrityError, UsageError, VersionError
from fpload.features import open_features


def _rewrite(path, name, data, attrs, dtype=None):
    shutil.rmtree(path / "features.zarr" / name)
    group = zarr.open_group(str(path / "features.zarr"), mode="a", zarr_format=3)
    arr = group.create_array(name, shape=data.shape, chunks=data.shape, dtype=dtype or data.dtype,
                             attributes=attrs)
    arr[...] = data


def test_intact_cache_opens(same_size):
    cache = open_features(same_size.path, expect={"quality": 1, "orientation": 1}, verify=True)
    assert cache.samples == 24 and cache.load("quality").shape == (24,)
    assert cache.sample_ids.tolist() == cache.version.samples.column("sample_id").to_pylist()
    with pytest.raises(UsageError, match="has no feature 'qualty'.*features: foreground"):
        cache.load("qualty")


def test_wrong_length(same_size, copy_version):
    path = copy_version(same_size)
    cache = open_features(path)
    data = cache.load("quality")[:-1]
    _rewrite(path, "quality", data, dict(cache.array("quality").attrs))
    with pytest.raises(IntegrityError, match=rf"version same/{same_size.version_id}: array 'quality' "
                                             r"\(extractor quality v1\) has 23 rows, the version has 24 samples"):
        open_features(path)


def test_missing_array(same_size, copy_version):
    path = copy_version(same_size)
    shutil.rmtree(path / "features.zarr" / "orientation")
    with pytest.raises(IntegrityError, match=r"array 'orientation' \(extractor orientation v1\) is missing "
                                             "from features.zarr"):
        open_features(path)
    shutil.rmtree(path / "features.zarr")
    with pytest.raises(IntegrityError, match="features.zarr is missing"):
        open_features(path)


def test_extractor_version_mismatch(same_size, copy_version):
    path = copy_version(same_size)
    meta_path = path / "features.zarr" / "frequency" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["version"] = 2
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(VersionError, match=rf"version same/{same_size.version_id}: array 'frequency' was "
                                           "written by extractor frequency v2, the manifest expects frequency v4"):
        open_features(path)
    with pytest.raises(VersionError, match="array 'quality' is from extractor quality v1, v2 is expected"):
        open_features(same_size.path, expect={"quality": 2})


def test_misaligned_sample_ids(same_size, copy_version):
    path = copy_version(same_size)
    cache = open_features(path)
    ids = cache.array("sample_id")[...][::-1].copy()
    _rewrite(path, "sample_id", ids, {})
    with pytest.raises(IntegrityError, match="sample_id row 0 is .* samples.parquet has .* not aligned"):
        open_features(path)


def test_verify_detects_altered_chunks(same_size, tmp_path):
    path = tmp_path / "v" / same_size.version_id
    shutil.copytree(same_size.path, path)
    chunk = next(p for p in sorted((path / "features.zarr" / "thumbnail").rglob("*")) if p.is_file()
                 and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[:-1] + bytes([chunk.read_bytes()[-1] ^ 1]))
    open_features(path)  # cheap checks pass
    with pytest.raises(IntegrityError, match="features.zarr: sha256 differs from the manifest"):
        open_features(path, verify=True)


def test_unknown_schema_version(same_size, copy_version):
    path = copy_version(same_size)
    m = json.loads((path / "manifest.json").read_text())
    m["features"]["schema_version"] = 99
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(VersionError, match=r"schema_version 99 is not supported by this fpload \(it reads 1, 2\)"):
        open_features(path)
    assert np.isfinite(open_features(same_size.path).load("quality")).all()
