"""The hash-chained record log: appends chain, any edit/deletion/reorder is named, writers serialise."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpload.audit import GENESIS, LogCorruptError, RecordLog, record_hash


def _log(tmp_path: Path, n: int = 5) -> RecordLog:
    log = RecordLog(tmp_path / "audit.jsonl")
    for i in range(n):
        log.append("read", {"i": i, "version_id": f"v{i}"})
    return log


def test_records_chain_and_verify(tmp_path):
    log = _log(tmp_path)
    recs = list(log.records())
    assert [r["seq"] for r in recs] == list(range(5))
    assert recs[0]["prev"] == GENESIS
    assert all(b["prev"] == a["hash"] for a, b in zip(recs, recs[1:]))
    assert all(r["hash"] == record_hash(r) for r in recs)
    assert log.verify() == []
    assert log.head() == {"count": 5, "hash": recs[-1]["hash"]}
    assert [r["payload"]["i"] for r in log.records("read")] == list(range(5))


def _lines(log: RecordLog) -> list[str]:
    return log.path.read_text().splitlines(keepends=True)


def test_an_edited_record_is_named(tmp_path):
    log = _log(tmp_path)
    lines = _lines(log)
    rec = json.loads(lines[2])
    rec["payload"]["version_id"] = "forged"
    lines[2] = json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n"
    log.path.write_text("".join(lines))
    problems = log.verify()
    assert any(":3: hash does not match" in p for p in problems), problems


@pytest.mark.parametrize("drop", [0, 2])
def test_a_deleted_record_is_named(tmp_path, drop):
    log = _log(tmp_path)
    lines = _lines(log)
    del lines[drop]
    log.path.write_text("".join(lines))
    assert any("was deleted" in p for p in log.verify())


def test_a_truncated_log_is_caught_by_its_head(tmp_path):
    log = _log(tmp_path)
    log.path.write_text("".join(_lines(log)[:-2]))
    assert any("removed from its end" in p for p in log.verify())


def test_appending_to_a_broken_log_is_refused(tmp_path):
    log = _log(tmp_path)
    log.path.write_text(log.path.read_text().replace('"i":4', '"i":5'))
    with pytest.raises(LogCorruptError, match="last record"):
        log.append("read", {})
    log.path.write_text("not json\n")
    with pytest.raises(LogCorruptError, match="line 1 is not a JSON record"):
        log.append("read", {})


def test_bad_kind_or_payload_is_refused(tmp_path):
    log = RecordLog(tmp_path / "a.jsonl")
    with pytest.raises(ValueError, match="kind"):
        log.append("", {})
    with pytest.raises(ValueError, match="JSON object"):
        log.append("read", [1, 2])  # type: ignore[arg-type]


def _append_many(path: str, n: int) -> None:
    log = RecordLog(path)
    for i in range(n):
        log.append("read", {"pid_i": i})


def test_concurrent_writers_serialise(tmp_path):
    path = str(tmp_path / "audit.jsonl")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, 20)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    log = RecordLog(path)
    assert log.verify() == []
    assert log.head()["count"] == 60


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_byte_flip_is_detected(tmp_path_factory, data):
    log = _log(tmp_path_factory.mktemp("flip"), n=4)
    raw = bytearray(log.path.read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[pos]))
    raw[pos] = new
    log.path.write_bytes(bytes(raw))
    # a flip may leave JSON whose canonical content is unchanged only if it hits insignificant bytes;
    # canonical lines have none (no spaces), so every flip is a problem
    assert log.verify() != []


def test_an_append_reads_only_the_last_record(tmp_path):
    """Appending checks the last record only (same cost at any length); damage before it stays
    named by verify, and the new record still chains to the last one."""
    log = _log(tmp_path)
    lines = _lines(log)
    lines[1] = "damaged\n"
    log.path.write_text("".join(lines))
    rec = log.append("read", {"i": 5})
    assert rec["seq"] == 5 and rec["prev"] == json.loads(lines[-1])["hash"]
    problems = log.verify()
    assert problems and problems[0].startswith(f"{log.path}:2: not a JSON record")
