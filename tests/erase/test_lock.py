"""The erasure lock ``ROOT/.fpload/locks/erase.json`` (fpload.erase._lock), on a local root, on S3
(moto) and on GCS (the emulator): a held lock refuses a second erasure in one line naming the lock,
its holder and its age; a stale one (expired, or its holder a dead process of this host) is taken
over, a live one only with --break-lock; the lock is gone after an erasure, also a failed one; and
of two erasures started at once exactly one runs."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from fpload.catalog import open_catalog
from fpload.cli import main
from fpload.erase import erase_subject
from fpload.erase import _lock
from fpload.erase._lock import erase_lock, lock_location
from fpload.errors import RootLockedError
from fpload.pack import PackConfig, pack_version
from fpload.testing import make_captures
from fpload.versions import list_versions
from fpload.versions._store import filesystem, is_remote

CFG = PackConfig.from_dict({"encoding": "raw", "shard_max_samples": 3, "features": {"enabled": False}})


def _small_world(base: Path, root: str | Path) -> dict:
    cat = open_catalog(base / "cat.duckdb")
    cat.ingest(make_captures(base / "caps", subjects=3, fingers=1, impressions=2))
    v = pack_version(cat, out=root, name="v", config=CFG)
    cat.close()
    return {"catalog": base / "cat.duckdb", "root": str(root), "version": v.version_id}


@pytest.fixture(params=["local", "s3", "gs"])
def lworld(request, tmp_path, monkeypatch):
    """A catalog of 3 subjects and one version ``v`` under a root: a folder, s3://… or gs://…."""
    monkeypatch.setenv("FPLOAD_ERASE_STATE_DIR", str(tmp_path / "state"))
    if request.param == "local":
        root: str | Path = tmp_path / "versions"
    else:
        bucket = request.getfixturevalue({"s3": "s3_bucket", "gs": "gcs_bucket"}[request.param])
        root = f"{bucket}/versions"
    return _small_world(tmp_path, root)


def _put(where: str, rec: dict | bytes) -> None:
    data = rec if isinstance(rec, bytes) else json.dumps(rec).encode()
    if is_remote(where):
        fs, path = filesystem(where)
        fs.pipe_file(path, data)
    else:
        Path(where).parent.mkdir(parents=True, exist_ok=True)
        Path(where).write_bytes(data)


def _get(where: str) -> bytes | None:
    if is_remote(where):
        fs, path = filesystem(where)
        try:
            return fs.cat_file(path)
        except FileNotFoundError:
            return None
    p = Path(where)
    return p.read_bytes() if p.exists() else None


def _other_holder(age_s: float, expires_in_s: float) -> dict:
    now = time.time()
    return {"schema_version": 1, "kind": "erase", "token": uuid.uuid4().hex, "host": "gpu-node-7.example",
            "pid": 4242, "user": "alice", "acquired_ts": now - age_s, "expires_ts": now + expires_in_s}


def _erase(world: dict, *extra: str) -> int:
    return main(["erase", "--subject", "S001", "--reason", "consent withdrawn", "--catalog", str(world["catalog"]),
                 "--root", world["root"], *extra])


def test_a_held_lock_refuses_a_second_erasure_in_one_line(lworld, capsys):
    where = lock_location(lworld["root"])
    rec = _other_holder(age_s=600, expires_in_s=3600)
    _put(where, rec)
    with pytest.raises(RootLockedError) as err:
        erase_subject(lworld["catalog"], [lworld["root"]], subjects=["S001"], reason="consent withdrawn")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{where}: ")
    assert "alice@gpu-node-7.example pid 4242" in msg and "taken 10 min ago" in msg and "--break-lock" in msg
    assert _get(where) == json.dumps(rec).encode()          # the holder's lock is untouched
    assert [v.id for v in list_versions(lworld["root"])] == [lworld["version"]]   # nothing erased
    assert _erase(lworld) == 1
    out = capsys.readouterr().err
    assert out.startswith("fpload: error: ") and out.count("\n") == 1 and where in out and "pid 4242" in out
    # --break-lock takes it over: the erasure runs, and its own lock is gone afterwards
    assert _erase(lworld, "--break-lock") == 0, capsys.readouterr().err
    assert _get(where) is None
    assert lworld["version"] not in {v.id for v in list_versions(lworld["root"])}


def test_a_stale_lock_is_taken_over(lworld, capsys):
    where = lock_location(lworld["root"])
    _put(where, _other_holder(age_s=30 * 3600, expires_in_s=-6 * 3600))   # expired 6 h ago
    assert _erase(lworld) == 0, capsys.readouterr().err
    assert _get(where) is None
    assert lworld["version"] not in {v.id for v in list_versions(lworld["root"])}


def test_the_lock_of_a_dead_process_of_this_host_is_stale(tmp_path):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()   # its pid is now (almost surely) free; a reused one would look alive: refused, never taken
    root = tmp_path / "versions"
    root.mkdir()
    rec = {**_other_holder(age_s=5, expires_in_s=3600), "host": socket.gethostname(), "pid": proc.pid}
    _put(lock_location(root), rec)
    with erase_lock([root]) as held:
        assert json.loads(_get(held[0]))["pid"] == os.getpid()
    rec["pid"] = os.getpid()   # alive: refused
    _put(lock_location(root), rec)
    with pytest.raises(RootLockedError, match="pid"):
        with erase_lock([root]):
            pass


def test_the_lock_is_released_after_a_failed_erasure(lworld, monkeypatch):
    import fpload.erase._erase as er

    where = lock_location(lworld["root"])
    seen = []

    def fail(*args, **kwargs):
        seen.append(_get(where))
        raise RuntimeError("disk on fire")   # a fault in the middle of the erasure

    monkeypatch.setattr(er, "_run", fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        erase_subject(lworld["catalog"], [lworld["root"]], subjects=["S001"], reason="consent withdrawn")
    held = json.loads(seen[0])
    assert held["pid"] == os.getpid() and held["host"] == socket.gethostname() and held["expires_ts"] > time.time()
    assert _get(where) is None   # released in the finally
    monkeypatch.undo()
    monkeypatch.setenv("FPLOAD_ERASE_STATE_DIR", str(Path(lworld["catalog"]).parent / "state"))
    r = erase_subject(lworld["catalog"], [lworld["root"]], subjects=["S001"], reason="consent withdrawn")
    assert r["versions"] and _get(where) is None


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_two_erasures_started_at_once_exactly_one_runs(kind, tmp_path, monkeypatch, request):
    """Both reach the exclusive create together (a barrier just before it): the store lets one
    create the lock object; the other is refused naming the winner."""
    monkeypatch.setenv("FPLOAD_ERASE_STATE_DIR", str(tmp_path / "state"))
    root = tmp_path / "versions" if kind == "local" else f"{request.getfixturevalue('s3_bucket')}/versions"
    world = _small_world(tmp_path, root)
    barrier = threading.Barrier(2, timeout=60)
    real = _lock._Lock._create

    def together(self):
        barrier.wait()
        return real(self)

    monkeypatch.setattr(_lock._Lock, "_create", together)
    results: dict[str, object] = {}

    def run(name):
        try:
            results[name] = erase_subject(world["catalog"], [world["root"]], subjects=["S001"],
                                          reason="consent withdrawn")
        except Exception as err:  # noqa: BLE001 -- the test inspects it
            results[name] = err

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results.values() if isinstance(r, dict)]
    refused = [r for r in results.values() if isinstance(r, RootLockedError)]
    assert len(ok) == 1 and len(refused) == 1, results
    assert lock_location(world["root"]) in str(refused[0]) and f"pid {os.getpid()}" in str(refused[0])
    assert _get(lock_location(world["root"])) is None
    assert world["version"] not in {v.id for v in list_versions(world["root"])}


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_property_at_most_one_holder(kind, tmp_path):
    """Any interleaving of acquire / release / expiry among three would-be holders: at most one holds
    the lock at any time, and a refused one is told who holds it."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    ops = st.lists(st.tuples(st.sampled_from(["acquire", "release", "expire"]), st.integers(0, 2)), max_size=12)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(ops)
    def run(steps):
        if kind == "local":
            root: str | Path = tmp_path / uuid.uuid4().hex
            root.mkdir()
        else:
            root = f"memory://fpload-lock-{uuid.uuid4().hex[:8]}/versions"
        locks = [_lock._Lock(root, 3600) for _ in range(3)]
        holding: set[int] = set()
        for op, i in steps:
            if op == "acquire" and i not in holding:
                try:
                    locks[i].acquire()
                    holding.add(i)
                except RootLockedError as err:
                    assert holding and str(os.getpid()) in str(err)
            elif op == "release" and i in holding:
                locks[i].release()
                holding.discard(i)
            elif op == "expire" and holding:   # the holder's lease runs out: the next may take it over
                h = next(iter(holding))
                rec = {**locks[h].rec, "expires_ts": time.time() - 1}
                _put(locks[h].where, rec)
                locks[h].rec = rec   # its release still recognises its own token
                holding.clear()      # it no longer counts as holding
            assert len(holding) <= 1
            data = _get(locks[0].where)
            if holding:
                assert json.loads(data)["token"] == locks[next(iter(holding))].rec["token"]

    run()


@pytest.mark.parametrize("kind", ["local", "s3", "gs", "memory"])
def test_two_takeovers_of_one_stale_lock_one_wins(kind, tmp_path, request, monkeypatch):
    """Both read the same stale lock; the first replaces it; the second's replace is conditional on
    the copy it read (S3 If-Match on the ETag, GCS ifGenerationMatch, a flock'd compare locally) and
    fails, so it is refused rather than taking the first one's fresh lock."""
    if kind == "local":
        root: str | Path = tmp_path / "versions"
    elif kind == "memory":
        root = f"memory://fpload-lock-{uuid.uuid4().hex[:8]}/versions"
    else:
        root = f"{request.getfixturevalue({'s3': 's3_bucket', 'gs': 'gcs_bucket'}[kind])}/versions"
    where = lock_location(root)
    _put(where, _other_holder(age_s=30 * 3600, expires_in_s=-3600))
    a, b = _lock._Lock(root, 3600), _lock._Lock(root, 3600)
    seen_a, ident_a = a._read()
    seen_b, ident_b = b._read()
    assert seen_a == seen_b is not None
    sent = []
    if kind == "gs":   # record the conditional DELETE gcsfs sends
        real_call = a.fs.call
        monkeypatch.setattr(a.fs, "call", lambda *args, **kw: (sent.append(kw), real_call(*args, **kw))[1])
    assert a._replace(seen_a, ident_a) is True
    if kind == "gs":
        # the emulator ignores GCS preconditions (ifGenerationMatch), so the second replace would
        # succeed there; real GCS answers 412. What is checked here: the condition is sent.
        assert sent and sent[0]["ifGenerationMatch"] == str(ident_a["generation"])
        return
    assert b._replace(seen_b, ident_b) is False
    assert json.loads(_get(where))["token"] == a.rec["token"]
    if kind == "s3":   # the conditional PUT (If-Match on the ETag) was what refused it
        assert ident_b["etag"]


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_an_expired_holder_releasing_late_leaves_the_new_holders_lock(kind, tmp_path, request):
    """A holds the lock; it expires; B takes it over; A's release (its finally) must not delete
    B's lock: the delete is conditional on the copy A read being A's own."""
    root = tmp_path / "versions" if kind == "local" else f"{request.getfixturevalue('s3_bucket')}/versions"
    if kind == "local":
        root.mkdir()
    a, b = _lock._Lock(root, 3600), _lock._Lock(root, 3600)
    a.acquire()
    _put(a.where, {**a.rec, "expires_ts": time.time() - 1})   # A's lease ran out
    if kind == "s3":   # A reads its own (expired) copy just before B takes it over
        stale_copy = a._read()
        a._read = lambda: stale_copy
    b.acquire()
    a.release()   # S3: its DELETE carries If-Match with the ETag of the copy it read: refused
    assert json.loads(_get(a.where))["token"] == b.rec["token"]
    b.release()
    assert _get(a.where) is None
