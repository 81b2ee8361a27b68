"""Issue 12 §5: ``fpload catalog diff --from R1 --to R2`` — rows added, removed, changed (which fields)."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpload.catalog import open_catalog
from fpload.catalog._diff import diff_catalog
from fpload.cli import main
from fpload.errors import RevisionNotFoundError, UsageError
from fpload.testing import make_captures


def test_catalog_diff_names_fields_per_revision(catalog, tmp_path):
    catalog.update("subject_id = 'S003'", {"consent": False}, message="withdrawn")       # rev 2
    catalog.update("subject_id = 'S004'", {"split": "val", "quality": 12.5})             # rev 3
    more = make_captures(tmp_path / "more", subjects=1, seed=99)
    catalog.ingest(more)                                                                  # rev 4
    d = diff_catalog(catalog, 1)
    assert (d.from_rev, d.to_rev) == (1, 4)
    assert d.totals == {"added": 4, "removed": 0, "changed": 8}
    assert d.fields == {"consent": 4, "quality": 4, "split": 4}
    assert [(r["rev"], r["op"], r["added"], r["changed"], r["fields"]) for r in d.revisions] == [
        (2, "update", 0, 4, {"consent": 4}), (3, "update", 0, 4, {"quality": 4, "split": 4}),
        (4, "ingest", 4, 0, {})]
    assert d.revisions[0]["message"] == "withdrawn"
    only3 = diff_catalog(catalog, 2, 3, samples=True)
    assert only3.totals == {"added": 0, "removed": 0, "changed": 4}
    assert {tuple(s["fields"]) for s in only3.samples} == {("quality", "split")}
    # a value changed and changed back is no net change, but both revisions are listed
    catalog.update("subject_id = 'S003'", {"consent": True})                             # rev 5
    back = diff_catalog(catalog, 1, 5)
    assert back.fields == {"quality": 4, "split": 4} and len(back.revisions) == 4
    assert not diff_catalog(catalog, 3, 3).changed


def test_catalog_diff_errors(catalog):
    with pytest.raises(RevisionNotFoundError, match="no revision 9"):
        diff_catalog(catalog, 9)
    catalog.update("subject_id = 'S003'", {"consent": False})
    with pytest.raises(UsageError, match="--from 2 comes after --to 1"):
        diff_catalog(catalog, 2, 1)


def test_catalog_diff_cli(catalog, capsys):
    catalog.update("subject_id = 'S003'", {"consent": False}, message="withdrawn")
    path = str(catalog.path)
    catalog.close()
    assert main(["catalog", "diff", "--from", "1", "--catalog", path, "--json", "--samples"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"]["changed"] == 4 and len(out["samples"]) == 4 and out["to"] == 2
    assert main(["catalog", "diff", "--from", "0", "--to", "2", "--catalog", path]) == 0
    text = capsys.readouterr().out
    assert "40 added" in text and "withdrawn" in text and "consent 4" in text
    assert main(["catalog", "diff", "--from", "7", "--catalog", path]) == 1
    assert "no revision 7" in capsys.readouterr().err


_change = st.tuples(st.integers(0, 3), st.sampled_from(["consent", "split", "quality"]))
_VALUES = {"consent": [True, False], "split": ["train", "val", None], "quality": [10.0, 50.0]}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_change, st.integers(0, 2)), min_size=1, max_size=4), st.data())
def test_catalog_diff_matches_snapshots(session_catalog_factory, changes, data):
    cat = session_catalog_factory()
    for (subject, field), pick in changes:
        value = _VALUES[field][pick % len(_VALUES[field])]
        cat.update(f"subject_id = 'S00{subject}'", {field: value})
    r1 = data.draw(st.integers(0, cat.head))
    r2 = data.draw(st.integers(r1, cat.head))
    d = diff_catalog(cat, r1, r2, samples=True)
    s1 = {r["sample_id"]: r for r in cat.snapshot(r1).to_pylist()}
    s2 = {r["sample_id"]: r for r in cat.snapshot(r2).to_pylist()}
    want = {}
    for sid in s1.keys() | s2.keys():
        if sid not in s1:
            want[sid] = ("added", [])
        elif sid not in s2:
            want[sid] = ("removed", [])
        else:
            fields = [k for k in s1[sid] if s1[sid][k] != s2[sid][k]]
            if fields:
                want[sid] = ("changed", sorted(fields))
    assert {s["sample_id"]: (s["change"], sorted(s["fields"])) for s in d.samples} == want
    assert [r["rev"] for r in d.revisions] == list(range(r1 + 1, r2 + 1))


@pytest.fixture()
def session_catalog_factory(tmp_path_factory):
    captures = make_captures(tmp_path_factory.mktemp("few"), subjects=4, fingers=1, impressions=1)

    def make():
        cat = open_catalog(tmp_path_factory.mktemp("c") / "cat.duckdb")
        cat.ingest(captures)
        return cat
    return make
