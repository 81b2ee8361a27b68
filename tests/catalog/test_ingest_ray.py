"""``catalog ingest --engine ray``: the same revision as a local ingest; bad images fail the same way."""

import json

import pytest

from fpload.catalog import open_catalog
from fpload.catalog import _ray_ingest
from fpload.cli import main
from fpload.errors import ImageError, UsageError
from fpload.testing import make_captures


def test_address_needs_the_ray_engine(tmp_path):
    meta = make_captures(tmp_path / "c", subjects=1, fingers=1, impressions=1)
    cat = open_catalog(tmp_path / "cat.duckdb")
    with pytest.raises(UsageError, match="--address 'auto' needs --engine ray"):
        cat.ingest(meta, address="auto")
    with pytest.raises(UsageError, match="engine 'dask' is not one of local, ray"):
        cat.ingest(meta, engine="dask")
    assert cat.head == 0


@pytest.mark.ray
def test_ray_ingest_commits_the_local_revision(tmp_path, ray_cluster, capsys, monkeypatch):
    """Several batches (a batch of 5 over 24 images), through the API and the CLI: same rows, same digest."""
    monkeypatch.setattr(_ray_ingest, "BATCH", 5)
    meta = make_captures(tmp_path / "c", subjects=3, fingers=2, impressions=2, size=[(48, 40), (33, 41)], seed=3)
    extra = make_captures(tmp_path / "c2", subjects=2, fingers=2, impressions=1, seed=5)
    results = {}
    for engine in ("local", "ray"):
        cat = open_catalog(tmp_path / f"{engine}.duckdb")
        first = cat.ingest(meta, engine=engine)
        second = cat.ingest(extra, engine=engine)
        results[engine] = (first, second, [r.digest for r in cat.revisions()],
                           cat.snapshot().sort_by("sample_id").to_pylist())
        cat.close()
    assert results["ray"] == results["local"]
    assert results["ray"][0].added == 12 and results["ray"][1].added == 4
    code = main(["catalog", "ingest", str(meta), "--catalog", str(tmp_path / "cli.duckdb"), "--engine", "ray",
                 "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["added"] == 12
    with open_catalog(tmp_path / "cli.duckdb", create=False, read_only=True) as cat:
        assert cat.revision().digest == results["local"][2][1]


@pytest.mark.ray
def test_ray_ingest_of_a_bad_image_commits_nothing(tmp_path, ray_cluster):
    meta = make_captures(tmp_path / "c", subjects=3, fingers=2, impressions=2, seed=6)
    bad = sorted((tmp_path / "c" / "images").iterdir())[7]
    bad.write_bytes(b"not an image at all")
    errors = {}
    for engine in ("local", "ray"):
        cat = open_catalog(tmp_path / f"{engine}.duckdb")
        with pytest.raises(ImageError) as info:
            cat.ingest(meta, engine=engine)
        errors[engine] = str(info.value)
        assert cat.head == 0 and cat.snapshot().num_rows == 0
        cat.close()
    assert errors["ray"] == errors["local"]
    assert "\n" not in errors["ray"] and str(bad) in errors["ray"]
