"""The successor of a version holding erased samples, and the tombstone of the old one.

A successor keeps everything of the other samples as it was: their tar members byte for byte
(``idx`` and ``cls`` included, so their global indices and labels do not move), their rows of
samples.parquet, and their feature-cache rows. Shards without an erased sample are hard-linked
(copied when the file system cannot link) and never rewritten; each shard that held one is
rewritten by :class:`~fpload.pack._shard.ShardWriter` from the old shard's members, without the
erased samples. The feature cache is copied and the erased rows set to the arrays' fill value. The
manifest keeps the parent's ``index_space`` (:func:`fpload.formats.index_space`) and ``labels``.

The old version is then tombstoned: ``tombstone.json`` is written, the manifest removed, and every
file that held an erased sample's bytes or id overwritten with zeros and deleted (the other files
are only unlinked; the successor holds them).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fpload import formats
from fpload.pack._packer import _publish, _tmp_name
from fpload.pack._shard import ShardWriter

#: member extensions whose payload hashes a receipt keeps (the image, and the metadata naming it)
HASHED_MEMBERS = ("png", "jpg", "jp2", "raw", "lz4", "tiff", "bmp", "json")


def read_index(idx_path: Path) -> list[list[tuple[str, int, int, str]]]:
    """A DALI index (v1.2) back into per-sample ``(ext, offset, size, member name)`` lists."""
    lines = idx_path.read_text().splitlines()[1:]
    out = []
    for line in lines:
        f = line.split()
        out.append([(f[i], int(f[i + 1]), int(f[i + 2]), f[i + 3]) for i in range(0, len(f), 4)])
    return out


def sample_members(tar_path: Path, idx_path: Path):
    """``(sample key, [(ext, bytes), ...])`` of every sample of a shard, in order."""
    with open(tar_path, "rb") as fh:
        for entry in read_index(idx_path):
            members = []
            for ext, off, size, _name in entry:
                fh.seek(off)
                members.append((ext, fh.read(size)))
            yield entry[0][3].split(".", 1)[0], members


def member_ref(data: bytes) -> str:
    """How a receipt names a member's bytes: ``sha256(b"fpload-member:" + data)`` hex (domain
    separated, so a passthrough image's hash does not reveal its sample id, a prefix of its sha256)."""
    return hashlib.sha256(b"fpload-member:" + data).hexdigest()


def member_hashes(version_dir: Path, shards: list[str], erased: set[str]) -> dict[str, dict[str, str]]:
    """:func:`member_ref` of the image and json members of the erased samples in these shards: ``{sample_id: {ext: hex}}``."""
    out: dict[str, dict[str, str]] = {}
    sd = version_dir / formats.SHARDS_DIR
    for shard in shards:
        stem = shard[:-len(".tar")]
        for key, members in sample_members(sd / shard, sd / f"{stem}.idx"):
            if key in erased:
                out[key] = {ext: member_ref(data) for ext, data in members if ext in HASHED_MEMBERS}
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_successor(version_dir: Path, erased: set[str], *, erasure_id: str, crash=None) -> dict[str, Any]:
    """Publish the successor of the version at ``version_dir`` without the ``erased`` sample ids.

    Returns ``{"successor": id or None, "path", "shards_rewritten", "shards_kept", "removed"}``;
    ``successor`` is None when no sample is left (nothing is published). Rerunning gives the same id
    (the manifest's content is a function of the old version, the erased set and ``erasure_id``).
    """
    old = formats.read_manifest(version_dir)
    table = pq.read_table(version_dir / old["samples_file"]["file"])
    mask = pc.is_in(table.column("sample_id"), value_set=pa.array(sorted(erased), pa.string()))
    removed = pc.sum(pc.cast(mask, pa.int64())).as_py() or 0
    keep = table.filter(pc.invert(mask))
    hit = set(table.filter(mask).column("shard").to_pylist())
    result = {"removed": removed, "shards_rewritten": sorted(hit), "shards_kept": 0, "successor": None,
              "path": None}
    if keep.num_rows == 0:
        return result
    name_dir = version_dir.parent
    tmp = name_dir / _tmp_name()
    (tmp / formats.SHARDS_DIR).mkdir(parents=True)
    try:
        shards = []
        sd_old, sd_new = version_dir / formats.SHARDS_DIR, tmp / formats.SHARDS_DIR
        for s in old["shards"]:
            if s["file"] not in hit:
                _link_or_copy(sd_old / s["file"], sd_new / s["file"])
                _link_or_copy(sd_old / s["index_file"], sd_new / s["index_file"])
                shards.append(s)
                result["shards_kept"] += 1
                continue
            stem = s["file"][:-len(".tar")]
            writer = ShardWriter(sd_new / stem, s["split"])
            for key, members in sample_members(sd_old / s["file"], sd_old / s["index_file"]):
                if key not in erased:
                    writer.add(key, members)
            if writer.samples:
                shards.append(writer.close().to_dict())
            else:
                writer.abort()
            if crash:
                crash("successor-shard")
        pq.write_table(keep, tmp / formats.SAMPLES_NAME, compression="zstd")
        m = {k: v for k, v in old.items() if k not in ("version_id", "created_at")}
        counts: dict[str, int] = {}
        for s in shards:
            counts[s["split"]] = counts.get(s["split"], 0) + s["samples"]
        m.update(parent=old["version_id"], shards=shards, samples=keep.num_rows,
                 splits=[s for s in old["splits"] if counts.get(s)],
                 counts={s: counts[s] for s in old["splits"] if counts.get(s)},
                 index_space=formats.index_space(old),
                 erasure={"erasure_id": erasure_id, "removed": removed},
                 samples_file={"file": formats.SAMPLES_NAME,
                               "sha256": formats.file_sha256(tmp / formats.SAMPLES_NAME),
                               "bytes": (tmp / formats.SAMPLES_NAME).stat().st_size})
        if old.get("features"):
            m["features"] = _blank_features(version_dir, tmp, old, table.filter(mask).column("index").to_numpy())
        m["created_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        m["version_id"] = formats.compute_version_id(m)
        (tmp / formats.MANIFEST_NAME).write_bytes(formats.pretty_json(m))
        final = name_dir / m["version_id"]
        _publish(tmp, final, m)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.update(successor=m["version_id"], path=str(final))
    return result


def _blank_features(version_dir: Path, tmp: Path, old: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """Copy the feature cache and set the erased ``rows`` of every array to its fill value."""
    import zarr

    entry = dict(old["features"])
    src, dst = version_dir / entry["file"], tmp / entry["file"]
    shutil.copytree(src, dst)
    group = zarr.open_group(str(dst), mode="r+", zarr_format=3)
    rows = np.sort(rows.astype(np.int64))
    for name in group.array_keys():
        arr = group[name]
        arr.oindex[(rows,) + (slice(None),) * (arr.ndim - 1)] = arr.fill_value
    entry["sha256"], entry["bytes"] = formats.tree_digest(dst)
    entry["computed"], entry["reused"] = 0, int(formats.index_space(old) - len(rows))
    return entry


def shred(path: Path) -> None:
    """Overwrite a file with zeros (when no other link to it exists), fsync, and delete it; a file
    with other links (a shard the successor shares) is only unlinked."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if st.st_nlink == 1 and path.is_file() and not path.is_symlink():
        with open(path, "r+b") as fh:
            left = st.st_size
            block = b"\x00" * (1 << 20)
            while left > 0:
                left -= fh.write(block[:min(left, len(block))])
            fh.flush()
            os.fsync(fh.fileno())
    path.unlink()


def tombstone(version_dir: Path, *, version_id: str, successor: str | None, erasure_id: str,
              reason: str, held: list[str], crash=None) -> list[str]:
    """Replace the version's manifest by ``tombstone.json`` and destroy its files: those that held
    an erased sample (the ``held`` shards and their indexes, samples.parquet, the feature cache)
    are overwritten and deleted, the others deleted. Idempotent; returns what it destroyed."""
    stone = version_dir / formats.TOMBSTONE_NAME
    if not stone.is_file():
        body = {"schema_version": 1, "version_id": version_id, "successor": successor,
                "erasure_id": erasure_id, "reason": reason,
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        part = stone.with_name(stone.name + ".part")
        part.write_bytes(formats.pretty_json(body))
        os.replace(part, stone)
    if crash:
        crash("tombstone-written")
    (version_dir / formats.MANIFEST_NAME).unlink(missing_ok=True)
    held_names = set(held) | {h[:-len(".tar")] + ".idx" for h in held}
    destroyed = []
    for path in sorted(version_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path == stone:
            continue
        rel = path.relative_to(version_dir).as_posix()
        if path.is_dir() and not path.is_symlink():
            path.rmdir()  # deepest first: empty by now
            continue
        holds = (path.name in held_names or rel == formats.SAMPLES_NAME
                 or rel.startswith(formats.FEATURES_NAME + "/"))
        shred(path) if holds else path.unlink()
        destroyed.append(rel)
        if crash:
            crash("destroying")
    return destroyed
