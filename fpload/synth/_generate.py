"""Run a synthesis: fingers in parallel processes, images on disk, one metadata file last.

Output layout (what ``fpload catalog ingest OUT/metadata.jsonl`` reads as it is)::

    OUT/images/s000012_f02_i3.png   8-bit grayscale, white-ish background, dark ridges
    OUT/metadata.jsonl              one JSON object per image, sorted keys, sorted rows
    OUT/synth.json                  the SynthConfig and format version that made them

Each image and the metadata file are written under a temporary name and renamed into place;
``metadata.jsonl`` comes last, so a folder with one is complete. The same config gives
byte-identical files whatever the number of workers.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fpload.errors import UsageError
from fpload.synth._analysis import quality_score
from fpload.synth._config import FORMAT_VERSION, FORMATS, SynthConfig
from fpload.synth._impression import render_impression
from fpload.synth._master import generate_master

METADATA_NAME = "metadata.jsonl"
CONFIG_NAME = "synth.json"
IMAGE_DIR = "images"
PNG_COMPRESS_LEVEL = 3  # fixed: same bytes everywhere; 3 trades 5 % size for 2x speed over 6


@dataclass(frozen=True)
class SynthResult:
    """What :func:`synthesize` wrote: where, how many images and fingers, and how long it took."""

    out: Path
    metadata_path: Path
    images: int
    fingers: int
    seconds: float
    config: SynthConfig

    @property
    def images_per_second(self) -> float:
        """Throughput of the run."""
        return self.images / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (paths as strings)."""
        return {
            "out": str(self.out),
            "metadata_path": str(self.metadata_path),
            "images": self.images,
            "fingers": self.fingers,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 2),
            "config": self.config.to_dict(),
        }


def image_name(subject: int, finger: int, impression: int, fmt: str) -> str:
    """File name of one impression: ``s000012_f02_i3.png``."""
    return f"s{subject:06d}_f{finger:02d}_i{impression}{FORMATS[fmt]}"


def write_image(pixels: np.ndarray, path: Path, fmt: str) -> None:
    """Write 8-bit grayscale ``pixels`` deterministically (fixed settings, no timestamps)."""
    if pixels.dtype != np.uint8 or pixels.ndim != 2:
        raise TypeError(f"expected 2-D uint8 pixels, got {pixels.dtype} {pixels.shape}")
    image = Image.fromarray(pixels)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "png":
        image.save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif fmt == "wsq":  # needs fpload[nist]
        from fpload.synth._records import write_wsq

        write_wsq(pixels, tmp)
    else:  # lossless JPEG 2000: reversible 5/3 wavelet, no quality layers
        image.save(tmp, format="JPEG2000", irreversible=False, no_jp2=False)
    os.replace(tmp, path)


def _r(value: float, digits: int) -> float:
    return float(round(value, digits))


def render_finger(config: SynthConfig, subject: int, finger: int, out: Path) -> list[dict[str, Any]]:
    """Generate one finger's master and impressions, write the images, return metadata rows."""
    master = generate_master(config, subject, finger)
    rows = []
    for k in range(config.impressions):
        imp = render_impression(master, k, config)
        name = image_name(subject, finger, k, config.fmt)
        write_image(imp.image, out / IMAGE_DIR / name, config.fmt)
        rows.append(
            {
                "file": f"{IMAGE_DIR}/{name}",
                "subject_id": config.subject_id(subject),
                "finger": finger,
                "impression": k,
                "sensor": imp.sensor,
                "ppi": config.ppi,
                "consent": True,
                "synthetic": True,
                "quality": quality_score(imp.image),
                "pattern_class": master.pattern,
                "seed": config.seed,
                "master_id": master.master_id,
                "width": config.size,
                "height": config.size,
                "minutiae": [[_r(x, 1), _r(y, 1), _r(t, 3), kind] for x, y, t, kind in imp.minutiae],
                "singular_points": [[_r(x, 1), _r(y, 1), kind] for x, y, kind in imp.singular_points],
                "occluded": [
                    [kind, _r(band, 1), [[_r(x, 1), _r(y, 1)] for x, y in points]] for kind, band, points in imp.occluded
                ],
                "synth_version": FORMAT_VERSION,
            }
        )
    return rows


def _finger_job(args: tuple[dict[str, Any], int, int, str]) -> list[dict[str, Any]]:
    """Process-pool entry point (plain arguments, so it pickles cheaply)."""
    config_dict, subject, finger, out = args
    return render_finger(SynthConfig.from_dict(config_dict), subject, finger, Path(out))


def _prepare_out(out: str | os.PathLike[str]) -> Path:
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"out: {str(path)!r} exists and is not a folder; give a folder to write into")
    (path / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    return path


def run_synthesis(out: str | os.PathLike[str], config: SynthConfig, *, progress: bool = True) -> SynthResult:
    """Generate everything ``config`` asks for into ``out``; see :func:`fpload.synth.synthesize`."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    root = _prepare_out(out)
    start = time.perf_counter()
    jobs = [(s, f) for s in range(1, config.subjects + 1) for f in config.finger_codes]
    total = len(jobs) * config.impressions
    workers = min(config.worker_count, len(jobs))
    rows: list[dict[str, Any]] = []
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TextColumn("images"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not progress, transient=False) as bar:
        task = bar.add_task("synth", total=total)
        if workers <= 1:
            for s, f in jobs:
                rows.extend(render_finger(config, s, f, root))
                bar.advance(task, config.impressions)
        else:
            payload = config.to_dict()
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = [pool.submit(_finger_job, (payload, s, f, str(root))) for s, f in jobs]
                for future in as_completed(futures):
                    rows.extend(future.result())
                    bar.advance(task, config.impressions)
    rows.sort(key=lambda r: (r["subject_id"], r["finger"], r["impression"]))
    recipe = {k: v for k, v in config.to_dict().items() if k != "workers"}  # output does not depend on it
    _write_text(root / CONFIG_NAME, json.dumps({"config": recipe, "synth_version": FORMAT_VERSION}, sort_keys=True, indent=2) + "\n")
    metadata = root / METADATA_NAME
    _write_text(metadata, "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows))
    return SynthResult(root, metadata, len(rows), len(jobs), time.perf_counter() - start, config)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def synthesize(
    out: str | os.PathLike[str],
    *,
    subjects: int,
    fingers: int,
    impressions: int,
    seed: int = 0,
    size: int = 512,
    ppi: int = 500,
    fmt: str = "png",
    workers: int | None = None,
    progress: bool = True,
    subject_prefix: str = "syn",
    sensors: tuple[str, ...] | str | None = None,
    sensor_weights: tuple[float, ...] | None = None,
) -> SynthResult:
    """Generate a synthetic fingerprint data set into the folder ``out``.

    ``subjects`` x ``fingers`` (finger position codes ``1..fingers``) masters, ``impressions``
    captures of each, ``size`` x ``size`` pixels at ``ppi``, as ``fmt`` (``"png"`` or lossless
    ``"jp2"``), over ``workers`` processes (default: all CPUs), with a progress bar on stderr
    unless ``progress=False``. Subject ids are ``"<subject_prefix>-s<seed>-<number>"``, so two
    runs with different seeds (or prefixes) never merge fingers into one identity. ``sensors``
    names the sensor model(s) drawn per impression (default: ``("optical",)``), with
    ``sensor_weights`` (default: equal). Returns a
    :class:`SynthResult`; ``result.metadata_path`` is the
    file to ingest. Bad arguments raise :class:`fpload.errors.UsageError`.

    Example::

        >>> from fpload.synth import synthesize
        >>> result = synthesize("data", subjects=2, fingers=1, impressions=2, size=256, progress=False)
        >>> result.images
        4
    """
    config = SynthConfig(
        subjects=subjects,
        fingers=fingers,
        impressions=impressions,
        seed=seed,
        size=size,
        ppi=ppi,
        fmt=fmt,
        workers=workers,
        subject_prefix=subject_prefix,
        **({} if sensors is None else {"sensors": sensors}),
        sensor_weights=sensor_weights,
    )
    return run_synthesis(out, config, progress=progress)
