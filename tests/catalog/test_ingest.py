import json

import pytest

from fpload.catalog import open_catalog
from fpload.errors import DuplicateSampleError, ImageError, MetadataError
from fpload.testing import make_captures


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_ingest_each_metadata_format(tmp_path, fmt):
    meta = make_captures(tmp_path / "c", subjects=3, fingers=2, impressions=2, metadata=fmt)
    cat = open_catalog(tmp_path / "cat.duckdb")
    rep = cat.ingest(meta)
    assert (rep.revision, rep.added, rep.duplicates) == (1, 12, 0)
    rows = cat.query("subject_id = 'S001' AND finger = 2").to_pylist()
    assert len(rows) == 2
    r = rows[0]
    assert r["width"] == 40 and r["height"] == 48 and r["format"] == "png"
    assert r["consent"] is True and r["synthetic"] is True and r["ppi"] == 500
    assert json.loads(r["extra"]) == {"site": "lab-a"}
    assert len(r["sample_id"]) == 32 and r["uri"].endswith(".png")


def test_reingest_adds_nothing(catalog, captures):
    before = catalog.head
    rep = catalog.ingest(captures)
    assert rep.revision is None and rep.added == 0 and rep.duplicates == rep.rows == 40
    assert catalog.head == before
    assert catalog.snapshot().num_rows == 40


def test_same_bytes_twice_in_one_file_is_a_duplicate(tmp_path):
    meta = make_captures(tmp_path / "c", subjects=1, fingers=1, impressions=1)
    text = meta.read_text().splitlines()
    meta.write_text("\n".join(text + [text[1]]) + "\n")
    rep = open_catalog(tmp_path / "cat.duckdb").ingest(meta)
    assert rep.added == 1 and rep.duplicates == 1


def test_conflicting_metadata_for_same_bytes(tmp_path, catalog, captures):
    lines = captures.read_text().splitlines()
    header, first = lines[0], lines[1].split(",")
    first[1] = "S999"  # same file (same bytes), another subject
    other = captures.parent / "conflict.csv"
    other.write_text(header + "\n" + ",".join(first) + "\n")
    head = catalog.head
    with pytest.raises(DuplicateSampleError, match="conflicting subject_id"):
        catalog.ingest(other)
    assert catalog.head == head
    # within one file too
    both = captures.parent / "both.csv"
    both.write_text("\n".join([header, lines[1], ",".join(first)]) + "\n")
    with pytest.raises(DuplicateSampleError, match="same image bytes"):
        open_catalog(tmp_path / "fresh.duckdb").ingest(both)


def test_missing_required_columns(tmp_path):
    meta = tmp_path / "m.csv"
    meta.write_text("file,subject_id\na.png,S1\n")
    with pytest.raises(MetadataError) as e:
        open_catalog(tmp_path / "cat.duckdb").ingest(meta)
    msg = str(e.value)
    assert str(meta) in msg and "finger" in msg and "consent" in msg


@pytest.mark.parametrize("column,value,expect", [
    ("finger", "11", "'finger' = 11 is out of range"),
    ("ppi", "abc", "'ppi' must be an integer"),
    ("consent", "maybe", "'consent' must be true or false"),
])
def test_malformed_row_names_row_and_field_and_writes_nothing(tmp_path, catalog, column, value, expect):
    meta = make_captures(tmp_path / "c", subjects=2, fingers=1, impressions=1, seed=5)
    lines = meta.read_text().splitlines()
    cols = lines[0].split(",")
    row = lines[2].split(",")
    row[cols.index(column)] = value
    lines[2] = ",".join(row)
    meta.write_text("\n".join(lines) + "\n")
    head, n = catalog.head, catalog.snapshot().num_rows
    with pytest.raises(MetadataError) as e:
        catalog.ingest(meta)
    assert "row 2" in str(e.value) and expect in str(e.value)
    assert catalog.head == head and catalog.snapshot().num_rows == n


@pytest.mark.parametrize("damage", ["truncated", "not-an-image", "missing", "empty"])
def test_bad_image_named_and_nothing_written(tmp_path, catalog, damage):
    meta = make_captures(tmp_path / "c", subjects=2, fingers=1, impressions=1, seed=9)
    victim = tmp_path / "c" / "images" / "s001_f01_i0.png"
    if damage == "truncated":
        victim.write_bytes(victim.read_bytes()[:60])
    elif damage == "not-an-image":
        victim.write_text("hello, I am text")
    elif damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(b"")
    head = catalog.head
    with pytest.raises(ImageError) as e:
        catalog.ingest(meta)
    assert "s001_f01_i0.png" in str(e.value)
    assert catalog.head == head


def test_as_of_queries_and_updates(catalog):
    assert catalog.query("consent").num_rows == 40
    rev, n = catalog.update("subject_id = 'S003'", {"consent": "false"}, message="withdrawn")
    assert (rev, n) == (2, 4)
    assert catalog.query("consent").num_rows == 36
    assert catalog.query("consent", revision=1).num_rows == 40
    assert catalog.query("subject_id = 'S003' AND NOT consent", revision=2).num_rows == 4
    revs = catalog.revisions()
    assert [r.op for r in revs] == ["create", "ingest", "update"]
    assert revs[2].changed == 4 and revs[2].samples == 40 and revs[2].message == "withdrawn"
    assert len({r.digest for r in revs}) == 3
    # the same update again changes nothing and makes no revision
    assert catalog.update("subject_id = 'S003'", {"consent": False}) == (None, 0)
    assert catalog.head == 2


def test_stats(catalog):
    s = catalog.stats()
    assert s["samples"] == 40 and s["subjects"] == 10
    assert s["finger"] == {"1": 20, "2": 20}
    assert s["consent"] == {"true": 40}
