"""``fpload versions export --format an2`` (issue 15, §5): a version back as ANSI/NIST-ITL
transactions, and the round trip synth → an2 → ingest → pack → export → ingest."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("nistitl", reason="needs the optional extra fpload[nist]")
pytest.importorskip("_wsq", reason="needs the optional extra fpload[nist]")

from fpload.catalog import open_catalog  # noqa: E402
from fpload.cli import main  # noqa: E402
from fpload.pack import PackConfig, pack_version  # noqa: E402
from fpload.testing import make_records  # noqa: E402

KEPT = ("sample_id", "subject_id", "finger", "impression", "sensor", "ppi", "width", "height", "format", "quality",
        "captured_at", "consent", "split", "synthetic")


def _cli(capsys, *args) -> str:
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    return cap.out


def test_round_trip_keeps_sample_ids_and_metadata(tmp_path, capsys):
    syn = tmp_path / "syn"
    _cli(capsys, "synth", "--out", syn, "--subjects", "3", "--fingers", "2", "--impressions", "1", "--size", "128",
         "--records", "an2", "--workers", "1", "--no-progress")
    meta = tmp_path / "subjects.csv"
    meta.write_text("subject_id,consent,split,synthetic\nsyn-s0-000001,yes,train,yes\nsyn-s0-000002,yes,train,yes\n"
                    "syn-s0-000003,yes,test,yes\n")
    first, second = tmp_path / "first.duckdb", tmp_path / "second.duckdb"
    _cli(capsys, "catalog", "ingest", syn / "records", "--metadata", meta, "--catalog", first)
    with open_catalog(first) as cat:
        res = pack_version(cat, out=tmp_path / "versions", name="rt", config=PackConfig(), workers=1)
        before = sorted(({k: r[k] for k in KEPT} for r in cat.query("true").to_pylist()), key=lambda r: r["sample_id"])
    rep = json.loads(_cli(capsys, "versions", "export", res.path, "--format", "an2", "--out", tmp_path / "exported",
                          "--json"))
    assert rep == {"files": 3, "samples": 6, "out": str(tmp_path / "exported")}
    _cli(capsys, "catalog", "ingest", tmp_path / "exported", "--metadata", meta, "--catalog", second)
    with open_catalog(second) as cat:
        after = sorted(({k: r[k] for k in KEPT} for r in cat.query("true").to_pylist()), key=lambda r: r["sample_id"])
    assert len(before) == 6 and after == before


def test_export_of_one_split_and_of_raw_pixels(tmp_path, capsys):
    rec = make_records(tmp_path / "rec", subjects=2, fingers=2, fmt="wsq", size=(72, 64))
    meta = tmp_path / "m.csv"
    meta.write_text("subject_id,consent,split\nS000,yes,train\nS001,yes,test\n")
    with open_catalog(tmp_path / "c.duckdb") as cat:
        cat.ingest_records([rec], metadata=meta)
        res = pack_version(cat, out=tmp_path / "v", name="raw", config=PackConfig(encoding="raw"), workers=1)
    rep = json.loads(_cli(capsys, "versions", "export", res.path, "--split", "test", "--out", tmp_path / "x", "--json"))
    assert rep["files"] == 1 and rep["samples"] == 2 and (tmp_path / "x" / "S001.an2").is_file()
    with open_catalog(tmp_path / "back.duckdb") as cat:
        cat.ingest_records([tmp_path / "x"], consent=True)
        rows = cat.query("true").to_pylist()
    assert {(r["subject_id"], r["format"], r["width"], r["height"]) for r in rows} == {("S001", "png", 64, 72)}


def test_unknown_export_format_is_a_usage_error(tmp_path, capsys):
    assert main(["versions", "export", str(tmp_path), "--format", "eft", "--out", str(tmp_path / "o")]) == 2
    assert "--format 'eft'" in capsys.readouterr().err
