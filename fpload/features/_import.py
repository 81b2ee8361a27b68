"""Catalog round trip: write a scalar feature of a version back into a catalog column."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fpload.errors import UsageError
from fpload.features._cache import open_features
from fpload.versions import Version


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_to_catalog` did: the new revision (None: nothing changed) and counts."""

    revision: int | None
    changed: int
    samples: int
    feature: str
    column: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def import_to_catalog(version: str | Path | Version, catalog: Any, *, feature: str = "quality",
                      column: str = "quality", message: str | None = None,
                      decimals: int = 4) -> ImportReport:
    """Write the scalar feature ``feature`` of every sample of ``version`` into ``column`` of
    ``catalog`` (an open :class:`fpload.catalog.Catalog`), as one new revision.

    Values are rounded to ``decimals``. The revision message records the version and the
    extractor's name, version and params, so a later selection on the column is reproducible.

    Example::

        with open_catalog("catalog.duckdb") as cat:
            rep = import_to_catalog("versions/all", cat)          # quality → quality
        # then: fpload pack --where "quality >= 40 AND consent" ...
    """
    cache = open_features(version)
    spec = cache.spec(feature)
    if spec.shape != (cache.samples,) or np.dtype(spec.dtype).kind not in "biuf":
        raise UsageError(f"feature {feature!r} is {spec.dtype} {list(spec.shape)}: only numeric scalar "
                         "features (one number per sample, e.g. quality) can be written to the catalog")
    values = cache.load(feature)
    ids = cache.sample_ids.tolist()
    if np.dtype(spec.dtype).kind == "f":
        data: dict[str, Any] = {s: round(float(v), decimals) for s, v in zip(ids, values)}
    else:
        data = {s: v.item() for s, v in zip(ids, values)}
    v = cache.version
    provenance = {"version": f"{v.name}/{v.id}", "feature": feature, "extractor": spec.extractor,
                  "extractor_version": spec.version, "params": spec.params, "block": spec.block}
    text = message or f"features import: {column} := {feature} of {v.name}/{v.id}"
    text = f"{text} {json.dumps(provenance, sort_keys=True)}"
    rev, changed = catalog.set_values(column, data, text)
    return ImportReport(revision=rev, changed=changed, samples=len(data), feature=feature, column=column,
                        message=text)
