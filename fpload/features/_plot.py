"""``fpload features show --plot``: the quality histogram and orientation fields over thumbnails."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fpload.errors import UsageError
from fpload.features._cache import FeatureCache


def _picks(quality: np.ndarray | None, n: int, count: int) -> list[int]:
    """Samples to draw: spread over the quality range (lowest to highest), else evenly by index."""
    count = min(count, n)
    if quality is None:
        return [int(i) for i in np.linspace(0, n - 1, count).round()]
    order = np.argsort(quality, kind="stable")
    return [int(order[int(i)]) for i in np.linspace(0, n - 1, count).round()]


def plot_features(cache: FeatureCache, out: str | Path, *, samples: int = 6) -> Path:
    """Write a PNG: the quality histogram, then ``samples`` thumbnails with their orientation
    fields (foreground blocks only), picked across the quality range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"--plot: {str(out)!r} must name a .png file")
    names = set(cache.names)
    quality = cache.load("quality") if "quality" in names else None
    picks = _picks(quality, cache.samples, samples)
    cols = len(picks)
    fig = plt.figure(figsize=(max(9.0, 2.4 * cols), 6.6), dpi=110)
    grid = fig.add_gridspec(2, cols, height_ratios=[1.0, 1.45], hspace=0.38, wspace=0.08)
    v = cache.version
    fig.suptitle(f"feature cache of {v.name}/{v.id} — {cache.samples} samples", fontsize=12)

    ax = fig.add_subplot(grid[0, :])
    if quality is not None:
        spec = cache.spec("quality")
        ax.hist(quality, bins=np.linspace(0, 100, 41), color="#4878a8", edgecolor="white")
        ax.axvline(float(np.median(quality)), color="#c03030", lw=1.2,
                   label=f"median {np.median(quality):.1f}")
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"quality (extractor {spec.extractor} v{spec.version}; NFIQ-inspired proxy, not NFIQ 2)")
        ax.set_ylabel("samples")
        ax.legend(loc="upper left", frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "no quality feature in this cache", ha="center", va="center")

    rows = v.samples.select(["sample_id", "height", "width"]).to_pylist()
    thumbs = cache.gather("thumbnail", np.asarray(picks)) if "thumbnail" in names else None
    orient = cache.gather("orientation", np.asarray(picks)).astype(np.float32) if "orientation" in names else None
    fg = cache.gather("foreground", np.asarray(picks)) if "foreground" in names else None
    size = thumbs.shape[-1] if thumbs is not None else 64
    for k, i in enumerate(picks):
        a = fig.add_subplot(grid[1, k])
        h, w = rows[i]["height"], rows[i]["width"]
        scale = size / max(h, w)
        if thumbs is not None:
            a.imshow(thumbs[k], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            a.imshow(np.full((size, size), 255, np.uint8), cmap="gray", vmin=0, vmax=255)
        if orient is not None:
            cos2, sin2 = orient[k][0], orient[k][1]
            theta = 0.5 * np.arctan2(sin2, cos2)
            shown = np.hypot(cos2, sin2) > 0
            if fg is not None:
                shown &= fg[k]
            # at most ~14 lines per side, so the field stays readable over a small thumbnail
            step = max(1, -(-max(shown.shape) // 14))
            sub = np.zeros_like(shown)
            sub[step // 2::step, step // 2::step] = True
            by, bx = np.nonzero(shown & sub)
            cy = (by + 0.5) * cache.block * scale - 0.5
            cx = (bx + 0.5) * cache.block * scale - 0.5
            half = 0.42 * step * cache.block * scale
            dx, dy = half * np.cos(theta[by, bx]), half * np.sin(theta[by, bx])
            segs = np.stack([np.stack([cx - dx, cy - dy], 1), np.stack([cx + dx, cy + dy], 1)], 1)
            a.add_collection(LineCollection(segs, colors="#e8321e", linewidths=1.6))
        a.set_xlim(-0.5, size - 0.5)
        a.set_ylim(size - 0.5, -0.5)
        a.set_xticks([])
        a.set_yticks([])
        q = f"q {quality[i]:.1f}" if quality is not None else f"#{i}"
        a.set_title(f"{q}\n{rows[i]['sample_id'][:10]}", fontsize=9)
    fig.text(0.5, 0.06, "red: ridge orientation per foreground block, over the thumbnail "
             "(samples from lowest to highest quality)", ha="center", fontsize=9, color="#444444")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return out
