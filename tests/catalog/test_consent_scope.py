"""Issue 12 §4 (catalog): consent_scope and consent_until columns, schema 2 and the in-place migration of v1."""

import csv
import json
from datetime import date

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpload.catalog import open_catalog
from fpload.catalog._diff import diff_catalog
from fpload.catalog._ingest import _as_scope, parse_row
from fpload.cli import main
from fpload.errors import MetadataError, UsageError
from fpload.testing import make_captures

BASE = {"file": "a.png", "subject_id": "S1", "finger": 1, "impression": 0, "sensor": "s", "ppi": 500, "consent": True}


def _with_scope(meta, scopes: dict[str, tuple[str, str]]):
    """Rewrite a CSV metadata file with consent_scope / consent_until cells per subject."""
    with open(meta, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["consent_scope"], r["consent_until"] = scopes.get(r["subject_id"], ("", ""))
    with open(meta, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return meta


def test_ingest_reads_scope_and_end_from_csv(tmp_path):
    meta = _with_scope(make_captures(tmp_path / "c", subjects=3),
                       {"S000": ("training; evaluation", "2027-06-30"), "S001": ("research", "")})
    with open_catalog(tmp_path / "cat.duckdb") as cat:
        cat.ingest(meta)
        rows = {r["subject_id"]: r for r in cat.snapshot().to_pylist()}
        assert rows["S000"]["consent_scope"] == ["evaluation", "training"]
        assert rows["S000"]["consent_until"] == date(2027, 6, 30)
        assert rows["S001"]["consent_scope"] == ["research"] and rows["S001"]["consent_until"] is None
        assert rows["S002"]["consent_scope"] is None and rows["S002"]["extra"] == '{"site": "lab-a"}'
        assert cat.query("list_contains(consent_scope, 'training')").num_rows == 4
        assert cat.query("consent_until < DATE '2028-01-01'").num_rows == 4
        # re-ingesting the same file adds nothing; a changed scope needs --update
        assert cat.ingest(meta).revision is None
        _with_scope(meta, {"S000": ("training", "2027-06-30"), "S001": ("research", "")})
        assert cat.ingest(meta, update=True).changed == 4
        assert diff_catalog(cat, 1).fields == {"consent_scope": 4}


@pytest.mark.parametrize("cell,fragment", [
    ("train ing", "not a purpose name"), (";", "not a purpose name"), ("a;b c", "'b c'"),
])
def test_bad_scope_names_row_and_field(tmp_path, cell, fragment):
    meta = _with_scope(make_captures(tmp_path / "c", subjects=2), {"S001": (cell, "")})
    with open_catalog(tmp_path / "cat.duckdb") as cat:
        with pytest.raises(MetadataError, match=f"row [0-9]+ .*consent_scope.*{fragment}"):
            cat.ingest(meta)
        assert cat.head == 0


@pytest.mark.parametrize("value", ["2027-13-01", "next year", "2027-01-01T10:00:00"])
def test_bad_end_date_is_refused(value):
    with pytest.raises(ValueError, match="consent_until"):
        parse_row({**BASE, "consent_until": value})


def test_update_sets_and_clears_scope(catalog, capsys):
    path = str(catalog.path)
    catalog.close()
    assert main(["catalog", "update", "subject_id = 'S003'", "--set", "consent_scope=research;evaluation",
                 "--set", "consent_until=2026-12-31", "--catalog", path]) == 0
    with open_catalog(path, read_only=True) as cat:
        rows = cat.query("subject_id = 'S003'").to_pylist()
    assert {tuple(r["consent_scope"]) for r in rows} == {("evaluation", "research")}
    assert {r["consent_until"] for r in rows} == {date(2026, 12, 31)}
    assert main(["catalog", "update", "subject_id = 'S003'", "--set", "consent_scope=null", "--catalog", path]) == 0
    with open_catalog(path, read_only=True) as cat:
        assert {r["consent_scope"] is None for r in cat.query("subject_id = 'S003'").to_pylist()} == {True}
    capsys.readouterr()
    assert main(["catalog", "update", "true", "--set", "consent_scope=a b", "--catalog", path]) == 2
    assert "not a purpose name" in capsys.readouterr().err


def _make_v1(path, captures):
    """A catalog as fpload with schema 1 wrote it: no consent_scope / consent_until columns."""
    with open_catalog(path) as cat:
        cat.ingest(captures)
        cat.update("subject_id = 'S002'", {"consent": False})
        before = [{k: v for k, v in r.items() if not k.startswith("consent_")} for r in cat.snapshot(1).to_pylist()]
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE sample_rows DROP COLUMN consent_scope")
    con.execute("ALTER TABLE sample_rows DROP COLUMN consent_until")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.close()
    return before


def _schema_version(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()[0][0]
    finally:
        con.close()


def test_a_v1_catalog_is_read_as_is_and_migrated_by_a_writer(tmp_path, captures):
    path = tmp_path / "v1.duckdb"
    before = _make_v1(path, captures)
    with open_catalog(path, read_only=True) as cat:  # a reader leaves the file as it is
        assert cat.schema_version == 1
        snap = cat.snapshot(1).to_pylist()
        assert {(r["consent_scope"], r["consent_until"]) for r in snap} == {(None, None)}
        assert [{k: v for k, v in r.items() if not k.startswith("consent_")} for r in snap] == before
        assert diff_catalog(cat, 1, 2).fields == {"consent": 4}
    assert _schema_version(path) == "1"
    with open_catalog(path) as cat:  # a writer migrates in place, keeping every revision
        assert cat.schema_version == 2 and cat.head == 2
        assert [{k: v for k, v in r.items() if not k.startswith("consent_")}
                for r in cat.snapshot(1).to_pylist()] == before
        rev, n = cat.update("subject_id = 'S001'", {"consent_scope": "training"})
        assert n == 4 and cat.query("list_contains(consent_scope, 'training')", revision=rev).num_rows == 4
    assert _schema_version(path) == "2"


def test_an_unknown_schema_version_is_refused(tmp_path, captures):
    path = tmp_path / "v9.duckdb"
    _make_v1(path, captures)
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(Exception, match="schema version '9' is not supported .*reads 1, 2"):
        open_catalog(path)


_purpose = st.text(st.sampled_from("abcXYZ019_-"), min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(st.lists(_purpose, min_size=1, max_size=5), st.sampled_from([";", " ; ", ";;"]), st.booleans())
def test_scope_text_and_list_parse_alike(purposes, sep, as_list):
    text = sep.join(purposes)
    if sep == ";;" and len(purposes) > 1:
        with pytest.raises(ValueError, match="not a purpose name"):
            _as_scope(text, "consent_scope")
        return
    got = _as_scope(purposes if as_list else text, "consent_scope")
    assert got == sorted(set(purposes))
    assert parse_row({**BASE, "consent_scope": json.loads(json.dumps(purposes))})["consent_scope"] == got
