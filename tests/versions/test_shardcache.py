"""The content-addressed shard cache: verified by construction, safe under concurrency, bounded."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid

import fsspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpload.errors import ConfigError, IntegrityError, ShardNotFoundError, StoreError
from fpload.versions._shardcache import Prefetcher, ShardCache, fetch_verified
from fpload.versions._store import is_remote, join, local_path


def _memfs():
    return fsspec.filesystem("memory")


@settings(max_examples=25, deadline=None)
@given(data=st.binary(min_size=1, max_size=3000), flip=st.integers(min_value=0), tamper=st.booleans())
def test_only_bytes_with_the_manifest_hash_land_in_the_cache(tmp_path_factory, data, flip, tamper):
    fs = _memfs()
    key = f"/shards/{uuid.uuid4().hex}.tar"
    sha = hashlib.sha256(data).hexdigest()
    stored = bytearray(data)
    if tamper:
        stored[flip % len(stored)] ^= 0x01
    fs.pipe_file(key, bytes(stored))
    cache = ShardCache(tmp_path_factory.mktemp("c"), limit_bytes=10**9)
    if tamper:
        with pytest.raises(IntegrityError, match="changed after publishing"):
            cache.fetch(fs, key, "memory:/" + key, sha, len(data))
        assert not cache.path(sha).exists()
    else:
        assert cache.fetch(fs, key, "memory:/" + key, sha, len(data)).read_bytes() == data
    assert not [p for p in cache.root.iterdir() if p.name.startswith(".tmp-")]  # no temporary file left


def test_concurrent_fetches_of_one_shard_are_safe(tmp_path):
    fs = fsspec.filesystem("file")  # independent readers, as on S3 (memory:// shares one buffer)
    data = os.urandom(1 << 20)
    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "x.tar").write_bytes(data)
    src = str(tmp_path / "store" / "x.tar")
    cache = ShardCache(tmp_path / "cache", limit_bytes=10**9)
    errors = []

    def run():
        try:
            for _ in range(3):
                fetch_verified(fs, src, "file://" + src, sha, cache.path(sha))
        except Exception as err:  # pragma: no cover - shown by the assertion
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and cache.path(sha).read_bytes() == data
    assert [p.name for p in cache.root.iterdir()] == [sha]


def _entry(root, size, when):
    data = os.urandom(size)
    sha = hashlib.sha256(data).hexdigest()
    (root / sha).write_bytes(data)
    os.utime(root / sha, (when, when))
    return sha


def test_eviction_removes_least_recently_used_but_never_a_held_shard(tmp_path):
    old, held, mid, new = (_entry(tmp_path, 1000, t) for t in (1000, 500, 2000, 3000))
    cache = ShardCache(tmp_path, limit_bytes=3000)
    ShardCache.hold([held])
    try:
        cache.make_room(500)  # 4000 + 500 must fit under 3000: evicts the two oldest not held
    finally:
        ShardCache.release([held])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([held, new])
    cache.make_room(1500)  # released: now it may go
    assert [p.name for p in tmp_path.iterdir()] == [new]


def test_a_missing_object_and_an_unreachable_store_name_the_object(tmp_path, monkeypatch):
    fs = _memfs()
    with pytest.raises(ShardNotFoundError, match="memory://gone.tar: missing"):
        fetch_verified(fs, "/gone.tar", "memory://gone.tar", "0" * 64, tmp_path / ("0" * 64))

    class Flaky:
        calls = 0

        def open(self, *a, **k):
            Flaky.calls += 1
            raise ConnectionError("connection reset by peer")

    monkeypatch.setattr("time.sleep", lambda s: None)
    with pytest.raises(StoreError, match=r"s3://b/v/x.tar: cannot fetch after 3 attempt\(s\): the endpoint cannot be reached") as err:
        fetch_verified(Flaky(), "b/v/x.tar", "s3://b/v/x.tar", "0" * 64, tmp_path / "x", retries=3)
    assert Flaky.calls == 3 and "\n" not in str(err.value)


def test_the_prefetcher_refetches_a_shard_evicted_by_another_process(tmp_path):
    fs = _memfs()
    data = b"shard bytes" * 100
    sha = hashlib.sha256(data).hexdigest()
    fs.pipe_file("/p/a.tar", data)
    pre = Prefetcher(ShardCache(tmp_path, limit_bytes=10**9), fs, [("/p/a.tar", "memory://p/a.tar", sha, len(data))])
    try:
        assert pre.ready(0).read_bytes() == data
        (tmp_path / sha).unlink()
        assert pre.ready(0).read_bytes() == data
    finally:
        pre.close()


def test_cache_size_variable(monkeypatch):
    from fpload.config import env_shard_cache_bytes

    monkeypatch.setenv("FPLOAD_SHARD_CACHE_GB", "0.5")
    assert env_shard_cache_bytes() == 500_000_000
    monkeypatch.setenv("FPLOAD_SHARD_CACHE_GB", "lots")
    with pytest.raises(ConfigError, match="FPLOAD_SHARD_CACHE_GB='lots'"):
        env_shard_cache_bytes()


@given(st.sampled_from(["s3://b/p", "gs://b", "S3://B/x", "memory://x"]))
def test_urls_are_remote(url):
    assert is_remote(url)


@given(st.sampled_from(["versions", "/abs/v", "file:///abs/v", "./s3:/x", "C:\\data"]))
def test_paths_are_local(path):
    assert not is_remote(path) and not str(local_path(path)).startswith("file:")


def test_join():
    assert join("s3://b/root/", "/n/", "id") == "s3://b/root/n/id"
