"""The writing half of :class:`~fpload.catalog.Catalog` that adds images: ``ingest`` of a metadata
file, ``ingest_records`` of biometric record files, and the duplicate checks and commit they share
(a mixin of ``Catalog``: it uses the catalog's writer lock, ``_current_rows`` and ``_commit_in_lock``).

Example::

    with open_catalog("team.duckdb") as cat:
        report = cat.ingest("captures/metadata.csv")    # IngestReport(revision=1, added=40, ...)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fpload.catalog import _ingest
from fpload.catalog._schema import UPDATABLE
from fpload.errors import DuplicateSampleError, MetadataError, UsageError


@dataclass(frozen=True)
class IngestReport:
    """Outcome of :meth:`Catalog.ingest`. ``revision`` is None when nothing was new or changed;
    ``changed`` counts catalogued samples whose metadata an ``update=True`` ingest changed."""

    revision: int | None
    added: int
    duplicates: int
    rows: int
    changed: int = 0
    skipped: dict[str, int] | None = None  # record ingests: images / records skipped, per reason


def _progress_map(it, total: int, label: str, show: bool) -> list:
    if not show:
        return list(it)
    from rich.progress import Progress

    out = []
    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=total)
        for item in it:
            out.append(item)
            bar.advance(task)
    return out


class IngestMixin:
    """``Catalog``'s ingest methods (see :class:`~fpload.catalog.Catalog`)."""

    def ingest(self, metadata: str | Path, *, images_root: str | Path | None = None,
               workers: int = 4, progress: bool = False, message: str | None = None,
               update: bool = False, allow_outside: bool = False,
               limits: _ingest.ImageLimits | None = None, engine: str = "local",
               address: str | None = None, features: Any = None) -> IngestReport:
        """Add the images a metadata file (CSV, Parquet or JSONL) names.

        Rows name images by ``file``, relative to ``images_root`` (default: the metadata file's
        folder); a file outside it (symlinks followed) is refused unless ``allow_outside``. Only
        regular files within ``limits`` (bytes, pixels) are read. Every row and image is checked
        before anything is written, in one transaction. Re-ingesting the same bytes with the same
        metadata adds nothing; with other metadata (consent, split, quality, …) it raises
        :class:`DuplicateSampleError` naming the first changed sample and field, or, with
        ``update=True``, writes the changes as part of a new revision.

        ``engine="ray"`` reads and checks the images in Ray tasks on the cluster at ``address``
        (``"auto"``, ``"ray://HOST:10001"``, None: Ray's default; every node must see the images);
        the revision written is the same as a local ingest's.

        ``features`` (a :class:`fpload.features.FeaturesConfig`, local engine, file catalogs) also
        runs its extractors on the pixels the checks decode, and keeps them beside the catalog
        (``CATALOG.features/``) once the revision is committed; a later pack copies them instead
        of decoding and extracting (see :mod:`fpload.features._store`).

        >>> cat.ingest("captures/metadata.csv", update=True)   # doctest: +SKIP
        IngestReport(revision=3, added=0, duplicates=39, rows=40, changed=1)
        >>> cat.ingest("/shared/captures/metadata.csv", engine="ray", address="auto")   # doctest: +SKIP
        """
        from fpload._ray import check_engine

        check_engine(engine, address)
        metadata = Path(metadata)
        base = str(images_root) if images_root is not None else str(metadata.parent)
        raw_rows = _ingest.read_metadata(metadata)
        rows = []
        for n, raw in enumerate(raw_rows, 1):
            try:
                row = _ingest.parse_row(raw)
                row["uri"] = _ingest.resolve_uri(row.pop("file"), base, allow_outside=allow_outside)
            except ValueError as err:
                raise MetadataError(f"{metadata}: row {n} (file={raw.get('file')!r}): {err}") from None
            row["_row"] = n
            rows.append(row)
        uris = [r["uri"] for r in rows]
        job, store = self._ingest_extractor(features, engine)
        if engine == "ray":
            from fpload.catalog._ray_ingest import iter_probed_ray

            probing = iter_probed_ray(uris, limits, address)
        else:
            probing = _ingest.iter_probed(uris, workers, limits, job)
        probed = _progress_map(probing, len(rows), "probing images", progress)
        computed: dict[str, Any] = {}
        for row, info in zip(rows, probed):
            if "_features" in info:
                info = dict(info)
                computed[info["sample_id"]] = ((info["height"], info["width"]), info.pop("_features"))
            row.update(info)
        report = self._ingest_rows(metadata, rows, update, message)
        if store is not None:  # after the commit: a failed ingest leaves no features behind
            from fpload.features._store import write_store

            write_store(store, features, computed)
        return report

    def ingest_records(self, paths: list[str | Path], *, subject_field: str = "1.009",
                       metadata: str | Path | None = None, consent: bool = False,
                       keep_fields: tuple[str, ...] = (), workers: int = 4, message: str | None = None,
                       update: bool = False, limits: _ingest.ImageLimits | None = None) -> IngestReport:
        """Add every finger image of ANSI/NIST-ITL transactions and ISO/IEC 19794-4 records.

        ``paths``: record files and folders (searched for ``.an2 .eft .nist .an1 .int .ebts .fir
        .iso``). The subject is the Type-1/Type-2 field ``subject_field`` (default 1.009, the
        transaction control number; ISO records: the file name). Records carry no consent:
        ``consent`` applies to all, and a ``metadata`` file joined on ``subject_id`` sets consent,
        split and more per subject (see :func:`fpload.catalog._records.finish_rows`). Every record
        is checked before anything is written; ``IngestReport.skipped`` counts the images and
        records that are not one finger (slaps, palms, faces, ...).

        >>> cat.ingest_records(["scans/"], subject_field="2.015", metadata="consent.csv")   # doctest: +SKIP
        """
        from fpload.catalog import _records

        rows, skipped = _records.read_record_rows(paths, subject_field=subject_field, keep_fields=tuple(keep_fields),
                                                  limits=limits, workers=workers)
        _records.finish_rows(rows, consent=consent, metadata=metadata)
        label = Path(str(paths[0])) if len(paths) == 1 else Path(f"{len(paths)} record paths")
        report = self._ingest_rows(label, rows, update, message)
        return dataclasses.replace(report, skipped=skipped)

    def _ingest_rows(self, metadata: Path, rows: list[dict[str, Any]], update: bool,
                     message: str | None) -> IngestReport:
        # conflicts inside the file, then against the catalog's head
        seen: dict[str, dict[str, Any]] = {}
        fresh: list[dict[str, Any]] = []
        duplicates = 0
        for row in rows:
            prior = seen.get(row["sample_id"])
            if prior is not None:
                bad = _ingest.changed_fields(prior, row)
                if bad:
                    raise DuplicateSampleError(
                        f"{metadata}: rows {prior['_row']} and {row['_row']} ({prior['uri']} and {row['uri']}) "
                        f"hold the same image bytes (sample {row['sample_id']}) with conflicting {bad[0]} "
                        f"({prior[bad[0]]!r} and {row[bad[0]]!r})")
                duplicates += 1
                continue
            seen[row["sample_id"]] = row
            fresh.append(row)
        with self._writing():   # read the head and write the revision under the writer lock
            report = self._ingest_fresh(metadata, rows, fresh, duplicates, update, message)
        return report

    def _ingest_extractor(self, features: Any, engine: str) -> tuple[Any, Any]:
        """The :class:`fpload.features.FeatureJob` of an ingest with ``features``, and its store folder."""
        if features is None:
            return None, None
        from fpload.features import resolve_extractors
        from fpload.features._store import store_root

        if engine != "local":
            raise UsageError("ingest with features runs on the local engine only (drop --engine ray, "
                             "or let the pack compute the features)")
        if not isinstance(self.path, Path):
            raise UsageError(f"ingest with features needs a catalog file to keep them beside; {self.path} is not one")
        return resolve_extractors(features), store_root(self.path)

    def _ingest_fresh(self, metadata: Path, rows: list, fresh: list, duplicates: int, update: bool,
                      message: str | None) -> IngestReport:
        existing = self._current_rows([r["sample_id"] for r in fresh])
        new_rows, changed = [], []
        for row in fresh:
            prior = existing.get(row["sample_id"])
            if prior is None:
                new_rows.append(row)
                continue
            bad = _ingest.changed_fields(prior, row)
            if not bad:
                duplicates += 1
                continue
            where = (f"{metadata}: row {row['_row']} ({row['uri']}) repeats the bytes of catalogued sample "
                     f"{row['sample_id']} with conflicting {bad[0]} ({prior[bad[0]]!r} in the catalog, "
                     f"{row[bad[0]]!r} here)")
            if not update:
                raise DuplicateSampleError(f"{where}; pass --update to apply the file's metadata as a new "
                                           "revision, or change it with `fpload catalog update`")
            fixed = [f for f in bad if f not in UPDATABLE]
            if fixed:
                raise DuplicateSampleError(f"{where}; {fixed[0]} cannot be changed "
                                           f"(changeable: {', '.join(UPDATABLE)})")
            changed.append({**prior, **{f: row[f] for f in bad}})
        if not new_rows and not changed:
            return IngestReport(revision=None, added=0, duplicates=duplicates, rows=len(rows))
        rev = self._commit_in_lock("ingest", message or f"ingest {metadata.name}", new_rows + changed,
                                   [r["sample_id"] for r in changed])
        return IngestReport(revision=rev, added=len(new_rows), duplicates=duplicates, rows=len(rows),
                            changed=len(changed))
