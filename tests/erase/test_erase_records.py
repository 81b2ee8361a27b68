"""Erasure of samples ingested from biometric records (issue 15): the record file is the source;
it is deleted only when every sample catalogued from it is erased."""

from __future__ import annotations

import pytest

pytest.importorskip("nistitl", reason="needs the optional extra fpload[nist]")
pytest.importorskip("_wsq", reason="needs the optional extra fpload[nist]")

from fpload.catalog import open_catalog  # noqa: E402
from fpload.erase import erase_subject  # noqa: E402
from fpload.testing import make_records  # noqa: E402


@pytest.fixture()
def recs(tmp_path):
    rec = make_records(tmp_path / "rec", subjects=2, fingers=2)
    with open_catalog(tmp_path / "cat.duckdb") as cat:
        cat.ingest_records([rec], consent=True)
        ids = {r["uri"]: r["sample_id"] for r in cat.query("true").to_pylist()}
    (tmp_path / "versions").mkdir()
    return tmp_path, rec, ids


def test_a_subjects_transaction_is_deleted_with_delete_sources(recs):
    tmp, rec, _ = recs
    r = erase_subject(tmp / "cat.duckdb", [tmp / "versions"], subjects=["S000"], reason="withdrawn",
                      delete_sources=True)
    assert r["sources"]["listed"] == [str((rec / "S000.an2").resolve())] == r["sources"]["deleted"]
    assert not (rec / "S000.an2").exists() and (rec / "S001.an2").exists()


def test_a_transaction_still_holding_other_samples_is_kept_and_listed(recs):
    tmp, rec, ids = recs
    one = next(sid for uri, sid in ids.items() if uri.endswith("S001.an2#type14/2"))
    r = erase_subject(tmp / "cat.duckdb", [tmp / "versions"], samples=[one], reason="withdrawn", delete_sources=True)
    assert r["sources"]["listed"] == [str((rec / "S001.an2").resolve())] and r["sources"]["deleted"] == []
    assert (rec / "S001.an2").exists()
