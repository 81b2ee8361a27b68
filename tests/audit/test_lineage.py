"""The lineage index: written when a version is published, once; found by subject, sample or query;
states live / erased / missing; a crash between publishing and indexing is repaired."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpload import formats
from fpload.audit import (
    audit_log,
    find_versions,
    lineage_path,
    lineage_problems,
    record_publish,
    subject_ref,
    sync_lineage,
)
from fpload.audit._lineage import write_lineage_file
from fpload.catalog import select_ids
from fpload.pack import PackConfig, pack_version
from fpload.versions import open_version

CFG = PackConfig(encoding="raw", shard_max_samples=8)


def _pack(catalog, root: Path, name: str, where: str = "consent"):
    return pack_version(catalog, out=root, name=name, where=where, config=CFG)


def _truth(version_path: Path) -> list[dict]:
    """(sample_id, subject_id, split) of a version, from its own samples.parquet."""
    return open_version(version_path).samples.select(["sample_id", "subject_id", "split"]).to_pylist()


def test_publishing_writes_lineage_and_one_publish_record(catalog, tmp_path):
    root = tmp_path / "versions"
    res = _pack(catalog, root, "all")
    path = lineage_path(root, res.version_id)
    table = pq.read_table(path)
    truth = _truth(res.path)
    assert table.column_names == ["sample_id", "subject_ref", "split"]
    assert sorted(table.to_pylist(), key=lambda r: r["sample_id"]) == sorted(
        ({"sample_id": r["sample_id"], "subject_ref": subject_ref(r["subject_id"]), "split": r["split"]}
         for r in truth), key=lambda r: r["sample_id"])
    assert not any(r["subject_id"] in path.read_bytes().decode("latin-1") for r in truth)  # no id in clear
    recs = list(audit_log(root).records())
    assert [r["kind"] for r in recs] == ["publish"]
    p = recs[0]["payload"]
    assert p["version_id"] == res.version_id and p["name"] == "all" and p["counts"] == res.counts
    assert p["lineage"] == {"file": f".fpload/lineage/{res.version_id}.parquet",
                            "sha256": formats.file_sha256(path), "rows": res.samples}
    # packing the same version again, or indexing it again, adds nothing
    again = _pack(catalog, root, "all")
    assert not again.created
    assert record_publish(root, res.path) is None and sync_lineage(root) == []
    assert len(list(audit_log(root).records())) == 1
    assert audit_log(root).verify() == [] and lineage_problems(root) == []


def test_find_by_subject_sample_and_query(catalog, tmp_path):
    root = tmp_path / "versions"
    everyone = _pack(catalog, root, "everyone")
    f1 = _pack(catalog, root, "finger1", "finger = 1 AND subject_id <> 'S002'")
    truth = _truth(everyone.path)
    s2 = sorted(r["sample_id"] for r in truth if r["subject_id"] == "S002")

    hits = find_versions(root, subject="S002")
    assert [h["version_id"] for h in hits] == [everyone.version_id]
    assert hits[0]["sample_ids"] == s2 and hits[0]["samples"] == len(s2) and hits[0]["state"] == "live"
    assert hits[0]["splits"] == {next(r["split"] for r in truth if r["subject_id"] == "S002"): len(s2)}

    s3 = {h["name"]: h for h in find_versions(root, subject="S003")}
    assert set(s3) == {"everyone", "finger1"}
    assert s3["finger1"]["samples"] == 2 and s3["everyone"]["samples"] == 4

    one = s3["finger1"]["sample_ids"][0]
    assert {h["version_id"] for h in find_versions(root, sample=one)} == {everyone.version_id, f1.version_id}
    assert find_versions(root, subject="nobody") == [] and find_versions(root, sample="0" * 32) == []

    ids = select_ids(catalog.snapshot(), "subject_id IN ('S002', 'S003') AND finger = 2")
    by_query = {h["name"]: h for h in find_versions(root, sample_ids=ids)}
    assert by_query["everyone"]["samples"] == 4 and "finger1" not in by_query
    assert "sample_ids" not in by_query["everyone"]  # a query may select many: counts only


def test_erased_and_missing_states(catalog, tmp_path):
    root = tmp_path / "versions"
    old = _pack(catalog, root, "a")
    gone = _pack(catalog, root, "b", "finger = 2")
    # the erase helper's tombstone: the manifest replaced by tombstone.json naming the successor
    (old.path / formats.MANIFEST_NAME).unlink()
    (old.path / "tombstone.json").write_text(json.dumps({"schema_version": 1, "version_id": old.version_id,
                                                         "successor": "f" * 16}))
    shutil.rmtree(gone.path)
    states = {h["name"]: (h["state"], h["successor"]) for h in find_versions(root, subject="S004")}
    assert states == {"a": ("erased", "f" * 16), "b": ("missing", None)}


def test_a_crash_between_publishing_and_indexing_is_repaired(catalog, tmp_path, monkeypatch):
    import fpload.pack._packer as packer

    root = tmp_path / "versions"

    def killed(*_a, **_k):
        raise KeyboardInterrupt("killed between the manifest's rename and the lineage")

    monkeypatch.setattr(packer, "record_publish", killed)
    with pytest.raises(KeyboardInterrupt):
        _pack(catalog, root, "a")
    monkeypatch.undo()
    vid = open_version(root / "a").id
    assert not lineage_path(root, vid).exists()
    assert any("without lineage" in p for p in lineage_problems(root))
    # the next pack (of another version) indexes it
    _pack(catalog, root, "b", "finger = 1")
    assert lineage_path(root, vid).is_file() and lineage_problems(root) == []
    assert sorted(r["payload"]["name"] for r in audit_log(root).records("publish")) == ["a", "b"]


def test_lineage_without_its_record_is_recorded_once(catalog, tmp_path, monkeypatch):
    from fpload.audit import RecordLog

    root = tmp_path / "versions"
    real = RecordLog.append

    def killed(self, kind, payload):
        raise KeyboardInterrupt("killed between the lineage file and its record")

    monkeypatch.setattr(RecordLog, "append", killed)
    with pytest.raises(KeyboardInterrupt):
        _pack(catalog, root, "a")
    monkeypatch.setattr(RecordLog, "append", real)
    vid = open_version(root / "a").id
    assert lineage_path(root, vid).is_file()
    assert any("no record names" in p for p in lineage_problems(root))
    assert find_versions(root, subject="S001")  # found all the same
    assert sync_lineage(root) == [vid] and sync_lineage(root) == []
    assert len(list(audit_log(root).records("publish"))) == 1 and lineage_problems(root) == []


def test_a_read_only_root_is_searched_from_samples(catalog, tmp_path, monkeypatch):
    import fpload.audit._lineage as lineage

    root = tmp_path / "versions"
    res = _pack(catalog, root, "a")
    lineage_path(root, res.version_id).unlink()

    def read_only(*_a, **_k):
        raise PermissionError(13, "Permission denied", str(root / ".fpload"))

    monkeypatch.setattr(lineage, "write_lineage_file", read_only)
    hits = find_versions(root, subject="S005")
    assert [h["version_id"] for h in hits] == [res.version_id] and hits[0]["samples"] == 4
    assert not lineage_path(root, res.version_id).exists()


def test_an_edited_or_lost_lineage_file_is_named(catalog, tmp_path):
    root = tmp_path / "versions"
    res = _pack(catalog, root, "a")
    path = lineage_path(root, res.version_id)
    table = pq.read_table(path)
    write_lineage_file(path, table.slice(1), version_id=res.version_id, name="a")  # a row dropped
    assert any("sha256 differs" in p and str(path) in p for p in lineage_problems(root))
    path.unlink()
    assert any("missing" in p for p in lineage_problems(root))
    record_publish(root, res.path)  # rewritten from samples.parquet, and that is recorded
    assert [r["kind"] for r in audit_log(root).records()] == ["publish", "lineage"]
    assert lineage_problems(root) == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 5), st.sampled_from(["train", "val"])),
                         max_size=40), min_size=1, max_size=5),
       st.integers(0, 5), st.integers(0, 30))
def test_find_agrees_with_a_scan(tmp_path_factory, versions, subject, sample):
    """Any versions of (sample, subject, split) rows: find equals a brute-force scan."""
    root = tmp_path_factory.mktemp("root")
    rows_of = {}
    for i, rows in enumerate(versions):
        vid = f"{i:016x}"
        uniq = {f"{s:032x}": (f"S{subj}", split) for s, subj, split in rows}  # a sample is in a version once
        samples = pa.table({"sample_id": list(uniq), "subject_id": [v[0] for v in uniq.values()],
                            "split": [v[1] for v in uniq.values()]})
        from fpload.audit._lineage import lineage_table

        write_lineage_file(lineage_path(root, vid), lineage_table(samples), version_id=vid, name="n")
        rows_of[vid] = uniq
    want_subject = {vid: sorted(s for s, (subj, _) in u.items() if subj == f"S{subject}")
                    for vid, u in rows_of.items()}
    got = {h["version_id"]: h["sample_ids"] for h in find_versions(root, subject=f"S{subject}", repair=False)}
    assert got == {vid: ids for vid, ids in want_subject.items() if ids}
    sid = f"{sample:032x}"
    got = {h["version_id"] for h in find_versions(root, sample=sid, repair=False)}
    assert got == {vid for vid, u in rows_of.items() if sid in u}
    ids = [f"{s:032x}" for s in range(0, 31, 3)]
    got = {h["version_id"]: h["samples"] for h in find_versions(root, sample_ids=ids, repair=False)}
    want = {vid: sum(1 for s in u if s in ids) for vid, u in rows_of.items()}
    assert got == {vid: n for vid, n in want.items() if n}


def test_exactly_one_selection(tmp_path):
    from fpload.errors import UsageError

    with pytest.raises(UsageError, match="exactly one"):
        find_versions(tmp_path, subject="S1", sample="ab")
    with pytest.raises(UsageError, match="subject id"):
        subject_ref("")


def test_versions_list_skips_the_governance_folder(catalog, tmp_path):
    from fpload.versions import list_versions

    root = tmp_path / "versions"
    res = _pack(catalog, root, "a")
    decoy = root / ".fpload" / "copy"
    shutil.copytree(res.path, decoy)  # even a whole version copied under .fpload is not listed
    assert [v.id for v in list_versions(root)] == [res.version_id]
