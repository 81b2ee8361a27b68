"""Several processes on one catalog: readers share it, a pack holds it only for its snapshot, a second
writer waits for the first and gives up with one line naming the holder. Real processes throughout:
DuckDB's file lock is per process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpload.catalog import open_catalog
from fpload.catalog._lock import DEFAULT_LOCK_TIMEOUT, TIMEOUT_ENV, lock_timeout
from fpload.errors import CatalogBusyError, UsageError
from fpload.testing import make_captures

REPO = Path(__file__).resolve().parents[2]

# holds the catalog open (read-only with "ro", for writing with "rw") until a line arrives on stdin
HOLDER = """
import sys
from fpload.catalog import open_catalog
cat = open_catalog(sys.argv[1], create=False, read_only=sys.argv[2] == "ro", lock_timeout=0)
cat.head  # connects, and keeps the connection (and DuckDB's lock) until released
print("holding", flush=True)
sys.stdin.readline()
cat.close()
"""

# runs the CLI, printing "locked" (once) the first time DuckDB refuses the file: proof that it waited
SPY_CLI = """
import sys, duckdb
real = duckdb.connect
seen = []
def spy(*args, **kwargs):
    try:
        return real(*args, **kwargs)
    except duckdb.IOException:
        if not seen:
            seen.append(1)
            print("locked", flush=True)
        raise
duckdb.connect = spy
from fpload.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env(timeout: float | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(TIMEOUT_ENV, None)
    env.pop("FPLOAD_DEBUG", None)
    if timeout is not None:
        env[TIMEOUT_ENV] = str(timeout)
    return env


def fpload(*args, timeout: float | None = None, cwd=None) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process."""
    return subprocess.run([sys.executable, "-c", "import sys; from fpload.cli import main; sys.exit(main())",
                           *map(str, args)], capture_output=True, text=True, env=_env(timeout), cwd=cwd,
                          timeout=300)


class Holder:
    """A process holding the catalog's lock (shared with "ro", exclusive with "rw") until released."""

    def __init__(self, path: Path, mode: str):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), mode], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        line = self.proc.stdout.readline()
        assert line.strip() == "holding", self.proc.stderr.read()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
        assert self.proc.wait(timeout=60) == 0

    def __enter__(self) -> "Holder":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()


@pytest.fixture()
def cat_path(tmp_path, captures) -> Path:
    path = tmp_path / "cat.duckdb"
    with open_catalog(path) as cat:
        cat.ingest(captures)
    return path


def assert_busy_line(err: str, path: Path, holder_pid: int) -> None:
    assert err.startswith("fpload: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert str(path) in err and f"process {holder_pid}" in err and TIMEOUT_ENV in err


def test_readers_do_not_block_each_other(cat_path):
    # timeout 0: a reader that had to wait would fail at once
    with Holder(cat_path, "ro"):
        res = fpload("catalog", "query", "consent", "--count", "--json", "-c", cat_path, timeout=0)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["count"] == 40
        for verb in ("stats", "revisions"):
            res = fpload("catalog", verb, "--json", "-c", cat_path, timeout=0)
            assert res.returncode == 0, res.stderr


def test_a_pack_snapshot_is_a_reader(cat_path, tmp_path):
    with Holder(cat_path, "ro"):
        res = fpload("pack", "-c", cat_path, "--where", "consent", "--out", tmp_path / "v", "--name", "a",
                     "--workers", "1", "--json", timeout=0)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["samples"] == 40


def test_a_running_pack_blocks_neither_readers_nor_writers(tmp_path):
    """The example: `catalog query` failed while a pack ran, because the pack held the write lock."""
    meta = make_captures(tmp_path / "cap", subjects=16, fingers=2, impressions=2, size=(320, 320), seed=3)
    path = tmp_path / "cat.duckdb"
    with open_catalog(path) as cat:
        cat.ingest(meta)
    out = tmp_path / "versions"
    pack = subprocess.Popen([sys.executable, "-c", "import sys; from fpload.cli import main; sys.exit(main())",
                             "pack", "-c", str(path), "--where", "consent", "--out", str(out), "--name", "big",
                             "--workers", "1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        # wait (bounded) for the pack's working folder, then freeze the pack mid-way
        tmp = None
        for _ in range(6000):
            found = list((out / "big").glob(".tmp-*")) if (out / "big").exists() else []
            if found or pack.poll() is not None:
                tmp = found[0] if found else None
                break
            time.sleep(0.01)
        assert tmp is not None, pack.communicate()
        pack.send_signal(signal.SIGSTOP)
        assert tmp.exists(), "the pack finished before it could be paused; give it more data"
        res = fpload("catalog", "query", "consent", "--count", "-c", path, timeout=0)
        assert res.returncode == 0 and res.stdout.strip() == "64", res.stderr
        res = fpload("catalog", "update", "subject_id = 'S000'", "--set", "quality=12", "-c", path, timeout=0)
        assert res.returncode == 0 and "revision 2" in res.stdout, res.stderr
        pack.send_signal(signal.SIGCONT)
        stdout, stderr = pack.communicate(timeout=300)
        assert pack.returncode == 0, stderr
        # the pack used its snapshot (revision 1), not the update made while it ran
        assert json.loads(stdout)["samples"] == 64
        manifest = json.loads((Path(json.loads(stdout)["path"]) / "manifest.json").read_text())
        assert manifest["catalog"]["revision"] == 1
    finally:
        if pack.poll() is None:
            pack.send_signal(signal.SIGCONT)
            pack.kill()
            pack.communicate()


def test_a_second_writer_waits_for_the_first(cat_path):
    with Holder(cat_path, "rw") as first:
        second = subprocess.Popen(
            [sys.executable, "-c", SPY_CLI, "catalog", "update", "subject_id = 'S001'", "--set", "consent=false",
             "-c", str(cat_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(120))
        try:
            assert second.stdout.readline().strip() == "locked"  # it found the first writer there ...
            first.release()                                        # ... and goes on once it is gone
            stdout, stderr = second.communicate(timeout=120)
        finally:
            if second.poll() is None:
                second.kill()
                second.communicate()
    assert second.returncode == 0, stderr
    assert "revision 2: changed 4 samples" in stdout


def test_a_writer_gives_up_after_the_timeout_naming_the_holder(cat_path):
    with Holder(cat_path, "rw") as first:
        res = fpload("catalog", "update", "subject_id = 'S001'", "--set", "consent=false", "-c", cat_path,
                     timeout=0.3)
        assert res.returncode == 1
        assert_busy_line(res.stderr, cat_path, first.pid)
        # a reader, too, gives up while a writer holds the file (DuckDB: one writer or many readers)
        res = fpload("catalog", "query", "consent", "-c", cat_path, timeout=0)
        assert res.returncode == 1
        assert_busy_line(res.stderr, cat_path, first.pid)
    with open_catalog(cat_path, read_only=True) as cat:
        assert cat.head == 1  # the refused update wrote nothing


def test_a_catalog_lets_go_after_each_revision(cat_path, captures, tmp_path):
    """A long-lived Catalog object in one process must not lock out others between its writes."""
    cat = open_catalog(cat_path)
    try:
        rev, n = cat.update("subject_id = 'S002'", {"quality": 5})
        assert (rev, n) == (2, 4)
        res = fpload("catalog", "update", "subject_id = 'S003'", "--set", "quality=6", "-c", cat_path, timeout=0)
        assert res.returncode == 0, res.stderr
        assert cat.head == 3  # reconnects and sees the other process's revision
        cat.release()
        res = fpload("catalog", "revisions", "--json", "-c", cat_path, timeout=0)
        assert [r["rev"] for r in json.loads(res.stdout)] == [0, 1, 2, 3]
    finally:
        cat.close()


def test_two_processes_creating_one_catalog(tmp_path, captures):
    path = tmp_path / "new.duckdb"
    procs = [subprocess.Popen([sys.executable, "-c", "import sys; from fpload.cli import main; sys.exit(main())",
                               "catalog", "ingest", str(captures), "-c", str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    outs = sorted(out for out, _ in results)
    assert "nothing new" in outs[0] and "revision 1: added 40 samples" in outs[1]


def test_a_closed_catalog_stays_closed(cat_path):
    from fpload.errors import CatalogError

    cat = open_catalog(cat_path)
    cat.close()
    with pytest.raises(CatalogError, match="is closed"):
        cat.head


def test_busy_error_in_process(cat_path):
    with Holder(cat_path, "rw") as first:
        with pytest.raises(CatalogBusyError, match=f"process {first.pid}"):
            open_catalog(cat_path, read_only=True, lock_timeout=0)


def test_lock_timeout_setting(monkeypatch):
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert lock_timeout() == DEFAULT_LOCK_TIMEOUT
    monkeypatch.setenv(TIMEOUT_ENV, "2.5")
    assert lock_timeout() == 2.5 and lock_timeout(7) == 7.0
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(UsageError, match=TIMEOUT_ENV):
            lock_timeout()


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(readers=st.integers(min_value=1, max_value=3))
def test_any_number_of_readers_share_and_a_writer_names_one_of_them(cat_path, readers):
    holders = [Holder(cat_path, "ro") for _ in range(readers)]
    try:
        res = fpload("catalog", "query", "consent", "--count", "-c", cat_path, timeout=0)
        assert res.returncode == 0 and res.stdout.strip() == "40", res.stderr
        res = fpload("catalog", "update", "consent", "--set", "quality=1", "-c", cat_path, timeout=0)
        assert res.returncode == 1 and "is in use by process" in res.stderr
        assert any(f"process {h.pid} " in res.stderr for h in holders)
    finally:
        for h in holders:
            h.release()
            h.__exit__()
