import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from fpload import formats
from fpload.catalog import open_catalog
from fpload.pack import PackConfig
from fpload.errors import ConsentError, DataError, ImageError, VersionConflictError
from fpload.pack import pack_version
from fpload.testing import make_captures


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("encoding", ["passthrough", "png", "raw-lz4"])
def test_pack_is_deterministic_byte_for_byte(tmp_path, catalog, encoding):
    cfg = PackConfig(encoding=encoding, shard_max_samples=6)
    a = pack_version(catalog, out=tmp_path / "a", name="v", where="consent", config=cfg, workers=1)
    b = pack_version(catalog, out=tmp_path / "b", name="v", where="consent", config=cfg, workers=2)
    assert a.version_id == b.version_id
    fa, fb = _files(a.path), _files(b.path)
    assert fa.keys() == fb.keys()
    for name in fa:
        if name == "manifest.json":
            ma, mb = json.loads(fa[name]), json.loads(fb[name])
            ma.pop("created_at"), mb.pop("created_at")
            assert ma == mb
        else:
            assert fa[name] == fb[name], name
    # packing the same again is a no-op returning the published version
    again = pack_version(catalog, out=tmp_path / "a", name="v", where="consent", config=cfg)
    assert again.version_id == a.version_id and not again.created
    # other settings, other id
    c = pack_version(catalog, out=tmp_path / "a", name="v", where="consent",
                     config=PackConfig(encoding=encoding, shard_max_samples=5))
    assert c.version_id != a.version_id


def test_layout_manifest_and_samples(packed):
    res = packed["png"]
    m = res.manifest
    assert m["schema_version"] == formats.MANIFEST_SCHEMA_VERSION
    assert m["version_id"] == res.version_id == res.path.name == formats.compute_version_id(m)
    assert m["catalog"]["revision"] == 1 and m["query"]["where"] == "(consent)"
    assert sum(m["counts"].values()) == m["samples"] == 40
    assert m["consent"] == {"allow_without_consent": False, "samples_without_consent": 0,
                            "checked_at": {"revision": 1, "digest": m["catalog"]["digest"]}}
    for s in m["shards"]:
        tar = res.path / "shards" / s["file"]
        assert tar.stat().st_size == s["bytes"] and s["samples"] <= 7
        assert (res.path / "shards" / s["index_file"]).exists()
    samples = pq.read_table(res.path / "samples.parquet").to_pylist()
    assert [r["index"] for r in samples] == list(range(40))
    splits = [r["split"] for r in samples]
    assert splits == sorted(splits, key=m["splits"].index)  # grouped by split, config order


def test_splits_are_subject_disjoint_and_seeded(tmp_path):
    meta = make_captures(tmp_path / "c", subjects=30, fingers=1, impressions=2, size=(16, 16))
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(meta)
    res = pack_version(cat, out=tmp_path / "v", name="v", where="consent",
                       config=PackConfig(encoding="raw"))
    rows = res.path.joinpath("samples.parquet")
    samples = pq.read_table(rows).to_pylist()
    by_subject: dict[str, set] = {}
    for r in samples:
        by_subject.setdefault(r["subject_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_subject.values())
    assert {"train", "val", "test"} <= {r["split"] for r in samples}
    other = pack_version(cat, out=tmp_path / "v", name="v2", where="consent",
                         config=PackConfig(encoding="raw", split_seed=1))
    assert other.counts != res.counts or other.version_id != res.version_id


def test_catalog_split_is_kept_and_inherited(tmp_path, catalog):
    catalog.update("subject_id = 'S002' AND impression = 0", {"split": "holdout"})
    res = pack_version(catalog, out=tmp_path, name="v", where="consent", config=PackConfig(encoding="raw"))
    rows = pq.read_table(res.path / "samples.parquet").to_pylist()
    assert {r["split"] for r in rows if r["subject_id"] == "S002"} == {"holdout"}
    assert res.counts["holdout"] == 4
    catalog.update("subject_id = 'S002' AND impression = 1", {"split": "train"})
    with pytest.raises(DataError, match="subject 'S002' in splits holdout, train"):
        pack_version(catalog, out=tmp_path, name="v", where="consent", config=PackConfig(encoding="raw"))
    ok = pack_version(catalog, out=tmp_path, name="v", where="consent",
                      config=PackConfig(encoding="raw", allow_subject_overlap=True))
    assert ok.counts["holdout"] == 2


def test_consent_is_refused_unless_allowed(tmp_path, catalog):
    catalog.update("subject_id = 'S004'", {"consent": False})
    with pytest.raises(ConsentError, match="4 selected sample"):
        pack_version(catalog, out=tmp_path, name="v", where="finger >= 0")
    assert not any((tmp_path / "v").glob("*/manifest.json"))
    res = pack_version(catalog, out=tmp_path, name="v", where="finger >= 0",
                       config=PackConfig(allow_without_consent=True))
    assert res.manifest["consent"] == {"allow_without_consent": True, "samples_without_consent": 4,
                                       "checked_at": {"revision": 2, "digest": catalog.revision(2).digest}}


def _read_with_webdataset(shard: Path) -> list[dict]:
    """All samples of a shard through the webdataset library, decoded to 8-bit arrays.

    webdataset leaves its tar streams for the garbage collector to close (a ResourceWarning,
    an error under our warning policy), so collect them here with that one warning ignored.
    """
    import gc
    import warnings

    import webdataset as wds

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        ds = wds.WebDataset(str(shard), shardshuffle=False).decode("l8")
        out = list(ds)
        del ds
        gc.collect()
    return out


def test_shards_read_by_tarfile_and_webdataset(packed):
    res = packed["png"]
    samples = {r["sample_id"]: r for r in pq.read_table(res.path / "samples.parquet").to_pylist()}
    seen = 0
    for shard in sorted((res.path / "shards").glob("*.tar")):
        with tarfile.open(shard) as tf:
            members = tf.getmembers()
            assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members)
            names = [m.name for m in members]
            # fixed member order per sample
            assert [n.split(".", 1)[1] for n in names[:4]] == ["png", "json", "cls", "idx"]
        for s in _read_with_webdataset(shard):
            r = samples[s["__key__"]]
            assert s["cls"] == r["label"] and int(s["idx"]) == r["index"]
            assert s["json"]["subject_id"] == r["subject_id"] and s["json"]["label"] == r["label"]
            src = np.asarray(Image.open(r["uri"]).convert("L"))
            assert np.array_equal(s["png"], src)
            seen += 1
    assert seen == 40


def test_dali_reads_shards_through_their_index(packed):
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def

    res = packed["raw"]
    shards = sorted((res.path / "shards").glob("*.tar"))
    rows = pq.read_table(res.path / "samples.parquet").to_pylist()

    @pipeline_def(batch_size=40, num_threads=1, device_id=None)
    def pipe():
        raw, shape, idx = fn.readers.webdataset(
            paths=[str(p) for p in shards], index_paths=[str(p.with_suffix(".idx")) for p in shards],
            ext=["raw", "shape", "idx"], dtypes=[types.UINT8, types.INT32, types.UINT8])
        return fn.reshape(raw, shape=shape), idx

    p = pipe()
    p.build()
    imgs, idx = p.run()
    indices = formats.decode_int_members(np.stack([np.asarray(idx[i]) for i in range(40)]))
    assert sorted(indices) == list(range(40))
    for i, k in enumerate(indices):
        src = np.asarray(Image.open(rows[k]["uri"]).convert("L"))
        assert np.array_equal(np.asarray(imgs[i])[..., 0], src)


def test_encodings_round_trip(packed):
    import lz4.block

    for enc in ("raw", "raw-lz4", "jpeg"):
        res = packed[enc]
        rows = pq.read_table(res.path / "samples.parquet").to_pylist()
        shard = sorted((res.path / "shards").glob("*.tar"))[0]
        with tarfile.open(shard) as tf:
            files = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}
        key = next(iter(files)).split(".")[0]
        row = next(r for r in rows if r["sample_id"] == key)
        src = np.asarray(Image.open(row["uri"]).convert("L"))
        if enc == "jpeg":
            got = np.asarray(Image.open(io.BytesIO(files[f"{key}.jpg"])))
            assert got.shape == src.shape and np.abs(got.astype(int) - src).mean() < 8
            continue
        shape = np.frombuffer(files[f"{key}.shape"], "<i4")
        data = files[f"{key}.{formats.IMAGE_EXT[enc]}"]
        if enc == "raw-lz4":
            data = lz4.block.decompress(data, uncompressed_size=int(np.prod(shape)))
        assert np.array_equal(np.frombuffer(data, np.uint8).reshape(shape)[..., 0], src)


def test_shards_cut_by_size(tmp_path, catalog):
    res = pack_version(catalog, out=tmp_path, name="v", where="consent",
                       config=PackConfig(encoding="raw", shard_max_samples=None, shard_max_mb=0.012))
    sizes = [s["bytes"] for s in res.manifest["shards"]]
    assert len(sizes) > 3 and max(sizes) <= 12_000 + 10_240  # + the tar end-of-archive padding


def test_existing_different_content_is_a_conflict_and_untouched(tmp_path, catalog):
    res = pack_version(catalog, out=tmp_path, name="v", where="consent")
    manifest = res.path / "manifest.json"
    m = json.loads(manifest.read_text())
    m["name"] = "tampered"
    manifest.write_text(json.dumps(m))
    before = _files(res.path)
    with pytest.raises(VersionConflictError, match=res.version_id):
        pack_version(catalog, out=tmp_path, name="v", where="consent")
    assert _files(res.path) == before


def test_failure_mid_pack_leaves_no_half_version(tmp_path):
    meta = make_captures(tmp_path / "c", subjects=6, fingers=1, impressions=2)
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(meta)
    good = pack_version(cat, out=tmp_path / "v", name="v", where="subject_id < 'S003'")
    before = _files(tmp_path / "v")
    victim = tmp_path / "c" / "images" / "s004_f01_i1.png"
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ImageError, match="s004_f01_i1.png changed since it was catalogued"):
        pack_version(cat, out=tmp_path / "v", name="v", where="consent", workers=2)
    assert _files(tmp_path / "v") == before  # nothing added, nothing changed, no temp folder left
    assert [p.name for p in (tmp_path / "v" / "v").iterdir()] == [good.version_id]


def test_stale_temp_folder_of_a_dead_pack_is_cleaned(tmp_path, catalog):
    from fpload.pack._packer import _host

    stale = tmp_path / "v" / f".tmp-{_host()}-{2**22 + 12345}-deadbeef"
    stale.mkdir(parents=True)
    (stale / "junk.tar").write_bytes(b"x")
    pack_version(catalog, out=tmp_path, name="v", where="consent")
    assert not stale.exists()


def test_bad_version_name(tmp_path, catalog):
    from fpload.errors import UsageError

    with pytest.raises(UsageError, match="version name"):
        pack_version(catalog, out=tmp_path, name="../escape", where="consent")


@pytest.mark.parametrize("name,size", [("a.png", 0), ("0123456789abcdef0123456789abcdef.json", 1),
                                       ("k" * 100, 8**11 - 1), ("x.cls", 12), ("y.raw", 262144)])
def test_ustar_header_equals_tarfile(name, size):
    from fpload.pack._shard import ustar_header

    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = size, 0, 0o644, 0, 0, "", ""
    assert ustar_header(name, size) == ti.tobuf(format=tarfile.USTAR_FORMAT)
