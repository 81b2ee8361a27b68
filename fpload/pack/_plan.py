"""Plan a version: select samples, check consent, assign splits and labels, fix the order."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from fpload.catalog._schema import SPLIT_NAME
from fpload.pack._config import PackConfig
from fpload.errors import ConsentError, DataError

_SPLIT_NAME = SPLIT_NAME  # one rule for ingest and pack (fullmatch: no trailing newline)


@dataclass(frozen=True)
class PackPlan:
    """Rows in their final order (global index = position), with ``split`` and ``label`` set."""

    rows: list[dict[str, Any]]
    splits: list[str]
    labels: int
    without_consent: int

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in self.splits}
        for r in self.rows:
            out[r["split"]] += 1
        return out


def subject_fraction(seed: int, subject_id: str) -> float:
    """A uniform number in [0, 1) fixed by ``(seed, subject_id)``: the split draw of a subject."""
    digest = hashlib.sha256(f"{seed}:{subject_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _assign_split(fraction: float, splits: dict[str, float]) -> str:
    acc = 0.0
    names = list(splits)
    for name in names:
        acc += splits[name]
        if fraction < acc:
            return name
    return names[-1]


def _label_key(row: dict[str, Any], kind: str) -> str:
    if kind == "subject_finger":
        return f"{row['subject_id']}/{row['finger']}"
    if kind == "subject":
        return row["subject_id"]
    return str(row["finger"])


def plan_version(selection: pa.Table, cfg: PackConfig) -> PackPlan:
    """Order a catalog selection into a version plan.

    - samples without consent raise :class:`ConsentError` unless ``cfg.allow_without_consent``;
    - the catalog's ``split`` is kept where set; other samples of a subject follow that subject's
      catalog split, or else the seeded draw of :func:`subject_fraction`, so no subject is in two
      splits (a catalog that itself puts a subject in two splits is an error unless
      ``cfg.allow_subject_overlap``);
    - labels number the sorted distinct label keys; samples are ordered by split (config order,
      then other catalog splits by name), then by sample_id.
    """
    rows = selection.to_pylist()
    if not rows:
        raise DataError("the query selected no samples: nothing to pack")
    no_consent = [r["sample_id"] for r in rows if not r["consent"]]
    if no_consent and not cfg.allow_without_consent:
        raise ConsentError(
            f"{len(no_consent)} selected sample(s) lack consent (e.g. {', '.join(no_consent[:3])}); "
            "add 'AND consent' to the query, or set allow_without_consent: true in the pack config")
    explicit: dict[str, set[str]] = {}
    for r in rows:
        if r["split"] is not None:
            if not _SPLIT_NAME.fullmatch(r["split"]):
                raise DataError(f"sample {r['sample_id']}: split {r['split']!r} is not a valid split name "
                                "(letters, digits, '_')")
            explicit.setdefault(r["subject_id"], set()).add(r["split"])
    overlap = {s: sp for s, sp in explicit.items() if len(sp) > 1}
    if overlap and not cfg.allow_subject_overlap:
        subject, names = sorted(overlap.items())[0]
        raise DataError(
            f"the catalog puts subject {subject!r} in splits {', '.join(sorted(names))} "
            f"({len(overlap)} subject(s) so); fix the catalog or set allow_subject_overlap: true")
    for r in rows:
        if r["split"] is None:
            own = explicit.get(r["subject_id"])
            if own and len(own) == 1:
                r["split"] = next(iter(own))
            else:
                r["split"] = _assign_split(subject_fraction(cfg.split_seed, r["subject_id"]), cfg.splits)
    split_order = list(cfg.splits) + sorted({r["split"] for r in rows} - set(cfg.splits))
    rank = {s: i for i, s in enumerate(split_order)}
    rows.sort(key=lambda r: (rank[r["split"]], r["sample_id"]))
    keys = sorted({_label_key(r, cfg.label) for r in rows})
    label_of = {k: i for i, k in enumerate(keys)}
    for i, r in enumerate(rows):
        r["label_key"] = _label_key(r, cfg.label)
        r["label"] = label_of[r["label_key"]]
        r["index"] = i
    present = [s for s in split_order if s in {r["split"] for r in rows}]
    return PackPlan(rows=rows, splits=present, labels=len(keys), without_consent=len(no_consent))
