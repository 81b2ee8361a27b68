"""Minutiae rows of the realism report, measured with pyfing's LEADER detector (``fpload[pyfing]``).

Two rows, per image of a set:

- ``leader_per_mm2``: minutiae LEADER finds per mm² of foreground (pyfing's GMFS mask), for any
  set, so a synthetic set can be set beside a folder of real captures;
- ``leader_recovery``: the share of the ground-truth minutiae it recovers (within 8 px and 20°,
  see :func:`fpload.features.match_minutiae`), for synthetic sets only (they carry the truth).

LEADER costs about half a second per image on one CPU core, so only the first ``limit`` images
of each set are measured. Example::

    from fpload.synth._realism import ROW_PROVIDERS, builtin_rows, load_synthetic, realism_report
    from fpload.synth._minutiae_rows import minutiae_provider

    realism_report([load_synthetic("data")], providers=[builtin_rows, minutiae_provider(12)])
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from fpload.errors import UsageError
from fpload.synth._realism import ImageSet, Measurement, RowProvider

LABELS = {
    "leader_per_mm2": "LEADER minutiae per mm² of foreground",
    "leader_recovery": "ground-truth minutiae LEADER recovers (8 px, 20°)",
}

Detector = Callable[[Sequence[np.ndarray], int], list[np.ndarray]]


def _pyfing_detect(images: Sequence[np.ndarray], ppi: int) -> list[np.ndarray]:
    from fpload.features._validate import detect

    return detect(images, dpi=ppi)


def _pyfing_area(image: np.ndarray, ppi: int) -> float:
    from fpload.features._validate import foreground_mm2

    return foreground_mm2(image, ppi=ppi)


def minutiae_provider(limit: int = 12, *, ppi: int = 500, detector: Detector | None = None,
                      area: Callable[[np.ndarray, int], float] | None = None) -> RowProvider:
    """A report row provider measuring the first ``limit`` images of each set with LEADER.

    ``detector``/``area`` replace pyfing's detector and foreground area (tests use this); by
    default the ``fpload[pyfing]`` extra is needed, and its absence is one ``ConfigError``.
    """
    if limit < 1:
        raise UsageError(f"minutiae rows: limit must be at least 1, got {limit}")
    detect = detector or _pyfing_detect
    mm2_of = area or _pyfing_area
    if detector is None:  # fail before any image is measured when the extra is missing
        from fpload.features._pyfing import import_pyfing

        import_pyfing()

    def rows(images: ImageSet) -> list[Measurement]:
        picked = images.images[:limit]
        found = detect(picked, ppi)
        density = []
        for image, det in zip(picked, found):
            mm2 = mm2_of(image, ppi)
            density.append(len(det) / mm2 if mm2 > 0 else math.nan)
        out = [Measurement("leader_per_mm2", tuple(density), LABELS["leader_per_mm2"])]
        if images.metadata is not None:
            from fpload.features._validate import recovery

            shares = []
            for det, row in zip(found, images.metadata[:limit]):
                truth: list[Any] = row.get("minutiae") or []
                shares.append(recovery([det], [truth])["recovery"] if truth else math.nan)
            out.append(Measurement("leader_recovery", tuple(shares), LABELS["leader_recovery"], share=True))
        return out

    return rows
