"""The packer writes features.zarr in the same pass as the shards: layout, chunks, attributes."""

import json
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest
import zarr
from PIL import Image

from fpload import formats
from fpload.pack import PackConfig
from fpload.errors import ConfigError, VersionError
from fpload.features import FeaturesConfig, extract_features, open_features
from fpload.pack import pack_version


def test_layout_chunks_and_attributes(packed):
    res = packed["raw"]  # session catalog: 40 samples of mixed sizes, shards of 7
    m = res.manifest
    entry = m["features"]
    assert entry["schema_version"] == formats.FEATURES_SCHEMA_VERSION and entry["file"] == "features.zarr"
    assert entry["computed"] == 40 and entry["reused"] == 0
    # the first pack of the shared root computed them; the later encodings found them there
    assert packed["passthrough"].features_computed == 40
    assert (res.features_computed, res.features_found) == (0, 40)
    assert entry["chunk_samples"] == 7 and entry["block"] == 16
    assert entry["grid"] == [3, 3]  # max 48 × 41 px → 3 × 3 blocks of 16
    cache = open_features(res.path, verify=True)
    assert sorted(cache.names) == ["foreground", "frequency", "orientation", "quality", "thumbnail"]
    expect = {"orientation": ((40, 2, 3, 3), "float16"), "frequency": ((40, 3, 3), "float16"),
              "foreground": ((40, 3, 3), "bool"), "quality": ((40,), "float32"),
              "thumbnail": ((40, 64, 64), "uint8")}
    for name, (shape, dtype) in expect.items():
        spec = cache.spec(name)
        assert (spec.shape, spec.dtype, spec.chunks[0]) == (shape, dtype, 7), name
        assert spec.extractor == name and spec.version == (4 if name == "frequency" else 1) and spec.block == 16
        attrs = dict(zarr.open_array(cache.path / name, mode="r").attrs)
        assert attrs["extractor"] == name and attrs["version"] == spec.version and attrs["params"] == spec.params
    # the shards' samples in manifest order map to contiguous rows; a shard spans at most 2 chunks
    start = 0
    for s in m["shards"]:
        chunks = {start // 7, (start + s["samples"] - 1) // 7}
        assert len(chunks) <= 2
        start += s["samples"]
    q = cache.load("quality")
    assert q.shape == (40,) and np.all((q >= 0) & (q <= 100))


def test_mixed_sizes_are_embedded_top_left_with_background(packed):
    res = packed["png"]
    cache = open_features(res.path)
    rows = pq.read_table(res.path / "samples.parquet").to_pylist()
    feats = {n: cache.load(n) for n in cache.names}
    for i in (0, 7, 19, 33):
        r = rows[i]
        img = np.asarray(Image.open(r["uri"]).convert("L"))
        own = extract_features(img)
        hb, wb = -(-r["height"] // 16), -(-r["width"] // 16)
        np.testing.assert_array_equal(feats["orientation"][i][:, :hb, :wb], own["orientation"])
        np.testing.assert_array_equal(feats["frequency"][i][:hb, :wb], own["frequency"])
        np.testing.assert_array_equal(feats["foreground"][i][:hb, :wb], own["foreground"])
        assert not feats["foreground"][i][hb:].any() and not feats["foreground"][i][:, wb:].any()
        assert not feats["orientation"][i][:, hb:].any() and not feats["orientation"][i][:, :, wb:].any()
        assert feats["quality"][i] == own["quality"]
        np.testing.assert_array_equal(feats["thumbnail"][i], own["thumbnail"])


def test_disabled_features_write_no_cache(tmp_path, catalog):
    res = pack_version(catalog, out=tmp_path, name="v", where="consent",
                       config=PackConfig(features=FeaturesConfig(enabled=False)))
    assert not (res.path / "features.zarr").exists() and "features" not in res.manifest
    assert res.features_computed == 0
    with pytest.raises(VersionError, match="has no feature cache"):
        open_features(res.path)


def test_blosc_codec_and_subset_of_extractors(tmp_path, catalog):
    cfg = PackConfig(encoding="raw", shard_max_samples=None, shard_max_mb=0.02,
                     features=FeaturesConfig(extractors=["quality", "thumbnail"], codec="blosc", level=3))
    res = pack_version(catalog, out=tmp_path, name="v", where="consent", config=cfg, workers=2)
    cache = open_features(res.path)
    assert sorted(cache.names) == ["quality", "thumbnail"]
    assert res.manifest["features"]["chunk_samples"] == 40  # default chunk, capped at the sample count
    meta = json.loads((cache.path / "quality" / "zarr.json").read_text())
    assert meta["codecs"][-1]["name"] == "blosc"
    other = pack_version(catalog, out=tmp_path, name="v", where="consent", config=cfg.model_copy(
        update={"features": FeaturesConfig(extractors=["quality", "thumbnail"])}))
    assert other.version_id != res.version_id  # feature settings enter the version id
    np.testing.assert_array_equal(open_features(other.path).load("quality"), cache.load("quality"))


def test_custom_extractor_runs_in_workers(tmp_path, catalog, monkeypatch):
    mod = tmp_path / "my_feats.py"
    mod.write_text(textwrap.dedent("""
        import numpy as np

        def stats(image, bins=4):
            return {"mean": np.float32(image.mean()),
                    "hist": np.bincount(image.ravel().astype(np.int64) * bins // 256, minlength=bins).astype(np.int32)}

        def ragged(image):
            return {"ragged": np.zeros(image.shape[1] % 2 + 1)}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = PackConfig(features=FeaturesConfig(extractors=[
        "quality", {"name": "stats", "function": "my_feats:stats", "version": 2, "params": {"bins": 8}}]))
    res = pack_version(catalog, out=tmp_path / "v", name="v", where="consent", config=cfg, workers=2)
    cache = open_features(res.path)
    assert cache.spec("hist").shape == (40, 8) and cache.spec("hist").dtype == "int32"
    assert cache.spec("mean").extractor == "stats" and cache.spec("mean").version == 2
    rows = pq.read_table(res.path / "samples.parquet").to_pylist()
    img = np.asarray(Image.open(rows[5]["uri"]).convert("L"))
    assert cache.load("mean")[5] == np.float32(img.mean())
    assert cache.load("hist")[5].sum() == img.size
    bad = PackConfig(features=FeaturesConfig(extractors=[{"name": "r", "function": "my_feats:ragged"}]))
    with pytest.raises(ConfigError, match=r"array 'ragged' of sample \w+ has shape \(\d,\), but \(\d,\) "
                                          "for earlier samples"):
        pack_version(catalog, out=tmp_path / "v", name="bad", where="consent", config=bad)
    assert not any((tmp_path / "v" / "bad").glob("*/manifest.json"))
    sys.modules.pop("my_feats", None)
