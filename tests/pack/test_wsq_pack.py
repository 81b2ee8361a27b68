"""WSQ sources at pack time and the ``resample_to_ppi`` setting (issue 15, §2)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("_wsq", reason="needs the optional extra fpload[nist]")

from fpload.catalog import _wsq, open_catalog  # noqa: E402
from fpload.pack import PackConfig, pack_version  # noqa: E402
from fpload.testing import make_captures, make_records  # noqa: E402


def _members(version_path):
    out = {}
    for shard in sorted((version_path / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for m in tar.getmembers():
                key, ext = m.name.split(".", 1)
                out.setdefault(key, {})[ext] = tar.extractfile(m).read()
    return out


@pytest.fixture()
def wsq_catalog(tmp_path):
    meta = make_captures(tmp_path / "caps", subjects=3, fingers=1, impressions=2, size=(80, 64), fmt="wsq")
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(meta)
    yield cat, tmp_path
    cat.close()


def test_passthrough_transcodes_wsq_to_png_losslessly_and_says_so(wsq_catalog):
    cat, tmp = wsq_catalog
    res = pack_version(cat, out=tmp / "v", name="w", config=PackConfig(), workers=1)
    manifest = json.loads((res.path / "manifest.json").read_text())
    assert manifest["transcoded"] == {"wsq": {"samples": 6, "to": "png"}}
    rows = {r["sample_id"]: r for r in cat.query("true").to_pylist()}
    members = _members(res.path)
    assert set(members) == set(rows)
    for sid, m in members.items():
        assert "png" in m and "wsq" not in m
        with Image.open(io.BytesIO(m["png"])) as img:
            pixels = np.asarray(img)
        source = Path(rows[sid]["uri"]).read_bytes()
        assert np.array_equal(pixels, _wsq.decode_wsq(source, max_pixels=10**6))
        assert json.loads(m["json"])["source_format"] == "wsq"


def test_other_encodings_decode_wsq(wsq_catalog):
    cat, tmp = wsq_catalog
    res = pack_version(cat, out=tmp / "v", name="r", config=PackConfig(encoding="raw"), workers=2)
    members = _members(res.path)
    assert all(len(m["raw"]) == 80 * 64 for m in members.values())
    assert "transcoded" not in json.loads((res.path / "manifest.json").read_text())


def test_resample_to_ppi_scales_other_resolutions_and_enters_the_version_id(tmp_path):
    make_records(tmp_path / "rec1000", subjects=2, fingers=1, size=(160, 128), ppi=1000)
    make_records(tmp_path / "rec500", subjects=1, fingers=1, size=(80, 64), ppi=500, seed=9)
    with open_catalog(tmp_path / "cat.duckdb") as cat:
        cat.ingest_records([tmp_path / "rec1000", tmp_path / "rec500"], consent=True)
        plain = pack_version(cat, out=tmp_path / "v", name="n", config=PackConfig(encoding="raw"), workers=1)
        cfg = PackConfig.from_dict({"encoding": "raw", "resample_to_ppi": 500})
        res = pack_version(cat, out=tmp_path / "v", name="n", config=cfg, workers=1)
    assert plain.version_id != res.version_id
    manifest = json.loads((res.path / "manifest.json").read_text())
    assert manifest["settings"]["resample_to_ppi"] == 500
    assert manifest["transcoded"] == {"resampled": {"samples": 2, "to_ppi": 500, "filter": "lanczos"}}
    metas = [json.loads(m["json"]) for m in _members(res.path).values()]
    assert sorted((m["ppi"], m.get("source_ppi", 0), m["width"], m["height"]) for m in metas) == [
        (500, 0, 64, 80), (500, 1000, 64, 80), (500, 1000, 64, 80)]
    for m in _members(res.path).values():
        h, w, _ = np.frombuffer(m["shape"], "<i4")
        assert len(m["raw"]) == h * w == 64 * 80


def test_unset_resample_stays_out_of_the_settings():
    """Versions packed before the setting existed keep their ids: it is absent unless set."""
    assert "resample_to_ppi" not in PackConfig().to_dict()
    assert PackConfig.from_dict(PackConfig().to_dict()) == PackConfig()
    assert PackConfig.from_dict({"resample_to_ppi": 500}).to_dict()["resample_to_ppi"] == 500


def test_jpeg2000_sources_ingest_and_pass_through_unchanged(tmp_path):
    meta = make_captures(tmp_path / "caps", subjects=2, fingers=1, impressions=1, size=(60, 50), fmt="jp2")
    with open_catalog(tmp_path / "cat.duckdb") as cat:
        cat.ingest(meta)
        rows = {r["sample_id"]: r for r in cat.query("true").to_pylist()}
        res = pack_version(cat, out=tmp_path / "v", name="j", config=PackConfig(), workers=1)
    assert {(r["format"], r["width"], r["height"]) for r in rows.values()} == {("jp2", 50, 60)}
    members = _members(res.path)
    assert {sid: m["jp2"] for sid, m in members.items()} == {sid: Path(r["uri"]).read_bytes() for sid, r in rows.items()}
    assert "transcoded" not in json.loads((res.path / "manifest.json").read_text())


def test_jpeg2000_inside_a_record(tmp_path):
    rec = make_records(tmp_path / "rec", subjects=1, fingers=2, fmt="jp2")
    with open_catalog(tmp_path / "cat.duckdb") as cat:
        cat.ingest_records([rec], consent=True)
        rows = cat.query("true").to_pylist()
    assert {(r["format"], r["width"], r["height"]) for r in rows} == {("jp2", 64, 80)}
    assert {json.loads(r["extra"])["record"]["cga"] for r in rows} == {"JP2L"}
