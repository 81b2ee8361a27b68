"""Features computed at ingest (CATALOG.features/) are copied by later packs, bit for bit."""

from pathlib import Path

import numpy as np
import pytest

import fpload.features as features_pkg
from fpload.catalog import open_catalog
from fpload.errors import DuplicateSampleError, UsageError
from fpload.features import FeaturesConfig, open_features
from fpload.features._store import open_store, store_root, stores
from fpload.pack import PackConfig, pack_version
from fpload.testing import make_captures


def _count_runs(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = features_pkg.run_extractors

    def counting(image, job, only=None, sample_id="?"):
        calls.append(sample_id)
        return real(image, job, only, sample_id)

    monkeypatch.setattr(features_pkg, "run_extractors", counting)
    return calls


@pytest.mark.parametrize("encoding", ["passthrough", "raw"])
def test_pack_copies_ingest_features_and_equals_a_fresh_pack(tmp_path, monkeypatch, encoding):
    meta = make_captures(tmp_path / "a", subjects=4, fingers=2, impressions=2, size=[(40, 33), (30, 41)], seed=31)
    cat = open_catalog(tmp_path / "cat.duckdb")
    calls = _count_runs(monkeypatch)
    cat.ingest(meta, features=FeaturesConfig(), workers=1)  # in this process: the calls are counted
    assert len(calls) == 16 and len(stores(store_root(cat.path))) == 1
    if encoding == "raw":  # extraction in worker processes (workers > 1) writes the same store
        other = open_catalog(tmp_path / "cat2.duckdb")
        other.ingest(meta, features=FeaturesConfig(), workers=2)
        (mine,), (theirs,) = stores(store_root(cat.path)), stores(store_root(other.path))
        assert mine.name == theirs.name
        a, b = open_store(mine), open_store(theirs)
        for name in a.names:
            np.testing.assert_array_equal(a.load(name), b.load(name), err_msg=name)
        other.close()
    calls.clear()
    cfg = PackConfig(encoding=encoding, shard_max_samples=5)
    res = pack_version(cat, out=tmp_path / "v", name="fp", where="consent AND finger = 2", config=cfg)
    assert calls == [] and res.features_found == 8
    fresh = pack_version(cat, out=tmp_path / "f", name="fp", where="consent AND finger = 2", config=cfg, reuse=False)
    assert len(calls) == 8 and fresh.version_id == res.version_id
    a, b = open_features(res.path, verify=True), open_features(fresh.path)
    for name in a.names:
        np.testing.assert_array_equal(a.load(name), b.load(name), err_msg=name)
    # re-ingesting the same file adds no store; other params are not served by it
    cat.ingest(meta, features=FeaturesConfig())
    assert len(stores(store_root(cat.path))) == 1
    calls.clear()
    other = PackConfig(encoding=encoding, features=FeaturesConfig(extractors=[{"name": "quality", "params": {"min_area": 0.3}}]))
    pack_version(cat, out=tmp_path / "o", name="fp", where="consent", config=other)
    assert len(calls) == 16
    cat.close()


def test_a_tampered_store_is_not_used(tmp_path, monkeypatch):
    meta = make_captures(tmp_path / "a", subjects=2, fingers=2, impressions=2, size=(40, 40), seed=32)
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(meta, features=FeaturesConfig())
    (folder,) = stores(store_root(cat.path))
    chunk = next(p for p in sorted((folder / "features.zarr" / "quality").rglob("*"))
                 if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[:-1] + bytes([chunk.read_bytes()[-1] ^ 0xFF]))
    calls = _count_runs(monkeypatch)
    res = pack_version(cat, out=tmp_path / "v", name="fp", where="consent", config=PackConfig(encoding="raw"))
    assert len(calls) == 8 and res.features_found == 0
    cat.close()


def test_failed_ingest_writes_no_store(tmp_path):
    meta = make_captures(tmp_path / "a", subjects=2, fingers=1, impressions=2, size=(40, 40), seed=33)
    lines = Path(meta).read_text().splitlines()
    # the first image again with another consent: found only after every image was probed
    Path(meta).write_text("\n".join([*lines, lines[1].replace(",500,True,", ",500,False,")]) + "\n")
    cat = open_catalog(tmp_path / "cat.duckdb")
    with pytest.raises(DuplicateSampleError):
        cat.ingest(meta, features=FeaturesConfig())
    assert stores(store_root(cat.path)) == []
    with pytest.raises(UsageError, match="local engine only"):
        cat.ingest(meta, features=FeaturesConfig(), engine="ray")
    cat.close()


def test_cli_ingest_features(tmp_path, capsys):
    from fpload.cli import main

    meta = make_captures(tmp_path / "a", subjects=2, fingers=1, impressions=2, size=(40, 40), seed=34)
    cat = tmp_path / "cat.duckdb"
    assert main(["catalog", "ingest", str(meta), "--catalog", str(cat), "--features", "default"]) == 0
    assert len(stores(store_root(cat))) == 1
    assert main(["pack", "--where", "consent", "--catalog", str(cat), "--out", str(tmp_path / "v"), "--name", "a",
                 "--workers", "1", "--json"]) == 0
    assert '"features_found": 4' in capsys.readouterr().out


def test_bad_image_in_worker_processes_is_named(tmp_path):
    from fpload.errors import ImageError

    meta = make_captures(tmp_path / "a", subjects=2, fingers=2, impressions=2, size=(40, 40), seed=35)
    victim = sorted((tmp_path / "a").rglob("*.png"))[3]
    victim.write_bytes(victim.read_bytes()[:60])  # truncated: found by the decode in a worker process
    cat = open_catalog(tmp_path / "cat.duckdb")
    with pytest.raises(ImageError, match=victim.name):
        cat.ingest(meta, features=FeaturesConfig(), workers=2)
    assert stores(store_root(cat.path)) == [] and cat.revision().rev == 0
    cat.close()
