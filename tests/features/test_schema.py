"""Feature-cache schema 2: only Zarr v3 core data types and codecs; schema-1 caches still read and reuse."""

import json
import shutil

import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st

from fpload import formats
from fpload.catalog import open_catalog
from fpload.pack import PackConfig
from fpload.errors import DataError, IntegrityError, VersionError
from fpload.features import open_features, rows_to_sample_ids, sample_ids_to_rows
from fpload.pack import pack_version
from fpload.testing import make_captures

#: data types and codecs of the Zarr v3 core specification (plus zstd, which every v3 reader ships)
CORE_DATA_TYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                   "float16", "float32", "float64", "complex64", "complex128"}
CORE_CODECS = {"bytes", "transpose", "zstd", "blosc", "crc32c", "gzip", "sharding_indexed"}


def _codec_names(codecs):
    for c in codecs:
        yield c["name"]
        if c["name"] == "sharding_indexed":
            yield from _codec_names(c["configuration"]["codecs"])
            yield from _codec_names(c["configuration"]["index_codecs"])


def _noncore(cache_path):
    """(array, what) for every array metadata outside the core spec; the number of arrays walked."""
    bad, arrays = [], 0
    for meta_path in sorted(cache_path.rglob("zarr.json")):
        meta = json.loads(meta_path.read_text())
        assert meta["zarr_format"] == 3
        if meta["node_type"] != "array":
            continue
        arrays += 1
        name = meta_path.parent.name
        if meta["data_type"] not in CORE_DATA_TYPES:
            bad.append((name, meta["data_type"]))
        bad += [(name, c) for c in _codec_names(meta["codecs"]) if c not in CORE_CODECS]
        if meta["chunk_grid"]["name"] != "regular" or meta["chunk_key_encoding"]["name"] not in ("default", "v2"):
            bad.append((name, "chunk grid/key encoding"))
    return bad, arrays


def test_every_array_uses_core_types_and_codecs(same_size, same_size_v1):
    cache = open_features(same_size.path)
    bad, arrays = _noncore(cache.path)
    assert arrays == len(cache.names) + 1 and bad == []
    # the walk does catch the extension types schema 1 used
    bad, _ = _noncore(same_size_v1 / "features.zarr")
    assert bad == [("sample_id", "string"), ("sample_id", "vlen-utf8")]


def test_sample_id_is_16_bytes_per_row(same_size):
    arr = zarr.open_group(str(same_size.path / "features.zarr"), mode="r")["sample_id"]
    assert arr.dtype == np.uint8 and arr.shape == (24, formats.FEATURES_SAMPLE_ID_BYTES)
    want = open_features(same_size.path).version.samples.column("sample_id").to_pylist()
    assert [bytes(row).hex() for row in arr[...]] == want
    assert open_features(same_size.path).schema_version == formats.FEATURES_SCHEMA_VERSION == 2


def test_schema1_cache_still_opens(same_size, same_size_v1):
    old, new = open_features(same_size_v1, verify=True), open_features(same_size.path)
    assert old.schema_version == 1 and old.version.check("sha256") == []
    assert old.sample_ids.tolist() == new.sample_ids.tolist()
    for name in new.names:
        np.testing.assert_array_equal(old.load(name), new.load(name), err_msg=name)


def test_sample_id_layout_must_match_the_schema(same_size, copy_version):
    path = copy_version(same_size)
    ids = open_features(path).sample_ids
    shutil.rmtree(path / "features.zarr" / "sample_id")
    group = zarr.open_group(str(path / "features.zarr"), mode="a", zarr_format=3)
    group.create_array("sample_id", shape=ids.shape, chunks=ids.shape, dtype=str)[...] = ids
    with pytest.raises(IntegrityError, match=r"the sample_id array is string \[24\], feature-cache schema 2 "
                                             r"stores it as uint8 \[N, 16\]"):
        open_features(path)


def test_group_and_manifest_schema_must_agree(same_size, copy_version):
    path = copy_version(same_size)
    meta_path = path / "features.zarr" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["fpload_features"]["schema_version"] = 1
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(VersionError, match="the group's schema_version is 1, the manifest says 2"):
        open_features(path)


def test_repack_reuses_a_schema1_parent(tmp_path, to_schema1):
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(make_captures(tmp_path / "a", subjects=3, fingers=2, impressions=2, size=(40, 36), seed=5))
    cfg = PackConfig(shard_max_samples=5)
    first = pack_version(cat, out=tmp_path / "v", name="fp", where="consent", config=cfg)
    old = to_schema1(first.path, tmp_path / "old")
    cat.ingest(make_captures(tmp_path / "b", subjects=1, fingers=2, impressions=1, size=(40, 36), seed=6))
    second = pack_version(cat, out=tmp_path / "v", name="fp", where="consent", config=cfg, parent=str(old))
    assert (second.features_computed, second.features_reused) == (2, 12)
    assert second.manifest["features"]["schema_version"] == 2
    fresh = pack_version(cat, out=tmp_path / "f", name="fp", where="consent", config=cfg)
    a, b = open_features(second.path), open_features(fresh.path)
    assert a.sample_ids.tolist() == b.sample_ids.tolist()
    for name in a.names:
        np.testing.assert_array_equal(a.load(name), b.load(name), err_msg=name)
    cat.close()


@given(st.lists(st.binary(min_size=16, max_size=16), max_size=20))
def test_sample_id_rows_round_trip(raw):
    ids = [r.hex() for r in raw]
    rows = sample_ids_to_rows(ids)
    assert rows.shape == (len(ids), 16) and rows.dtype == np.uint8
    assert rows_to_sample_ids(rows).tolist() == ids
    assert [bytes(r).hex() for r in rows] == ids


@given(st.text(max_size=40).filter(lambda s: len(s) != 32 or not all(c in "0123456789abcdef" for c in s)))
def test_only_sample_keys_are_accepted(bad):
    with pytest.raises(DataError, match="is not 32 lower-case hex digits"):
        sample_ids_to_rows([formats.sample_key(b"x"), bad])


def test_writer_refuses_a_bad_sample_id_before_writing(tmp_path):
    from fpload.features import FeaturesConfig, FeatureWriter, resolve_extractors

    cfg = FeaturesConfig()
    ids = [formats.sample_key(b"a"), "not-a-sample-key"]
    with pytest.raises(DataError, match=r"sample id 'not-a-sample-key' \(row 1\) is not 32 lower-case hex"):
        FeatureWriter(tmp_path / "features.zarr", resolve_extractors(cfg), cfg, ids, [(20, 20)] * 2, chunk=2)
    assert not (tmp_path / "features.zarr").exists()
