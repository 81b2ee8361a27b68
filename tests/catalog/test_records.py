"""Ingest of biometric records (issue 15, §1): ANSI/NIST-ITL transactions and ISO/IEC 19794-4
records, without a metadata file; the field mapping; the uri that reads the image back; a
metadata file joined on subject_id."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

pytest.importorskip("nistitl", reason="needs the optional extra fpload[nist]")
pytest.importorskip("_wsq", reason="needs the optional extra fpload[nist]")

from fpload.catalog import open_catalog  # noqa: E402
from fpload.catalog._an2 import build_transaction  # noqa: E402
from fpload.catalog._records import read_source_bytes, split_record_uri  # noqa: E402
from fpload.cli import main  # noqa: E402
from fpload.errors import MetadataError  # noqa: E402
from fpload.formats import sample_key  # noqa: E402
from fpload.testing import encode, make_records, ridge_image  # noqa: E402


def _rows(cat):
    return sorted(cat.query("true").to_pylist(), key=lambda r: r["uri"])


def test_transactions_ingest_without_metadata(tmp_path):
    rec = make_records(tmp_path / "rec", subjects=2, fingers=2, impressions=1, size=(80, 64))
    with open_catalog(tmp_path / "cat.duckdb") as cat:
        rep = cat.ingest_records([rec])
        rows = _rows(cat)
    assert rep.added == 4 and rep.skipped == {}
    r = rows[0]
    assert r["uri"].endswith("S000.an2#type14/2")  # position 2: after Type-1 and Type-2
    assert (r["subject_id"], r["finger"], r["impression"], r["ppi"], r["sensor"]) == ("S000", 1, 0, 500, "toy-sensor")
    assert (r["width"], r["height"], r["format"]) == (64, 80, "wsq")
    assert r["quality"] == 43.0 and r["captured_at"] == datetime(2024, 5, 1)
    assert r["consent"] is False  # records carry no consent: nothing is packed until it is given
    assert json.loads(r["extra"])["record"] == {"type": 14, "idc": 1, "fgp": 1, "cga": "WSQ20", "src": "FPLOAD",
                                                "tot": "FPLOAD", "dat": "20000101", "ori": "FPLOAD", "tcn": "S000"}
    for row in rows:  # the uri reads the image back, and the id hashes exactly those bytes
        assert sample_key(read_source_bytes(row["uri"], None)) == row["sample_id"]


def test_subject_field_and_resolution_units(tmp_path):
    img = ridge_image(np.random.default_rng(0), (40, 30))
    data = build_transaction("TCN-1", [{"image": encode(img, "png"), "format": "png", "width": 30, "height": 40,
                                        "finger": 12, "impression": 1, "ppi": 500}])
    data = data.replace(b"2.015:TCN-1", b"2.015:SID-9")  # same length: a different subject in 2.015
    data = data.replace(b"14.008:1", b"14.008:2").replace(b"14.009:500", b"14.009:197")  # 197 px/cm
    (tmp_path / "a.an2").write_bytes(data)
    with open_catalog(tmp_path / "cat.duckdb") as cat:
        cat.ingest_records([tmp_path / "a.an2"], subject_field="2.015")
        (row,) = _rows(cat)
    assert (row["subject_id"], row["finger"], row["impression"], row["ppi"], row["format"]) == ("SID-9", 6, 1, 500, "png")
    assert json.loads(row["extra"])["record"]["fgp"] == 12  # plain left thumb → finger 6, code kept
    assert row["sensor"] == "unknown" and row["quality"] is None and row["captured_at"] is None


def test_slaps_and_palms_are_skipped_and_counted(tmp_path):
    rng = np.random.default_rng(1)
    images = [{"image": encode(ridge_image(rng, (72, 64)), "wsq"), "format": "wsq", "width": 64, "height": 72,
               "finger": f, "impression": 0, "ppi": 500} for f in (0, 3, 13, 14, 22)]
    (tmp_path / "a.an2").write_bytes(build_transaction("S1", images))
    with open_catalog(tmp_path / "cat.duckdb") as cat:
        rep = cat.ingest_records([tmp_path / "a.an2"])
        assert sorted(r["finger"] for r in _rows(cat)) == [0, 3]  # 0 (unknown) is kept as 0
    assert rep.skipped == {"finger position 13": 1, "finger position 14": 1, "finger position 22": 1}


def test_iso_19794_4_records(tmp_path):
    rec = make_records(tmp_path / "iso", subjects=2, fingers=3, size=(60, 50), kind="iso", fmt="png")
    with open_catalog(tmp_path / "cat.duckdb") as cat:
        cat.ingest_records([rec])
        rows = _rows(cat)
    assert [(r["subject_id"], r["finger"]) for r in rows[:3]] == [("S000", 1), ("S000", 2), ("S000", 3)]
    assert rows[0]["uri"].endswith("S000.fir#iso19794-4/0") and rows[0]["quality"] == 43.0
    assert {(r["format"], r["width"], r["height"], r["ppi"]) for r in rows} == {("png", 50, 60, 500)}
    for row in rows:
        assert sample_key(read_source_bytes(row["uri"], None)) == row["sample_id"]


def test_same_image_bytes_as_files_give_the_same_sample_ids(tmp_path):
    """A WSQ image inside a record and the same bytes as a file are one sample."""
    rng = np.random.default_rng(4)
    img = encode(ridge_image(rng, (72, 64)), "wsq")
    (tmp_path / "a.an2").write_bytes(build_transaction("S1", [{"image": img, "format": "wsq", "width": 64,
                                                                "height": 72, "finger": 2, "impression": 0, "ppi": 500}]))
    with open_catalog(tmp_path / "cat.duckdb") as cat:
        cat.ingest_records([tmp_path / "a.an2"])
        assert [r["sample_id"] for r in _rows(cat)] == [sample_key(img)]


def test_metadata_joined_on_subject_sets_consent_and_split(tmp_path, capsys):
    rec = make_records(tmp_path / "rec", subjects=2, fingers=1)
    meta = tmp_path / "subjects.csv"
    meta.write_text("subject_id,consent,split,site\nS000,yes,train,lab-a\nS001,no,,\n")
    code = main(["catalog", "ingest", str(rec), "--metadata", str(meta), "--catalog", str(tmp_path / "c.duckdb")])
    assert code == 0, capsys.readouterr().err
    with open_catalog(tmp_path / "c.duckdb") as cat:
        rows = {r["subject_id"]: r for r in _rows(cat)}
    assert (rows["S000"]["consent"], rows["S000"]["split"]) == (True, "train")
    assert json.loads(rows["S000"]["extra"])["site"] == "lab-a"
    assert (rows["S001"]["consent"], rows["S001"]["split"]) == (False, None)


def test_metadata_naming_a_subject_twice_is_refused(tmp_path):
    rec = make_records(tmp_path / "rec", subjects=1, fingers=1)
    meta = tmp_path / "m.csv"
    meta.write_text("subject_id,consent\nS000,yes\nS000,no\n")
    with open_catalog(tmp_path / "cat.duckdb") as cat, pytest.raises(MetadataError, match="row 2: subject 'S000' appears twice"):
        cat.ingest_records([rec], metadata=meta)


def test_record_uris_round_trip():
    assert split_record_uri("/d/x#y.an2#type14/12") == ("/d/x#y.an2", "type14", 12)
    assert split_record_uri("/d/a#type14/x.png") is None


def test_legacy_type4_records(tmp_path):
    """Type-4 (binary, 500 ppi, WSQ) finger images: IMP, FGP, ISR, HLL, VLL and GCA by the standard's layout."""
    import struct

    import nistitl

    imgs = [encode(ridge_image(np.random.default_rng(seed), (80, 64)), "wsq") for seed in (5, 6)]
    msg = nistitl.Message()
    msg.TOT, msg[0].TCN, msg[0].NSR = "CAR", "T4-SUBJECT", "39.37"  # native resolution: 39.37 px/mm
    for idc, (fgp, isr, img) in enumerate([(7, 0, imgs[0]), (8, 1, imgs[1])], 1):
        r4 = nistitl.BinaryRecord(4)
        r4.IDC = idc  # IMP 1 (rolled), FGP and 5 unused positions, ISR, HLL 64, VLL 80, GCA 1 (WSQ)
        r4.value = struct.pack(">BB5sBHHB", 1, fgp, b"\xff" * 5, isr, 64, 80, 1) + img
        msg += r4
    (tmp_path / "card.eft").write_bytes(msg.NIST)
    with open_catalog(tmp_path / "cat.duckdb") as cat:
        cat.ingest_records([tmp_path])
        rows = _rows(cat)
    assert [(r["subject_id"], r["finger"], r["impression"], r["ppi"], r["format"], r["width"], r["height"])
            for r in rows] == [("T4-SUBJECT", 7, 1, 500, "wsq", 64, 80), ("T4-SUBJECT", 8, 1, 1000, "wsq", 64, 80)]
    assert rows[0]["uri"].endswith("card.eft#type4/1") and rows[0]["sample_id"] == sample_key(imgs[0])
    assert read_source_bytes(rows[1]["uri"], None) == imgs[1]
