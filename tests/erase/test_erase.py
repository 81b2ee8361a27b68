"""fpload erase end to end: catalog at every revision, successors, tombstones, receipt, verify,
and an adversarial scan of every byte for the erased subject."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from fpload import formats
from fpload.audit import RecordLog
from fpload.catalog import open_catalog
from fpload.formats import subject_ref
from fpload.erase import erase_subject, verify_receipt
from fpload.errors import NoMatchError, UsageError, VersionErasedError
from fpload.features import open_features
from fpload.versions import list_versions, open_version

from .conftest import subject_samples, version_content


def traces(paths: list[Path], needles: list[bytes]) -> list[str]:
    """Every file under ``paths`` whose bytes contain one of ``needles`` (the adversarial scan)."""
    hits = []
    for base in paths:
        files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()]
        for f in files:
            data = f.read_bytes()
            hits += [f"{f}: {n[:16]!r}" for n in needles if n in data]
    return hits


def erased_needles(before: dict, sids: set[str]) -> list[bytes]:
    """What must not survive: the sample ids (text), and every image member's payload."""
    out = [s.encode() for s in sids]
    for s in sids:
        for ext, data in before[s]["members"]:
            if ext in ("raw", "png"):
                out.append(data)
    return out


def test_erase_subject_everywhere(world):
    vraw, vpng = world["versions"]["raw"], world["versions"]["png"]
    before = {n: version_content(v) for n, v in world["versions"].items()}
    gone = subject_samples(before["raw"], "S001")
    assert len(gone) == 4
    cat = open_catalog(world["catalog"])
    revs_before = cat.head
    cat.close()
    # the adversarial scan finds S001 before the erasure (so it can fail)
    needles = erased_needles(before["raw"], gone) + erased_needles(before["png"], gone)
    assert traces([world["root"], world["catalog"]], needles)

    r = erase_subject(world["catalog"], [world["root"]], subjects=["S001"], reason="consent withdrawn, ticket 7")

    # catalog: no revision returns S001; a redaction marker and an 'erase' revision are there
    cat = open_catalog(world["catalog"], read_only=True)
    assert cat.head == revs_before + 1 and cat.revision().op == "erase"
    for rev in range(cat.head + 1):
        snap = cat.snapshot(rev)
        assert "S001" not in snap.column("subject_id").to_pylist()
        if rev >= 1:
            assert snap.num_rows == 16  # the other subjects, at every revision
    red = cat._con.execute("SELECT who, reason, rows_deleted, samples, sample_refs FROM redactions").fetchall()
    cat.close()
    assert red[0][1:4] == ("consent withdrawn, ticket 7", 8, 4)  # 4 samples × 2 revisions
    assert "S001" not in json.dumps(red, default=str)

    # versions: old ones tombstoned (only the tombstone left), successors hold the rest unchanged
    by_old = {v["version_id"]: v for v in r["versions"]}
    assert set(by_old) == {vraw.name, vpng.name}
    for name, old in world["versions"].items():
        v = by_old[old.name]
        assert [p.name for p in old.iterdir()] == [formats.TOMBSTONE_NAME]
        with pytest.raises(VersionErasedError, match=v["successor"]):
            open_version(old)
        succ = open_version(v["successor_path"])
        assert succ.manifest["parent"] == old.name
        after = version_content(succ.path)
        assert set(after) == set(before[name]) - gone
        for sid, d in after.items():
            assert d["members"] == before[name][sid]["members"]      # bytes, index, label
            assert {k: x for k, x in d["row"].items()} == before[name][sid]["row"]
            assert d.get("features") == before[name][sid].get("features")
        # only the shards that held S001 were rewritten; the others are the same files
        held = {before[name][s]["shard"] for s in gone}
        for sid, d in after.items():
            if d["shard"] not in held:
                assert d["shard_sha"] == before[name][sid]["shard_sha"]
        assert v["shards_rewritten"] == len(held)
        assert succ.check("sha256") == []
    open_features(by_old[vraw.name]["successor_path"])
    assert [v.id for v in list_versions(world["root"])] and all(
        v.id not in by_old for v in list_versions(world["root"]))

    # receipt, audit trail, verify, and the adversarial scan
    receipt = world["root"] / ".fpload" / "receipts" / f"{r['erasure_id']}.json"
    assert json.loads(receipt.read_text()) == r
    assert "S001" not in receipt.read_text()
    assert r["subject_refs"] == [subject_ref("S001")]
    assert sorted(r["sources"]["listed"]) == sorted(before["raw"][s]["row"]["uri"] for s in gone)
    log = RecordLog(world["root"] / ".fpload" / "audit.jsonl")
    assert log.verify() == []
    kinds = [rec["kind"] for rec in log.records()]
    assert kinds.count("tombstone") == 2 and kinds.count("erasure") == 1
    assert "S001" not in log.path.read_text()
    assert verify_receipt(receipt) == []
    assert traces([world["root"], world["catalog"]], needles) == []
    assert not list((world["root"] / ".fpload" / "erasures").glob("*/journal.json"))
    # sources were kept (the user's), and are listed
    assert all(Path(u).is_file() for u in r["sources"]["listed"])


def test_delete_sources_and_sample_selector(world):
    before = version_content(world["versions"]["png"])
    sid = sorted(subject_samples(before, "S003"))[0]
    r = erase_subject(world["catalog"], [world["root"]], samples=[sid], reason="withdrawn", delete_sources=True)
    assert len(r["samples"]) == 1 and r["sources"]["deleted"] == r["sources"]["listed"]
    assert not Path(r["sources"]["listed"][0]).exists()
    assert verify_receipt(world["root"] / ".fpload" / "receipts" / f"{r['erasure_id']}.json") == []


def test_where_selector_runs_in_the_sandbox(world):
    r = erase_subject(world["catalog"], [world["root"]], where="subject_id = 'S004' AND finger = 2", reason="req 9")
    assert len(r["samples"]) == 2
    with pytest.raises(Exception, match="not allowed|not an allowed|only"):
        erase_subject(world["catalog"], [world["root"]], where="1=1; DROP TABLE sample_rows", reason="x")


def test_verify_finds_a_planted_trace(world):
    before = version_content(world["versions"]["raw"])
    gone = subject_samples(before, "S002")
    r = erase_subject(world["catalog"], [world["root"]], subjects=["S002"], reason="withdrawn")
    receipt = world["root"] / ".fpload" / "receipts" / f"{r['erasure_id']}.json"
    assert verify_receipt(receipt) == []
    sid = sorted(gone)[0]
    image = dict(before[sid]["members"])["raw"]
    (world["root"] / "stray.bin").write_bytes(image)
    (world["root"] / "notes.txt").write_text(f"look at {sid}\n")
    problems = verify_receipt(receipt)
    assert any("stray.bin" in p and "copy of an erased image" in p for p in problems)
    assert any("notes.txt" in p and "erased sample id" in p for p in problems)


def test_rerun_after_success_returns_the_receipt_and_nothing_left_is_no_match(world):
    r = erase_subject(world["catalog"], [world["root"]], subjects=["S000"], reason="withdrawn")
    again = erase_subject(world["catalog"], [world["root"]], subjects=["S000"], reason="withdrawn")
    assert again == r
    with pytest.raises(NoMatchError):
        erase_subject(world["catalog"], [world["root"]], subjects=["nobody"], reason="withdrawn")


def test_reason_naming_the_subject_is_refused_and_nothing_changes(world):
    before = world["catalog"].read_bytes()
    with pytest.raises(UsageError, match="names the subject"):
        erase_subject(world["catalog"], [world["root"]], subjects=["S001"], reason="S001 withdrew")
    assert world["catalog"].read_bytes() == before
    assert all(open_version(v) for v in world["versions"].values())


def test_duckdb_keeps_deleted_strings_until_the_file_is_rewritten(tmp_path):
    """Why the erasure rewrites the catalog file: DELETE + CHECKPOINT + VACUUM leave the bytes."""
    path = tmp_path / "t.duckdb"
    secret = "d2b1c0ffee" * 3 + "ab"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (s VARCHAR)")
    con.execute("INSERT INTO t VALUES (?), ('other-value-1'), ('other-value-2')", [secret])
    con.execute("CHECKPOINT")
    con.execute("DELETE FROM t WHERE s = ?", [secret])
    con.execute("CHECKPOINT")
    con.execute("VACUUM")
    con.close()
    assert secret.encode() in path.read_bytes()
