"""The master fingerprint of one finger: class, singular points, orientation, frequency, ridges.

Every random choice of a finger derives from ``SeedSequence([seed, subject, finger, 0])`` (the
master) and ``SeedSequence([seed, subject, finger, 1, k])`` (its impression ``k``), so a finger
is the same whatever else is generated and however the work is split between processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from math import ceil

import numpy as np

from fpload.errors import UsageError
from fpload.synth._config import SynthConfig
from fpload.synth._fields import coarse_noise, fingertip_mask, smooth_noise
from fpload.synth._minutiae import extract_minutiae
from fpload.synth._orientation import (
    PATTERN_CLASSES,
    SingularPoint,
    draw_pattern_class,
    orientation_field,
    place_singular_points,
)
from fpload.synth._ridges import grow_ridges
from fpload.synth._skin import Mark, draw_marks, mark_map, pore_map, segment_distance

Minutia = tuple[float, float, float, str]  # x, y, theta (rad), "ending" | "bifurcation"

# fingertip semi-axes: a tall oval (population ranges of adult fingertips at the first joint)
FINGERTIP_MM = {"half_width": (6.0, 8.0), "top": (9.5, 12.0), "bottom": (10.0, 13.0)}
RIDGE_JITTER = 0.12  # small-scale orientation irregularity (radians): real ridges wander
PERIOD_JITTER = 0.06  # small-scale relative ridge-period irregularity
EDGE_ROUGHNESS = 0.3  # wobble of the ridge edges (threshold units of the ridge field)
SKIN_TEXTURE = 0.75  # depth of the fine grey grain inside the ridges (share of the ink)
PORE_DEPTH = 0.8  # share of the ink a pore's centre removes
GROWTH_BIAS = 1.08  # grown ridges settle this much coarser than the filters' tuning: tune finer
MAX_SHIFT_MM = 3.0  # largest displacement of an impression (rigid + distortion), for the canvas


@dataclass(frozen=True, eq=False)
class Master:
    """A master fingerprint with its ground truth, on a square canvas of ``canvas`` pixels.

    ``ridges`` is in ``[-1, 1]`` (ridges positive), ``theta`` the model orientation (radians,
    ``atan2(dy, dx)`` with y down, modulo pi), ``period`` the ridge period map in pixels,
    ``mask`` the fingertip foreground in ``[0, 1]``, ``cuts`` how much creases and scars
    (``marks``) cut the ridges and ``pores`` the sweat pores, both in ``[0, 1]``; ``roughness``
    is the unit-variance wobble of the ridge edges (the ridge units of this skin) and ``texture``
    the finer grain of the contact inside the ridges.
    """

    subject: int
    finger: int
    subject_name: str
    pattern: str
    ppi: int
    ridges: np.ndarray
    theta: np.ndarray
    period: np.ndarray
    mask: np.ndarray
    fingertip: tuple[float, float, float, float, float]  # centre x, y; half width, top, bottom
    singular_points: tuple[SingularPoint, ...]
    minutiae: tuple[Minutia, ...]
    marks: tuple[Mark, ...] = ()
    cuts: np.ndarray | None = None
    pores: np.ndarray | None = None
    roughness: np.ndarray | None = None
    texture: np.ndarray | None = None

    @cached_property
    def relief(self) -> np.ndarray:
        """``ridges`` with this skin's ragged edges (what an impression thresholds)."""
        return (self.ridges + EDGE_ROUGHNESS * self.roughness).astype(np.float32)

    @cached_property
    def open_mask(self) -> np.ndarray:
        """``mask`` with the creases and scars cut out (no ridge touches the platen there)."""
        return (self.mask * (1.0 - self.cuts)).astype(np.float32)

    @cached_property
    def grain(self) -> np.ndarray:
        """Share of the ink that pores and the fine grain of the skin take away, ``[0, 1]``."""
        texture = SKIN_TEXTURE * np.clip(0.5 + 0.5 * self.texture, 0.0, 1.0)
        return (1.0 - (1.0 - PORE_DEPTH * self.pores) * (1.0 - texture)).astype(np.float32)

    @property
    def canvas(self) -> int:
        """Side of the square master canvas in pixels."""
        return int(self.ridges.shape[0])

    @property
    def master_id(self) -> str:
        """A stable name of this finger: ``syn-s0-000012-f02``."""
        return f"{self.subject_name}-f{self.finger:02d}"


def finger_rng(seed: int, subject: int, finger: int, *stream: int) -> np.random.Generator:
    """The generator of one finger's master (``stream`` ``(0,)``) or impression (``(1, k)``)."""
    return np.random.default_rng(np.random.SeedSequence([seed, subject, finger, *stream]))


def master_canvas(size: int, ppi: int) -> int:
    """Master canvas side: the image plus room for displacement, capped at the largest finger."""
    mm = ppi / 25.4
    finger = 2.0 * max(hi for _, hi in FINGERTIP_MM.values()) * mm * 1.05
    margin = MAX_SHIFT_MM * mm
    side = max(size, min(size + 2.0 * margin, finger))
    return int(ceil(side / 16.0) * 16)


def _span(used: np.ndarray, margin: float, multiple: int, limit: int) -> tuple[int, int]:
    """``[start, stop)`` covering the true entries of ``used`` plus ``margin``, its length rounded
    up to a ``multiple`` (fast FFT sizes) and kept within ``[0, limit)``."""
    idx = np.nonzero(used)[0]
    if idx.size == 0:
        return 0, limit
    start = max(0, int(idx[0] - margin))
    length = min(limit, int(ceil((idx[-1] + 1 + margin - start) / multiple) * multiple))
    start = min(start, limit - length)
    return start, start + length


def generate_master(config: SynthConfig, subject: int, finger: int, *, pattern: str | None = None) -> Master:
    """The master of ``finger`` (position code) of ``subject`` under ``config``.

    ``pattern`` forces a class (one of :data:`PATTERN_CLASSES`) instead of drawing it; the
    rest of the finger is drawn as usual.
    """
    if pattern is not None and pattern not in PATTERN_CLASSES:
        raise UsageError(f"pattern: unknown pattern class {pattern!r}; allowed: {', '.join(PATTERN_CLASSES)}")
    rng = finger_rng(config.seed, subject, finger, 0)
    mm = config.ppi / 25.4
    side = master_canvas(config.size, config.ppi)
    shape = (side, side)
    drawn = draw_pattern_class(rng)
    pattern = pattern or drawn
    center = (side / 2 + rng.normal(0.0, 0.3) * mm, side / 2 + rng.normal(0.5, 0.3) * mm)
    dims = {k: rng.uniform(lo, hi) * mm for k, (lo, hi) in FINGERTIP_MM.items()}
    points = place_singular_points(rng, pattern, center, mm)
    theta = orientation_field(rng, shape, pattern, points, center, mm)
    lo, hi = config.period_range_px()
    span = hi - lo
    base = rng.uniform(lo + 0.3 * span, hi - 0.3 * span)
    period = np.clip(base + 0.25 * span * coarse_noise(rng, shape, 5.0 * mm), lo, hi).astype(np.float32)
    # ridge-level irregularity: the growth follows a field that wanders at the scale of a few ridges
    wander = theta + RIDGE_JITTER * coarse_noise(rng, shape, 0.8 * mm)
    uneven = period * (1.0 + PERIOD_JITTER * coarse_noise(rng, shape, 1.2 * mm))
    mask = fingertip_mask(shape, center, dims["half_width"], dims["top"], dims["bottom"])
    # grow only over the fingertip's bounding box (plus two periods): nothing else is ever seen
    (y0, y1), (x0, x1) = (_span(mask.any(axis), 2 * hi, 16, side) for axis in (1, 0))
    ridges = np.full(shape, -1.0, np.float32)
    box = (slice(y0, y1), slice(x0, x1))
    ridges[box] = grow_ridges(rng, wander[box], (uneven[box] / GROWTH_BIAS).astype(np.float32))
    inset = float(hi)
    inner = fingertip_mask(
        shape, center, dims["half_width"] - inset, dims["top"] - inset, dims["bottom"] - inset
    )
    tip = (float(center[0]), float(center[1]), dims["half_width"], dims["top"], dims["bottom"])
    marks = draw_marks(rng, tip, mm)
    minutiae = extract_minutiae(ridges, wander, inner > 0.5, float(period.mean()))
    if marks:  # a crease or scar removes ridges: no ground truth inside its occluded band
        mx = np.array([m[0] for m in minutiae], np.float32)
        my = np.array([m[1] for m in minutiae], np.float32)
        free = np.ones(mx.shape, bool)
        for mark in marks:
            free &= segment_distance(mx, my, mark.points) > mark.band(float(hi))
        minutiae = [m for m, ok in zip(minutiae, free) if ok]
    return Master(
        subject=subject,
        finger=finger,
        subject_name=config.subject_id(subject),
        pattern=pattern,
        ppi=config.ppi,
        ridges=ridges,
        theta=wander,
        period=period,
        mask=mask,
        fingertip=tip,
        singular_points=tuple(points),
        minutiae=tuple(minutiae),
        marks=tuple(marks),
        cuts=mark_map(shape, marks),
        pores=pore_map(rng, ridges, mm),
        roughness=smooth_noise(rng, shape, 0.1 * mm),
        texture=smooth_noise(rng, shape, 0.04 * mm),
    )
