"""Features computed at ingest, kept beside the catalog for later packs to copy.

``fpload catalog ingest --features default`` runs the extractors on the pixels ingest decodes
anyway (to check every image), and writes them to ``CATALOG.features/ingest-<digest>/``: a
``features.zarr`` exactly as a pack writes it (rows = the ingested samples in sample_id order)
and ``entry.json``, the manifest entry a version would hold (extractors, params, sha256 of the
Zarr tree). ``<digest>`` hashes the sample ids and the extractor identities, so ingesting the same
file again writes nothing. A pack (with ``reuse``, the default) treats each store like a
published version's cache (:mod:`fpload.features._reuse`): same extractor identity and block
size only, after recomputing the sha256; a store that fails the check is skipped.

Example::

    cat.ingest("captures/metadata.csv", features=FeaturesConfig())   # writes cat.duckdb.features/...
    pack_version(cat, out="versions", name="all", where="consent")   # copies them: no extraction
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from fpload import formats
from fpload.features._config import FeaturesConfig

ENTRY_NAME = "entry.json"


def store_root(catalog_path: str | Path) -> Path:
    """Where a catalog's ingest-time features live: ``CATALOG.features`` beside the catalog file."""
    p = Path(catalog_path)
    return p.with_name(p.name + ".features")


def write_store(root: Path, cfg: FeaturesConfig, items: dict[str, tuple[tuple[int, int], dict]]) -> Path | None:
    """Write one store of ``items`` (``{sample_id: ((height, width), features)}``); its folder, or
    None when there is nothing to write. Atomic: written under a temporary name, then renamed."""
    from fpload.features._extract import resolve_extractors
    from fpload.features._writer import FeatureWriter

    if not items:
        return None
    job = resolve_extractors(cfg)
    ids = sorted(items)
    key = hashlib.sha256(json.dumps([ids, [e.identity() for e in job.extractors], job.block]).encode())
    final = root / f"ingest-{key.hexdigest()[:16]}"
    if (final / ENTRY_NAME).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        writer = FeatureWriter(tmp / formats.FEATURES_NAME, job, cfg, ids, [items[s][0] for s in ids],
                               formats.features_chunk_samples(None, len(ids)))
        for i, sid in enumerate(ids):
            writer.add(i, items[sid][1])
        entry = writer.close()
        (tmp / ENTRY_NAME).write_bytes(formats.pretty_json(entry))
        try:
            os.rename(tmp, final)
        except OSError:  # written meanwhile by another ingest of the same samples
            if not (final / ENTRY_NAME).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def open_store(folder: Path):
    """A store as a :class:`~fpload.features.FeatureCache` (its ``version`` a stand-in naming the
    folder); raises on anything unreadable."""
    import zarr

    from fpload.features._cache import FeatureCache

    entry: dict[str, Any] = json.loads((folder / ENTRY_NAME).read_bytes())
    group = zarr.open_group(str(folder / entry["file"]), mode="r", zarr_format=3)
    n = int(group[formats.FEATURES_SAMPLE_ID].shape[0])
    stand_in = SimpleNamespace(path=folder, name=folder.parent.name, id=folder.name,
                               manifest={"samples": n, "features": entry})
    return FeatureCache(stand_in, entry, group)  # type: ignore[arg-type]


def stores(root: Path) -> list[Path]:
    """The published stores under ``root``, newest first."""
    if not root.is_dir():
        return []
    found = [p.parent for p in root.glob(f"ingest-*/{ENTRY_NAME}")]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


def row_map(cache) -> dict[str, int]:
    """``{sample_id: row}`` of a store."""
    return {sid: i for i, sid in enumerate(np.asarray(cache.sample_ids).tolist())}
