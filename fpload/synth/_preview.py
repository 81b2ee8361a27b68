"""Contact sheets: masters beside their impressions, ground truth marked, for people to look at."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fpload.errors import UsageError
from fpload.synth._config import SynthConfig
from fpload.synth._impression import render_impression
from fpload.synth._master import Master, generate_master

ENDING_COLOUR = (220, 30, 30)
BIFURCATION_COLOUR = (20, 110, 230)
CORE_COLOUR = (0, 160, 60)
DELTA_COLOUR = (230, 140, 0)


def _master_pixels(master: Master) -> np.ndarray:
    """The master as a clean, noise-free capture: dark ridges in the fingertip, white around."""
    ink = np.clip(master.ridges / 0.7 + 0.5, 0.0, 1.0) * master.mask
    return np.clip(250.0 - 215.0 * ink, 0, 255).astype(np.uint8)


def _draw_truth(
    pixels: np.ndarray,
    minutiae: tuple[tuple[float, float, float, str], ...] | list,
    points: list[tuple[float, float, str]],
    tile: int,
) -> Image.Image:
    """Scale ``pixels`` to a ``tile`` square and mark minutiae (circle + direction) and SPs."""
    scale = tile / pixels.shape[0]
    image = Image.fromarray(pixels).convert("RGB").resize((tile, tile), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(image)
    r = max(2.0, 0.012 * tile)
    for x, y, angle, kind in minutiae:
        colour = ENDING_COLOUR if kind == "ending" else BIFURCATION_COLOUR
        cx, cy = x * scale, y * scale
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour)
        draw.line([cx, cy, cx + 2.5 * r * np.cos(angle), cy + 2.5 * r * np.sin(angle)], fill=colour)
    for x, y, kind in points:
        cx, cy, q = x * scale, y * scale, 1.6 * r
        if kind == "core":
            draw.rectangle([cx - q, cy - q, cx + q, cy + q], outline=CORE_COLOUR, width=2)
        else:
            draw.polygon([(cx, cy - q), (cx - q, cy + q), (cx + q, cy + q)], outline=DELTA_COLOUR, width=2)
    return image


def write_preview(
    path: str | os.PathLike[str],
    config: SynthConfig | None = None,
    *,
    rows: int = 4,
    tile: int = 192,
) -> Path:
    """Write a contact sheet PNG: one row per finger, its master then its impressions.

    The first ``rows`` fingers of ``config`` (default: 4 subjects, 1 finger, 3 impressions at
    512 x 512) are regenerated (they are deterministic) and drawn ``tile`` pixels square, with
    minutiae (red: ridge endings, blue: bifurcations, a tick for the direction), cores (green
    squares) and deltas (orange triangles). The master tile shows the whole master canvas.
    """
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise UsageError(f"rows: {rows!r} is not an integer >= 1")
    if isinstance(tile, bool) or not isinstance(tile, int) or not 64 <= tile <= 1024:
        raise UsageError(f"tile: {tile!r} is not an integer from 64 to 1024")
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise UsageError(f"preview: {str(target)!r} must be a .png file")
    config = config or SynthConfig(subjects=rows, fingers=1, impressions=3)
    fingers = [(s, f) for s in range(1, config.subjects + 1) for f in config.finger_codes][:rows]
    columns = 1 + config.impressions
    sheet = Image.new("RGB", (columns * tile + (columns + 1) * 4, len(fingers) * tile + (len(fingers) + 1) * 4), "white")
    for row, (subject, finger) in enumerate(fingers):
        master = generate_master(config, subject, finger)
        points = [(p.x, p.y, p.kind) for p in master.singular_points]
        tiles = [_draw_truth(_master_pixels(master), master.minutiae, points, tile)]
        for k in range(config.impressions):
            imp = render_impression(master, k, config)
            tiles.append(_draw_truth(imp.image, imp.minutiae, list(imp.singular_points), tile))
        for col, im in enumerate(tiles):
            sheet.paste(im, (4 + col * (tile + 4), 4 + row * (tile + 4)))
        ImageDraw.Draw(sheet).text((8, 6 + row * (tile + 4)), f"{master.master_id} {master.pattern}", fill=(0, 0, 0))
    target.parent.mkdir(parents=True, exist_ok=True)
    # a 64-colour palette keeps the sheet small enough for a README (grey levels + the markers)
    sheet.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        target, format="PNG", optimize=True
    )
    return target
