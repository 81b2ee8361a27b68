"""The label mapping of one split: the labels a loader yields, back to the version's label and to
``label_key``, ``subject_id`` and ``finger``."""

from __future__ import annotations

import numpy as np


def label_table(samples, split: str, split_labels: np.ndarray, *, renumber: bool):
    """One row per label of ``split`` (see :meth:`fpload.load.Loader.label_table`); ``samples`` is
    the version's samples.parquet table, ``split_labels`` the split's sorted version labels, and
    ``renumber`` whether the loader yields them as 0..K-1."""
    import pyarrow as pa
    import pyarrow.compute as pc

    s = samples
    s = s.filter(pc.equal(s.column("split"), split))
    g = s.group_by("label").aggregate([("label_key", "min"), ("subject_id", "min"), ("subject_id", "max"),
                                       ("finger", "min"), ("finger", "max"), ("index", "count")])
    g = g.sort_by("label")
    version_label = g.column("label").to_numpy().astype(np.int64)
    ours = (np.searchsorted(split_labels, version_label) if renumber
            else version_label)

    def one(col: str):
        lo, hi = g.column(f"{col}_min"), g.column(f"{col}_max")
        return pc.if_else(pc.equal(lo, hi), lo, pa.nulls(len(lo), lo.type))

    return pa.table({"label": pa.array(ours.astype(np.int64)), "version_label": pa.array(version_label),
                     "label_key": g.column("label_key_min"), "subject_id": one("subject_id"),
                     "finger": one("finger"), "samples": g.column("index_count")})
