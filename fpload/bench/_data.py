"""Benchmark data, made once per size into ``OUT/cache`` and reused by later runs.

- Loader: synthetic fingerprints (:func:`fpload.synth.synthesize`), ingested into a catalog and
  packed four ways (png, jpeg q95, raw, raw-lz4), one split ``train``.
- Pack and catalog: many small unique ridge images (:func:`fpload.testing.ridge_image`, 128×128
  PNG), ten per subject, so a size is a ``subject_id`` range of one catalog.
"""

from __future__ import annotations

import csv
import json
import math
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

LOADER_ENCODINGS = ("png", "jpeg", "raw", "raw-lz4")
IMAGES_PER_SUBJECT = 10


def pack_config(encoding: str, *, shard_max_samples: int = 1000):
    """The PackConfig of the benchmarks: one split, no feature cache (not what is measured)."""
    from fpload.pack import PackConfig

    return PackConfig.from_dict({"encoding": encoding, "jpeg_quality": 95, "splits": {"train": 1.0},
                                 "shard_max_samples": shard_max_samples, "features": {"enabled": False}},
                                source="benchmark")


# -------------------------------------------------------------------------------------------
# loader data
# -------------------------------------------------------------------------------------------

def loader_versions(cache: Path, *, subjects: int, fingers: int, impressions: int, image: int,
                    shards: int, log=print) -> dict[str, Path]:
    """Paths of the four packed versions (encoding → version folder), made if missing."""
    from fpload.catalog import open_catalog
    from fpload.pack import pack_version
    from fpload.synth import synthesize

    n = subjects * fingers * impressions
    root = cache / f"loader-{image}px-{n}"
    record = root / "versions.json"
    if record.exists():
        paths = {k: Path(v) for k, v in json.loads(record.read_text()).items()}
        if all((p / "manifest.json").exists() for p in paths.values()):
            return paths
    synth_dir = root / "synth"
    if not (synth_dir / "metadata.jsonl").exists():
        log(f"synthesising {n} fingerprints at {image}×{image} into {synth_dir} (once)")
        synthesize(synth_dir, subjects=subjects, fingers=fingers, impressions=impressions, size=image,
                   seed=6, progress=False)
    with open_catalog(root / "catalog.duckdb") as cat:
        cat.ingest(synth_dir / "metadata.jsonl")
        paths = {}
        per_shard = max(1, math.ceil(n / shards))
        for enc in LOADER_ENCODINGS:
            log(f"packing {n} samples as {enc}")
            res = pack_version(cat, out=root / "versions", name=enc, where="consent",
                               config=pack_config(enc, shard_max_samples=per_shard), workers=2)
            paths[enc] = res.path
    record.write_text(json.dumps({k: str(v) for k, v in paths.items()}, sort_keys=True))
    return paths


# -------------------------------------------------------------------------------------------
# pack / catalog data: small unique ridge images
# -------------------------------------------------------------------------------------------

def _write_images(args: tuple[Path, int, int, int]) -> list[dict[str, Any]]:
    from fpload.testing import encode, ridge_image

    folder, start, stop, side = args
    rows = []
    for i in range(start, stop):
        rng = np.random.default_rng([2024, i])
        img = ridge_image(rng, (side, side), period=float(rng.uniform(7.0, 11.0)))
        subject, finger = divmod(i, IMAGES_PER_SUBJECT)
        name = f"images/{subject // 1000:04d}/s{subject:06d}_f{finger + 1:02d}.png"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(img, "png"))
        rows.append({"file": name, "subject_id": f"S{subject:06d}", "finger": finger + 1, "impression": 0,
                     "sensor": f"sensor-{subject % 3}", "ppi": 500, "consent": True,
                     "quality": float((i * 37) % 100), "synthetic": True, "site": f"lab-{i % 4}"})
    return rows


def ridge_captures(cache: Path, count: int, *, side: int = 128, workers: int = 2, log=print) -> Path:
    """Folder of ``count`` unique ridge PNGs with ``metadata.csv``; made once per count and side."""
    folder = cache / f"ridges-{side}px-{count}"
    meta = folder / "metadata.csv"
    if meta.exists():
        return meta
    log(f"writing {count} unique {side}×{side} ridge images into {folder} (once)")
    step = 2000
    jobs = [(folder, s, min(count, s + step), side) for s in range(0, count, step)]
    rows: list[dict[str, Any]] = []
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("forkserver")) as pool:
            for part in pool.map(_write_images, jobs):
                rows.extend(part)
    else:
        for job in jobs:
            rows.extend(_write_images(job))
    write_metadata(rows, meta)
    return meta


def ridge_captures_at_least(cache: Path, count: int, *, side: int = 128, log=print) -> Path:
    """An existing set of at least ``count`` ridge captures (e.g. the pack benchmark's), else a new one."""
    have = sorted((int(p.parent.name.rsplit("-", 1)[1]), p) for p in cache.glob(f"ridges-{side}px-*/metadata.csv"))
    for n, meta in have:
        if n >= count:
            return meta
    return ridge_captures(cache, count, side=side, log=log)


def write_metadata(rows: list[dict[str, Any]], path: Path) -> Path:
    """A metadata CSV of ``rows`` (written under a temporary name, then renamed)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    tmp.rename(path)
    return path


def subset_metadata(meta: Path, count: int) -> Path:
    """A metadata CSV of the first ``count`` rows of ``meta``, beside it (images are shared)."""
    out = meta.with_name(f"metadata-{count}.csv")
    if out.exists():
        return out
    with open(meta, newline="") as fh:
        rows = [r for _, r in zip(range(count), csv.DictReader(fh))]
    return write_metadata(rows, out)


def ridge_catalog(cache: Path, count: int, *, log=print) -> Path:
    """A catalog holding the ``count`` ridge captures (ingested once)."""
    from fpload.catalog import open_catalog

    meta = ridge_captures(cache, count, log=log)
    path = meta.parent / "catalog.duckdb"
    done = meta.parent / "catalog.done"
    if path.exists() and done.exists():
        return path
    path.unlink(missing_ok=True)
    log(f"ingesting {count} ridge images into {path} (once)")
    with open_catalog(path) as cat:
        cat.ingest(meta, workers=4)
    done.write_text("ok\n")
    return path


def where_first(count: int) -> str:
    """The WHERE expression selecting the first ``count`` ridge captures (a whole number of subjects)."""
    return f"subject_id < 'S{math.ceil(count / IMAGES_PER_SUBJECT):06d}'"
