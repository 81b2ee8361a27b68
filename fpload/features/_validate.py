"""Feature estimators against synthetic ground truth: block errors and minutiae recovery.

fpload.synth knows the true orientation, ridge period, fingertip mask and minutiae of its
masters, and the minutiae of its impressions (mapped through the impression's transform). These
functions score the feature cache's block arrays and pyfing's LEADER against them; the script
``benchmarks/validate_features.py`` prints the table of the README.

Example::

    from fpload.features import pyfing_recovery
    from fpload.synth import SynthConfig, generate_master, render_impression

    cfg = SynthConfig(subjects=1, size=256)
    imps = [render_impression(generate_master(cfg, 1, f), 0, cfg) for f in (1, 2)]
    pyfing_recovery([i.image for i in imps], [i.minutiae for i in imps])
    # {'images': 2, 'truth': 61, 'detected': 70, 'matched': 50, 'recovery': 0.82, ...}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fpload.errors import UsageError

#: matching tolerances of :func:`match_minutiae` (the field's usual ones at 500 ppi)
MAX_DISTANCE_PX = 8.0
MAX_ANGLE_DEG = 20.0


def _kind_code(kind: Any) -> int:
    if kind in (1, "ending", "E"):
        return 1
    if kind in (2, "bifurcation", "B"):
        return 2
    raise UsageError(f"minutia type {kind!r} is not one of 'ending', 'bifurcation' (or 1, 2)")


def match_minutiae(detected: np.ndarray, truth: Sequence[Sequence[Any]], *, max_distance: float = MAX_DISTANCE_PX,
                   max_angle_deg: float = MAX_ANGLE_DEG) -> list[tuple[int, int]]:
    """One-to-one pairs ``(detected row, truth index)`` within ``max_distance`` pixels and
    ``max_angle_deg`` degrees, closest first (greedy).

    ``detected`` is ``[M, 4]`` rows ``(x, y, angle, type)`` as the cache stores them (only the
    used rows); ``truth`` rows ``(x, y, angle, kind)`` as fpload.synth gives them (the same angle
    convention). Types are not required to agree.
    """
    det = np.asarray(detected, np.float64).reshape(-1, 4)
    if not len(truth) or not len(det):
        return []
    tr = np.array([[float(t[0]), float(t[1]), float(t[2]), _kind_code(t[3])] for t in truth], np.float64)
    dist = np.hypot(det[:, None, 0] - tr[None, :, 0], det[:, None, 1] - tr[None, :, 1])
    dang = np.abs(np.angle(np.exp(1j * (det[:, None, 2] - tr[None, :, 2]))))
    ok = (dist <= max_distance) & (dang <= math.radians(max_angle_deg))
    pairs = []
    used_d, used_t = set(), set()
    for i, j in sorted(zip(*np.nonzero(ok)), key=lambda p: (dist[p], p)):
        if i not in used_d and j not in used_t:
            used_d.add(int(i))
            used_t.add(int(j))
            pairs.append((int(i), int(j)))
    return pairs


def recovery(detected: Sequence[np.ndarray], truth: Sequence[Sequence[Sequence[Any]]], **kw: Any) -> dict[str, Any]:
    """Recovery (matched / truth) and precision (matched / detected) over many images; ``kw`` as
    :func:`match_minutiae`."""
    if len(detected) != len(truth):
        raise UsageError(f"recovery: {len(detected)} detected lists for {len(truth)} truth lists")
    n_truth = n_det = n_match = same_type = 0
    for det, tr in zip(detected, truth):
        det = np.asarray(det, np.float64).reshape(-1, 4)
        pairs = match_minutiae(det, tr, **kw)
        n_truth += len(tr)
        n_det += len(det)
        n_match += len(pairs)
        same_type += sum(int(det[i, 3]) == _kind_code(tr[j][3]) for i, j in pairs)
    return {"images": len(truth), "truth": n_truth, "detected": n_det, "matched": n_match,
            "recovery": n_match / n_truth if n_truth else float("nan"),
            "precision": n_match / n_det if n_det else float("nan"),
            "type_agreement": same_type / n_match if n_match else float("nan"),
            "max_distance_px": kw.get("max_distance", MAX_DISTANCE_PX),
            "max_angle_deg": kw.get("max_angle_deg", MAX_ANGLE_DEG)}


def detect(images: Sequence[np.ndarray], *, dpi: int = 500, method: str = "deep") -> list[np.ndarray]:
    """pyfing minutiae ``[M, 4]`` (x, y, angle, type; the cache's convention) of each 8-bit image."""
    from fpload.features._builtin import ImageAnalysis
    from fpload.features._pyfing import PYFING_EXTRACTORS, detect_minutiae

    params = PYFING_EXTRACTORS["pyfing.minutiae"].resolve({"method": method, "dpi": dpi})
    out = []
    for image in images:
        an = ImageAnalysis(np.ascontiguousarray(image, np.uint8), 16)
        found = detect_minutiae(an, method, dpi, params["algorithms"])
        out.append(np.array([m[:4] for m in found], np.float32).reshape(-1, 4))
    return out


def pyfing_recovery(images: Sequence[np.ndarray], truth: Sequence[Sequence[Sequence[Any]]], *, dpi: int = 500,
                    method: str = "deep", **kw: Any) -> dict[str, Any]:
    """Share of ground-truth minutiae that pyfing (LEADER by default) recovers on ``images``.

    ``truth[i]`` holds image i's minutiae ``(x, y, angle, kind)`` as fpload.synth writes them
    (``Impression.minutiae``, or a metadata row's ``minutiae``). A truth minutia counts as
    recovered when a detection lies within 8 px and 20° (``max_distance``, ``max_angle_deg``).
    Needs the ``fpload[pyfing]`` extra. Returns counts, ``recovery``, ``precision`` and
    ``type_agreement``.
    """
    return {"detector": "LEADER" if method == "deep" else "SBMEX", **recovery(detect(images, dpi=dpi, method=method),
                                                                              truth, **kw)}


def foreground_mm2(image: np.ndarray, *, ppi: int = 500) -> float:
    """Foreground area of one 8-bit image in mm², by pyfing's GMFS segmentation at ``ppi``."""
    from fpload.features._builtin import ImageAnalysis
    from fpload.features._pyfing import PYFING_EXTRACTORS, _run

    seg = PYFING_EXTRACTORS["pyfing.segmentation"].resolve({"dpi": ppi})
    an = ImageAnalysis(np.ascontiguousarray(image, np.uint8), 16)
    return float((_run(an, "GMFS", seg["algorithms"], ppi) > 0).sum()) / (ppi / 25.4) ** 2


def minutiae_density(images: Sequence[np.ndarray], *, ppi: int = 500, method: str = "deep") -> dict[str, Any]:
    """Minutiae per mm² of foreground (pyfing's GMFS mask) that pyfing finds on ``images``:
    the number to set beside :func:`pyfing_recovery` for a folder of real captures."""
    found = detect(images, dpi=ppi, method=method)
    mm2 = sum(foreground_mm2(image, ppi=ppi) for image in images)
    count = sum(len(f) for f in found)
    return {"images": len(images), "minutiae": count, "foreground_mm2": mm2,
            "per_mm2": count / mm2 if mm2 else float("nan")}


# -- block errors ---------------------------------------------------------------------------------

def truth_blocks(theta: np.ndarray, period: np.ndarray, mask: np.ndarray, block: int) -> dict[str, np.ndarray]:
    """Per-block truth of pixel fields (``theta`` ridge direction in radians, y down; ``period``
    in pixels; ``mask`` bool): doubled-angle mean orientation, 1 / mean period, mask coverage."""
    h, w = theta.shape
    hb, wb = -(-h // block), -(-w // block)

    def sums(a):
        p = np.zeros((hb * block, wb * block))
        p[:h, :w] = a
        return p.reshape(hb, block, wb, block).sum(axis=(1, 3))

    m = mask.astype(bool)
    n = sums(np.ones_like(theta))
    inside = sums(m)
    c, s = sums(np.where(m, np.cos(2 * theta), 0)), sums(np.where(m, np.sin(2 * theta), 0))
    per = sums(np.where(m, period, 0))
    return {"theta": 0.5 * np.arctan2(s, c), "frequency": np.where(inside > 0, inside / np.maximum(per, 1e-9), 0),
            "coverage": inside / n, "foreground": inside >= 0.5 * n}


def block_errors(truth: dict[str, np.ndarray], *, orientation: np.ndarray | None = None,
                 frequency: np.ndarray | None = None, foreground: np.ndarray | None = None,
                 core: float = 1.0) -> dict[str, float]:
    """Errors of block estimates against :func:`truth_blocks` on blocks whose truth coverage is at
    least ``core``: mean angular error (degrees) of ``orientation`` (``[2, hb, wb]`` cos/sin 2θ),
    mean relative error of ``frequency``, IoU of ``foreground`` (on all blocks); each with the
    share of those blocks the estimator gave a value for."""
    out: dict[str, float] = {}
    sel = truth["coverage"] >= core
    hb, wb = truth["coverage"].shape
    if orientation is not None:
        o = np.asarray(orientation, np.float64)[:, :hb, :wb]
        has = sel & (np.hypot(o[0], o[1]) > 0)
        est = 0.5 * np.arctan2(o[1], o[0])
        err = np.abs(np.angle(np.exp(2j * (est - truth["theta"])))) / 2
        out["orientation_deg"] = float(np.degrees(err[has]).mean()) if has.any() else float("nan")
        out["orientation_cover"] = float(has.sum() / max(1, sel.sum()))
    if frequency is not None:
        f = np.asarray(frequency, np.float64)[:hb, :wb]
        has = sel & (f > 0)
        rel = np.abs(f - truth["frequency"]) / np.maximum(truth["frequency"], 1e-9)
        out["frequency_rel"] = float(rel[has].mean()) if has.any() else float("nan")
        out["frequency_cover"] = float(has.sum() / max(1, sel.sum()))
    if foreground is not None:
        g = np.asarray(foreground, bool)[:hb, :wb]
        t = truth["foreground"]
        union = (g | t).sum()
        out["foreground_iou"] = float((g & t).sum() / union) if union else float("nan")
    return out


def master_print(master: Any, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A clean print of a synthetic master's whole canvas (dark ridges on a light background
    around the fingertip, mild noise) and its pixel truth: ``theta``, ``period``, ``mask``."""
    crop = (slice(None), slice(None))
    mask = master.mask[crop] > 0.5
    ink = np.clip(master.ridges[crop] / 0.7 + 0.5, 0, 1) * mask
    rng = np.random.default_rng(seed)
    image = 232.0 - 190.0 * ink + rng.normal(0, 4.0, ink.shape)
    return (np.clip(np.rint(image), 0, 255).astype(np.uint8),
            {"theta": master.theta[crop].astype(np.float64), "period": master.period[crop].astype(np.float64),
             "mask": mask})
