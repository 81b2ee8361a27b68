"""`fpload versions find`, `fpload audit` and `fpload audit verify` through the CLI: JSON answers,
exit 1 naming an edited or deleted record, one-line usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fpload.audit import audit_log
from fpload.catalog import open_catalog
from fpload.cli import main
from fpload.load import Loader
from fpload.pack import PackConfig, pack_version
from fpload.testing import make_captures


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def store(tmp_path):
    """A catalog (closed), a root with two versions, and one recorded read of the first's train split."""
    meta = make_captures(tmp_path / "caps", subjects=10, fingers=2, impressions=1, seed=3)
    cat_path = tmp_path / "cat.duckdb"
    root = tmp_path / "versions"
    with open_catalog(cat_path) as cat:
        cat.ingest(meta)
        cfg = PackConfig(encoding="raw", splits={"train": 0.5, "val": 0.5})
        a = pack_version(cat, out=root, name="a", where="consent", config=cfg)
        b = pack_version(cat, out=root, name="b", where="finger = 2", config=cfg)
    loader = Loader(a.path, split="train", batch_size=4, device="cpu", augment=False, run_name="resnet-a")
    next(iter(loader))
    return {"cat": cat_path, "root": root, "a": a, "b": b}


def _train_subject(version) -> str:
    from fpload.versions import open_version

    rows = open_version(version.path).samples.to_pylist()
    return next(r["subject_id"] for r in rows if r["split"] == "train")


def test_find_and_audit_answer_in_json(store, capsys):
    subject = _train_subject(store["a"])
    code, out, _ = run(capsys, "versions", "find", "--root", store["root"], "--subject", subject, "--json")
    assert code == 0
    hits = json.loads(out)
    assert {h["name"] for h in hits} == {"a", "b"} and {h["state"] for h in hits} == {"live"}
    code, out, _ = run(capsys, "versions", "find", "--root", store["root"], "--where",
                       f"subject_id = '{subject}' AND finger = 1", "-c", store["cat"], "--json")
    assert code == 0 and [(h["name"], h["samples"]) for h in json.loads(out)] == [("a", 1)]
    code, out, _ = run(capsys, "audit", "--root", store["root"], "--subject", subject, "--json")
    answer = json.loads(out)
    assert code == 0 and [r["run_names"] for r in answer["runs"]] == [["resnet-a"]]
    assert answer["runs"][0]["versions"] == [store["a"].version_id]
    code, out, _ = run(capsys, "audit", "--root", store["root"], "--subject", subject)
    assert code == 0 and "resnet-a" in out and store["a"].version_id in out


def test_verify_passes_then_names_an_edited_record(store, capsys):
    root = store["root"]
    code, out, _ = run(capsys, "audit", "verify", "--root", root)
    assert code == 0 and "ok:" in out and "3 records" in out
    log = audit_log(root).path
    lines = log.read_text().splitlines(keepends=True)
    rec = json.loads(lines[2])
    assert rec["kind"] == "read"
    rec["payload"]["run_name"] = "someone-else"
    lines[2] = json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n"
    log.write_text("".join(lines))
    code, out, err = run(capsys, "audit", "verify", "--root", root)
    assert code == 1 and f"{log}:3: hash does not match" in err
    code, out, _ = run(capsys, "audit", "verify", "--root", root, "--json")
    assert code == 1 and not json.loads(out)["ok"]


def test_verify_names_a_deleted_record(store, capsys):
    root = store["root"]
    log = audit_log(root).path
    lines = log.read_text().splitlines(keepends=True)
    log.write_text(lines[0] + lines[2])  # the second publish record removed
    code, _, err = run(capsys, "audit", "verify", "--root", root)
    assert code == 1
    assert f"{log}:2: seq 2 where 1 was expected" in err
    assert "no record names this lineage file" in err  # the deleted record's lineage file is orphaned


def test_verify_names_an_edited_lineage_file(store, capsys):
    from fpload.audit import lineage_path

    path = lineage_path(store["root"], store["b"].version_id)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    code, _, err = run(capsys, "audit", "verify", "--root", store["root"])
    assert code == 1 and f"{path}: sha256 differs" in err


@pytest.mark.parametrize("args", [
    ("versions", "find", "--root", "{root}"),
    ("versions", "find", "--root", "{root}", "--subject", "S1", "--sample", "ab"),
    ("audit",),
    ("audit", "--subject", "S1"),
    ("versions", "find", "--root", "{root}", "--where", "finger = 1", "-c", "{root}/no.duckdb"),
])
def test_usage_errors_are_one_line_exit_2(tmp_path, capsys, args):
    code, _, err = run(capsys, *(a.format(root=tmp_path) for a in args))
    assert code == 2, err
    assert err.startswith("fpload: error: ") and err.count("\n") == 1


def test_a_missing_root_is_one_line_exit_1(tmp_path, capsys):
    code, _, err = run(capsys, "audit", "verify", "--root", tmp_path / "nope")
    assert code == 1 and err.startswith("fpload: error: no such version root") and err.count("\n") == 1
    code, _, err = run(capsys, "versions", "find", "--root", Path(tmp_path / "nope"), "--subject", "S1")
    assert code == 1 and err.count("\n") == 1
