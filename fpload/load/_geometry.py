"""Where the loader's augmentation moved each pixel: per-sample warp transforms and minutiae mapping.

Cached features (minutiae among them) are in the frame of the stored, unaugmented image. The
loader's geometric steps are a centred crop/pad to ``image_size`` and the ``fpload_warp``
operator, whose random draws are a pure function of ``(seed, sample index, epoch)``
(:func:`fpload.ops._reference.warp_params`, bit for bit the C++ draws), so the loader recomputes
each sample's transform on the host instead of asking the operator for it. The one input taken
from the pixels, the foreground centroid of ``center_mode: foreground``, comes out of the DALI
graph as exact integer row/column sums.

A transform maps an output (augmented) pixel index ``o = (x, y)`` to the stored image's pixel
index coordinates (pixel ``i`` is centred on ``i``, as the minutiae are)::

    source(o) = M[:, :2] @ o + M[:, 2] + D(o)

``M`` is ``warp_matrix`` (``float32 [B, 2, 3]``) and ``D`` the skin-distortion displacement,
interpolated (Catmull-Rom, as the operator does) from the node grid ``warp_grid``
(``float32 [B, 2, G, G]``, x then y displacements). :func:`map_minutiae` inverts it.

Example::

    loader = Loader(path, features=["minutiae", "minutiae_count", "warp_matrix", "warp_grid"])
    for images, labels, index, f in loader:
        mins, inside = map_minutiae(f["minutiae"], f["warp_matrix"], f["warp_grid"], images.shape[-2:])
        # mins: (x, y, angle, type) in the augmented images; inside: within the image and counted
        inside &= torch.arange(mins.shape[1], device=mins.device) < f["minutiae_count"][:, None]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fpload.errors import UsageError

#: the feature names the loader computes itself (not read from the cache)
TRANSFORM_FEATURES = ("warp_matrix", "warp_grid")


def crop_anchor(stored: int, size: int) -> int:
    """The stored-image coordinate of output row/column 0 after DALI's centred crop/pad
    (``crop_pos`` 0.5: the anchor ``0.5 · (stored − size)`` rounded half away from zero)."""
    d = stored - size
    return (d + 1) // 2 if d >= 0 else -((-d + 1) // 2)


def centroid(cols: np.ndarray, rows: np.ndarray) -> tuple[float, float] | None:
    """The warp's foreground centre from the weight sums per column and per row (int64, exact),
    computed as the operator does; None when there is no foreground weight."""
    total = int(cols.sum())
    if total == 0:
        return None
    cx = np.float32(float(int((cols.astype(np.int64) * np.arange(len(cols))).sum())) / float(total) + 0.5)
    cy = np.float32(float(int((rows.astype(np.int64) * np.arange(len(rows))).sum())) / float(total) + 0.5)
    return float(cx), float(cy)


def warp_transforms(index: np.ndarray, epoch: int, *, seed: int, warp: Any, stored: np.ndarray,
                    in_size: tuple[int, int], centers: list[tuple[float, float] | None] | None) -> tuple[np.ndarray, np.ndarray]:
    """``warp_matrix [B, 2, 3]`` and ``warp_grid [B, 2, G, G]`` of a batch.

    ``index``: global sample indexes; ``stored``: ``[B, 2]`` stored (height, width); ``in_size``:
    the warp's input (the loader's ``image_size``); ``warp``: the :class:`fpload.ops.WarpOps`
    applied, or None for no warp; ``centers``: the foreground centroids (``center_mode:
    foreground``; None entries fall back to the image centre as the operator does).
    """
    from fpload.ops import _reference as ref

    b = len(index)
    h, w = in_size
    grid_n = int(warp.grid) if warp is not None and warp.enabled else 2
    mats = np.zeros((b, 2, 3), np.float64)
    grids = np.zeros((b, 2, grid_n, grid_n), np.float32)
    for k in range(b):
        ay, ax = crop_anchor(int(stored[k][0]), h), crop_anchor(int(stored[k][1]), w)
        if warp is None or not warp.enabled:
            mats[k] = [[1, 0, ax], [0, 1, ay]]
            continue
        oh, ow = warp.size if warp.size is not None else (h, w)
        op = "fpload_warp"
        p = ref.warp_params(seed, int(index[k]), int(epoch), angle=ref._range(op, "angle", warp.angle),
                            scale=ref._range(op, "scale", warp.scale, 0.0, strict=True),
                            translate=(float(np.float32(warp.translate[0])), float(np.float32(warp.translate[1]))),
                            distortion=float(np.float32(warp.distortion)), grid=grid_n)
        c = centers[k] if centers is not None and warp.center_mode == "foreground" else None
        cx, cy = c if c is not None else (float(np.float32(w) * np.float32(0.5)), float(np.float32(h) * np.float32(0.5)))
        a = np.array(p["a"], np.float64).reshape(2, 2)
        # source (pixel centres at i + 0.5) = c + t + A (o + 0.5 - out/2) + D(o); stored index = that - 0.5 + anchor
        off = np.array([cx + float(p["tx"]), cy + float(p["ty"])]) - 0.5 + np.array([ax, ay])
        off -= a @ (np.array([ow, oh], np.float64) * 0.5 - 0.5)
        mats[k, :, :2], mats[k, :, 2] = a, off
        if warp.distortion > 0:
            grids[k, 0], grids[k, 1] = p["gx"], p["gy"]
    return mats.astype(np.float32), grids


def _taps(o: np.ndarray, n: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Catmull-Rom node indexes and weights at output coordinates ``o`` (continuous), as the
    operator's per-pixel taps (csrc/fpload/warp_math.h) at whole pixels."""
    g = (o + 0.5) * ((grid - 1) / n)
    gi = np.clip(np.floor(g), 0, grid - 2).astype(np.int64)
    f = g - gi
    w = np.stack([((-0.5 * f + 1.0) * f - 0.5) * f, ((1.5 * f - 2.5) * f) * f + 1.0,
                  ((-1.5 * f + 2.0) * f + 0.5) * f, ((0.5 * f - 0.5) * f) * f], axis=-1)
    idx = np.stack([np.clip(gi - 1, 0, grid - 1), gi, gi + 1, np.clip(gi + 2, 0, grid - 1)], axis=-1)
    return idx, w


def displacement(grid: np.ndarray, x: np.ndarray, y: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``D(o)`` at output coordinates ``(x, y)``: ``[2, ...]`` x and y displacements in pixels."""
    g = grid.shape[-1]
    iy, wy = _taps(np.asarray(y, np.float64), size[0], g)
    ix, wx = _taps(np.asarray(x, np.float64), size[1], g)
    nodes = grid[:, iy[..., :, None], ix[..., None, :]]  # [2, ..., 4, 4]
    return np.einsum("c...ij,...i,...j->c...", nodes.astype(np.float64), wy, wx)


def source_points(xy: np.ndarray, matrix: np.ndarray, grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Stored-image coordinates ``[K, 2]`` of output points ``xy`` ``[K, 2]`` (one sample)."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    m = np.asarray(matrix, np.float64)
    return xy @ m[:, :2].T + m[:, 2] + displacement(np.asarray(grid), xy[:, 0], xy[:, 1], size).T


def output_points(xy: np.ndarray, matrix: np.ndarray, grid: np.ndarray, size: tuple[int, int],
                  iterations: int = 60, tol: float = 1e-6) -> np.ndarray:
    """Output (augmented) coordinates ``[K, 2]`` of stored-image points ``xy``: the inverse of
    :func:`source_points` by fixed-point iteration (the distortion is smooth and small)."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    m = np.asarray(matrix, np.float64)
    inv = np.linalg.inv(m[:, :2])
    base = xy - m[:, 2]
    o = base @ inv.T
    if np.any(grid):
        for _ in range(iterations):
            d = displacement(np.asarray(grid), o[:, 0], o[:, 1], size).T
            o, last = (base - d) @ inv.T, o
            if np.abs(o - last).max(initial=0) < tol:
                break
    return o


def map_minutiae(minutiae: Any, warp_matrix: Any, warp_grid: Any, size: Any, step: float = 4.0) -> tuple[Any, Any]:
    """Minutiae ``[B, K, 4]`` (x, y, angle, type; the cache's layout, stored-image frame) mapped
    into the augmented images of a batch: ``(mapped [B, K, 4], inside [B, K] bool)``.

    ``warp_matrix``/``warp_grid`` are the batch's features of those names; ``size`` the images'
    ``(height, width)``. Angles turn with the local transform (a point ``step`` pixels along the
    minutia's direction is mapped too); types are kept. ``inside`` is False where the mapped point
    left the image (padding rows map like others: mask them with ``minutiae_count``). Torch
    tensors come back as tensors on their device, NumPy arrays as arrays.
    """
    is_torch = type(minutiae).__module__.startswith("torch")
    device = minutiae.device if is_torch else None
    mins = np.asarray(minutiae.detach().cpu() if is_torch else minutiae, np.float64)
    mats = np.asarray(warp_matrix.detach().cpu() if hasattr(warp_matrix, "detach") else warp_matrix, np.float64)
    grids = np.asarray(warp_grid.detach().cpu() if hasattr(warp_grid, "detach") else warp_grid, np.float32)
    h, w = (int(s) for s in tuple(size)[-2:])
    if mins.ndim != 3 or mins.shape[-1] != 4 or mats.shape != (len(mins), 2, 3) or len(grids) != len(mins):
        raise UsageError(f"map_minutiae: expected minutiae [B, K, 4], warp_matrix [B, 2, 3] and warp_grid "
                         f"[B, 2, G, G] of one batch, got {mins.shape}, {mats.shape}, {grids.shape}")
    out = mins.copy()
    inside = np.zeros(mins.shape[:2], bool)
    for b in range(len(mins)):
        p = output_points(mins[b, :, :2], mats[b], grids[b], (h, w))
        tip = mins[b, :, :2] + step * np.stack([np.cos(mins[b, :, 2]), np.sin(mins[b, :, 2])], -1)
        q = output_points(tip, mats[b], grids[b], (h, w))
        out[b, :, :2] = p
        out[b, :, 2] = np.arctan2(q[:, 1] - p[:, 1], q[:, 0] - p[:, 0])
        inside[b] = (p[:, 0] >= -0.5) & (p[:, 1] >= -0.5) & (p[:, 0] <= w - 0.5) & (p[:, 1] <= h - 0.5)
    if is_torch:
        import torch

        return (torch.from_numpy(out.astype(np.float32)).to(device),
                torch.from_numpy(inside).to(device))
    return out.astype(np.float32), inside
