"""Reuse, across a versions root, feature outputs that some published version already holds.

A built-in or custom extractor's output is a function of the sample's bytes, which its
``sample_id`` names (it is their hash), and of the extractor's identity (name, function,
version, params; block size for built-ins). So a pack need not recompute what any version
under the same root already holds, whatever query made that version. :func:`add_root_sources`
searches the root's published versions, newest first, and hands the writer each cache that
holds outputs the pack still needs, after checking it:

- the version must open (its manifest hashes to its id and agrees with samples.parquet), and
- its ``features.zarr`` must hash to the manifest's sha256 (every file is read once), and its
  ``sample_id`` rows must agree with samples.parquet (:func:`open_features` with ``verify``).

A version that fails any check is skipped (not an error: it is someone else's version, and the
pack then computes those outputs itself); the caller gets its name and reason. The copied rows
are byte for byte what the extractors would compute, so the new version's files and id are the
same as without reuse (the manifest's ``computed`` / ``reused`` counts describe the parent
alone). The search reads one manifest per version, and the ``sample_id`` column of each version
it opens; it stops once every needed output has a source.

Example::

    writer = FeatureWriter(...)                      # as the packer makes it
    skipped = add_root_sources(writer, Path("versions"))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from fpload import formats
from fpload.errors import FploadError

if TYPE_CHECKING:
    from fpload.features._writer import FeatureWriter


def _candidates(root: Path, exclude: set[str]) -> list[Path]:
    """Published version folders under ``root`` with a feature cache, newest first."""
    found = []
    for man in root.glob(f"*/*/{formats.MANIFEST_NAME}"):
        folder = man.parent
        if any(part.startswith(".") for part in folder.relative_to(root).parts) or folder.name in exclude:
            continue
        try:
            m = json.loads(man.read_bytes())
            if not m.get("features"):
                continue
            found.append((str(m.get("created_at", "")), folder.parent.name, folder.name, folder))
        except (OSError, ValueError, AttributeError):
            continue
    return [f[-1] for f in sorted(found, reverse=True)]


def add_root_sources(writer: "FeatureWriter", root: str | Path, exclude: set[str] | None = None) -> list[str]:
    """Give ``writer`` every checked cache under ``root`` holding outputs it still needs.

    ``exclude`` holds version ids not to consider (the parent, already a source). Returns one
    line per version skipped because a check failed (``NAME/ID: reason``).
    """
    from fpload.features._cache import open_features
    from fpload.versions import open_version

    root = Path(root)
    skipped: list[str] = []
    if not root.is_dir():
        return skipped
    for folder in _candidates(root, exclude or set()):
        missing = writer.missing()
        if not missing.any():
            break
        try:
            version = open_version(folder)
            ids = version.samples.column("sample_id").to_pylist()
            rows = version.samples.column("index").to_pylist()
            sample_rows = dict(zip(ids, rows))
            if not any(writer.sample_ids[i] in sample_rows for i in missing.nonzero()[0].tolist()):
                continue
            cache = open_features(version)
            if not writer.reusable_from(cache):
                continue
            problems = cache.verify()  # the hash check: only a cache that is as published is copied
            if problems:
                skipped.append(f"{folder.parent.name}/{folder.name}: " + "; ".join(problems))
                continue
        except (FploadError, OSError, ValueError, KeyError) as err:
            skipped.append(f"{folder.parent.name}/{folder.name}: {err}")
            continue
        writer.add_source(cache, sample_rows)
    return skipped


def add_store_sources(writer: "FeatureWriter", root: str | Path) -> list[str]:
    """Like :func:`add_root_sources`, for the ingest-time stores under ``root``
    (:mod:`fpload.features._store`): each is used only if its Zarr tree hashes to its entry."""
    from fpload.features._store import open_store, row_map, stores

    skipped: list[str] = []
    for folder in stores(Path(root)):
        if not writer.missing().any():
            break
        try:
            cache = open_store(folder)
            if not writer.reusable_from(cache):
                continue
            rows = row_map(cache)
            if not any(writer.sample_ids[i] in rows for i in writer.missing().nonzero()[0].tolist()):
                continue
            problems = cache.verify()
            if problems:
                skipped.append(f"{folder.name}: " + "; ".join(problems))
                continue
        except Exception as err:  # noqa: BLE001 - an unreadable store is skipped, never trusted
            skipped.append(f"{folder.name}: {type(err).__name__}: {err}")
            continue
        writer.add_source(cache, rows)
    return skipped
