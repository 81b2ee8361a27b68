"""Issue 12 §4 (pack): a pack's purpose and date against consent_scope / consent_until, read at the head."""

from datetime import date, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpload.cli import main
from fpload.errors import ConfigError, ConsentError, UsageError
from fpload.pack import PackConfig, pack_version
from fpload.pack._consent import effective_consent

NOFEAT = {"enabled": False}


def _cfg(**kw):
    return PackConfig(encoding="raw", features=NOFEAT, **kw)


def _subjects(res):
    return {r["subject_id"] for r in pq.read_table(res.path / "samples.parquet").to_pylist()}


def test_a_sample_outside_the_purpose_is_refused_like_one_without_consent(tmp_path, catalog):
    catalog.update("subject_id = 'S001'", {"consent_scope": "research"})
    catalog.update("subject_id = 'S002'", {"consent_scope": "training;evaluation"})
    with pytest.raises(ConsentError, match="4 selected sample.*4 not for purpose 'training'"):
        pack_version(catalog, out=tmp_path, name="t", where="true", config=_cfg(purpose="training"))
    assert not list(tmp_path.glob("t/*/manifest.json"))
    res = pack_version(catalog, out=tmp_path, name="t", where="consent", config=_cfg(purpose="training"))
    assert "S001" not in _subjects(res) and "S002" in _subjects(res) and len(_subjects(res)) == 9
    assert res.manifest["consent"]["purpose"] == "training" and res.manifest["settings"]["purpose"] == "training"
    assert "date" not in res.manifest["consent"]  # no consent_until anywhere: the date cannot matter
    # allow_without_consent packs them, marked
    marked = pack_version(catalog, out=tmp_path, name="m", where="true",
                          config=_cfg(purpose="training", allow_without_consent=True))
    rows = pq.read_table(marked.path / "samples.parquet").to_pylist()
    assert {r["subject_id"] for r in rows if not r["consent"]} == {"S001"}
    assert marked.manifest["consent"]["samples_without_consent"] == 4
    # no purpose: the scope is not checked (as before)
    assert len(_subjects(pack_version(catalog, out=tmp_path, name="n", where="true", config=_cfg()))) == 10


def test_consent_past_its_end_is_refused_and_the_date_enters_the_id(tmp_path, catalog):
    catalog.update("subject_id = 'S004'", {"consent_until": "2026-06-30"})
    with pytest.raises(ConsentError, match="4 past consent_until on 2026-07-01"):
        pack_version(catalog, out=tmp_path, name="d", where="true", config=_cfg(), consent_date="2026-07-01")
    before = pack_version(catalog, out=tmp_path, name="d", where="true", config=_cfg(), consent_date="2026-06-30")
    assert "S004" in _subjects(before) and before.manifest["consent"]["date"] == "2026-06-30"
    again = pack_version(catalog, out=tmp_path, name="d", where="true", config=_cfg(), consent_date=date(2026, 6, 30))
    assert again.version_id == before.version_id and not again.created
    after = pack_version(catalog, out=tmp_path, name="d", where="consent", config=_cfg(), consent_date="2026-07-01")
    assert "S004" not in _subjects(after) and after.version_id != before.version_id
    # the default date is today (UTC), recorded because the catalog holds a consent_until
    today = pack_version(catalog, out=tmp_path, name="d", where="consent", config=_cfg())
    assert date.fromisoformat(today.manifest["consent"]["date"]) >= date(2026, 7, 1) - timedelta(days=3650)
    with pytest.raises(UsageError, match="'yesterday' is not an ISO 8601 date"):
        pack_version(catalog, out=tmp_path, name="d", where="consent", config=_cfg(), consent_date="yesterday")


def test_scope_is_read_at_the_head_whatever_revision_is_packed(tmp_path, catalog):
    catalog.update("subject_id = 'S003'", {"consent_scope": "research"})  # after revision 1
    with pytest.raises(ConsentError, match="not for purpose 'training'.*latest revision 2"):
        pack_version(catalog, out=tmp_path, name="h", where="true", revision=1, config=_cfg(purpose="training"))
    res = pack_version(catalog, out=tmp_path, name="h", where="consent", revision=1, config=_cfg(purpose="training"))
    assert "S003" not in _subjects(res) and res.manifest["catalog"]["revision"] == 1


def test_pack_cli_purpose_and_date(tmp_path, catalog, capsys):
    catalog.update("subject_id = 'S001'", {"consent_scope": "research"})
    path = str(catalog.path)
    catalog.close()
    args = ["pack", "--where", "true", "--catalog", path, "--out", str(tmp_path / "v"), "--name", "x", "--json"]
    assert main(args + ["--purpose", "training"]) == 1
    assert "not for purpose 'training'" in capsys.readouterr().err
    assert main(args + ["--purpose", "research", "--consent-date", "2026-01-01"]) == 0
    capsys.readouterr()
    assert main(args + ["--purpose", "no good"]) == 2
    assert "purpose" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="purpose"):
        PackConfig.from_dict({"purpose": "a/b"})


_row = st.tuples(st.booleans() | st.none(), st.none() | st.lists(st.sampled_from(["training", "research", "eval"]),
                                                                   min_size=1, max_size=3, unique=True),
                 st.none() | st.integers(-3, 3))


@settings(max_examples=100, deadline=None)
@given(st.lists(_row, min_size=1, max_size=12), st.none() | st.sampled_from(["training", "research"]))
def test_effective_consent_matches_its_definition(rows, purpose):
    on = date(2026, 6, 15)
    table = pa.table({"sample_id": [str(i) for i in range(len(rows))], "consent": pa.array([r[0] for r in rows], pa.bool_()),
                      "consent_scope": pa.array([r[1] for r in rows], pa.list_(pa.string())),
                      "consent_until": pa.array([None if r[2] is None else on + timedelta(days=r[2]) for r in rows],
                                                pa.date32())})
    got = effective_consent(table, purpose, on)["consent"].to_pylist()
    want = [bool(c) and (purpose is None or s is None or purpose in s) and (u is None or u >= 0) for c, s, u in rows]
    assert got == want
