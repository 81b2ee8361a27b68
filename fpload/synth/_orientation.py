"""Pattern classes, singular points and the orientation field of a master fingerprint.

Orientation follows the zero-pole model (Sherlock & Monro): each core turns the ridge flow by
+pi around it, each delta by -pi,

    theta(z) = theta0 + 1/2 * sum_cores arg(z - c) - 1/2 * sum_deltas arg(z - d),

plus a small smooth random perturbation. Arches have no singular points and use an explicit
"hill" flow instead. Angles are radians in pixel coordinates (x right, y down), i.e.
``atan2(dy, dx)`` of the ridge direction, defined modulo pi.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpload.synth._fields import pixel_grid, smooth_noise

#: The five Henry classes with their approximate population frequencies (NIST / FBI statistics).
PATTERN_CLASSES: dict[str, float] = {
    "left_loop": 0.338,
    "right_loop": 0.317,
    "whorl": 0.279,
    "arch": 0.037,
    "tented_arch": 0.029,
}


@dataclass(frozen=True)
class SingularPoint:
    """A core or delta of the master, in master pixel coordinates."""

    x: float
    y: float
    kind: str  # "core" | "delta"


def draw_pattern_class(rng: np.random.Generator) -> str:
    """One pattern class drawn with :data:`PATTERN_CLASSES` frequencies."""
    names = list(PATTERN_CLASSES)
    weights = np.array([PATTERN_CLASSES[n] for n in names])
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def place_singular_points(
    rng: np.random.Generator, pattern: str, center: tuple[float, float], px_per_mm: float
) -> list[SingularPoint]:
    """Cores and deltas for ``pattern`` around the fingertip ``center``, jittered per finger.

    Distances are in millimetres on the finger (converted with ``px_per_mm``), after the
    typical geometry of each class: a loop's delta sits 3-6.5 mm below and 3-7.5 mm to the side
    of its core (to the right for a left loop, as seen in the image); a whorl has two cores
    1-3 mm apart and a delta on each side; a tented arch has its delta 2-3.5 mm under the core.
    """
    cx, cy = center
    mm = px_per_mm
    core_x = cx + rng.normal(0.0, 0.8) * mm
    core_y = cy + rng.normal(-1.0, 1.0) * mm
    if pattern in ("left_loop", "right_loop"):
        side = 1.0 if pattern == "left_loop" else -1.0
        dx = side * rng.uniform(3.0, 7.5) * mm
        dy = rng.uniform(3.0, 6.5) * mm
        return [
            SingularPoint(core_x, core_y, "core"),
            SingularPoint(core_x + dx, core_y + dy, "delta"),
        ]
    if pattern == "whorl":
        sep = rng.uniform(1.0, 3.0) * mm
        tilt = rng.uniform(-0.6, 0.6) + np.pi / 2  # mostly vertical pair: spirals and double loops
        ox, oy = 0.5 * sep * np.cos(tilt), 0.5 * sep * np.sin(tilt)
        dy = rng.uniform(4.5, 6.5) * mm
        return [
            SingularPoint(core_x - ox, core_y - oy, "core"),
            SingularPoint(core_x + ox, core_y + oy, "core"),
            SingularPoint(core_x - rng.uniform(5.0, 7.0) * mm, core_y + dy, "delta"),
            SingularPoint(core_x + rng.uniform(5.0, 7.0) * mm, core_y + dy + rng.normal(0, 0.7) * mm, "delta"),
        ]
    if pattern == "tented_arch":
        return [
            SingularPoint(core_x, core_y, "core"),
            SingularPoint(core_x + rng.normal(0.0, 0.3) * mm, core_y + rng.uniform(2.0, 3.5) * mm, "delta"),
        ]
    return []


def orientation_field(
    rng: np.random.Generator,
    shape: tuple[int, int],
    pattern: str,
    points: list[SingularPoint],
    center: tuple[float, float],
    px_per_mm: float,
    perturbation: float = 0.15,
) -> np.ndarray:
    """The ridge orientation (radians, modulo pi) at every pixel of a ``shape`` image."""
    x, y = pixel_grid(shape)
    if pattern == "arch":
        theta = _arch_flow(rng, x, y, center, px_per_mm)
    else:
        theta = np.zeros(shape, np.float32)
        for p in points:
            sign = 0.5 if p.kind == "core" else -0.5
            theta += sign * _corrected_angle(rng, np.arctan2(y - p.y, x - p.x))
    scale = 4.0 * px_per_mm
    theta += perturbation * smooth_noise(rng, shape, scale)
    return theta.astype(np.float32)


def _corrected_angle(rng: np.random.Generator, angle: np.ndarray, knots: int = 8) -> np.ndarray:
    """Vizcaya-Gerhardt correction: ``angle`` remapped by a random monotone piecewise-linear map.

    The map moves ``knots`` equally spaced angles by at most 0.35 rad (less than half their
    spacing, so it stays monotone) and keeps the full turn, so the singular point keeps its
    index while the flow around it takes an individual shape.
    """
    at = np.linspace(-np.pi, np.pi, knots + 1)
    shift = np.clip(rng.normal(0.0, 0.25, knots), -0.35, 0.35)
    shift = np.append(shift, shift[0])
    return (angle + np.interp(angle, at, shift)).astype(np.float32)


def _arch_flow(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, center: tuple[float, float], mm: float
) -> np.ndarray:
    """Ridges crossing the finger in hills: y = c - h(c) * exp(-u^2 / 2w^2), steeper mid-finger."""
    cx, cy = center[0] + rng.normal(0.0, 1.0) * mm, center[1] + rng.normal(0.0, 1.0) * mm
    width = rng.uniform(3.5, 5.0) * mm
    u = (x - cx) / width
    height = rng.uniform(0.9, 1.4) * np.exp(-(((y - cy) / (6.0 * mm)) ** 2))
    slope = height * u * np.exp(-0.5 * u * u)  # derivative of -h * exp(-u^2/2) in units of w
    return np.arctan(slope).astype(np.float32)


def poincare_indices(theta: np.ndarray, step: int = 4, radius: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Poincaré index of ``theta`` around a square of ``2*radius`` blocks at each block centre.

    ``theta`` is sampled every ``step`` pixels; returns ``(index, (ys, xs))`` where ``index`` is
    in half-turns (+1: core, -1: delta, 0: regular) on the sampled grid.
    """
    sub = theta[::step, ::step]
    h, w = sub.shape
    r = radius
    # the closed square path, counter-clockwise in array order
    path = (
        [(-r, c) for c in range(-r, r)]
        + [(rr, r) for rr in range(-r, r)]
        + [(r, c) for c in range(r, -r, -1)]
        + [(rr, -r) for rr in range(r, -r, -1)]
    )
    total = np.zeros((h - 2 * r, w - 2 * r), np.float32)
    for (ay, ax), (by, bx) in zip(path, path[1:] + path[:1]):
        a = sub[r + ay : h - r + ay, r + ax : w - r + ax]
        b = sub[r + by : h - r + by, r + bx : w - r + bx]
        d = b - a
        d = (d + np.pi / 2) % np.pi - np.pi / 2
        total += d
    index = np.rint(total / np.pi).astype(np.int8)
    ys = (np.arange(h - 2 * r) + r) * step
    xs = (np.arange(w - 2 * r) + r) * step
    return index, (ys, xs)
