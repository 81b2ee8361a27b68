"""The loader config: everything :class:`fpload.load.Loader` takes (``configs/loader/*.yaml``).

Example::

    >>> from fpload.load import LoaderConfig
    >>> LoaderConfig.from_dict({"batch_size": 32, "augment": {"enabled": False}}).batch_size
    32
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from fpload._frozen import FrozenConfig
from fpload.ops._config import AugmentOps



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
      exactly once); ``drop`` keeps the largest multiple of ``world_size × batch_size`` samples of
      the epoch's order (every batch full, every rank the same number of batches) and skips the
      rest: fewer than ``world_size × batch_size`` samples, a different random subset each epoch
      with ``global`` shuffling (with ``none`` the order is rotated by ``batch_size`` per epoch).
    - ``mean``/``std``: normalisation on the 0–1 scale.
    - ``output``: ``float32`` (default) or ``float16`` normalised images, or ``uint8`` grey levels
      (4× less memory traffic; normalise on the GPU in the training step).
    - ``verify``: before loading, check every file the loader reads (shards, indexes,
      samples.parquet, features.zarr when features are asked for) against the manifest's sha256.
      ``stamp`` (default) hashes each file once per version per machine and again only when its
      size, mtime, ctime or inode changes; ``sha256`` hashes every time; ``none`` skips content
      checks (the manifest and samples.parquet are still checked against each other);
      ``size`` is an older name of ``stamp``.
    - ``shuffle``: ``global`` (default) reads each epoch in a fresh uniform permutation of the split
      keyed by (seed, epoch), dealt round robin to the ranks, so every rank's stream is a random
      sample of the whole split; ``buffer`` shuffles locally (each sample moves by less than
      ``shuffle_buffer`` positions of the shard order: sequential reads, weak shuffling); ``none``
      keeps the split's order (evaluation). The older booleans are accepted: ``true`` means
      ``buffer``, ``false`` means ``none``.
    - ``labels``: ``version`` (default) yields the version's labels (``label`` of samples.parquet,
      0..labels-1 over all splits; subjects never span splits, so a split holds a subset of
      them); ``split`` renumbers the split's own labels 0..K-1 in the order of the version's
      labels (identification training without reindexing). ``Loader.label_table()`` maps both
      to ``label_key``, ``subject_id`` and ``finger``.
    - ``tune_host_malloc``: keep DALI's large batch buffers in glibc's heap rather than fresh
      mmaps (process-wide; see :mod:`fpload.load._malloc`; ``FPLOAD_TUNE_MALLOC=0`` overrides).
    - ``record_reads``: append one ``read`` record (run, version, split, ranks, epoch, host, user,
      time, the Loader's ``run_name``/``tags``) to the version root's audit log when the first epoch
      starts (:mod:`fpload.audit._reads`); ``false`` records only that reads were not recorded.
    """

    batch_size: int = Field(64, ge=1)
    device: Literal["gpu", "cpu", "auto"] = "auto"
    shuffle: Literal["global", "buffer", "none"] = "global"
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
    labels: Literal["version", "split"] = "version"
    verify: Literal["stamp", "sha256", "none", "size"] = "stamp"
    tune_host_malloc: bool = True
    record_reads: bool = True
    augment: AugmentConfig = Field(default_factory=AugmentConfig)

    @field_validator("shuffle", mode="before")
    @classmethod
    def _old_shuffle(cls, v: Any) -> Any:
        # the boolean of earlier configs: true was DALI's shuffle buffer, false no shuffling
        if isinstance(v, bool):
            return "buffer" if v else "none"
        return v

    @field_validator("image_size")
    @classmethod
    def _check_size(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and (v[0] < 8 or v[1] < 8):
            raise ValueError(f"image_size must be at least [8, 8], got {list(v)}")
        return v
