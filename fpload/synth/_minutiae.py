"""Minutiae of a ridge field: binarise, thin to one-pixel skeletons, read the crossing number.

The classical extractor (Zhang-Suen thinning, then Rutovitz crossing number: 1 = ridge ending,
3 = bifurcation), vectorised over the whole image: each thinning sub-iteration is a handful of
array operations on the eight shifted neighbour planes.

Directions are ``atan2(dy, dx)`` in pixel coordinates (x right, y down), pointing from the
minutia along its ridge (endings) or into the fork between the two branches (bifurcations),
snapped to the orientation field.
"""

from __future__ import annotations

import numpy as np

ENDING = "ending"
BIFURCATION = "bifurcation"


def _neighbours(img: np.ndarray) -> list[np.ndarray]:
    """P2..P9 (clockwise from north) of every pixel of a zero-padded boolean image."""
    p = np.pad(img, 1)
    h, w = img.shape
    offsets = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]
    return [p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in offsets]


def thin(binary: np.ndarray, max_rounds: int = 30) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image to a one-pixel-wide skeleton."""
    img = binary.astype(bool).copy()
    for _ in range(max_rounds):
        changed = False
        for step in (0, 1):
            n = _neighbours(img)
            count = sum(x.astype(np.uint8) for x in n)
            ring = n + n[:1]
            transitions = sum((~a & b).astype(np.uint8) for a, b in zip(ring[:-1], ring[1:]))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if step == 0:
                c1, c2 = ~(p2 & p4 & p6), ~(p4 & p6 & p8)
            else:
                c1, c2 = ~(p2 & p4 & p8), ~(p2 & p6 & p8)
            delete = img & (count >= 2) & (count <= 6) & (transitions == 1) & c1 & c2
            if delete.any():
                img &= ~delete
                changed = True
        if not changed:
            break
    return img


def extract_minutiae(
    ridges: np.ndarray,
    theta: np.ndarray,
    valid: np.ndarray,
    period: float,
) -> list[tuple[float, float, float, str]]:
    """Minutiae ``(x, y, theta, type)`` of a ridge field (ridges > 0) inside the ``valid`` mask.

    Pairs closer than half a ``period`` (thinning spurs and tiny breaks) are dropped; endings
    and bifurcations are told apart by their crossing number on the skeleton.
    """
    skeleton = thin(ridges > 0)
    n = _neighbours(skeleton)
    ring = n + n[:1]
    crossing = sum((a != b).astype(np.uint8) for a, b in zip(ring[:-1], ring[1:])) // 2
    ys, xs = np.nonzero(skeleton & valid & ((crossing == 1) | (crossing == 3)))
    if ys.size == 0:
        return []
    kinds = crossing[ys, xs]
    pts = np.stack([xs, ys], 1).astype(np.float32)
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    keep = d2.min(1) > (0.5 * period) ** 2
    ys, xs, kinds = ys[keep], xs[keep], kinds[keep]
    return [
        (float(x), float(y), _direction(skeleton, theta, int(x), int(y), period), ENDING if k == 1 else BIFURCATION)
        for x, y, k in zip(xs, ys, kinds)
    ]


def _direction(skeleton: np.ndarray, theta: np.ndarray, x: int, y: int, period: float) -> float:
    """Field orientation at (x, y), turned to point toward the centroid of nearby skeleton pixels."""
    r = max(3, int(round(0.7 * period)))
    y0, y1, x0, x1 = max(0, y - r), y + r + 1, max(0, x - r), x + r + 1
    sy, sx = np.nonzero(skeleton[y0:y1, x0:x1])
    t = float(theta[y, x])
    if sy.size:
        vx, vy = float(np.mean(sx + x0 - x)), float(np.mean(sy + y0 - y))
        if vx * np.cos(t) + vy * np.sin(t) < 0:
            t += np.pi
    return float((t + np.pi) % (2 * np.pi) - np.pi)
