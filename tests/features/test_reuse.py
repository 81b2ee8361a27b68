"""Features of samples a parent version already holds are copied, not recomputed."""

import numpy as np
import pytest

import fpload.pack._encode as encode
from fpload.catalog import open_catalog
from fpload.pack import PackConfig
from fpload.errors import VersionNotFoundError
from fpload.features import FeaturesConfig, open_features
from fpload.pack import pack_version
from fpload.testing import make_captures


@pytest.fixture()
def growing(tmp_path):
    """A catalog whose second ingest adds 4 larger captures to 24 small ones."""
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(make_captures(tmp_path / "a", subjects=6, fingers=2, impressions=2,
                             size=[(40, 33), (30, 41)], seed=11))
    yield cat, make_captures(tmp_path / "b", subjects=1, fingers=2, impressions=2, size=(70, 52), seed=12)
    cat.close()


def _count_decodes(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = encode._decode_pixels  # every decode for features (fast PNG path or Pillow)

    def counting(data, row):
        seen.append(row["sample_id"])
        return real(data, row)

    monkeypatch.setattr(encode, "_decode_pixels", counting)
    return seen


def test_repack_recomputes_only_new_samples(tmp_path, growing, monkeypatch):
    cat, more = growing
    cfg = PackConfig(shard_max_samples=6)  # passthrough: reused samples are not even decoded
    first = pack_version(cat, out=tmp_path / "v", name="fp", where="consent", config=cfg)
    assert (first.features_computed, first.features_reused) == (24, 0)
    cat.ingest(more)
    decoded = _count_decodes(monkeypatch)
    second = pack_version(cat, out=tmp_path / "v", name="fp", where="consent", config=cfg, parent="latest")
    assert (second.features_computed, second.features_reused) == (4, 24)
    assert len(decoded) == 4  # workers=1 runs in this process, so the count is exact
    m = second.manifest
    assert m["parent"] == first.version_id
    assert (m["features"]["computed"], m["features"]["reused"]) == (4, 24)
    # the grid grew (70 × 52 px → 5 × 4 blocks); reused rows equal a fresh computation
    fresh = pack_version(cat, out=tmp_path / "fresh", name="fp", where="consent", config=cfg)
    assert fresh.features_computed == 28
    a, b = open_features(second.path), open_features(fresh.path)
    assert a.grid == (5, 4) and open_features(first.path).grid == (3, 3)
    for name in a.names:
        np.testing.assert_array_equal(a.load(name), b.load(name), err_msg=name)
    # the same pack with the same parent is the same version
    again = pack_version(cat, out=tmp_path / "v", name="fp", where="consent", config=cfg,
                         parent=first.version_id[:6])
    assert again.version_id == second.version_id and not again.created


def test_changed_extractor_params_are_recomputed_others_copied(tmp_path, growing, monkeypatch):
    cat, _ = growing
    base = PackConfig(encoding="raw")
    first = pack_version(cat, out=tmp_path / "v", name="fp", where="consent", config=base)
    changed = PackConfig(encoding="raw", features=FeaturesConfig(extractors=[
        "orientation", {"name": "quality", "params": {"min_area": 0.2}}, "thumbnail"]))
    second = pack_version(cat, out=tmp_path / "v", name="fp", where="consent", config=changed,
                          parent=str(first.path))
    assert (second.features_computed, second.features_reused) == (24, 0)  # quality ran for every sample
    fresh = pack_version(cat, out=tmp_path / "f", name="fp", where="consent", config=changed)
    a, b = open_features(second.path), open_features(fresh.path)
    for name in ("orientation", "quality", "thumbnail"):
        np.testing.assert_array_equal(a.load(name), b.load(name), err_msg=name)
    sub = pack_version(cat, out=tmp_path / "v", name="fp", where="consent AND finger = 2", config=base,
                       parent=str(second.path), reuse=False)  # the parent alone
    assert sub.features_computed == 12  # `second`'s quality params differ from `base`
    # reuse from the root (the default) finds them in `first`; same files and id either way
    found = pack_version(cat, out=tmp_path / "v", name="fp", where="consent AND finger = 2", config=base,
                         parent=str(second.path))
    assert (found.features_computed, found.features_found, found.version_id) == (0, 12, sub.version_id)
    # a smaller selection copies its rows in the new version's order
    sub2 = pack_version(cat, out=tmp_path / "v2", name="fp", where="consent AND finger = 2", config=base,
                        parent=str(first.path))
    assert (sub2.features_computed, sub2.features_reused) == (0, 12)
    c, parent = open_features(sub2.path), open_features(first.path)
    rows = [parent.sample_ids.tolist().index(s) for s in c.sample_ids]
    np.testing.assert_array_equal(c.load("orientation"), parent.load("orientation")[rows])


def test_parent_must_resolve(tmp_path, growing):
    cat, _ = growing
    with pytest.raises(VersionNotFoundError, match="parent 'latest'.*give 'latest', a version id"):
        pack_version(cat, out=tmp_path / "v", name="fp", where="consent", parent="latest")
    with pytest.raises(VersionNotFoundError, match="parent 'abc123'"):
        pack_version(cat, out=tmp_path / "v", name="fp", where="consent", parent="abc123")
    # a parent packed without features gives nothing to reuse, and is still recorded
    first = pack_version(cat, out=tmp_path / "v", name="fp", where="consent",
                         config=PackConfig(features=FeaturesConfig(enabled=False)))
    res = pack_version(cat, out=tmp_path / "v", name="fp2", where="consent", parent=str(first.path))
    assert res.manifest["parent"] == first.version_id and res.features_computed == 24
