"""The on-disk contract of schema 1, checked against golden files (tests/golden/version-v1).

A failure here means the format changed: bump formats.MANIFEST_SCHEMA_VERSION and add a new golden
version with tests/golden/make_golden.py; never regenerate the old one.
"""

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from fpload import formats
from fpload.load import Loader
from fpload.pack import ShardWriter
from fpload.versions import open_version, verify_version

GOLDEN = Path(__file__).parent / "golden" / "version-v1"


def test_golden_version_exists():
    assert (GOLDEN / "manifest.json").is_file(), "the golden version of schema 1 is missing"


def test_golden_manifest_hash_and_integrity():
    v = open_version(GOLDEN)
    assert v.manifest["schema_version"] == 1
    assert formats.compute_version_id(v.manifest) == v.id
    assert verify_version(GOLDEN) == []


def test_shard_writer_reproduces_golden_bytes(tmp_path):
    for tar_path in sorted((GOLDEN / "shards").glob("*.tar")):
        samples: dict[str, list] = {}
        with tarfile.open(tar_path) as tf:
            for m in tf.getmembers():
                key, ext = m.name.split(".", 1)
                samples.setdefault(key, []).append((ext, tf.extractfile(m).read()))
        with ShardWriter(tmp_path / tar_path.stem, split="val") as w:
            for key, members in samples.items():
                w.add(key, members)
        assert (tmp_path / tar_path.name).read_bytes() == tar_path.read_bytes()
        assert (tmp_path / tar_path.with_suffix(".idx").name).read_bytes() == tar_path.with_suffix(".idx").read_bytes()


def test_golden_version_loads():
    v = open_version(GOLDEN)
    rows = v.samples.to_pylist()
    seen = []
    for images, labels, index in Loader(GOLDEN, split="val", batch_size=4, device="cpu", shuffle=False,
                                        augment=False, mean=0.0, std=1.0, record_reads=False):
        for img, lab, k in zip(images, labels, index):
            row = rows[int(k)]
            assert int(lab) == row["label"]
            h, w = row["height"], row["width"]
            top, left = (12 - h + 1) // 2, (11 - w + 1) // 2
            assert img.shape == (1, 12, 11)
            assert np.all(img[0, top:top + h, left:left + w].numpy() <= 1.0)
            seen.append(int(k))
    assert sorted(seen) == list(range(v.manifest["samples"]))


def test_int_members_round_trip():
    vals = [0, 7, 42, 10**11 + 3]
    arr = np.stack([np.frombuffer(formats.encode_int_member(x), np.uint8) for x in vals])
    assert formats.decode_int_members(arr).tolist() == vals
    with pytest.raises(ValueError):
        formats.encode_int_member(-1)


def test_version_id_ignores_created_at_only():
    m = {"a": 1, "created_at": "x", "version_id": "y"}
    assert formats.compute_version_id(m) == formats.compute_version_id({**m, "created_at": "z"})
    assert formats.compute_version_id(m) != formats.compute_version_id({**m, "a": 2})
