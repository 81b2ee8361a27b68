"""Re-ingesting known bytes with changed metadata is never dropped silently (issue 10, §2): it fails
naming the first changed sample and field, or, with ``--update``, becomes a new revision."""

from __future__ import annotations

import csv
import json

import pytest

from fpload.catalog import open_catalog
from fpload.cli import main
from fpload.errors import DuplicateSampleError


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def edited(captures, tmp_name: str, row: int, **changes) -> tuple:
    """A copy of the captures' metadata with data row ``row`` (1-based) changed; returns (path, sample file)."""
    with open(captures, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[row - 1].update({k: str(v) for k, v in changes.items()})
    out = captures.parent / tmp_name
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out, rows[row - 1]["file"]


@pytest.mark.parametrize("field,value,shown", [
    ("consent", "false", "consent (True in the catalog, False here)"),
    ("quality", "12.5", "quality"),
    ("split", "test", "split (None in the catalog, 'test' here)"),
])
def test_changed_metadata_fails_naming_sample_and_field(tmp_path, captures, capsys, field, value, shown):
    cat = tmp_path / "cat.duckdb"
    assert run(capsys, "catalog", "ingest", captures, "--catalog", cat)[0] == 0
    meta, file = edited(captures, f"changed-{field}.csv", 3, **{field: value})
    code, out, err = run(capsys, "catalog", "ingest", meta, "--catalog", cat)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "row 3" in err and file in err and f"conflicting {shown}" in err and "--update" in err
    with open_catalog(cat) as c:
        assert c.head == 1


def test_update_applies_changes_as_a_new_revision(tmp_path, captures, capsys):
    cat = tmp_path / "cat.duckdb"
    assert run(capsys, "catalog", "ingest", captures, "--catalog", cat)[0] == 0
    meta, file = edited(captures, "withdrawn.csv", 5, consent="false", split="val")
    code, out, err = run(capsys, "catalog", "ingest", meta, "--catalog", cat, "--update", "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert (rep["revision"], rep["added"], rep["changed"], rep["duplicates"]) == (2, 0, 1, 39)
    with open_catalog(cat) as c:
        now = c.query("NOT consent").to_pylist()
        assert len(now) == 1 and now[0]["uri"].endswith(file) and now[0]["split"] == "val"
        assert c.query("NOT consent", revision=1).num_rows == 0
        assert c.snapshot().num_rows == 40
        r = c.revision()
        assert (r.op, r.added, r.changed, r.samples) == ("ingest", 0, 1, 40)
    # the same file again: nothing left to change
    code, out, _ = run(capsys, "catalog", "ingest", meta, "--catalog", cat, "--update")
    assert code == 0 and "nothing new" in out


def test_update_with_new_images_adds_and_changes_in_one_revision(tmp_path):
    from fpload.testing import make_captures

    more = make_captures(tmp_path / "more", subjects=1, fingers=1, impressions=2, seed=77)
    header, first, second = more.read_text().splitlines()
    first_only = more.parent / "first.csv"
    first_only.write_text(f"{header}\n{first}\n")
    cat = open_catalog(tmp_path / "cat.duckdb")
    assert cat.ingest(first_only).added == 1
    cols = header.split(",")
    cells = first.split(",")
    cells[cols.index("consent")] = "false"
    more.write_text(f"{header}\n{','.join(cells)}\n{second}\n")
    rep = cat.ingest(more, update=True)
    assert (rep.revision, rep.added, rep.changed, rep.duplicates) == (2, 1, 1, 0)
    assert cat.query("NOT consent").num_rows == 1 and cat.snapshot().num_rows == 2
    assert (cat.revision().added, cat.revision().changed) == (1, 1)


def test_update_cannot_change_what_catalog_update_cannot(tmp_path, captures):
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(captures)
    meta, _ = edited(captures, "ppi.csv", 2, ppi=1000)
    with pytest.raises(DuplicateSampleError, match="ppi cannot be changed"):
        cat.ingest(meta, update=True)
    assert cat.head == 1


def test_same_bytes_with_different_consent_in_one_file(tmp_path, captures, capsys):
    with open(captures, newline="") as fh:
        rows = list(csv.DictReader(fh))
    twin = dict(rows[0], consent="false")
    out = tmp_path / "twins.csv"
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows([{**r, "file": str(captures.parent / r["file"])} for r in (rows[0], twin)])
    code, _, err = run(capsys, "catalog", "ingest", out, "--catalog", tmp_path / "c.duckdb", "--allow-outside")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "rows 1 and 2" in err and "same image bytes" in err and "conflicting consent" in err
