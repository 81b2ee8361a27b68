"""A small world for erasure tests: captures, a catalog with several revisions, two versions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from fpload import formats
from fpload.catalog import open_catalog
from fpload.erase._successor import sample_members
from fpload.pack import PackConfig, pack_version
from fpload.testing import make_captures


def make_world(base: Path, *, subjects: int = 5, shard: int = 3, features: bool = True) -> dict:
    """Captures of ``subjects`` subjects (S000...), a catalog with 2 revisions (S001's consent
    changed, so it has rows at both), and versions ``raw`` (features on) and ``png`` under one root."""
    meta = make_captures(base / "caps", subjects=subjects, fingers=2, impressions=2)
    cat = open_catalog(base / "cat.duckdb")
    cat.ingest(meta)
    cat.update("subject_id = 'S001'", {"quality": 99.0}, message="re-scored")
    root = base / "versions"
    paths = {}
    for name, enc in (("raw", "raw"), ("png", "png")):
        cfg = PackConfig.from_dict({"encoding": enc, "shard_max_samples": shard,
                                    "features": {"enabled": features and enc == "raw"}})
        paths[name] = pack_version(cat, out=root, name=name, config=cfg).path
    cat.close()
    return {"catalog": base / "cat.duckdb", "root": root, "versions": paths, "caps": base / "caps"}


def version_content(vdir: Path) -> dict:
    """Per sample id: its tar members, its samples.parquet row, and its feature-cache rows."""
    m = formats.read_manifest(vdir)
    out: dict[str, dict] = {}
    for s in m["shards"]:
        sd = vdir / formats.SHARDS_DIR
        for key, members in sample_members(sd / s["file"], sd / s["index_file"]):
            out[key] = {"members": members, "shard_sha": s["sha256"], "shard": s["file"]}
    for row in pq.read_table(vdir / formats.SAMPLES_NAME).to_pylist():
        out[row["sample_id"]]["row"] = row
    if m.get("features"):
        import zarr

        g = zarr.open_group(str(vdir / formats.FEATURES_NAME), mode="r", zarr_format=3)
        for name in g.array_keys():
            arr = np.asarray(g[name][:])
            for sid, d in out.items():
                d.setdefault("features", {})[name] = arr[d["row"]["index"]].tobytes()
    return out


def subject_samples(content: dict, subject: str) -> set[str]:
    return {sid for sid, d in content.items() if d["row"]["subject_id"] == subject}


@pytest.fixture()
def world(tmp_path) -> dict:
    return make_world(tmp_path)
