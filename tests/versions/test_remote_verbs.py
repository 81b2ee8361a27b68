"""The remaining verbs on an object-store version root (a real S3-compatible server, moto, through
s3fs): ``versions diff``, ``versions check`` and ``preview`` take s3:// URLs; ``erase`` takes a
PostgreSQL catalog URL (erasure on an s3:// root: tests/erase/test_remote.py); refused S3 credentials give one line
naming the URL and never the secret; and the remote code is fsspec-generic (``memory://``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from fpload import formats
from fpload.cli import main
from fpload.errors import IntegrityError, StoreError
from fpload.pack import PackConfig, pack_version
from fpload.versions import list_versions, open_version, verify_version
from fpload.versions._check import check_version
from fpload.versions._diff import diff_versions

REPO = Path(__file__).resolve().parents[2]
CFG = PackConfig(encoding="raw", shard_max_samples=7)


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-c", "import sys; from fpload.cli import main; sys.exit(main())", *args],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {}), "PYTHONPATH": path})


@pytest.fixture()
def pair(catalog, s3_bucket, tmp_path):
    """Versions ``v`` (consent) and ``w`` (consent, finger 1) packed to S3 and to a local root:
    ``{"s3": (v, w), "local": (v, w)}``."""
    out = {}
    for kind, root in (("s3", f"{s3_bucket}/versions"), ("local", tmp_path / "versions")):
        out[kind] = tuple(pack_version(catalog, out=root, name=n, where=w, config=CFG)
                          for n, w in (("v", "consent"), ("w", "consent AND finger = 1")))
    return out


def test_versions_diff_and_check_take_s3_urls(pair, capsys):
    (sv, sw), (lv, lw) = pair["s3"], pair["local"]
    assert sv.path.startswith("s3://")
    assert main(["versions", "diff", sv.path, sw.path, "--json"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote == diff_versions(lv.path, lw.path).to_dict()
    assert remote["totals"]["removed"] > 0
    # an S3 version against a local one: the same version, nothing differs
    assert main(["versions", "diff", str(lv.path), sv.path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["added"] == 0
    code = main(["versions", "check", sv.path, "--json"])
    remote = json.loads(capsys.readouterr().out)
    local = check_version(lv.path).to_dict()
    assert remote == local and code == (0 if local["ok"] else 1)
    assert remote["images_checked"]   # the thumbnails came from the S3 version's features.zarr


def test_features_import_from_an_s3_version(pair, catalog, capsys):
    sv = pair["s3"][0]
    path = str(catalog.path)
    head = catalog.head
    code = main(["features", "import", sv.path, "--catalog", path, "--feature", "quality", "--column", "quality",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rep = json.loads(out)
    assert rep["samples"] == sv.manifest["samples"]
    assert rep["revision"] in (None, head + 1)


@pytest.mark.usefixtures("plugin")
def test_preview_of_an_s3_version(pair, tmp_path, capsys):
    from PIL import Image

    sv = pair["s3"][0]
    out = tmp_path / "grid.png"
    assert main(["preview", sv.path, "--out", str(out), "-n", "2", "--draws", "1"]) == 0
    assert "wrote" in capsys.readouterr().out
    with Image.open(out) as img:
        assert img.width > 100 and img.height > 100


@pytest.mark.postgres
def test_erase_with_a_postgresql_catalog_keeps_no_password(pg_server, pg_url, captures, tmp_path, capsys,
                                                           monkeypatch):
    from fpload.catalog import open_catalog

    with open_catalog(pg_url) as cat:
        cat.ingest(captures)
        pack_version(cat, out=tmp_path / "versions", name="v", where="consent", config=CFG)
    with_password = pg_url.replace(f"{pg_server.user}@", f"{pg_server.user}:{pg_server.password}@")
    monkeypatch.delenv("PGPASSWORD")   # the run connects with the URL as given
    code = main(["erase", "--subject", "S001", "--reason", "consent withdrawn", "--catalog", with_password,
                 "--root", str(tmp_path / "versions"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    receipt = json.loads(out)
    assert receipt["samples"] and receipt["versions"]
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    with open_catalog(pg_url, read_only=True) as cat:
        assert "S001" not in cat.snapshot().column("subject_id").to_pylist()
    written = [p for p in (tmp_path / "versions").rglob("*") if p.is_file() and ".fpload" in p.parts]
    assert written and not [p for p in written if pg_server.password.encode() in p.read_bytes()]
    path = tmp_path / "versions" / ".fpload" / "receipts" / f"{receipt['erasure_id']}.json"
    assert main(["erase", "verify", str(path), "--catalog", pg_url]) == 0, capsys.readouterr().err
    assert "no trace left" in capsys.readouterr().out


@pytest.fixture()
def iam_key(s3_endpoint):
    """An IAM user allowed s3:* on the session's moto server, and its access key."""
    import boto3

    iam = boto3.client("iam", endpoint_url=s3_endpoint, region_name="us-east-1")
    user = f"fpload-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    return iam.create_access_key(UserName=user)["AccessKey"]


def test_refused_s3_credentials_are_one_line_naming_the_url_never_the_secret(catalog, s3_bucket, iam_key,
                                                                            monkeypatch):
    import moto.settings
    import s3fs

    res = pack_version(catalog, out=f"{s3_bucket}/versions", name="v", where="consent", config=CFG)
    # from here on the server checks every request's signature against its IAM keys
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", iam_key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", iam_key["SecretAccessKey"])
    s3fs.S3FileSystem.clear_instance_cache()
    # the right key is accepted (so the refusals below are the server's verdict on the key)
    assert open_version(res.path).id == res.version_id
    r = _cli("versions", "show", res.path, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["version_id"] == res.version_id, r.stderr
    wrong_secret = "wrong-secret-" + uuid.uuid4().hex
    for key_id, secret in ((iam_key["AccessKeyId"], wrong_secret), ("AKIAFPLOADUNKNOWN000", wrong_secret)):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        s3fs.S3FileSystem.clear_instance_cache()
        with pytest.raises(StoreError, match="access refused, check the credentials") as info:
            open_version(res.path)
        assert s3_bucket in str(info.value) and secret not in str(info.value) and "\n" not in str(info.value)
        for verb in (["versions", "show", res.path], ["versions", "list", f"{s3_bucket}/versions"]):
            r = _cli(*verb)
            assert r.returncode == 1 and r.stderr.startswith("fpload: error: ") and r.stderr.count("\n") == 1, r.stderr
            assert "Traceback" not in r.stderr and "credentials" in r.stderr and s3_bucket in r.stderr
            assert secret not in r.stderr + r.stdout and iam_key["SecretAccessKey"] not in r.stderr + r.stdout
    s3fs.S3FileSystem.clear_instance_cache()


def test_the_remote_code_is_fsspec_generic_memory_store(catalog, tmp_path, monkeypatch):
    """The same publish, list, verify, load and tamper check over fsspec's in-memory file system."""
    import fsspec

    from fpload.load import Loader

    fs = fsspec.filesystem("memory")
    bucket = f"memory://fpload-{uuid.uuid4().hex[:8]}"
    fs.mkdir(bucket[len("memory://"):])
    root = f"{bucket}/versions"
    res = pack_version(catalog, out=root, name="v", where="consent", config=CFG)
    local = pack_version(catalog, out=tmp_path / "versions", name="v", where="consent", config=CFG)
    assert res.created and res.version_id == local.version_id and res.path.startswith("memory://")
    assert [v.id for v in list_versions(root)] == [res.version_id]
    assert verify_version(res.path) == []
    monkeypatch.setenv("FPLOAD_CACHE_DIR", str(tmp_path / "cache"))

    def epoch(path):
        loader = Loader(path, split="train", batch_size=5, device="cpu", seed=3, num_threads=1, augment=False)
        return [tuple(t.numpy().copy() for t in batch) for batch in loader]

    for a, b in zip(epoch(res.path), epoch(local.path), strict=True):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    shard = next(s for s in res.manifest["shards"] if s["split"] == "train")
    key = f"{res.path[len('memory://'):]}/{formats.SHARDS_DIR}/{shard['file']}"
    data = bytearray(fs.cat_file(key))
    data[700 % len(data)] ^= 0xFF
    fs.pipe_file(key, bytes(data))
    assert any(shard["file"] in p and "sha256" in p for p in verify_version(res.path))
    monkeypatch.setenv("FPLOAD_CACHE_DIR", str(tmp_path / "fresh-cache"))
    with pytest.raises(IntegrityError, match="changed after publishing"):
        epoch(res.path)
    assert open_version(res.path).id == res.version_id
