"""Skin marks of a finger that every impression shares: creases, scars and sweat pores.

Drawn once per master (from the master's random stream), in master pixels, so they move and
stretch with the skin in every impression:

- **creases and scars**: thin white lines crossing the ridges (creases: straight or slightly
  bent, 0.1-0.3 mm wide, mostly across the finger; scars: rarer, wider, wavier). They remove
  ridge material, so the minutiae ground truth leaves out every minutia within the *occluded
  band* around them (half width: the mark's half width plus one ridge period), and each
  impression records that band in its metadata (``occluded``) instead;
- **pores**: small open dots on the ridge crests, about one per 0.5 mm of ridge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mark:
    """A crease or scar: a polyline ``points`` (master x, y pixels) with its line ``width``."""

    kind: str  # "crease" | "scar"
    points: tuple[tuple[float, float], ...]
    width: float

    def band(self, period: float) -> float:
        """Half width of the occluded band: where no ground-truth minutia is kept."""
        return 0.5 * self.width + period


def draw_marks(
    rng: np.random.Generator,
    fingertip: tuple[float, float, float, float, float],
    mm: float,
) -> list[Mark]:
    """The creases and scars of one finger, inside its fingertip."""
    cx, cy, half_width, top, bottom = fingertip
    marks = []
    for _ in range(int(rng.poisson(2.5))):
        # mostly across the finger, more of them toward the first joint (below the centre)
        angle = rng.normal(0.0, 0.45) if rng.random() < 0.8 else rng.uniform(-np.pi / 2, np.pi / 2)
        length = rng.uniform(2.0, 7.0) * mm
        mx = cx + rng.uniform(-0.7, 0.7) * half_width
        my = cy + rng.uniform(-0.5 * top, 0.9 * bottom)
        bend = rng.normal(0.0, 0.08) * length
        marks.append(Mark("crease", _polyline(mx, my, angle, length, bend, 0.0, rng), rng.uniform(0.1, 0.3) * mm))
    if rng.random() < 0.12:
        angle = rng.uniform(-np.pi / 2, np.pi / 2)
        length = rng.uniform(3.0, 9.0) * mm
        mx = cx + rng.uniform(-0.5, 0.5) * half_width
        my = cy + rng.uniform(-0.5 * top, 0.5 * bottom)
        points = _polyline(mx, my, angle, length, rng.normal(0.0, 0.15) * length, 0.05 * length, rng)
        marks.append(Mark("scar", points, rng.uniform(0.3, 0.7) * mm))
    return marks


def _polyline(
    mx: float, my: float, angle: float, length: float, bend: float, wiggle: float, rng: np.random.Generator
) -> tuple[tuple[float, float], ...]:
    """Seven points along a bent segment centred on (mx, my); ``wiggle`` adds sideways jitter."""
    t = np.linspace(-0.5, 0.5, 7)
    side = bend * (1.0 - 4.0 * t * t) + wiggle * rng.standard_normal(t.size)
    c, s = np.cos(angle), np.sin(angle)
    xs = mx + c * t * length - s * side
    ys = my + s * t * length + c * side
    return tuple((float(x), float(y)) for x, y in zip(xs, ys))


def segment_distance(x: np.ndarray, y: np.ndarray, points: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Distance from every ``(x, y)`` to the polyline ``points``."""
    best = np.full(np.shape(x), np.inf, np.float32)
    for (ax, ay), (bx, by) in zip(points[:-1], points[1:]):
        dx, dy = bx - ax, by - ay
        t = np.clip(((x - ax) * dx + (y - ay) * dy) / max(dx * dx + dy * dy, 1e-6), 0.0, 1.0)
        best = np.minimum(best, np.hypot(x - ax - t * dx, y - ay - t * dy).astype(np.float32))
    return best


def mark_map(shape: tuple[int, int], marks: list[Mark]) -> np.ndarray:
    """How much each master pixel is cut by a mark, in ``[0, 1]`` (1: no ridge left)."""
    out = np.zeros(shape, np.float32)
    for mark in marks:
        pts = np.array(mark.points)
        pad = mark.width + 3.0
        x0, y0 = np.maximum(np.floor(pts.min(0) - pad).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(pts.max(0) + pad).astype(int) + 1, (shape[1], shape[0]))
        if x0 >= x1 or y0 >= y1:
            continue
        y, x = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        d = segment_distance(x, y, mark.points)
        cut = np.clip(0.5 * mark.width + 0.75 - d, 0.0, 1.0)
        out[y0:y1, x0:x1] = np.maximum(out[y0:y1, x0:x1], cut)
    return out


def pore_map(rng: np.random.Generator, ridges: np.ndarray, mm: float) -> np.ndarray:
    """Sweat pores: small round openings on ridge crests, ``[0, 1]`` (1: the pore's centre)."""
    h, w = ridges.shape
    spacing = 0.5 * mm  # about one pore per 0.5 mm of ridge, on a jittered grid
    step = max(2, int(round(spacing * 0.6)))
    gy, gx = np.mgrid[0:h:step, 0:w:step]
    px = np.clip(gx + rng.uniform(0, step, gx.shape), 0, w - 1).astype(np.intp)
    py = np.clip(gy + rng.uniform(0, step, gy.shape), 0, h - 1).astype(np.intp)
    keep = (ridges[py, px] > 0.75) & (rng.random(gx.shape) < 0.45)
    out = np.zeros((h, w), np.float32)
    radius = max(1.0, 0.06 * mm)
    r = int(np.ceil(2 * radius))
    oy, ox = np.mgrid[-r : r + 1, -r : r + 1]
    disc = np.exp(-(ox * ox + oy * oy) / (2 * radius * radius)).astype(np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            yy, xx = py[keep] + dy, px[keep] + dx
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            np.maximum.at(out, (yy[ok], xx[ok]), disc[dy + r, dx + r])
    return out
