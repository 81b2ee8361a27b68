"""The realism report: the statistics a fingerprint researcher looks at, synthetic beside real.

Each statistic is measured per image with plain numpy/scipy code that knows nothing of the
generator (so the generator cannot be tuned to its own yardstick), then summarised per set as
mean ± standard deviation (or a share, for yes/no statistics):

- ``ridge_period_px``: median over 48 px foreground windows of the peak of their 2-D spectrum;
- ``coherence``: orientation coherence of the structure tensor in 16 x 16 pixel blocks (no
  smoothing across blocks), mean over the foreground blocks;
- ``height_width``: height / width of the bounding box of the foreground (the visible print);
- ``saturated``: share of pixels at <= 5 or >= 250;
- ``background_mean`` / ``background_noise``: mean and detrended standard deviation of the
  pixels well outside the print (none when the print fills the frame);
- ``cut_by_frame``: share of images whose print touches the frame along at least two blocks.

Other modules add rows by appending a provider to :data:`ROW_PROVIDERS` (a callable taking an
:class:`ImageSet` and returning :class:`Measurement` objects), e.g. a minutiae detector that
compares its findings with the synthetic ground truth in ``ImageSet.metadata``.

Example::

    from fpload.synth._realism import load_folder, load_synthetic, realism_report

    report = realism_report([load_synthetic("data"), load_folder("fvc2002/db1")], out="report")
    print(report.markdown)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from fpload.errors import UsageError

BLOCK = 16
IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".jp2", ".pgm")  # what Pillow reads
DEFAULT_LIMIT = 200

#: The ranges measured on real captures (issue 16: FVC-style 500 ppi optical and two other
#: real sources); ``None`` where a bound is open. The tests keep the default synthetic set
#: (optical) inside them.
REAL_RANGES: dict[str, tuple[float | None, float | None]] = {
    "ridge_period_px": (8.6, 10.9),
    "coherence": (0.62, 0.74),
    "height_width": (1.3, 1.9),
    "saturated": (0.50, 0.85),  # real: 62 %
    "background_mean": (250.0, None),  # real: 254
    "background_noise": (None, 0.2),
    "cut_by_frame": (0.5, None),  # real: most captures
}
REAL_TEXT: dict[str, str] = {
    "ridge_period_px": "8.6–10.9",
    "coherence": "0.62–0.74",
    "height_width": "1.3–1.9 (tall ovals)",
    "saturated": "62%",
    "background_mean": "254",
    "background_noise": "< 0.2",
    "cut_by_frame": "most captures",
}
LABELS: dict[str, str] = {
    "ridge_period_px": "ridge period, px",
    "coherence": "orientation coherence (16 px blocks, foreground mean)",
    "height_width": "print height / width",
    "saturated": "pixels at <= 5 or >= 250",
    "background_mean": "background mean",
    "background_noise": "background noise sigma",
    "cut_by_frame": "print cut by the sensor frame",
}
SHARES = ("saturated", "cut_by_frame")


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Grayscale images to measure, with a label; ``metadata`` holds synthetic ground truth rows
    (one per image, as in ``metadata.jsonl``) or is ``None`` for real images."""

    label: str
    images: list[np.ndarray]
    metadata: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Measurement:
    """One statistic of one set: per-image ``values`` (NaN where it does not apply)."""

    name: str
    values: tuple[float, ...]
    label: str = ""
    share: bool = False  # summarise as a percentage (values are 0..1)

    def summary(self) -> tuple[float, float, int]:
        """``(mean, sd, n)`` over the values that apply."""
        v = np.array([x for x in self.values if not math.isnan(x)], np.float64)
        if v.size == 0:
            return math.nan, math.nan, 0
        return float(v.mean()), float(v.std()), int(v.size)

    def text(self) -> str:
        """``"10.2 ± 1.6"``, ``"62%"`` or ``"n/a"``."""
        mean, sd, n = self.summary()
        if n == 0:
            return "n/a"
        if self.share:
            return f"{100 * mean:.0f}%"
        digits = 2 if abs(mean) < 10 else 1
        return f"{mean:.{digits}f} ± {sd:.{digits}f}"


RowProvider = Callable[[ImageSet], Sequence[Measurement]]


def foreground(image: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Block mask of the print: blocks with ridge contrast, closed, holes filled, largest part."""
    img = np.asarray(image, np.float32)
    h, w = (img.shape[0] // block) * block, (img.shape[1] // block) * block
    blocks = img[:h, :w].reshape(h // block, block, w // block, block)
    std = blocks.std((1, 3))
    mask = std > max(6.0, 0.3 * float(np.percentile(std, 95)))
    mask = ndimage.binary_closing(mask, np.ones((3, 3), bool), border_value=0) | mask
    mask = ndimage.binary_fill_holes(mask)
    labels, count = ndimage.label(mask)
    if count > 1:
        sizes = ndimage.sum(mask, labels, range(1, count + 1))
        mask = labels == (1 + int(np.argmax(sizes)))
    mask = ndimage.binary_opening(mask, np.ones((2, 2), bool)) if mask.sum() > 8 else mask
    return mask


def block_coherence(image: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Structure-tensor coherence per ``block`` x ``block`` block (Sobel gradients, no smoothing)."""
    img = np.asarray(image, np.float32)
    h, w = (img.shape[0] // block) * block, (img.shape[1] // block) * block
    gx = ndimage.sobel(img, 1)[:h, :w]
    gy = ndimage.sobel(img, 0)[:h, :w]
    shape = (h // block, block, w // block, block)
    gxx = (gx * gx).reshape(shape).sum((1, 3))
    gyy = (gy * gy).reshape(shape).sum((1, 3))
    gxy = (gx * gy).reshape(shape).sum((1, 3))
    return np.sqrt((gxx - gyy) ** 2 + 4.0 * gxy**2) / (gxx + gyy + 1e-6)


def ridge_period_px(image: np.ndarray, mask: np.ndarray, block: int = BLOCK) -> float:
    """Median over foreground windows (48 px, Hann) of the peak of each window's 2-D spectrum."""
    img = np.asarray(image, np.float32)
    size, step, pad = 3 * block, 2 * block, 256
    starts_y = range(0, img.shape[0] - size + 1, step)
    starts_x = range(0, img.shape[1] - size + 1, step)
    windows = []
    for y in starts_y:
        for x in starts_x:
            if mask[y // block : (y + size) // block, x // block : (x + size) // block].all():
                windows.append(img[y : y + size, x : x + size])
    if not windows:
        return math.nan
    stack = np.stack(windows)
    stack = stack - stack.mean((1, 2), keepdims=True)
    hann = np.hanning(size).astype(np.float32)
    power = np.abs(np.fft.rfft2(stack * np.outer(hann, hann), s=(pad, pad))) ** 2
    fy = np.fft.fftfreq(pad)[:, None]
    fx = np.fft.rfftfreq(pad)[None, :]
    rho = np.sqrt(fx * fx + fy * fy)
    power[:, (rho < 1 / 25.0) | (rho > 1 / 4.0)] = 0.0  # periods from 25 down to 4 pixels
    peak = power.reshape(len(windows), -1).argmax(1)
    return float(np.median(1.0 / rho.ravel()[peak]))


def measure_image(image: np.ndarray) -> dict[str, float]:
    """Every built-in statistic of one grayscale image (NaN where one does not apply)."""
    img = np.asarray(image)
    if img.ndim != 2:
        raise UsageError(f"image: expected a 2-D grayscale array, got shape {img.shape}")
    img = img.astype(np.float32)
    mask = foreground(img)
    out = {name: math.nan for name in LABELS}
    out["saturated"] = float(np.mean((img <= 5) | (img >= 250)))
    if mask.any():
        coherence = block_coherence(img)[: mask.shape[0], : mask.shape[1]]
        out["coherence"] = float(coherence[mask].mean())
        rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        out["height_width"] = float((rows[-1] - rows[0] + 1) / (cols[-1] - cols[0] + 1))
        edge = int(mask[0].sum() + mask[-1].sum() + mask[:, 0].sum() + mask[:, -1].sum())
        out["cut_by_frame"] = float(edge >= 2)
        out["ridge_period_px"] = ridge_period_px(img, mask)
    far = ~ndimage.binary_dilation(mask, np.ones((5, 5), bool))
    full = np.kron(far, np.ones((BLOCK, BLOCK), bool))
    full = np.pad(full, ((0, img.shape[0] - full.shape[0]), (0, img.shape[1] - full.shape[1])))
    if full.sum() >= BLOCK * BLOCK:
        out["background_mean"] = float(img[full].mean())
        out["background_noise"] = float((img - ndimage.uniform_filter(img, 7))[full].std())
    return out


def builtin_rows(images: ImageSet) -> list[Measurement]:
    """The built-in statistics of a set (the default entry of :data:`ROW_PROVIDERS`)."""
    per_image = [measure_image(im) for im in images.images]
    return [
        Measurement(name, tuple(m[name] for m in per_image), LABELS[name], name in SHARES) for name in LABELS
    ]


#: Callables adding rows to the report; append yours (it receives each :class:`ImageSet`).
ROW_PROVIDERS: list[RowProvider] = [builtin_rows]


@dataclass(frozen=True, eq=False)
class RealismReport:
    """Measurements per set label, in provider order, and where the report files went."""

    sets: list[str]
    rows: dict[str, dict[str, Measurement]]  # statistic -> set label -> measurement
    files: dict[str, Path] = field(default_factory=dict)

    def value(self, statistic: str, label: str) -> float:
        """Mean of ``statistic`` over the set ``label``."""
        return self.rows[statistic][label].summary()[0]

    @property
    def markdown(self) -> str:
        """The side-by-side table, with the real range of issue 16 as the first value column."""
        head = "| statistic | real captures (issue 16) | " + " | ".join(self.sets) + " |"
        lines = [head, "| --- | --- | " + " | ".join("---" for _ in self.sets) + " |"]
        for name, per_set in self.rows.items():
            first = next(iter(per_set.values()))
            label = first.label or name
            cells = [per_set[s].text() if s in per_set else "" for s in self.sets]
            lines.append(f"| {label} | {REAL_TEXT.get(name, '')} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: per statistic and set, mean / sd / n; the file paths."""
        def plain(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 4)

        stats = {
            name: {s: {"mean": plain(m.summary()[0]), "sd": plain(m.summary()[1]), "n": m.summary()[2]}
                   for s, m in per_set.items()}
            for name, per_set in self.rows.items()
        }
        return {"sets": self.sets, "statistics": stats, "files": {k: str(v) for k, v in self.files.items()}}


def load_folder(path: str | os.PathLike[str], *, label: str | None = None, limit: int = DEFAULT_LIMIT) -> ImageSet:
    """The first ``limit`` images (sorted by path) of a folder tree, as 8-bit grayscale."""
    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"compare: {str(root)!r} is not a folder of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())[:limit]
    if not files:
        raise UsageError(f"compare: no images ({', '.join(IMAGE_SUFFIXES)}) under {str(root)!r}")
    images = []
    for p in files:
        try:
            with Image.open(p) as im:
                images.append(np.asarray(im.convert("L")))
        except OSError as err:
            raise UsageError(f"compare: cannot read image {str(p)!r}: {err}") from err
    return ImageSet(label or root.name or str(root), images)


def load_synthetic(path: str | os.PathLike[str], *, label: str = "fpload synth", limit: int = DEFAULT_LIMIT) -> ImageSet:
    """The images of a ``fpload synth`` output folder (``metadata.jsonl`` order), with their rows."""
    root = Path(path)
    meta = root / "metadata.jsonl"
    if not meta.is_file():
        raise UsageError(f"report: {str(root)!r} holds no metadata.jsonl (not a fpload synth output)")
    rows = [json.loads(line) for line in meta.read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
    images = []
    for row in rows:
        with Image.open(root / row["file"]) as im:
            images.append(np.asarray(im.convert("L")))
    return ImageSet(label, images, rows)


def realism_report(
    sets: Sequence[ImageSet],
    out: str | os.PathLike[str] | None = None,
    *,
    samples: int = 4,
    providers: Sequence[RowProvider] | None = None,
) -> RealismReport:
    """Measure every set with every provider; with ``out``, write ``realism.md``,
    ``realism.json`` and ``samples.png`` (``samples`` images of each set, one row per set, at
    their native pixel scale) there.
    """
    if not sets:
        raise UsageError("report: no image sets to measure")
    labels = [s.label for s in sets]
    if len(set(labels)) != len(labels):
        raise UsageError(f"report: set labels must differ, got {labels}")
    rows: dict[str, dict[str, Measurement]] = {}
    for provider in providers if providers is not None else ROW_PROVIDERS:
        for image_set in sets:
            for m in provider(image_set):
                rows.setdefault(m.name, {})[image_set.label] = m
    report = RealismReport(labels, rows)
    if out is not None:
        root = Path(out)
        if root.exists() and not root.is_dir():
            raise UsageError(f"report: {str(root)!r} exists and is not a folder")
        root.mkdir(parents=True, exist_ok=True)
        report.files["markdown"] = _write(root / "realism.md", report.markdown)
        report.files["json"] = _write(root / "realism.json", json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
        report.files["samples"] = write_samples(root / "samples.png", sets, samples)
    return report


def write_samples(path: Path, sets: Sequence[ImageSet], count: int = 4, tile: int = 384) -> Path:
    """A sheet with ``count`` images of each set in a row, unscaled (cropped or padded to ``tile``)."""
    sheet = Image.new("L", (count * (tile + 4) + 4, len(sets) * (tile + 20) + 4), 255)
    draw = ImageDraw.Draw(sheet)
    for r, image_set in enumerate(sets):
        y0 = 4 + r * (tile + 20)
        draw.text((6, y0), image_set.label, fill=0)
        step = max(1, len(image_set.images) // max(count, 1))
        for c, img in enumerate(image_set.images[::step][:count]):
            h, w = img.shape
            top, left = max(0, (h - tile) // 2), max(0, (w - tile) // 2)
            crop = Image.fromarray(np.ascontiguousarray(img[top : top + tile, left : left + tile]))
            sheet.paste(crop, (4 + c * (tile + 4) + max(0, (tile - crop.width) // 2), y0 + 16 + max(0, (tile - crop.height) // 2)))
    tmp = path.with_name(path.name + ".tmp")
    sheet.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)
    return path


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
