"""Versions on an object store: a real S3-compatible server (moto) reached through s3fs, and a
GCS-compatible one (gcp-storage-emulator) through gcsfs; the tests taking ``store_bucket`` run on both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fpload import formats
from fpload.errors import IntegrityError, ShardNotFoundError, StoreError, VersionNotFoundError
from fpload.pack import PackConfig, pack_version
from fpload.versions import describe, list_versions, open_version, verify_version
from fpload.versions._gc import collect_garbage
from fpload.versions._store import filesystem

REPO = Path(__file__).resolve().parents[2]
CFG = PackConfig(encoding="png", shard_max_samples=7)


def _objects(url: str) -> dict[str, int]:
    fs, path = filesystem(url)
    return {k[len(path.rstrip('/')) + 1:]: v["size"] for k, v in fs.find(path, detail=True).items()}


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from fpload.cli import main; sys.exit(main())", *args],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {}), "PYTHONPATH": str(REPO)})


@pytest.fixture()
def remote(catalog, store_bucket):
    """A version packed to s3://BUCKET/versions/v (and gs://…); ``(PackResult, root URL)``."""
    root = f"{store_bucket}/versions"
    return pack_version(catalog, out=root, name="v", where="consent", config=CFG), root


def test_pack_to_s3_publishes_the_same_version_as_a_local_pack(remote, catalog, tmp_path):
    res, root = remote
    local = pack_version(catalog, out=tmp_path / "versions", name="v", where="consent", config=CFG)
    assert res.created and res.version_id == local.version_id
    assert res.path == f"{root}/v/{res.version_id}"
    objs = _objects(res.path)
    want = {p.relative_to(local.path).as_posix(): p.stat().st_size for p in local.path.rglob("*") if p.is_file()}
    assert {k: v for k, v in objs.items() if k != formats.MANIFEST_NAME} == \
        {k: v for k, v in want.items() if k != formats.MANIFEST_NAME}
    # a second packer of the same version finds it published and writes nothing
    again = pack_version(catalog, out=root, name="v", where="consent", config=CFG)
    assert not again.created and again.path == res.path and again.manifest["version_id"] == res.version_id


def test_list_show_verify_an_s3_version(remote):
    res, root = remote
    assert [v.id for v in list_versions(root)] == [res.version_id]
    assert [v.id for v in list_versions(f"{root}/v")] == [res.version_id]
    assert open_version(f"{root}/v").id == res.version_id                      # latest of the name
    assert open_version(f"{root}/v/{res.version_id[:6]}").id == res.version_id  # an id prefix
    assert describe(open_version(res.path))["path"] == res.path
    assert verify_version(res.path) == []
    with pytest.raises(VersionNotFoundError):
        open_version(f"{root}/v/ffff")
    out = _cli("versions", "list", root, "--json")
    assert out.returncode == 0, out.stderr
    assert [v["version_id"] for v in json.loads(out.stdout)] == [res.version_id]
    out = _cli("versions", "verify", root, "--json")
    assert out.returncode == 0 and json.loads(out.stdout)[0]["problems"] == []
    out = _cli("versions", "show", f"{root}/v", "--json")
    assert json.loads(out.stdout)["path"] == res.path


def test_the_cli_packs_to_s3(catalog, store_bucket, tmp_path):
    catalog.close()
    out = _cli("pack", "--catalog", str(tmp_path / "cat.duckdb"), "--where", "consent", "--out",
               f"{store_bucket}/versions", "--name", "cli", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["created"] and got["path"].startswith(f"{store_bucket}/versions/cli/")
    assert [v.id for v in list_versions(f"{store_bucket}/versions")] == [got["version_id"]]


def _epoch(path, **kw):
    from fpload.load import Loader

    loader = Loader(path, split="train", batch_size=5, device="cpu", seed=3, num_threads=1, augment=False, **kw)
    return [tuple(t.numpy().copy() for t in batch) for batch in loader]


def test_the_loader_streams_an_s3_version_sample_for_sample(remote, catalog, tmp_path, monkeypatch):
    res, _ = remote
    monkeypatch.setenv("FPLOAD_CACHE_DIR", str(tmp_path / "cache"))
    local = pack_version(catalog, out=tmp_path / "versions", name="v", where="consent", config=CFG)
    a, b = _epoch(res.path), _epoch(local.path)
    assert len(a) == len(b) > 1
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)
    # the shards landed in the node-local cache under their sha256, verified by construction
    cached = {p.name for p in (tmp_path / "cache" / "shards").iterdir()}
    train = {s["sha256"] for s in res.manifest["shards"] if s["split"] == "train"}
    assert train <= cached
    for sha in train:
        assert formats.file_sha256(tmp_path / "cache" / "shards" / sha) == sha
    # a warm second loader reads the cache: the same epoch with the store's shards gone
    fs, path = filesystem(res.path)
    fs.rm(f"{path}/{formats.SHARDS_DIR}/{res.manifest['shards'][0]['file']}")
    np.testing.assert_array_equal(_epoch(res.path, verify="none")[0][0], a[0][0])


def test_features_of_an_s3_version(remote, catalog, tmp_path):
    from fpload.features import open_features

    res, _ = remote
    local = pack_version(catalog, out=tmp_path / "versions", name="v", where="consent", config=CFG)
    np.testing.assert_array_equal(open_features(res.path).load("quality"), open_features(local.path).load("quality"))


def _flip_one_byte(url: str, rel: str, at: int = 700) -> None:
    fs, path = filesystem(url)
    data = bytearray(fs.cat_file(f"{path}/{rel}"))
    data[at % len(data)] ^= 0xFF
    fs.pipe_file(f"{path}/{rel}", bytes(data))


def test_an_object_changed_after_publishing_is_detected_by_hash(remote, tmp_path, monkeypatch):
    res, _ = remote
    shard = next(s for s in res.manifest["shards"] if s["split"] == "train")
    rel = f"{formats.SHARDS_DIR}/{shard['file']}"
    _flip_one_byte(res.path, rel)  # same size: only the hash tells
    problems = verify_version(res.path)
    assert len(problems) == 1 and shard["file"] in problems[0] and "sha256" in problems[0]
    out = _cli("versions", "verify", res.path)
    assert out.returncode == 1 and shard["file"] in out.stderr
    monkeypatch.setenv("FPLOAD_CACHE_DIR", str(tmp_path / "fresh-cache"))
    with pytest.raises(IntegrityError, match=rf"{shard['file']}: sha256 .* changed after publishing") as err:
        _epoch(res.path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "fresh-cache" / "shards" / shard["sha256"]).exists()


def test_a_manifest_without_its_shards(remote, tmp_path, monkeypatch):
    res, _ = remote
    fs, path = filesystem(res.path)
    fs.rm(f"{path}/{formats.SHARDS_DIR}", recursive=True)
    problems = verify_version(res.path)
    assert problems and all("missing" in p for p in problems)
    monkeypatch.setenv("FPLOAD_CACHE_DIR", str(tmp_path / "fresh-cache"))
    with pytest.raises(ShardNotFoundError, match="missing"):
        _epoch(res.path)


def test_an_edited_manifest_is_not_published(remote):
    res, root = remote
    fs, path = filesystem(res.path)
    m = json.loads(fs.cat_file(f"{path}/manifest.json"))
    m["samples"] += 0
    m["labels"] += 1
    fs.pipe_file(f"{path}/manifest.json", json.dumps(m).encode())
    assert list_versions(root) == []
    with pytest.raises(IntegrityError, match="does not hash to its version_id"):
        open_version(res.path)


def test_a_killed_packer_leaves_nothing_published_and_gc_collects_it(catalog, store_bucket, monkeypatch):
    root = f"{store_bucket}/versions"
    kept = pack_version(catalog, out=root, name="kept", where="consent", config=CFG)

    def die(*args, **kwargs):
        raise RuntimeError("killed")  # the packer dies just before its commit point

    fs, _ = filesystem(root)  # the instance s3fs/gcsfs caches and the packer uses
    assert fs is filesystem(root)[0] and fs.protocol[0] == store_bucket.split(":")[0]
    with monkeypatch.context() as m:
        m.setattr(fs, "pipe_file", die)
        with pytest.raises(StoreError, match="killed"):
            pack_version(catalog, out=root, name="half", where="finger = 1", config=CFG)
    half = [k for k in _objects(root) if k.startswith("half/")]
    assert half and not any(k.endswith(formats.MANIFEST_NAME) for k in half)
    assert [v.name for v in list_versions(root)] == ["kept"]
    with pytest.raises(VersionNotFoundError):
        open_version(f"{root}/half")
    assert collect_garbage(root) == []  # younger than the age: a pack may still be writing
    found = collect_garbage(root, min_age_s=0)  # dry run
    assert [f.prefix.rsplit("/", 2)[1] for f in found] == ["half"] and found[0].objects == len(half)
    assert not found[0].removed and len([k for k in _objects(root) if k.startswith("half/")]) == len(half)
    out = _cli("versions", "gc", root, "--older-than", "0", "--delete", "--json")
    assert out.returncode == 0, out.stderr
    assert [f["removed"] for f in json.loads(out.stdout)] == [True]
    assert not [k for k in _objects(root) if k.startswith("half/")]
    assert verify_version(kept.path) == []  # the published version is untouched


def test_missing_bucket_and_unreachable_endpoint_are_one_line(s3_endpoint, monkeypatch):
    with pytest.raises(StoreError, match="bucket") as err:
        list_versions("s3://fpload-no-such-bucket/versions")
    assert "\n" not in str(err.value)
    out = _cli("versions", "list", "s3://fpload-no-such-bucket/versions")
    assert out.returncode == 1 and out.stderr.startswith("fpload: error: ") and out.stderr.count("\n") == 1
    assert "fpload-no-such-bucket" in out.stderr
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    out = _cli("versions", "show", "s3://bucket/versions/v")
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "s3://bucket/versions/v" in out.stderr and "cannot be reached" in out.stderr


def test_gs_missing_bucket_and_unreachable_emulator_are_one_line(gcs_endpoint, monkeypatch):
    root = "gs://fpload-no-such-bucket/versions"
    with pytest.raises(StoreError, match="fpload-no-such-bucket.* does not exist") as err:
        list_versions(root)
    assert "\n" not in str(err.value)
    for verb in (["versions", "list", root], ["versions", "gc", root], ["versions", "show", f"{root}/v"]):
        out = _cli(*verb)
        assert out.returncode == 1 and out.stderr.startswith("fpload: error: ") and out.stderr.count("\n") == 1, \
            out.stderr
        assert root in out.stderr and "does not exist" in out.stderr and "Traceback" not in out.stderr
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = _cli("versions", "show", "gs://bucket/versions/v", env={"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"})
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert "gs://bucket/versions/v" in out.stderr and "cannot be reached" in out.stderr


def _gcs_refusals():
    """The shapes gcsfs and google-auth give a refused or missing GCS credential (the emulator
    checks none, so these are built as the libraries raise them)."""
    from gcsfs.retry import HttpError
    from google.auth.exceptions import DefaultCredentialsError, RefreshError

    return [HttpError({"code": 401, "message": "Invalid Credentials"}),
            HttpError({"code": 403, "message": "anon@x does not have storage.objects.list access to the bucket."}),
            OSError("Forbidden: b/team-data/o\nsa@p.iam does not have storage.objects.get access"),
            DefaultCredentialsError("Your default credentials were not found. To set up Application Default "
                                    "Credentials, see https://cloud.google.com/docs/authentication"),
            RefreshError("invalid_grant: Token has been expired or revoked.")]


def test_property_gcs_credential_refusals_are_one_line_naming_the_url():
    pytest.importorskip("gcsfs")
    from hypothesis import given, settings, strategies as st

    from fpload.versions._store import store_errors

    @settings(max_examples=30, deadline=None)
    @given(st.sampled_from(range(len(_gcs_refusals()))), st.from_regex(r"[a-z][a-z0-9-]{2,20}", fullmatch=True),
           st.lists(st.sampled_from(["v", "thumbs", "6aac", "x y"]), max_size=3))
    def run(i, bucket, parts):
        url = "/".join([f"gs://{bucket}", *parts])
        with pytest.raises(StoreError) as err:
            with store_errors(url, "listing versions"):
                raise _gcs_refusals()[i]
        msg = str(err.value)
        assert msg.startswith(f"{url}: listing versions: access refused, check the credentials") and "\n" not in msg

    run()
