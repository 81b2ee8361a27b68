"""Erasure on a version root in an object store (a real S3-compatible server, moto, through s3fs;
and fsspec's ``memory://``): successors published there with the other subjects' bytes unchanged,
the old versions tombstoned (only ``tombstone.json`` left), ``versions show`` naming the successor,
the loader reading it, ``erase verify`` finding no trace (and finding one that is put back), and a
kill -9 mid-way completed by running the same command again."""

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
from fpload.catalog import open_catalog
from fpload.cli import main
from fpload.erase import erase_subject, verify_receipt
from fpload.erase._remote import fetch_version, open_at
from fpload.erase._successor import member_ref
from fpload.errors import VersionErasedError
from fpload.pack import PackConfig, pack_version
from fpload.testing import make_captures
from fpload.versions import list_versions, open_version
from fpload.versions._store import filesystem, join

from .conftest import subject_samples, version_content

REPO = Path(__file__).resolve().parents[2]


def make_remote_world(base: Path, root: str) -> dict:
    """As ``make_world``: a catalog with 2 revisions and versions ``raw`` (features on) and ``png``,
    packed to the URL ``root`` and, identically, to a local root (the reference for the bytes)."""
    meta = make_captures(base / "caps", subjects=5, fingers=2, impressions=2)
    cat = open_catalog(base / "cat.duckdb")
    cat.ingest(meta)
    cat.update("subject_id = 'S001'", {"quality": 99.0}, message="re-scored")
    urls, local = {}, {}
    for name, enc in (("raw", "raw"), ("png", "png")):
        cfg = PackConfig.from_dict({"encoding": enc, "shard_max_samples": 3, "features": {"enabled": enc == "raw"}})
        urls[name] = pack_version(cat, out=root, name=name, config=cfg).path
        local[name] = pack_version(cat, out=base / "reference", name=name, config=cfg).path
    cat.close()
    assert all(basename(urls[n]) == Path(local[n]).name for n in urls)
    return {"catalog": base / "cat.duckdb", "root": root, "versions": urls, "local": local}


def basename(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _download(url: str, dest: Path) -> Path:
    return fetch_version(open_at(url), dest)


def _check_successors(world: dict, receipt: dict, tmp: Path) -> None:
    """Each successor (downloaded, hash-checked) holds the other subjects' members, rows and
    features exactly as the old version did, and nothing of S001."""
    for name, ref in world["local"].items():
        before = version_content(Path(ref))
        v = next(x for x in receipt["versions"] if x["version_id"] == Path(ref).name)
        assert v["successor_path"].startswith(world["root"])
        after = version_content(_download(v["successor_path"], tmp / "dl" / name))
        want = {s: d for s, d in before.items() if s not in subject_samples(before, "S001")}
        assert want and set(after) == set(want)
        for sid, d in after.items():
            assert (d["members"], d["row"], d.get("features")) == \
                (want[sid]["members"], want[sid]["row"], want[sid].get("features"))


def _keys(root: str) -> list[str]:
    fs, path = filesystem(root)
    return sorted(k[len(path.rstrip("/")) + 1:] for k in fs.find(path))


@pytest.fixture()
def s3_world(tmp_path, s3_bucket, monkeypatch):
    monkeypatch.setenv("FPLOAD_ERASE_STATE_DIR", str(tmp_path / "state"))
    return make_remote_world(tmp_path, f"{s3_bucket}/versions")


@pytest.fixture()
def store_world(tmp_path, store_bucket, monkeypatch):
    """As ``s3_world``, once on S3 (moto) and once on GCS (the emulator)."""
    monkeypatch.setenv("FPLOAD_ERASE_STATE_DIR", str(tmp_path / "state"))
    return make_remote_world(tmp_path, f"{store_bucket}/versions")


def test_erase_a_subject_from_two_s3_versions(store_world, tmp_path, capsys):
    world = store_world
    old = {n: basename(u) for n, u in world["versions"].items()}
    code = main(["erase", "--subject", "S001", "--reason", "consent withdrawn (ticket 4411)", "--catalog",
                 str(world["catalog"]), "--root", world["root"], "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    r = json.loads(out)
    assert {v["version_id"] for v in r["versions"]} == set(old.values())
    # S3 answers GetBucketVersioning, GCS the bucket's versioning.enabled: off here
    assert all("current objects deleted" in v["deletion"] and v["bucket_versioning"] is False for v in r["versions"])
    _check_successors(world, r, tmp_path)
    # the old versions' prefixes hold their tombstone only; the successors are listed, the old ones not
    keys = _keys(world["root"])
    for name, vid in old.items():
        assert [k for k in keys if k.startswith(f"{name}/{vid}/")] == [f"{name}/{vid}/{formats.TOMBSTONE_NAME}"]
    listed = {v.id for v in list_versions(world["root"])}
    assert listed == {v["successor"] for v in r["versions"]}
    assert main(["versions", "list", world["root"]]) == 0
    err = capsys.readouterr().err
    for v in r["versions"]:
        assert f"erased: {world['root']}/{v['name']}/{v['version_id']} (erasure {r['erasure_id']}) -> successor " \
            f"{v['successor_path']}" in err
    # the receipt and the audit records are objects of the root; a copy stays in the state folder
    assert f".fpload/receipts/{r['erasure_id']}.json" in keys
    assert f".fpload/audit/{r['erasure_id']}-erasure.json" in keys
    # `versions show` of an old version names its erasure and successor
    succ = {v["version_id"]: v["successor_path"] for v in r["versions"]}
    for name, url in world["versions"].items():
        with pytest.raises(VersionErasedError, match=f"erased by erasure {r['erasure_id']}.*{succ[basename(url)]}"):
            open_version(url)
        assert main(["versions", "show", url]) == 1
        err = capsys.readouterr().err
        assert "was erased" in err and succ[basename(url)] in err and err.count("\n") == 1
        assert main(["versions", "show", url[:-6]]) == 1   # an id prefix of it
        assert "was erased" in capsys.readouterr().err
    # verify, from the receipt's URL in the store and from the local copy
    url = join(world["root"], ".fpload", "receipts", f"{r['erasure_id']}.json")
    assert main(["erase", "verify", url]) == 0, capsys.readouterr().err
    assert "no trace left" in capsys.readouterr().out
    assert main(["erase", "verify", url[:-5] + "x.json"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert verify_receipt(Path(r["state_dir"]) / "receipt.json") == []
    assert not Path(r["mirror"]).exists()
    # `versions gc` keeps the tombstones (they are not leftovers of a crashed pack)
    from fpload.versions._gc import collect_garbage

    assert collect_garbage(world["root"], delete=True, min_age_s=0) == [] and _keys(world["root"]) == keys
    # nothing of the old versions stays in this machine's cache
    from fpload.config import env_cache_dir

    assert not any((env_cache_dir() / "versions" / vid).exists() for vid in old.values())
    # a rerun returns the same receipt and changes nothing
    again = erase_subject(world["catalog"], [world["root"]], subjects=["S001"],
                          reason="consent withdrawn (ticket 4411)")
    assert again == r and _keys(world["root"]) == keys


@pytest.mark.usefixtures("plugin")
def test_the_loader_reads_an_s3_successor(s3_world, tmp_path, monkeypatch):
    from fpload.load import Loader

    world = s3_world
    r = erase_subject(world["catalog"], [world["root"]], subjects=["S001"], reason="consent withdrawn")
    url = next(v["successor_path"] for v in r["versions"] if v["name"] == "raw")
    monkeypatch.setenv("FPLOAD_CACHE_DIR", str(tmp_path / "node-cache"))
    seen = 0
    for batch in Loader(url, split="train", batch_size=4, device="cpu", seed=1, num_threads=1, augment=False):
        seen += int(np.asarray(batch[0]).shape[0])
    assert seen == open_version(url).counts["train"]


def test_verify_finds_a_copy_left_in_the_store(store_world, tmp_path):
    world = store_world
    ref = Path(world["local"]["png"])
    before = version_content(ref)
    sid = sorted(subject_samples(before, "S001"))[0]
    image = next(data for ext, data in before[sid]["members"] if ext == "png")
    r = erase_subject(world["catalog"], [world["root"]], subjects=["S001"], reason="consent withdrawn")
    local_receipt = Path(r["state_dir"]) / "receipt.json"
    assert verify_receipt(local_receipt) == []
    fs, path = filesystem(world["root"])
    fs.pipe_file(f"{path}/scratch/copy.png", image)   # someone put a copy back
    problems = verify_receipt(local_receipt)
    assert any("scratch/copy.png" in p and "copy of an erased image" in p for p in problems), problems
    assert member_ref(image) in {h for s in r["samples"] for h in s["members"].values()}


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_erase_names_a_missing_bucket_in_one_line(scheme, tmp_path, capsys, request):
    from fpload.testing import make_captures as caps

    request.getfixturevalue({"s3": "s3_endpoint", "gs": "gcs_endpoint"}[scheme])
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(caps(tmp_path / "caps", subjects=2, fingers=1, impressions=1))
    cat.close()
    root = f"{scheme}://fpload-missing-{uuid.uuid4().hex[:8]}/versions"
    code = main(["erase", "--subject", "S001", "--reason", "consent withdrawn", "--catalog",
                 str(tmp_path / "cat.duckdb"), "--root", root])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and "does not exist" in err and root.split("/")[2] in err


def _erase_cli(world: dict, crash: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FPLOAD_ERASE_CRASH_AT", None)
    if crash:
        env["FPLOAD_ERASE_CRASH_AT"] = crash
    return subprocess.run([sys.executable, "-m", "fpload.cli", "erase", "--subject", "S001", "--reason",
                           "consent withdrawn", "--catalog", str(world["catalog"]), "--root", world["root"],
                           "--json"], env=env, capture_output=True, text=True, timeout=300)


# the points where the remote path differs from the local one: mid-upload of the successors, the
# tombstone put but the manifest still there, objects half deleted, the receipt put but not the audit
@pytest.mark.parametrize("point", ["successor-shard:2", "successor:1", "tombstone-written:1", "destroying:3",
                                   "receipt:1"])
def test_kill_on_the_s3_path_then_rerun_completes(s3_world, tmp_path, point):
    world = s3_world
    first = _erase_cli(world, point)
    assert first.returncode == -9, first.stderr
    second = _erase_cli(world, None)
    assert second.returncode == 0, second.stderr
    r = json.loads(second.stdout)
    assert verify_receipt(Path(r["state_dir"]) / "receipt.json") == []
    _check_successors(world, r, tmp_path)
    keys = _keys(world["root"])
    for url in world["versions"].values():
        rel = url[len(world["root"]) + 1:]
        assert [k for k in keys if k.startswith(rel + "/")] == [f"{rel}/{formats.TOMBSTONE_NAME}"]


def test_erase_on_a_memory_store(tmp_path, monkeypatch):
    """The remote path is fsspec-generic: the same erasure over fsspec's in-memory file system."""
    import fsspec

    monkeypatch.setenv("FPLOAD_ERASE_STATE_DIR", str(tmp_path / "state"))
    bucket = f"memory://fpload-{uuid.uuid4().hex[:8]}"
    fsspec.filesystem("memory").mkdir(bucket[len("memory://"):])
    world = make_remote_world(tmp_path, f"{bucket}/versions")
    r = erase_subject(world["catalog"], [world["root"]], subjects=["S001"], reason="consent withdrawn")
    _check_successors(world, r, tmp_path)
    assert verify_receipt(join(world["root"], ".fpload", "receipts", f"{r['erasure_id']}.json")) == []
    for url in world["versions"].values():
        with pytest.raises(VersionErasedError):
            open_version(url)


def test_versions_list_names_local_tombstones_too(world, capsys):
    r = erase_subject(world["catalog"], [world["root"]], subjects=["S001"], reason="consent withdrawn")
    assert main(["versions", "list", str(world["root"])]) == 0
    err = capsys.readouterr().err
    for v in r["versions"]:
        assert f"erased: {world['root'] / v['name'] / v['version_id']} (erasure {r['erasure_id']}) -> successor " \
            f"{v['successor']}" in err


@pytest.fixture(scope="module")
def memory_world(tmp_path_factory):
    """A world on ``memory://`` packed once; each example restores its objects and copies its catalog."""
    import fsspec

    base = tmp_path_factory.mktemp("memworld")
    bucket = f"memory://fpload-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    fs.mkdir(bucket[len("memory://"):])
    world = make_remote_world(base, f"{bucket}/versions")
    _, path = filesystem(world["root"])
    world["objects"] = {k: fs.cat_file(k) for k in fs.find(path)}
    world["fs"], world["path"] = fs, path
    return world


def test_property_any_subjects_erased_from_a_memory_store(memory_world, tmp_path_factory):
    """For any set of subjects erased from the store, each successor holds exactly the other
    samples, member for member, row for row, and verify finds no trace."""
    import shutil

    from hypothesis import HealthCheck, given, settings, strategies as st

    w = memory_world

    @settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sets(st.sampled_from([f"S00{i}" for i in range(5)]), min_size=1, max_size=2))
    def run(subjects):
        fs, path = w["fs"], w["path"]
        fs.rm(path, recursive=True)
        for k, data in w["objects"].items():
            fs.pipe_file(k, data)
        tmp = tmp_path_factory.mktemp("example")
        shutil.copy(w["catalog"], tmp / "cat.duckdb")
        os.environ["FPLOAD_ERASE_STATE_DIR"] = str(tmp / "state")
        try:
            r = erase_subject(tmp / "cat.duckdb", [w["root"]], subjects=sorted(subjects), reason="consent withdrawn")
        finally:
            os.environ.pop("FPLOAD_ERASE_STATE_DIR", None)
        assert verify_receipt(Path(r["state_dir"]) / "receipt.json") == []
        for name, ref in w["local"].items():
            before = version_content(Path(ref))
            gone = set().union(*(subject_samples(before, s) for s in subjects))
            v = next(x for x in r["versions"] if x["version_id"] == Path(ref).name)
            after = version_content(_download(v["successor_path"], tmp / "dl" / name))
            assert set(after) == set(before) - gone
            for sid, d in after.items():
                assert (d["members"], d["row"], d.get("features")) == \
                    (before[sid]["members"], before[sid]["row"], before[sid].get("features"))

    run()


def test_a_versioned_bucket_is_named_in_the_receipt_and_warned(tmp_path, s3_bucket, monkeypatch, capsys):
    """S3 versioning keeps the deleted objects as noncurrent versions: the receipt says so, the CLI warns."""
    fs, path = filesystem(s3_bucket)
    fs.make_bucket_versioned(path)
    monkeypatch.setenv("FPLOAD_ERASE_STATE_DIR", str(tmp_path / "state"))
    world = make_remote_world(tmp_path, f"{s3_bucket}/versions")
    code = main(["erase", "--subject", "S001", "--reason", "consent withdrawn", "--catalog", str(world["catalog"]),
                 "--root", world["root"]])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "WARNING" in err and "noncurrent versions" in err
    receipt = json.loads((next((tmp_path / "state").glob("*/receipt.json"))).read_text())
    assert [v["bucket_versioning"] for v in receipt["versions"]] == [True, True]
    v = receipt["versions"][0]
    page = fs.call_s3("list_object_versions", Bucket=path.strip("/"), Prefix=f"versions/{v['name']}/{v['version_id']}/")
    assert len(page.get("Versions", [])) > 1   # the caveat is real: the old objects' versions are kept
    assert verify_receipt(Path(receipt["state_dir"]) / "receipt.json") == []   # the current objects hold no trace


def test_purge_object_versions_leaves_only_the_tombstone(tmp_path, s3_bucket, monkeypatch, capsys):
    """With --purge-object-versions the noncurrent versions and delete markers of the old versions'
    objects are deleted too: the store's version history under each old prefix is the tombstone alone."""
    fs, path = filesystem(s3_bucket)
    fs.make_bucket_versioned(path)
    monkeypatch.setenv("FPLOAD_ERASE_STATE_DIR", str(tmp_path / "state"))
    world = make_remote_world(tmp_path, f"{s3_bucket}/versions")
    bucket = path.strip("/")

    def history(prefix: str) -> list[str]:
        page = fs.call_s3("list_object_versions", Bucket=bucket, Prefix=prefix)
        return sorted(i["Key"] for i in page.get("Versions", []) + page.get("DeleteMarkers", []))

    code = main(["erase", "--subject", "S001", "--reason", "consent withdrawn", "--catalog", str(world["catalog"]),
                 "--root", world["root"], "--purge-object-versions", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    r = json.loads(out)
    for v in r["versions"]:
        prefix = f"versions/{v['name']}/{v['version_id']}/"
        assert history(prefix) == [prefix + formats.TOMBSTONE_NAME]
        assert v["noncurrent_versions_deleted"] > 0 and v["bucket_versioning"] is True
    assert "WARNING" not in err


def test_gcs_bucket_versioning_is_read_and_purge_is_refused_there(gcs_bucket, tmp_path, monkeypatch, capsys):
    """GCS object versioning keeps deleted objects as noncurrent generations: fpload reads the bucket's
    ``versioning.enabled``; ``--purge-object-versions`` (S3 only) is refused before anything runs
    rather than reporting that nothing was left."""
    from fpload.erase._remote import bucket_versioning

    fs, path = filesystem(gcs_bucket)
    assert bucket_versioning(f"{gcs_bucket}/versions") is False
    real = fs.info
    monkeypatch.setattr(fs, "info", lambda p, **kw: {**real(p, **kw), "versioning": {"enabled": True}}
                        if p.strip("/") == path.strip("/") else real(p, **kw))
    assert bucket_versioning(f"{gcs_bucket}/versions") is True
    monkeypatch.undo()
    monkeypatch.setenv("FPLOAD_ERASE_STATE_DIR", str(tmp_path / "state"))
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(make_captures(tmp_path / "caps", subjects=2, fingers=1, impressions=1))
    cat.close()
    code = main(["erase", "--subject", "S001", "--reason", "consent withdrawn", "--catalog", str(tmp_path / "cat.duckdb"),
                 "--root", f"{gcs_bucket}/versions", "--purge-object-versions"])
    err = capsys.readouterr().err
    assert code == 2 and "S3 roots only" in err and gcs_bucket in err and err.count("\n") == 1
