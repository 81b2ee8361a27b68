"""A pack that crashes or is killed leaves nothing running, and its leftovers are cleaned only when provably dead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpload.catalog import open_catalog
from fpload.pack import pack_version
from fpload.pack import _lifeline
from fpload.pack._packer import (STALE_TMP_AGE_S, _clean_stale_tmp, _host, _tmp_is_stale, _tmp_name,
                                 _tmp_owner)
from fpload.testing import make_captures

REPO = Path(__file__).resolve().parents[2]
DEAD_PID = 2**22 + 12345  # above Linux's largest pid_max: never a live process
linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _aged(path: Path, seconds: float) -> None:
    """Set the modification time of a folder and everything in it to ``seconds`` ago."""
    t = time.time() - seconds
    for p in [*path.rglob("*"), path]:
        os.utime(p, (t, t), follow_symlinks=False)


def _tmp(root: Path, name: str, age: float = 0) -> Path:
    d = root / name
    (d / "shards").mkdir(parents=True)
    (d / "shards" / "train-000000.tar").write_bytes(b"x")
    if age:
        _aged(d, age)
    return d


# ---- temporary names -------------------------------------------------------------------------

def test_temporary_names_carry_host_and_pid():
    name = _tmp_name()
    assert name.startswith(f".tmp-{_host()}-{os.getpid()}-")
    assert _tmp_owner(name) == (_host(), os.getpid())
    assert _tmp_name() != name


@settings(max_examples=200, deadline=None)
@given(host=st.text(min_size=0, max_size=40), pid=st.integers(min_value=1, max_value=2**31))
def test_any_host_name_round_trips(host, pid):
    import socket

    real = socket.gethostname
    socket.gethostname = lambda: host
    try:
        safe = _host()
    finally:
        socket.gethostname = real
    assert safe and all(c.isalnum() or c in "-_." for c in safe)
    assert _tmp_owner(f".tmp-{safe}-{pid}-0badcafe") == (safe, pid)


@pytest.mark.parametrize("name,owner", [
    (".tmp-node-7.cluster-4242-abcdef12", ("node-7.cluster", 4242)),
    (".tmp-4242-abcdef12", (None, 4242)),            # the old form, without a host
    (".tmp-junk", None), (".tmp-host-notapid-abc", None), ("shards", None),
])
def test_owner_of_a_name(name, owner):
    assert _tmp_owner(name) == owner


# ---- which leftovers are removed -------------------------------------------------------------

def test_a_dead_pack_of_this_host_is_removed(tmp_path):
    dead = _tmp(tmp_path, f".tmp-{_host()}-{DEAD_PID}-deadbeef")
    _clean_stale_tmp(tmp_path)
    assert not dead.exists()


def test_a_live_pack_of_this_host_is_kept(tmp_path):
    live = _tmp(tmp_path, f".tmp-{_host()}-{os.getpid()}-deadbeef")
    _clean_stale_tmp(tmp_path)
    assert live.exists()


def test_another_hosts_pack_is_kept_whatever_its_pid(tmp_path):
    """The example: a pid not alive *here* says nothing about a pack on another host sharing the folder."""
    other = _tmp(tmp_path, f".tmp-other-host.example-{DEAD_PID}-deadbeef")
    old_form = _tmp(tmp_path, f".tmp-{DEAD_PID}-deadbeef")
    _clean_stale_tmp(tmp_path)
    assert other.exists() and old_form.exists()


def test_anything_untouched_for_the_stated_age_is_removed(tmp_path):
    other = _tmp(tmp_path, f".tmp-other-host-{DEAD_PID}-deadbeef", age=STALE_TMP_AGE_S + 60)
    old_form = _tmp(tmp_path, f".tmp-{DEAD_PID}-deadbeef", age=STALE_TMP_AGE_S + 60)
    recent = _tmp(tmp_path, f".tmp-other-host-{DEAD_PID}-0000beef", age=STALE_TMP_AGE_S - 600)
    _clean_stale_tmp(tmp_path)
    assert not other.exists() and not old_form.exists() and recent.exists()


def test_a_pack_still_writing_is_not_old(tmp_path):
    busy = _tmp(tmp_path, f".tmp-other-host-{DEAD_PID}-deadbeef", age=STALE_TMP_AGE_S + 60)
    (busy / "shards" / "train-000000.tar").write_bytes(b"more")  # a shard written just now
    _clean_stale_tmp(tmp_path)
    assert busy.exists()


def test_other_entries_are_never_touched(tmp_path):
    (tmp_path / "0123456789abcdef").mkdir()
    (tmp_path / ".tmp-not-a-folder").write_text("x")
    os.utime(tmp_path / ".tmp-not-a-folder", (0, 0))
    _clean_stale_tmp(tmp_path)
    assert (tmp_path / "0123456789abcdef").exists() and (tmp_path / ".tmp-not-a-folder").exists()


@settings(max_examples=200, deadline=None)
@given(same_host=st.booleans(), pid_alive=st.booleans(), age_h=st.floats(min_value=0, max_value=100),
       legacy=st.booleans())
def test_the_rule(same_host, pid_alive, age_h, legacy):
    pid = os.getpid() if pid_alive else DEAD_PID
    host = _host() if same_host else _host() + "-elsewhere"
    name = f".tmp-{pid}-cafe" if legacy else f".tmp-{host}-{pid}-cafe"
    now = time.time()
    stale = _tmp_is_stale(name, now - age_h * 3600, now)
    provably_dead = not legacy and same_host and not pid_alive
    assert stale == (provably_dead or age_h * 3600 > STALE_TMP_AGE_S)


# ---- kill -9 -------------------------------------------------------------------------------------

def _session(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            out.append(int(d.name))
    return out


@pytest.fixture(scope="module")
def big_catalog(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("big")
    meta = make_captures(root / "cap", subjects=16, fingers=2, impressions=2, size=(320, 320), seed=5)
    with open_catalog(root / "cat.duckdb") as cat:
        cat.ingest(meta)
    return root / "cat.duckdb"


@linux_only
def test_kill_9_of_a_pack_leaves_no_process_running(big_catalog, tmp_path):
    out = tmp_path / "versions"
    workers = 2
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    pack = subprocess.Popen(
        [sys.executable, "-c", "import sys; from fpload.cli import main; sys.exit(main())", "pack",
         "-c", str(big_catalog), "--where", "consent", "--out", str(out), "--name", "k",
         "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)
    left: list[int] = []
    try:
        # the pack, its resource tracker, its fork server and the workers: wait (bounded) until all run
        for _ in range(3000):
            if len(_session(pack.pid)) >= 3 + workers or pack.poll() is not None:
                break
            time.sleep(0.01)
        assert len(_session(pack.pid)) >= 3 + workers, pack.stderr.read()
        pack.kill()
        assert pack.wait() == -signal.SIGKILL  # killed mid-pack, not finished
        for _ in range(100):  # children must follow within ~10 s
            left = _session(pack.pid)
            if not left:
                break
            time.sleep(0.1)
        assert left == [], [Path(f"/proc/{p}/cmdline").read_bytes() for p in left if Path(f"/proc/{p}").exists()]
    finally:
        for p in _session(pack.pid):
            os.kill(p, signal.SIGKILL)
        pack.stderr.close()
    # the killed pack's folder is recognised as dead here and cleaned by the next pack, which completes
    leftovers = list((out / "k").glob(".tmp-*"))
    assert leftovers and all(_tmp_owner(p.name)[0] == _host() for p in leftovers)
    with open_catalog(big_catalog, read_only=True) as cat:
        res = pack_version(cat, out=out, name="k", where="consent", workers=1)
    assert res.samples == 64
    assert [p.name for p in (out / "k").iterdir()] == [res.version_id]


@linux_only
def test_die_with_ends_a_process_whose_parent_is_killed(tmp_path):
    """die_with (the workers' initializer) in isolation: a grandchild watching its grandparent."""
    code = ("import os, sys, time, subprocess\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import sys, time; from fpload.pack import _lifeline; "
            "_lifeline.die_with(int(sys.argv[1]), _lifeline.start_time(int(sys.argv[1]))); "
            "print(\"watching\", flush=True); time.sleep(600)', str(os.getpid())], stdout=subprocess.PIPE)\n"
            "child.stdout.readline()\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True)
    try:
        child = int(proc.stdout.readline())
        assert _lifeline.alive(child)
        proc.kill()
        proc.wait()
        for _ in range(100):
            if not _lifeline.alive(child):
                break
            time.sleep(0.1)
        assert not _lifeline.alive(child)
    finally:
        for p in _session(proc.pid):
            os.kill(p, signal.SIGKILL)
        proc.stdout.close()


def test_a_pool_pack_leaves_the_environment_as_it_was(catalog, tmp_path):
    before = dict(os.environ)
    pack_version(catalog, out=tmp_path, name="env", where="consent", workers=2)
    assert dict(os.environ) == before and _lifeline.PARENT_ENV not in os.environ


def test_alive():
    assert _lifeline.alive(os.getpid())
    assert _lifeline.alive(os.getpid(), _lifeline.start_time(os.getpid()))
    assert not _lifeline.alive(DEAD_PID)
    if _lifeline.start_time(os.getpid()) is not None:
        assert not _lifeline.alive(os.getpid(), "0")  # the same pid, another (earlier) process
