"""The loader never trains on a tampered version (issue 10 §4).

Every damage below makes the Loader, with its default config, refuse to start with an error naming
the damaged file; ``verify: sha256`` refuses too, and ``fpload versions verify`` reports it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpload import formats
from fpload.catalog import open_catalog
from fpload.pack import PackConfig
from fpload.errors import FploadError, IntegrityError, VersionError
from fpload.load import Loader
from fpload.pack import pack_version
from fpload.testing import make_captures
from fpload.versions import _stamp, open_version, verify_version

FEATURES = ["quality", "orientation"]


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """One tiny raw version (one split, 3 shards of 2, with a feature cache), packed once."""
    root = tmp_path_factory.mktemp("tamper")
    meta = make_captures(root / "caps", subjects=3, fingers=1, impressions=2, size=(32, 32), seed=5)
    cat = open_catalog(root / "cat.duckdb")
    cat.ingest(meta)
    res = pack_version(cat, out=root / "v", name="t", where="consent",
                       config=PackConfig(encoding="raw", shard_max_samples=2, splits={"train": 1.0}))
    cat.close()
    return res


@pytest.fixture()
def copy(tmp_path, packed):
    """A fresh copy of the packed version, in a folder named by its id (as the packer names it)."""
    dst = tmp_path / "v" / "t" / packed.version_id
    shutil.copytree(packed.path, dst)
    return dst


def _load(path: Path, **kw) -> Loader:
    return Loader(path, split="train", batch_size=2, device="cpu", augment=False, **kw)


def _members(idx: Path, sample: int = 0) -> dict[str, tuple[int, int]]:
    """``{ext: (offset, size)}`` of one sample's tar members, from its DALI index line."""
    fields = idx.read_text().splitlines()[1 + sample].split()
    return {fields[i]: (int(fields[i + 1]), int(fields[i + 2])) for i in range(0, len(fields), 4)}


def _flip(path: Path, offset: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def _rewrite_manifest(path: Path, edit, rehash: bool) -> None:
    m = json.loads((path / "manifest.json").read_text())
    edit(m)
    if rehash:  # an editor who also recomputes the id (the folder name then no longer matches)
        m["version_id"] = formats.compute_version_id(m)
    (path / "manifest.json").write_bytes(formats.pretty_json(m))


def _edit_digit(path: Path, ext: str) -> None:
    shard = path / "shards" / "train-000000.tar"
    off, size = _members(shard.with_suffix(".idx"))[ext]
    data = bytearray(shard.read_bytes())
    last = off + size - 1
    data[last] = ord("1") if data[last] != ord("1") else ord("2")
    shard.write_bytes(bytes(data))


def _flip_pixel(path: Path) -> None:
    shard = path / "shards" / "train-000001.tar"
    off, size = _members(shard.with_suffix(".idx"), 1)["raw"]
    _flip(shard, off + size // 2)


def _dup_idx_line(path: Path) -> None:
    idx = path / "shards" / "train-000000.idx"
    lines = idx.read_text().splitlines()
    idx.write_text("\n".join([lines[0], lines[1], lines[1], *lines[2:]]) + "\n")


def _swap_shards(path: Path) -> None:
    a, b = path / "shards" / "train-000000.tar", path / "shards" / "train-000001.tar"
    a.rename(a.with_suffix(".x"))
    b.rename(a)
    a.with_suffix(".x").rename(b)


def _swap_shard_names_in_manifest(m) -> None:
    s = m["shards"]
    s[0]["file"], s[1]["file"] = s[1]["file"], s[0]["file"]


def _chunk(path: Path, array: str) -> Path:
    return next(p for p in sorted((path / "features.zarr" / array).rglob("*"))
                if p.is_file() and p.name != "zarr.json")


def _counts(m) -> None:
    m["counts"]["train"] += 1
    m["samples"] += 1


def _labels(m) -> None:
    m["labels"] += 1


DAMAGE = {
    "flipped pixel byte": (_flip_pixel, "train-000001.tar"),
    "edited cls digit": (lambda p: _edit_digit(p, "cls"), "train-000000.tar"),
    "edited idx digit": (lambda p: _edit_digit(p, "idx"), "train-000000.tar"),
    "duplicated .idx line": (_dup_idx_line, "train-000000.idx"),
    "swapped shard files": (_swap_shards, "train-00000[01].tar"),
    "edited manifest counts": (lambda p: _rewrite_manifest(p, _counts, False), "manifest.json"),
    "edited manifest counts, id recomputed": (lambda p: _rewrite_manifest(p, _counts, True), "manifest.json"),
    "edited manifest labels": (lambda p: _rewrite_manifest(p, _labels, False), "manifest.json"),
    "edited manifest labels, id recomputed": (lambda p: _rewrite_manifest(p, _labels, True), "manifest.json"),
    "swapped shard names in the manifest": (lambda p: _rewrite_manifest(p, _swap_shard_names_in_manifest, False),
                                            "manifest.json"),
    "flipped byte in a features chunk": (lambda p: _flip(_chunk(p, "quality"), -1), "features.zarr"),
    "deleted features chunk": (lambda p: _chunk(p, "orientation").unlink(), "features.zarr"),
    "edited features metadata": (lambda p: _flip(p / "features.zarr" / "quality" / "zarr.json", 3, 0x20),
                                 "features.zarr"),
}


def test_intact_copy_loads(copy):
    assert len(list(_load(copy, features=FEATURES))) == 3
    assert verify_version(copy) == []


@pytest.mark.parametrize("damage", list(DAMAGE), ids=lambda d: d.replace(" ", "-"))
def test_default_loader_refuses_every_damage(copy, damage):
    apply, names = DAMAGE[damage]
    apply(copy)
    for verify in (None, "sha256"):
        kw = {} if verify is None else {"verify": verify}
        with pytest.raises((IntegrityError, VersionError), match=names) as err:
            _load(copy, features=FEATURES, **kw)
        assert "\n" not in str(err.value)
    assert verify_version(copy), f"fpload versions verify misses: {damage}"


def test_samples_parquet_is_checked_against_the_manifest(tmp_path, packed):
    """In a folder not named by an id, a manifest edited consistently (id recomputed) still
    disagrees with samples.parquet, whose hash it pins."""
    path = tmp_path / "renamed"
    shutil.copytree(packed.path, path)
    _rewrite_manifest(path, _labels, rehash=True)
    with pytest.raises(IntegrityError, match="samples.parquet: labels span 3 values.*says 4 labels"):
        open_version(path)
    shutil.rmtree(path)
    shutil.copytree(packed.path, path)

    def one_less(m):  # move a sample from shard 0 to shard 1 in the counts
        m["shards"][0]["samples"] -= 1
        m["shards"][1]["samples"] += 1

    _rewrite_manifest(path, one_less, rehash=True)
    with pytest.raises(IntegrityError, match="samples.parquet: row 1 has shard 'train-000000.tar'"):
        open_version(path)


@pytest.mark.parametrize("name", ["../../outside.tar", "/etc/passwd", "sub/x.tar", ".hidden.tar", ".."])
def test_manifest_paths_stay_in_the_version_folder(tmp_path, packed, name):
    path = tmp_path / "renamed"
    shutil.copytree(packed.path, path)
    _rewrite_manifest(path, lambda m: m["shards"][0].__setitem__("file", name), rehash=True)
    with pytest.raises(IntegrityError, match=r"manifest.json: shards\[0\]\.file .* is not a plain file name"):
        open_version(path)
    problems = verify_version(path)
    assert problems and all("plain file name" in p for p in problems)


def test_links_leading_out_are_refused(tmp_path, copy):
    outside = tmp_path / "elsewhere.tar"
    shard = copy / "shards" / "train-000000.tar"
    shutil.move(shard, outside)
    shard.symlink_to(outside)  # the very same bytes, but outside the folder
    with pytest.raises(IntegrityError, match="shards/train-000000.tar: leads out of the version folder"):
        _load(copy)
    assert any("leads out" in p for p in verify_version(copy))
    shard.unlink()
    shutil.move(outside, shard)
    chunk = _chunk(copy, "quality")
    shutil.move(chunk, tmp_path / "chunk")
    chunk.symlink_to(tmp_path / "chunk")
    with pytest.raises(IntegrityError, match="features.zarr/quality/.*symbolic link"):
        _load(copy, features=FEATURES)


def _wait_until_stampable(path: Path) -> None:
    """Files changed within the clock's granularity are checked but not stamped; wait that out."""
    newest = max(p.stat().st_ctime_ns for p in path.rglob("*"))
    while time.time_ns() - newest <= _stamp.RACY_NS:
        time.sleep(_stamp.RACY_NS / 1e9)


def test_stamp_hashes_once_and_again_after_a_touch(copy, monkeypatch):
    hashed: list[tuple[str, int]] = []
    real = _stamp._hash_file

    def counting(path):
        hashed.append((Path(path).name, Path(path).stat().st_size))
        return real(path)

    monkeypatch.setattr(_stamp, "_hash_file", counting)
    _wait_until_stampable(copy)
    _load(copy, features=FEATURES)
    read = [p for p in copy.rglob("*") if p.is_file() and p.name != "manifest.json"]
    assert sorted(hashed) == sorted((p.name, p.stat().st_size) for p in read)  # every file, once
    assert (_stamp.cache_dir() / f"{copy.name}.json").is_file()

    hashed.clear()
    _load(copy, features=FEATURES)
    assert hashed == []  # unchanged: nothing hashed again

    shard = copy / "shards" / "train-000002.tar"
    st = shard.stat()
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touch: content unchanged
    _wait_until_stampable(copy)
    _load(copy, features=FEATURES)
    assert hashed == [(shard.name, st.st_size)]

    hashed.clear()
    _load(copy, features=FEATURES, verify="sha256")  # sha256: every file, every time, no stamp
    assert len(hashed) == len(read)
    hashed.clear()
    _load(copy, features=FEATURES, verify="none")
    assert hashed == []


def test_a_stamped_file_rewritten_in_place_is_hashed_again(copy):
    _wait_until_stampable(copy)
    _load(copy)
    shard = copy / "shards" / "train-000000.tar"
    before = shard.stat()
    _flip_pixel_same_times = bytearray(shard.read_bytes())
    off, size = _members(shard.with_suffix(".idx"))["raw"]
    _flip_pixel_same_times[off + 1] ^= 0x10
    shard.write_bytes(bytes(_flip_pixel_same_times))
    os.utime(shard, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back; ctime cannot be
    with pytest.raises(IntegrityError, match="train-000000.tar: sha256 differs"):
        _load(copy)


def _loader_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_flipped_byte_of_any_file_is_detected(tmp_path_factory, packed, data):
    """Flip one random byte of one random file the loader reads: it never starts."""
    path = tmp_path_factory.mktemp("flip") / packed.version_id
    shutil.copytree(packed.path, path)
    files = _loader_files(path)
    victim = data.draw(st.sampled_from(files), label="file")
    size = victim.stat().st_size
    offset = data.draw(st.integers(0, size - 1), label="offset")
    mask = data.draw(st.integers(1, 255), label="mask")
    original = victim.read_bytes()
    _flip(victim, offset, mask)
    if victim.name == "manifest.json" and _same_pinned_content(original, victim.read_bytes()):
        return  # created_at or JSON whitespace: not part of what the version id pins
    rel = victim.relative_to(path).as_posix()
    pinned = rel.split("/")[0] if rel.startswith("features.zarr/") else rel
    with pytest.raises(FploadError, match=pinned.replace(".", r"\.")):
        _load(path, features=FEATURES)


def _same_pinned_content(before: bytes, after: bytes) -> bool:
    try:
        a, b = json.loads(before), json.loads(after.decode())
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(b, dict) and formats.compute_version_id(a) == formats.compute_version_id(b) \
        and a.get("version_id") == b.get("version_id")


def test_cli_show_refuses_and_verify_reports_a_tampered_manifest(copy, capsys):
    from fpload.cli import main

    _rewrite_manifest(copy, _counts, rehash=False)
    assert main(["versions", "show", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "manifest.json: content does not hash to its version_id" in err and "Traceback" not in err
    assert main(["versions", "verify", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "BAD" in err and "manifest.json" in err
