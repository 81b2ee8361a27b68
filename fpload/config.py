"""Validated configuration objects, their YAML files, and the ``FPLOAD_*`` environment variables.

YAML files in ``configs/`` are parsed into these models and nothing else; an unknown key or a bad
value is a :class:`~fpload.errors.ConfigError` naming the file, the key and what is allowed.

Example::

    >>> from fpload.config import PackConfig
    >>> cfg = PackConfig.from_dict({"encoding": "png", "shard_max_samples": 500})
    >>> cfg.to_dict()["encoding"]
    'png'
    >>> PackConfig.from_dict({"encodng": "png"})
    Traceback (most recent call last):
    ...
    fpload.errors.ConfigError: pack config: key 'encodng': unknown key (allowed: allow_subject_overlap, ...

Environment variables (all read here, nowhere else):

- ``FPLOAD_DEBUG``: when set, the CLI shows tracebacks of user errors.
- ``FPLOAD_WORKERS``: default worker-process count of ``fpload pack`` and ``fpload synth``.
- ``FPLOAD_PLUGIN``: path of the fpload DALI operator plugin, instead of the built-in location.
- ``FPLOAD_TUNE_MALLOC``: ``0`` keeps glibc's malloc defaults (see :mod:`fpload.load._malloc`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from fpload._frozen import FrozenConfig
from fpload.errors import ConfigError
from fpload.features._config import FeaturesConfig
from fpload.ops._config import AugmentOps


def env_workers() -> int:
    """Default worker count: ``FPLOAD_WORKERS`` or the machine's core count."""
    value = os.environ.get("FPLOAD_WORKERS")
    if value:
        try:
            workers = int(value)
        except ValueError:
            raise ConfigError(f"FPLOAD_WORKERS={value!r} is not an integer") from None
        if workers < 1:
            raise ConfigError(f"FPLOAD_WORKERS={value!r} must be at least 1")
        return workers
    return os.cpu_count() or 1


def env_debug() -> bool:
    """Whether ``FPLOAD_DEBUG`` asks for tracebacks."""
    return bool(os.environ.get("FPLOAD_DEBUG"))


def env_tune_malloc() -> bool:
    """``FPLOAD_TUNE_MALLOC`` (default on): let the Loader raise glibc's mmap threshold."""
    return os.environ.get("FPLOAD_TUNE_MALLOC", "1").strip().lower() not in ("0", "false", "no", "off")


def env_plugin_path() -> str | None:
    """``FPLOAD_PLUGIN``, the plugin path override, if set."""
    return os.environ.get("FPLOAD_PLUGIN") or None


# ---------------------------------------------------------------------------------------------
# pack
# ---------------------------------------------------------------------------------------------

Encoding = Literal["passthrough", "png", "jpeg", "raw", "raw-lz4"]
LabelKind = Literal["subject_finger", "subject", "finger"]


class PackConfig(FrozenConfig):
    """How ``fpload pack`` turns a selection into a version. Every field enters the version id.

    - ``encoding``: ``passthrough`` keeps the source bytes; ``png``/``jpeg`` transcode; ``raw`` stores
      8-bit pixels that DALI reshapes without a codec; ``raw-lz4`` LZ4-compresses them (inflated on
      the GPU).
    - shards are cut at ``shard_max_samples`` samples or ``shard_max_mb`` megabytes, whichever
      comes first (either may be null, not both).
    - ``splits``: fractions of subjects per split for samples whose catalog ``split`` is unset;
      the assignment hashes ``(split_seed, subject_id)`` so no subject lands in two splits.
    - ``label``: the integer class written to ``cls``: one per finger of a subject
      (``subject_finger``, the identity for recognition), per subject, or the finger code.
    """

    encoding: Encoding = "passthrough"
    jpeg_quality: int = Field(95, ge=1, le=100)
    png_compress_level: int = Field(6, ge=0, le=9)
    shard_max_samples: int | None = Field(1000, ge=1)
    shard_max_mb: float | None = Field(256.0, gt=0)
    splits: dict[str, float] = Field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    split_seed: int = 0
    label: LabelKind = "subject_finger"
    allow_without_consent: bool = False
    allow_subject_overlap: bool = False
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)

    @field_validator("splits")
    @classmethod
    def _check_splits(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("at least one split is needed")
        for name, frac in v.items():
            if not name or not name.replace("_", "").isalnum():
                raise ValueError(f"split name {name!r} must be letters, digits or '_'")
            if frac < 0:
                raise ValueError(f"split {name!r} has a negative fraction {frac}")
        total = sum(v.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, they sum to {total:g}")
        return v

    @model_validator(mode="after")
    def _check_shard_limits(self) -> "PackConfig":
        if self.shard_max_samples is None and self.shard_max_mb is None:
            raise ValueError("set shard_max_samples, shard_max_mb or both")
        return self


# ---------------------------------------------------------------------------------------------
# loader
# ---------------------------------------------------------------------------------------------


class StockAugmentConfig(FrozenConfig):
    """Augmentation from DALI's stock operators (``backend: stock``), drawn uniformly per sample.

    Rotation, scale and translation in one affine warp, then brightness/contrast and Gaussian
    noise. Zero ranges switch an effect off. Kept as the baseline the fpload operators are
    measured against; slow on CPU.
    """

    rotation_deg: float = Field(15.0, ge=0, le=180)
    translate_px: float = Field(16.0, ge=0)
    scale: tuple[float, float] = (0.95, 1.05)
    brightness: tuple[float, float] = (0.85, 1.15)
    contrast: tuple[float, float] = (0.8, 1.2)
    noise_std: float = Field(4.0, ge=0)

    @field_validator("scale", "brightness", "contrast")
    @classmethod
    def _check_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if lo <= 0 or hi < lo:
            raise ValueError(f"range must be 0 < low <= high, got [{lo}, {hi}]")
        return v


class AugmentConfig(FrozenConfig):
    """The loader's augmentation: which backend, and its parameters.

    - ``backend: fpload`` (default): the csrc operators (``fn.fpload_warp``, ``fn.fpload_occlusion``,
      ``fn.fpload_photometric``) with parameters under ``ops:``; random draws keyed by
      (seed, epoch, sample index), so CPU and GPU give the same augmentation. Needs the plugin
      (``fpload ops build``).
    - ``backend: stock``: DALI's stock operators with parameters under ``stock:``.
    - ``enabled: false`` switches augmentation off (evaluation).

    The output normalisation of ``ops.output`` is set by the loader from its ``mean``/``std``.
    """

    enabled: bool = True
    backend: Literal["fpload", "stock"] = "fpload"
    ops: AugmentOps = Field(default_factory=AugmentOps)
    stock: StockAugmentConfig = Field(default_factory=StockAugmentConfig)


class LoaderConfig(FrozenConfig):
    """Everything the :class:`fpload.load.Loader` takes besides the version and split.

    - ``image_size``: ``[height, width]`` every image is centre-cropped or padded (with
      ``background``) to, so a batch is one N×1×H×W tensor; null takes the version's largest size.
    - ``last_batch``: ``partial`` yields the epoch's remainder as a smaller last batch (every sample
      exactly once); ``drop`` drops it (every batch full, the remainder skipped this epoch).
    - ``mean``/``std``: normalisation on the 0–1 scale.
    - ``output``: ``float32`` (default) or ``float16`` normalised images, or ``uint8`` grey levels
      (4× less memory traffic; normalise on the GPU in the training step).
    - ``verify``: before loading, check every file the loader reads (shards, indexes,
      samples.parquet, features.zarr when features are asked for) against the manifest's sha256.
      ``stamp`` (default) hashes each file once per version per machine and again only when its
      size, mtime, ctime or inode changes; ``sha256`` hashes every time; ``none`` skips content
      checks (the manifest and samples.parquet are still checked against each other);
      ``size`` is an older name of ``stamp``.
    - ``tune_host_malloc``: keep DALI's large batch buffers in glibc's heap rather than fresh
      mmaps (process-wide; see :mod:`fpload.load._malloc`; ``FPLOAD_TUNE_MALLOC=0`` overrides).
    """

    batch_size: int = Field(64, ge=1)
    device: Literal["gpu", "cpu", "auto"] = "auto"
    shuffle: bool = True
    shuffle_buffer: int = Field(1024, ge=1)
    seed: int = 0
    num_threads: int | None = Field(None, ge=1)
    prefetch: int = Field(2, ge=1)
    image_size: tuple[int, int] | None = None
    background: int = Field(255, ge=0, le=255)
    mean: float = 0.5
    std: float = Field(0.5, gt=0)
    output: Literal["float32", "float16", "uint8"] = "float32"
    last_batch: Literal["partial", "drop"] = "partial"
    verify: Literal["stamp", "sha256", "none", "size"] = "stamp"
    tune_host_malloc: bool = True
    augment: AugmentConfig = Field(default_factory=AugmentConfig)

    @field_validator("image_size")
    @classmethod
    def _check_size(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and (v[0] < 8 or v[1] < 8):
            raise ValueError(f"image_size must be at least [8, 8], got {list(v)}")
        return v
