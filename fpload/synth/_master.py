"""The master fingerprint of one finger: class, singular points, orientation, frequency, ridges.

Every random choice of a finger derives from ``SeedSequence([seed, subject, finger, 0])`` (the
master) and ``SeedSequence([seed, subject, finger, 1, k])`` (its impression ``k``), so a finger
is the same whatever else is generated and however the work is split between processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from fpload.errors import UsageError
from fpload.synth._config import SynthConfig
from fpload.synth._fields import fingertip_mask, smooth_noise
from fpload.synth._minutiae import extract_minutiae
from fpload.synth._orientation import (
    PATTERN_CLASSES,
    SingularPoint,
    draw_pattern_class,
    orientation_field,
    place_singular_points,
)
from fpload.synth._ridges import grow_ridges

Minutia = tuple[float, float, float, str]  # x, y, theta (rad), "ending" | "bifurcation"

FINGERTIP_MM = {"half_width": (7.5, 9.5), "top": (9.0, 11.0), "bottom": (8.0, 10.0)}
MAX_SHIFT_MM = 3.0  # largest displacement of an impression (rigid + distortion), for the canvas


@dataclass(frozen=True, eq=False)
class Master:
    """A master fingerprint with its ground truth, on a square canvas of ``canvas`` pixels.

    ``ridges`` is in ``[-1, 1]`` (ridges positive), ``theta`` the model orientation (radians,
    ``atan2(dy, dx)`` with y down, modulo pi), ``period`` the ridge period map in pixels,
    ``mask`` the fingertip foreground in ``[0, 1]``.
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
    period = np.clip(base + 0.25 * span * smooth_noise(rng, shape, 5.0 * mm), lo, hi).astype(np.float32)
    ridges = grow_ridges(rng, theta, period)
    mask = fingertip_mask(shape, center, dims["half_width"], dims["top"], dims["bottom"])
    inset = float(hi)
    inner = fingertip_mask(
        shape, center, dims["half_width"] - inset, dims["top"] - inset, dims["bottom"] - inset
    )
    minutiae = extract_minutiae(ridges, theta, inner > 0.5, float(period.mean()))
    return Master(
        subject=subject,
        finger=finger,
        subject_name=config.subject_id(subject),
        pattern=pattern,
        ppi=config.ppi,
        ridges=ridges,
        theta=theta,
        period=period,
        mask=mask,
        fingertip=(float(center[0]), float(center[1]), dims["half_width"], dims["top"], dims["bottom"]),
        singular_points=tuple(points),
        minutiae=tuple(minutiae),
    )
