"""Both catalog stores, the DuckDB file and a real PostgreSQL server (tests/pg_fixture.py), give the
same revisions, digests, snapshots, as-of queries and diffs, and the same pack version_id."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fpload.catalog import open_catalog
from fpload.catalog._backend import safe_url
from fpload.catalog._catalog import _snapshot_cache
from fpload.catalog._diff import diff_catalog
from fpload.errors import CatalogError, UsageError
from fpload.testing import make_captures

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request, tmp_path) -> str:
    """A fresh catalog location: a DuckDB file, or an empty PostgreSQL database."""
    if request.param == "duckdb":
        return str(tmp_path / "cat.duckdb")
    return request.getfixturevalue("pg_url")


def _history(url: str, captures: Path) -> list:
    """Ingest, update, update again: revisions 1-3."""
    with open_catalog(url) as cat:
        cat.ingest(captures)
        cat.update("subject_id = 'S003'", {"consent": False}, message="withdrawn")
        cat.update("finger = 2", {"split": "val", "quality": 12.5})
        return [(r.rev, r.op, r.added, r.changed, r.samples, r.digest) for r in cat.revisions()]


def test_core_paths(catalog_url, captures):
    revs = _history(catalog_url, captures)
    assert [r[:5] for r in revs] == [(0, "create", 0, 0, 0), (1, "ingest", 40, 0, 40),
                                     (2, "update", 0, 4, 40), (3, "update", 0, 20, 40)]
    with open_catalog(catalog_url, create=False, read_only=True) as cat:
        assert cat.query("NOT consent", revision=1).num_rows == 0
        assert cat.query("NOT consent", revision=2).num_rows == 4
        assert set(cat.query("finger = 2", revision=3).column("split").to_pylist()) == {"val"}
        assert cat.stats(2)["consent"] == {"false": 4, "true": 36}
        d = diff_catalog(cat, 1, 3, samples=True)
        assert d.totals == {"added": 0, "removed": 0, "changed": 22}
        assert d.fields == {"consent": 4, "split": 20, "quality": 20}
        # nothing new: no revision
        assert cat.head == 3


@pytest.mark.postgres
def test_same_digests_snapshots_and_version_id(tmp_path, pg_url, captures):
    from fpload.pack import PackConfig, pack_version

    duck = str(tmp_path / "cat.duckdb")
    assert _history(duck, captures) == _history(pg_url, captures)
    ids = []
    with open_catalog(duck, read_only=True) as a, open_catalog(pg_url, read_only=True) as b:
        assert [(r.rev, r.digest) for r in a.revisions()] == [(r.rev, r.digest) for r in b.revisions()]
        for rev in range(4):
            sa, sb = a.snapshot(rev), b.snapshot(rev)
            assert sa.schema == sb.schema and sa.equals(sb)
        for cat, out in ((a, tmp_path / "va"), (b, tmp_path / "vb")):
            ids.append(pack_version(cat, out=out, name="all", where="consent", revision=3,
                                    config=PackConfig(shard_max_samples=9)).version_id)
    assert ids[0] == ids[1]


@pytest.mark.postgres
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(split=st.from_regex(r"[A-Za-z0-9_]{1,8}", fullmatch=True),
       quality=st.floats(allow_nan=False, allow_infinity=False, width=64),
       scope=st.one_of(st.none(), st.lists(st.from_regex(r"[a-z_-]{1,6}", fullmatch=True), min_size=1, max_size=3)),
       sensor=st.text(alphabet=st.sampled_from('ab",\n\\{}[] \'%?é\t'), min_size=1, max_size=10))
def test_values_round_trip_identically(tmp_path_factory, pg_server, monkeypatch, split, quality, scope, sensor):
    """Any updatable value lands in both stores and comes back identical (same digest, same table)."""
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    caps = make_captures(tmp_path_factory.mktemp("c"), subjects=1, fingers=1, impressions=2, seed=3)
    tables, digests = [], []
    for url in (str(tmp_path_factory.mktemp("d") / "c.duckdb"), pg_server.create_database()):
        with open_catalog(url) as cat:
            cat.ingest(caps)
            try:
                cat.update("finger >= 0", {"split": split, "quality": quality, "consent_scope": scope,
                                           "sensor": sensor})
            except UsageError:
                assume(False)
            tables.append(cat.snapshot())
            digests.append(cat.revision().digest)
    assert digests[0] == digests[1]
    assert tables[0].equals(tables[1])


@pytest.mark.postgres
def test_two_writers_at_once_both_land(pg_url, tmp_path):
    """Two processes ingest different captures at the same moment: two revisions, all rows, no loss."""
    a = make_captures(tmp_path / "a", subjects=3, fingers=1, impressions=2, seed=11)
    b = make_captures(tmp_path / "b", subjects=3, fingers=1, impressions=2, seed=12)
    open_catalog(pg_url).close()
    script = ("import sys; from fpload.catalog import open_catalog\n"
              "cat = open_catalog(sys.argv[1]); sys.stdin.readline(); print(cat.ingest(sys.argv[2]).revision)")
    import os

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", script, pg_url, str(m)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for m in (a, b)]
    for p in procs:   # both start together
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sorted(int(o[0]) for o in outs) == [1, 2]
    with open_catalog(pg_url, read_only=True) as cat:
        assert cat.revision().samples == 12
        assert cat.snapshot().num_rows == 12


@pytest.mark.postgres
def test_concurrent_updates_no_lost_update(pg_url, captures):
    """Threads updating different fields of the same samples at once: every change survives."""
    open_catalog(pg_url).ingest(captures)
    fields = [("split", "val"), ("quality", 7.0), ("consent", False), ("sensor", "other")]
    errors = []

    def work(field, value):
        try:
            with open_catalog(pg_url) as cat:
                cat.update("subject_id = 'S001'", {field: value})
        except Exception as err:  # pragma: no cover - shown in the assertion
            errors.append(err)

    threads = [threading.Thread(target=work, args=f) for f in fields]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with open_catalog(pg_url, read_only=True) as cat:
        assert cat.head == 5
        rows = cat.query("subject_id = 'S001'").to_pylist()
    assert rows and all((r["split"], r["quality"], r["consent"], r["sensor"]) == ("val", 7.0, False, "other")
                        for r in rows)


@pytest.mark.postgres
def test_reader_not_blocked_by_open_writer(pg_url, captures):
    """A writer holding the lock mid-transaction blocks neither readers nor their snapshots."""
    open_catalog(pg_url).ingest(captures)
    writer = open_catalog(pg_url)
    with pytest.raises(KeyboardInterrupt):
        with writer._writing():
            writer._backend.execute("UPDATE sample_rows SET split = 'x'")  # uncommitted, lock held
            with open_catalog(pg_url, read_only=True, lock_timeout=0) as reader:
                _snapshot_cache.clear()
                assert reader.query("split = 'x'").num_rows == 0
                assert reader.head == 1
            raise KeyboardInterrupt   # the writer dies: its transaction rolls back
    writer.close()
    with open_catalog(pg_url, read_only=True) as reader:
        assert reader.query("split = 'x'").num_rows == 0


@pytest.mark.postgres
def test_second_writer_times_out_in_one_line(pg_url, captures):
    from fpload.errors import CatalogBusyError

    open_catalog(pg_url).close()
    holder = open_catalog(pg_url)
    with holder._writing():
        other = open_catalog(pg_url, lock_timeout=0.2)
        with pytest.raises(CatalogBusyError, match="being written by another process; waited 0.2 s"):
            other.ingest(captures)
        other.close()
    holder.close()


@pytest.mark.postgres
def test_snapshot_cached_per_revision(pg_url, captures, monkeypatch):
    cat = open_catalog(pg_url)
    cat.ingest(captures)
    calls = []
    real = cat._backend.arrow
    monkeypatch.setattr(cat._backend, "arrow", lambda sql: calls.append(sql) or real(sql))
    _snapshot_cache.clear()
    for _ in range(3):
        cat.query("finger = 2")
    assert len(calls) == 1
    cat.update("subject_id = 'S001'", {"consent": False})
    assert cat.query("NOT consent").num_rows == 4   # a new revision: a new snapshot
    assert len(calls) == 2
    cat.close()


# -- bad input -------------------------------------------------------------------------------

def _cli(*args, env_extra=None):
    import os

    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", "import sys; from fpload.cli import main; sys.exit(main())",
                           *args], capture_output=True, text=True, env=env, timeout=120)


def test_unreachable_server_one_line_without_password():
    with socket_port() as port:
        url = f"postgresql://fp:hunter2@127.0.0.1:{port}/cat"
        r = _cli("catalog", "revisions", "--catalog", url)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "hunter2" not in r.stderr + r.stdout
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert f"postgresql://fp@127.0.0.1:{port}/cat" in lines[0] and "refused" in lines[0]


@pytest.mark.postgres
def test_wrong_password_and_missing_database(pg_server, pg_url):
    r = _cli("catalog", "revisions", "--catalog", pg_url, env_extra={"PGPASSWORD": "wrong-pw"})
    assert r.returncode != 0 and "Traceback" not in r.stderr and "wrong-pw" not in r.stderr
    assert "password authentication failed" in r.stderr and "PGPASSWORD" in r.stderr
    missing = pg_server.url("no_such_db")
    with pytest.raises(CatalogError, match=r"cannot connect to catalog .*/no_such_db: database \"no_such_db\" "
                                           r"does not exist"):
        open_catalog(missing)


@pytest.mark.postgres
def test_readers_of_an_empty_database_and_cli_round_trip(pg_url, captures):
    with pytest.raises(CatalogError, match="catalog not found"):
        open_catalog(pg_url, read_only=True)
    r = _cli("catalog", "ingest", str(captures), "--catalog", pg_url)
    assert r.returncode == 0, r.stderr
    r = _cli("catalog", "query", "finger = 2", "--catalog", pg_url, "--json")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("sample_id") == 20


def test_safe_url_never_keeps_a_password():
    @given(user=st.from_regex(r"[a-z]{1,8}", fullmatch=True), pw=st.from_regex(r"[A-Za-z0-9!*]{1,16}", fullmatch=True),
           port=st.integers(1, 65535))
    def check(user, pw, port):
        url = f"postgresql://{user}:{pw}@db.example:{port}/cat"
        assert safe_url(url) == f"postgresql://{user}@db.example:{port}/cat"

    check()


class socket_port:
    """A port on 127.0.0.1 that nothing listens on."""

    def __enter__(self) -> int:
        import socket

        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        return self.s.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.s.close()


@pytest.mark.postgres
def test_migrate_both_ways_keeps_everything(tmp_path, pg_url, captures):
    """DuckDB → PostgreSQL → DuckDB: same revisions, digests, snapshots at every revision, and the
    erasure's rows stay gone with its redaction kept."""
    from fpload.catalog._migrate import migrate_catalog

    src = str(tmp_path / "src.duckdb")
    _history(src, captures)
    with open_catalog(src) as cat:
        gone = cat.query("subject_id = 'S005'").column("sample_id").to_pylist()
        cat.erase_samples(gone, erasure_id="e1", reason="test", who="t")
    rep = migrate_catalog(src, pg_url)
    assert rep["revisions"] == 5 and rep["redactions"] == 1 and rep["head"] == 4
    back = str(tmp_path / "back.duckdb")
    r = _cli("catalog", "migrate", pg_url, back, "--json")
    assert r.returncode == 0, r.stderr
    for url in (pg_url, back):
        with open_catalog(src, read_only=True) as a, open_catalog(url, read_only=True) as b:
            assert a.catalog_id == b.catalog_id
            assert [(x.rev, x.op, x.digest, x.samples) for x in a.revisions()] == \
                [(x.rev, x.op, x.digest, x.samples) for x in b.revisions()]
            for rev in range(5):
                assert a.snapshot(rev).equals(b.snapshot(rev))
            assert not set(gone) & set(b.snapshot(1).column("sample_id").to_pylist())
    r = _cli("catalog", "migrate", src, pg_url)   # the destination holds a catalog now
    assert r.returncode != 0 and "already holds a catalog" in r.stderr and "Traceback" not in r.stderr
