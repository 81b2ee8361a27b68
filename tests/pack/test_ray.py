"""``pack_version(..., engine="ray")`` / ``fpload pack --engine ray``: the same version as a local pack.

The Ray tests share one local cluster (tests/ray_fixture.py) and stay small: tens of samples of
48×40 pixels, a handful of shards.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings, strategies as st

from fpload.catalog import open_catalog
from fpload.cli import main
from fpload.errors import EngineError, ImageError, UsageError
from fpload.pack import PackConfig, pack_version
from fpload.pack._ray import cut_shards, starts_shard
from fpload.pack._shard import ShardWriter
from fpload.testing import make_captures


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_same_version(a: Path, b: Path) -> None:
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys()
    for name in fa:
        if name == "manifest.json":  # created_at is the one field outside the id
            ma, mb = json.loads(fa[name]), json.loads(fb[name])
            ma.pop("created_at"), mb.pop("created_at")
            assert ma == mb
        else:
            assert fa[name] == fb[name], name


# -- the shard boundaries (no Ray needed) ------------------------------------------------------

@example(samples=[("train", [0]), ("train", [0]), ("train", [0]), ("train", [0, 0]), ("train", [0])],
         max_samples=2, max_bytes=2048)
@settings(max_examples=60, deadline=None)
@given(samples=st.lists(st.tuples(st.sampled_from(["train", "val", "test"]),
                                  st.lists(st.integers(0, 3000), min_size=1, max_size=4)),
                        min_size=1, max_size=40),
       max_samples=st.one_of(st.none(), st.integers(1, 9)),
       max_bytes=st.one_of(st.none(), st.integers(1, 20000)))
def test_cut_shards_matches_real_shard_writers(samples, max_samples, max_bytes):
    """cut_shards from member sizes alone = the boundaries that real ShardWriters, fed those members
    under the local packer's rule, end up with (tar sizes computed, not measured)."""
    if max_samples is None and max_bytes is None:
        max_samples = 5
    samples.sort(key=lambda s: ["train", "val", "test"].index(s[0]))  # a plan orders by split
    splits = [s for s, _ in samples]
    lengths = [lens for _, lens in samples]
    expected, start = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        writer = None
        for i, (split, lens) in enumerate(samples):
            members = [(f"m{j}", b"\x00" * n) for j, n in enumerate(lens)]
            size = sum(n + 1024 for n in lens)
            if writer is not None and starts_shard(writer.split, writer.samples, writer.bytes_written, split, size,
                                                   max_samples, max_bytes):
                writer.close()
                expected.append((start, i))
                writer = None
            if writer is None:
                writer, start = ShardWriter(Path(tmp) / f"s{i}", split), i
            writer.add(f"k{i}", members)
        writer.close()
        expected.append((start, len(samples)))
    assert cut_shards(splits, lengths, max_samples, max_bytes) == expected
    # without sizes only splits and counts cut. Every split change is a true cut; a count cut need
    # not be one (a byte cut before it shifts the count: round one's shard there is redone), e.g.
    # five samples, two a shard, a byte cut after the third: true starts 0, 2, 3, coarse 0, 2, 4
    coarse = cut_shards(splits, None, max_samples, None)
    starts = {a for a, _ in expected}
    assert {a for a, _ in coarse if a == 0 or splits[a] != splits[a - 1]} <= starts
    assert {a for a, _ in coarse} <= starts or max_bytes is not None


@settings(max_examples=25, deadline=None)
@given(samples=st.lists(st.lists(st.binary(max_size=1500), min_size=1, max_size=3), min_size=1, max_size=6),
       abort_after=st.one_of(st.none(), st.integers(0, 6)))
def test_a_shard_streamed_to_a_store_is_the_local_shard(s3_endpoint, samples, abort_after):
    """What a Ray task of an s3:// pack streams to the store (ShardWriter with an fsspec file system)
    is byte for byte the local shard and index, with the same ShardInfo; an aborted one (a byte cut,
    a failure) leaves no object."""
    import uuid

    from fpload.versions._store import filesystem

    fs, _ = filesystem("s3://x")
    bucket = f"fpload-prop-{uuid.uuid4().hex[:10]}"
    fs.mkdir(bucket)
    with tempfile.TemporaryDirectory() as tmp:
        local = ShardWriter(Path(tmp) / "~part-000000", "train")
        remote = ShardWriter(f"{bucket}/v/.tmp-h-1-abc/shards/~part-000000", "train", fs=fs)
        for i, lens in enumerate(samples):
            if abort_after is not None and i == abort_after:
                break
            members = [(f"m{j}", data) for j, data in enumerate(lens)]
            local.add(f"k{i}", members)
            remote.add(f"k{i}", members)
        if abort_after is not None:
            remote.abort()
            assert fs.find(bucket) == []
            local.abort()
            return
        info = local.close()
        assert remote.close() == info and remote.index_bytes == len((Path(tmp) / info.index_file).read_bytes())
        base = f"{bucket}/v/.tmp-h-1-abc/shards"
        assert fs.cat_file(f"{base}/{info.file}") == (Path(tmp) / info.file).read_bytes()
        assert fs.cat_file(f"{base}/{info.index_file}") == (Path(tmp) / info.index_file).read_bytes()


def test_engine_and_address_are_checked(tmp_path, catalog):
    with pytest.raises(UsageError, match="engine 'spark' is not one of local, ray"):
        pack_version(catalog, out=tmp_path / "out", name="v", where="consent", engine="spark")
    with pytest.raises(UsageError, match="--address 'auto' needs --engine ray"):
        pack_version(catalog, out=tmp_path / "out", name="v", where="consent", address="auto")
    assert not (tmp_path / "out").exists()


def test_missing_ray_names_the_extra(monkeypatch):
    from fpload import _ray

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(EngineError, match=r"pip install 'fpload\[ray\]'") as info:
        _ray.connect("auto")
    assert "\n" not in str(info.value)


# -- on the session's local Ray cluster --------------------------------------------------------

@pytest.mark.ray
def test_ray_pack_is_the_local_pack_byte_for_byte(tmp_path, catalog, ray_cluster, capsys):
    """Features on, several shards per split: same id and files, through the API and the CLI."""
    cfg = PackConfig(encoding="png", shard_max_samples=7)
    local = pack_version(catalog, out=tmp_path / "local", name="v", where="consent", config=cfg, workers=1)
    on_ray = pack_version(catalog, out=tmp_path / "ray", name="v", where="consent", config=cfg, engine="ray")
    assert len(local.manifest["shards"]) > 3 and local.manifest.get("features")
    assert on_ray.version_id == local.version_id and on_ray.created
    _assert_same_version(local.path, on_ray.path)
    assert not list((tmp_path / "ray" / "v").glob(".tmp-*"))
    # the CLI, config by file: the same version again
    (tmp_path / "pack.yaml").write_text("encoding: png\nshard_max_samples: 7\n")
    code = main(["pack", "--where", "consent", "--catalog", str(catalog.path), "--config", str(tmp_path / "pack.yaml"),
                 "--out", str(tmp_path / "cli"), "--name", "v", "--engine", "ray", "--json"])
    assert code == 0
    got = json.loads(capsys.readouterr().out)
    assert got["version_id"] == local.version_id
    _assert_same_version(local.path, Path(got["path"]))


@pytest.mark.ray
def test_ray_pack_where_shard_max_mb_cuts(tmp_path, catalog, ray_cluster):
    """Byte limits cut inside most of round one's ranges (round two writes those true shards), not
    inside the last split's (its round-one shard is kept): same bytes."""
    cfg = PackConfig(encoding="raw", shard_max_samples=7, shard_max_mb=0.045)
    local = pack_version(catalog, out=tmp_path / "local", name="v", where="consent", config=cfg, workers=1)
    sizes = [s["samples"] for s in local.manifest["shards"]]
    assert max(sizes) < 7  # the byte limit, not the count, cut them
    on_ray = pack_version(catalog, out=tmp_path / "ray", name="v", where="consent", config=cfg, engine="ray")
    assert on_ray.version_id == local.version_id
    _assert_same_version(local.path, on_ray.path)
    assert sorted(p.name for p in (on_ray.path / "shards").iterdir() if p.name.startswith("~part-")) == []


@pytest.mark.ray
def test_failed_ray_pack_publishes_nothing(tmp_path, ray_cluster):
    """A task that fails for good (a source changed since it was catalogued) fails the pack with the
    local pack's one-line error; no version, no temporary folder is left."""
    meta = make_captures(tmp_path / "caps", subjects=3, fingers=2, impressions=2, seed=4)
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(meta)
    victim = sorted((tmp_path / "caps" / "images").iterdir())[-1]
    victim.write_bytes(victim.read_bytes() + b"tampered")
    cfg = PackConfig(encoding="png", shard_max_samples=3)
    with pytest.raises(ImageError) as info:
        pack_version(cat, out=tmp_path / "out", name="v", where="consent", config=cfg, engine="ray")
    msg = str(info.value)
    assert "\n" not in msg and str(victim) in msg and "changed since it was catalogued" in msg
    assert list((tmp_path / "out" / "v").iterdir()) == []
    cat.close()


def _store_objects(url: str) -> dict[str, int]:
    from fpload.versions._store import filesystem

    fs, path = filesystem(url)
    return {k[len(path) + 1:]: int(v["size"]) for k, v in fs.find(path, detail=True).items()}


@pytest.mark.ray
def test_ray_pack_to_an_object_store(tmp_path, catalog, ray_cluster, s3_bucket, monkeypatch):
    """--out s3://…: the tasks stream their shards to a temporary prefix of the store, the driver
    copies them server-side, uploads its own files, manifest last: the same id and the same bytes
    as a local pack; the driver's staging folder never holds a shard and no prefix is left."""
    from fpload.pack import _remote, _shard
    from fpload.versions import open_version
    from fpload.versions._store import filesystem

    def no_shards_here(*args, **kwargs):
        raise AssertionError("the driver wrote a shard")

    # the driver never writes a shard (the Ray workers are other processes, with the real writer)
    monkeypatch.setattr(_shard.ShardWriter, "__init__", no_shards_here)
    seen = {}
    real_upload = _remote.upload_version

    def upload(local, root, name, version_id, shards=None):
        seen["local"] = sorted(p.name for p in local.rglob("*.tar")) + sorted(p.name for p in local.rglob("*.idx"))
        seen["tmp"] = _store_objects(shards.url)  # what the tasks wrote, before the copies
        seen["sources"] = {src for src, _ in shards.sources.values()}
        return real_upload(local, root, name, version_id, shards)

    monkeypatch.setattr(_remote, "upload_version", upload)
    cfg = PackConfig(encoding="raw-lz4", shard_max_samples=9, shard_max_mb=0.05)  # round two too
    res = pack_version(catalog, out=f"{s3_bucket}/versions", name="v", where="consent", config=cfg, engine="ray")
    monkeypatch.undo()
    local = pack_version(catalog, out=tmp_path / "local", name="v", where="consent", config=cfg)
    assert res.version_id == local.version_id and res.path == f"{s3_bucket}/versions/v/{local.version_id}"
    assert res.created and len(local.manifest["shards"]) > 3
    assert seen["local"] == []  # the driver's staging folder (under $TMPDIR) held no shard
    assert any(k.startswith("shards/~part-") for k in seen["tmp"])  # the tasks wrote to the store
    # every published shard came from there (round two's under their true names); besides them only
    # whole provisional shards (ranges shifted by an earlier byte cut): a task that met a byte cut
    # discarded its upload, no lone .tar
    assert seen["sources"] <= set(seen["tmp"]) and any(not k.startswith("shards/~part-") for k in seen["sources"])
    extra = {k.rsplit(".", 1)[0] for k in set(seen["tmp"]) - seen["sources"]}
    assert all(k.startswith("shards/~part-") for k in extra)
    assert set(seen["tmp"]) - seen["sources"] == {k + s for k in extra for s in (".tar", ".idx")}
    files = _files(local.path)
    objects = _store_objects(f"{s3_bucket}/versions/v")
    assert sorted(objects) == sorted(f"{local.version_id}/{k}" for k in files)  # no .tmp- prefix left
    fs, path = filesystem(res.path)
    for name, data in files.items():
        if name != "manifest.json":
            assert fs.cat_file(f"{path}/{name}") == data, name
    remote = open_version(res.path)
    local_m, remote_m = dict(local.manifest), dict(remote.manifest)
    local_m.pop("created_at"), remote_m.pop("created_at")
    assert remote_m == local_m


@pytest.mark.ray
def test_failed_ray_pack_to_a_store_publishes_nothing_and_removes_its_prefix(catalog, ray_cluster, s3_bucket,
                                                                               monkeypatch, capsys):
    """A shard task that fails on every try (an OSError, retried) fails the pack with one line;
    nothing is published, the shards other tasks had written are removed with the temporary
    prefix; a prefix whose removal failed is what `fpload versions gc` finds and deletes."""
    from fpload.pack import _ray as pack_ray, _remote
    from fpload.versions._gc import collect_garbage

    real = pack_ray._shard_task

    def flaky(rows, settings, job, compute, shard_dir, stem, max_bytes):  # pickled by value into Ray
        if stem == "~part-000003":
            raise OSError("injected: connection reset by the store")
        return real(rows, settings, job, compute, shard_dir, stem, max_bytes)

    monkeypatch.setattr(pack_ray, "_shard_task", flaky)
    removed = []
    real_remove = _remote.StoreShards.remove

    def remove(self):
        removed.append(sorted(_store_objects(self.url)))
        real_remove(self)

    monkeypatch.setattr(_remote.StoreShards, "remove", remove)
    root = f"{s3_bucket}/versions"
    cfg = PackConfig(encoding="raw", shard_max_samples=5, features={"enabled": False})
    with pytest.raises(EngineError, match="shard task 3 failed on Ray .*injected") as info:
        pack_version(catalog, out=root, name="v", where="consent", config=cfg, engine="ray")
    assert "\n" not in str(info.value)
    assert len(removed) == 1 and any(k.endswith(".tar") for k in removed[0])  # there was something to remove
    assert _store_objects(root) == {}
    # the same failure when the removal fails too (the driver died): gc finds the prefix
    monkeypatch.setattr(_remote.StoreShards, "remove", lambda self: None)
    with pytest.raises(EngineError):
        pack_version(catalog, out=root, name="v", where="consent", config=cfg, engine="ray")
    left = _store_objects(root)
    assert left and all(k.startswith("v/.tmp-") and "/shards/" in k for k in left)
    assert collect_garbage(root) == []  # a live pack of this host and pid, and younger than the age
    found = collect_garbage(root, min_age_s=0)  # dry run
    assert len(found) == 1 and "/v/.tmp-" in found[0].prefix and found[0].objects == len(left)
    assert not found[0].removed and _store_objects(root) == left
    assert main(["versions", "gc", root, "--older-than", "0", "--delete", "--json"]) == 0
    printed = capsys.readouterr().out  # Ray's driver prints its task-retry notices to stdout too
    assert [f["removed"] for f in json.loads(printed[printed.rindex("[\n"):])] == [True]
    assert _store_objects(root) == {}


@pytest.mark.ray
def test_ray_pack_with_any_split_names(tmp_path, catalog, ray_cluster):
    """Provisional shard names cannot be a split's shard names (a split may be called 'part')."""
    cfg = PackConfig(encoding="passthrough", shard_max_samples=3, splits={"train": 0.5, "part": 0.5},
                     features={"enabled": False})
    local = pack_version(catalog, out=tmp_path / "local", name="v", where="consent", config=cfg)
    assert any(s["file"].startswith("part-") for s in local.manifest["shards"])
    on_ray = pack_version(catalog, out=tmp_path / "ray", name="v", where="consent", config=cfg, engine="ray")
    assert on_ray.version_id == local.version_id
    _assert_same_version(local.path, on_ray.path)


# -- a cluster started by `ray start --head`, reached with --address HOST:PORT ------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from fpload.cli import main; sys.exit(main())", *args],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture()
def ray_head(tmp_path):
    """A one-CPU Ray head of its own (`ray start --head --block` on 127.0.0.1, free ports, token
    authentication with a token of its own, a short --temp-dir: Ray limits socket paths), in its own
    process group, which is what is stopped at the end (`ray stop` would stop every Ray cluster of
    this machine); yields ``(address, env)``, the environment a client needs to reach it."""
    pytest.importorskip("ray")
    ray_cli = Path(sys.executable).with_name("ray")
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="fpr", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    log = tmp_path / "ray-head.log"
    head_env = {**env, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}  # SIGTERM stops it at once, no 30 s drain
    with open(log, "w") as out:
        head = subprocess.Popen([str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=1",
                                 "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats",
                                 f"--temp-dir={temp}", f"--ray-client-server-port={_free_port()}",
                                 f"--dashboard-agent-listen-port={_free_port()}", "--block"],
                                stdout=out, stderr=subprocess.STDOUT, env=head_env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120  # a wait bound, not an assertion on speed
        while "Ray runtime started" not in log.read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`ray start --head` did not start (exit {head.poll()}): {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", env
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # the head's own group only
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        try:  # its children got the group's SIGTERM too; stragglers get a SIGKILL
            os.killpg(head.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        import shutil

        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.ray
def test_cli_pack_on_a_cluster_started_by_ray_start(tmp_path, ray_head):
    """`fpload pack --engine ray --address 127.0.0.1:PORT` (a separate process, as a user runs it)
    on a cluster started by `ray start --head`: the local pack's version id."""
    address, env = ray_head
    meta = make_captures(tmp_path / "caps", subjects=3, fingers=2, impressions=1, seed=5)
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(meta)
    cfg = PackConfig(encoding="png", shard_max_samples=2, features={"enabled": False})
    local = pack_version(cat, out=tmp_path / "local", name="v", where="consent", config=cfg)
    cat.close()
    (tmp_path / "pack.yaml").write_text("encoding: png\nshard_max_samples: 2\nfeatures:\n  enabled: false\n")
    out = _cli("pack", "--where", "consent", "--catalog", str(tmp_path / "cat.duckdb"), "--config",
               str(tmp_path / "pack.yaml"), "--out", str(tmp_path / "ray"), "--name", "v", "--engine", "ray",
               "--address", address, "--json", env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout)
    assert got["version_id"] == local.version_id and len(local.manifest["shards"]) > 1
    _assert_same_version(local.path, Path(got["path"]))
