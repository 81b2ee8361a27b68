"""Issue 12 §5: ``fpload versions diff A B`` — added, removed, moved, relabelled, per split and subject."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from fpload.cli import main
from fpload.pack import PackConfig, pack_version
from fpload.versions._diff import diff_tables, diff_versions

RAW = PackConfig(encoding="raw", features={"enabled": False})


def test_diff_of_two_packs_names_each_kind_of_change(tmp_path, catalog):
    a = pack_version(catalog, out=tmp_path, name="v", where="consent AND subject_id <> 'S009'", config=RAW)
    # S000 moves to val, S001 is relabelled as S101, S002 leaves, S009 arrives
    catalog.update("subject_id = 'S000'", {"split": "val"})
    catalog.update("subject_id = 'S001'", {"subject_id": "S101"})
    b = pack_version(catalog, out=tmp_path, name="v", where="consent AND subject_id <> 'S002'", config=RAW)
    d = diff_versions(a.path, b.path, samples=True)
    assert d.a == f"v/{a.version_id}" and d.b == f"v/{b.version_id}"
    split_a = {r["subject_id"]: r["split"] for r in pq.read_table(a.path / "samples.parquet").to_pylist()}
    split_b = {r["subject_id"]: r["split"] for r in pq.read_table(b.path / "samples.parquet").to_pylist()}
    # S000 moves unless its drawn split was val already; S101 is drawn anew and may land elsewhere
    moved = 4 * (split_a["S000"] != "val") + 4 * (split_a["S001"] != split_b["S101"])
    assert split_b["S000"] == "val"
    assert d.totals == {"a": 36, "b": 36, "kept": 32, "added": 4, "removed": 4, "moved": moved, "relabelled": 4}
    by_subject = {r["subject_id"]: r for r in d.by_subject}
    assert by_subject["S009"]["added"] == 4 and by_subject["S002"]["removed"] == 4
    assert by_subject["S000"]["moved"] == 4 * (split_a["S000"] != "val") and by_subject["S000"]["splits_b"] == ["val"]
    assert by_subject["S001"]["relabelled"] == 4 and by_subject["S101"]["relabelled"] == 4
    assert all(s["split_a"] != s["split_b"] for s in d.samples if s["moved"])
    relabelled = [s for s in d.samples if s["relabelled"]]
    assert {(s["label_a"].split("/")[0], s["label_b"].split("/")[0]) for s in relabelled} == {("S001", "S101")}
    # per split: what left a split arrived in another
    splits = {r["split"]: r for r in d.by_split}
    assert sum(r["moved_in"] for r in splits.values()) == sum(r["moved_out"] for r in splits.values()) == d.totals["moved"]
    assert sum(r["a"] for r in splits.values()) == 36 and sum(r["b"] for r in splits.values()) == 36
    # a version against itself: nothing changed
    same = diff_versions(a.path, a.path)
    assert not same.changed and same.by_subject == [] and same.totals["kept"] == 36


def test_versions_diff_cli_table_and_json(tmp_path, catalog, capsys):
    a = pack_version(catalog, out=tmp_path, name="v", where="consent AND finger = 1", config=RAW)
    b = pack_version(catalog, out=tmp_path, name="v", where="consent", config=RAW)
    assert main(["versions", "diff", str(a.path), str(b.path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"]["added"] == 20 and out["totals"]["removed"] == 0 and "samples" not in out
    assert main(["versions", "diff", str(a.path), str(b.path), "--samples", "--limit", "3"]) == 0
    text = capsys.readouterr()
    assert "20 added" in text.out and "per split" in text.out and "showing 3 of 10 subjects" in text.err
    # a missing version: one line, exit 1
    assert main(["versions", "diff", str(a.path), str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def _table(rows):
    return pa.table({"sample_id": [r[0] for r in rows], "subject_id": [r[1] for r in rows],
                     "split": [r[2] for r in rows], "label_key": [f"{r[1]}/{r[3]}" for r in rows]},
                    schema=pa.schema([("sample_id", pa.string()), ("subject_id", pa.string()),
                                      ("split", pa.string()), ("label_key", pa.string())]))


_sample = st.tuples(st.sampled_from("abcdefghij"), st.sampled_from(["S1", "S2", "S3"]),
                    st.sampled_from(["train", "val", "test"]), st.integers(1, 2))


@settings(max_examples=60, deadline=None)
@given(st.lists(_sample, unique_by=lambda r: r[0], max_size=10), st.lists(_sample, unique_by=lambda r: r[0], max_size=10))
def test_diff_matches_a_python_oracle(a_rows, b_rows):
    d = diff_tables(_table(a_rows), _table(b_rows), samples=True)
    a = {r[0]: r for r in a_rows}
    b = {r[0]: r for r in b_rows}
    both = a.keys() & b.keys()
    want = {"a": len(a), "b": len(b), "kept": len(both), "added": len(b.keys() - a.keys()),
            "removed": len(a.keys() - b.keys()), "moved": sum(a[s][2] != b[s][2] for s in both),
            "relabelled": sum((a[s][1], a[s][3]) != (b[s][1], b[s][3]) for s in both)}
    assert d.totals == want
    assert d.changed == any(want[k] for k in ("added", "removed", "moved", "relabelled"))
    for r in d.by_split:
        s = r["split"]
        assert r["a"] == sum(x[2] == s for x in a.values()) and r["b"] == sum(x[2] == s for x in b.values())
        assert r["added"] - r["removed"] + r["moved_in"] - r["moved_out"] == r["b"] - r["a"]
    assert {x["sample_id"] for x in d.samples} == (a.keys() ^ b.keys()) | {s for s in both if a[s][1:] != b[s][1:]}


def test_diff_at_1e5_samples_is_one_join(tmp_path):
    import numpy as np

    n = 100_000
    ids = np.char.mod("%032x", np.arange(n)).astype(str)
    subj = np.char.mod("S%05d", np.arange(n) // 10).astype(str)
    split = np.where(np.arange(n) % 10 < 8, "train", "val")
    a = pa.table({"sample_id": ids, "subject_id": subj, "split": split, "label_key": subj})
    split_b = split.copy()
    split_b[:1000] = "test"
    b = pa.table({"sample_id": ids[500:], "subject_id": subj[500:], "split": split_b[500:], "label_key": subj[500:]})
    d = diff_tables(a, b)
    assert d.totals["removed"] == 500 and d.totals["moved"] == 500 and d.totals["added"] == 0
    assert len(d.by_subject) == 100
