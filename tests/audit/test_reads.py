"""Reads are recorded: real Loader runs (CPU) append one hash-chained read record each; switched off,
the choice is recorded; an unwritable log warns once and training goes on; the audit joins lineage
and reads by version and split."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpload.audit import AuditWarning, ReadRecorder, audit_log, audit_subject
from fpload.audit._reads import RUN_ID, parse_tags
from fpload.errors import UsageError
from fpload.load import Loader
from fpload.pack import PackConfig, pack_version
from fpload.versions import open_version

KW = dict(batch_size=8, device="cpu", augment=False, num_threads=1)


@pytest.fixture()
def version(catalog, tmp_path):
    res = pack_version(catalog, out=tmp_path / "versions", name="fp", where="consent",
                       config=PackConfig(encoding="raw", shard_max_samples=8, splits={"train": 0.5, "val": 0.5}))
    return res


def _subject_in(version, split: str) -> str:
    rows = open_version(version.path).samples.select(["subject_id", "split"]).to_pylist()
    return next(r["subject_id"] for r in rows if r["split"] == split)


def _reads(root: Path) -> list[dict]:
    return list(audit_log(root).records("read"))


def test_each_loader_run_appends_one_read_record(version):
    root = version.path.parent.parent
    loader = Loader(version.path, split="train", run_name="resnet-a", tags={"git": "4f2c1e0", "lr": "0.1"}, **KW)
    idle = Loader(version.path, split="val", **KW)  # built, never iterated: read nothing
    assert _reads(root) == [] and loader.read_record is None
    for _epoch in range(2):
        for _batch in loader:
            pass
    recs = _reads(root)
    assert len(recs) == 1 and recs[0] == loader.read_record and idle.read_record is None
    p = recs[0]["payload"]
    assert p == {"version_id": version.version_id, "name": "fp", "split": "train", "run_id": RUN_ID,
                 "job": p["job"], "recorded": True, "run_name": "resnet-a",
                 "tags": {"git": "4f2c1e0", "lr": "0.1"}, "rank": 0, "world_size": 1, "epoch": 0,
                 "split_samples": version.counts["train"], "pid": os.getpid()}
    assert recs[0]["host"] and recs[0]["user"] and recs[0]["time"]
    assert audit_log(root).verify() == []


def test_switching_recording_off_is_recorded(version):
    root = version.path.parent.parent
    loader = Loader(version.path, split="val", record_reads=False, run_name="secret", **KW)
    for _batch in loader:
        pass
    (rec,) = _reads(root)
    assert rec["payload"] == {"version_id": version.version_id, "name": "fp", "split": "val", "run_id": RUN_ID,
                              "job": rec["payload"]["job"], "recorded": False, "reason": "record_reads=False"}
    subject = _subject_in(version, "val")
    answer = audit_subject(root, subject=subject)
    assert answer["runs"] == []
    assert [(u["version_id"], u["split"]) for u in answer["unrecorded"]] == [(version.version_id, "val")]


def test_the_audit_joins_lineage_and_reads_by_split(version, monkeypatch):
    root = version.path.parent.parent
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-7")
    for rank in (0, 1):
        loader = Loader(version.path, split="train", rank=rank, world_size=2, run_name="ddp", tags=["baseline"], **KW)
        next(iter(loader))
    monkeypatch.delenv("TORCHELASTIC_RUN_ID")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    next(iter(Loader(version.path, split="val", run_name="eval", **KW)))

    seen_in_train = audit_subject(root, subject=_subject_in(version, "train"))
    assert [v["version_id"] for v in seen_in_train["versions"]] == [version.version_id]
    (run,) = seen_in_train["runs"]
    assert run["run"] == "TORCHELASTIC_RUN_ID=job-7" and run["run_names"] == ["ddp"]
    assert run["tags"] == {"baseline": ""} and run["versions"] == [version.version_id]
    assert sorted((r["rank"], r["world_size"], r["epoch"]) for r in run["reads"]) == [(0, 2, 0), (1, 2, 0)]

    seen_in_val = audit_subject(root, subject=_subject_in(version, "val"))
    assert [r["run_names"] for r in seen_in_val["runs"]] == [["eval"]]
    assert seen_in_val["runs"][0]["run"] == RUN_ID
    assert audit_subject(root, subject="nobody") == {"subject_ref": audit_subject(root, subject="nobody")["subject_ref"],
                                                      "versions": [], "runs": [], "unrecorded": []}


def test_an_unwritable_log_warns_once_and_training_goes_on(version):
    root = version.path.parent.parent
    shutil.rmtree(root / ".fpload")
    (root / ".fpload").write_text("not a folder: the log cannot be written here\n")
    first = Loader(version.path, split="train", **KW)
    with pytest.warns(AuditWarning, match=r"reads of .* are not recorded") as caught:
        batches = sum(1 for _ in first)
    assert batches == len(first) and first.read_record is None and len(caught) == 1
    assert "\n" not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second loader of this root in this process is silent
        second = Loader(version.path, split="val", **KW)
        assert sum(1 for _ in second) == len(second)
    assert second.read_record is None


def test_bad_run_names_and_tags_are_refused_at_construction(version):
    with pytest.raises(UsageError, match="run_name"):
        Loader(version.path, split="train", run_name="two\nlines", **KW)
    with pytest.raises(UsageError, match="tag"):
        Loader(version.path, split="train", tags={"git": 7}, **KW)
    assert parse_tags(None) == {} and parse_tags(["b", "a"]) == {"a": "", "b": ""}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run_name=st.one_of(st.none(), st.text(max_size=210)),
       tags=st.one_of(st.none(), st.lists(st.text(max_size=5), max_size=3),
                      st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=5), st.integers()), max_size=3)))
def test_run_names_and_tags_are_refused_or_recorded_verbatim(tmp_path_factory, run_name, tags):
    """Any run_name/tags: a one-line UsageError at construction, or recorded exactly, chain intact."""
    root = tmp_path_factory.mktemp("root")
    version = SimpleNamespace(path=root / "fp" / ("0" * 16), id="0" * 16, name="fp")
    try:
        rec = ReadRecorder(version, "train", rank=0, world_size=1, run_name=run_name, tags=tags)
    except UsageError as err:
        assert "\n" not in str(err)
        return
    got = rec.started(epoch=3)
    assert rec.started(epoch=4) is got  # once
    (stored,) = list(audit_log(root).records("read"))
    p = stored["payload"]
    assert p["run_name"] == run_name and p["epoch"] == 3
    assert p["tags"] == ({t: "" for t in tags} if isinstance(tags, list) else (tags or {}))
    assert audit_log(root).verify() == []


def test_a_copy_outside_any_root_warns_unless_recording_is_off(version, tmp_path):
    copy = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(version.path, copy)
    with pytest.warns(AuditWarning, match="not named by its id") as caught:
        loader = Loader(copy, split="train", **KW)
        next(iter(loader))
    assert len(caught) == 1 and loader.read_record is None
    assert not (tmp_path / ".fpload").exists() and not (copy.parent / ".fpload").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        off = Loader(copy, split="train", record_reads=False, **KW)
        next(iter(off))
    assert off.read_record is None
