"""Loader: streams one split of a dataset version into PyTorch, through DALI, on GPU or CPU."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from fpload import formats
from fpload.audit import ReadRecorder
from fpload.config import env_tune_malloc
from fpload.load._config import AugmentConfig, LoaderConfig, StockAugmentConfig
from fpload.errors import DeviceError, FploadError, IntegrityError, UsageError
from fpload.load._malloc import tune_host_malloc
from fpload.load._pipeline import EpochSchedule, PipelineSpec, build_pipeline
from fpload.versions import Version, open_version


def _dist_rank_world() -> tuple[int, int]:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _dali_message(err: Exception) -> str:
    """The informative line of a DALI pipeline error (which names the operator's own message and
    the failing sample's source, e.g. ``shards/train-000000.tar:512:<key>.lz4``)."""
    import re

    text = str(err)
    m = re.search(r'Assert on ".*?" failed: (.+)', text)
    if m:
        return m.group(1).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if "encountered:" in lines and lines.index("encountered:") + 1 < len(lines):
        return lines[lines.index("encountered:") + 1]
    useful = [ln for ln in lines if not ln.startswith("Critical error") and "no longer valid" not in ln]
    return (useful or lines or [type(err).__name__])[0]


def gpu_available() -> bool:
    """Whether a CUDA GPU is visible to torch (DALI's GPU placement needs the same)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return bool(torch.cuda.is_available())


def _available_host_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover
        return None
    return None


class Loader:
    """Iterate one split of a dataset version as PyTorch tensors, through a DALI pipeline.

    Each batch is ``(images, labels, index)``: ``images`` ``N×1×H×W``, float32 normalised with
    ``mean``/``std`` (or float16, or uint8 grey levels, per ``output``), ``labels`` int64 ``N``
    (the version's ``cls``), ``index`` int64 ``N`` (the
    global sample index, a row of ``samples.parquet``), all on the loader's device.

    One epoch (one ``for`` loop over the loader) yields every sample of the split exactly once
    across all ranks. The last partial batch follows ``last_batch``: ``"partial"`` (default)
    yields it smaller, ``"drop"`` skips it. Ranks split the split's samples into contiguous
    ranges (DALI's ``shard_id``/``num_shards``); rank and world size come from
    ``torch.distributed`` when it is initialised and the arguments are None.

    Example::

        loader = Loader("versions/thumbs", split="train", batch_size=64, device="cpu", seed=1)
        for epoch in range(3):
            for images, labels, index in loader:
                loss = criterion(model(images), labels)

    ``features=["quality", "orientation"]`` adds a fourth element to every batch: a dict of those
    arrays of the version's feature cache (``features.zarr``), rows aligned with ``index``, on
    the images' device. The arrays are read once into host memory (onto the GPU when they take
    under a quarter of its free memory) and gathered per batch with one take per array.

    ``augment`` is True (use ``config.augment``), False, an :class:`AugmentConfig`, or the
    parameters of one backend: an :class:`fpload.ops.AugmentOps` (the csrc operators, the default
    backend) or a :class:`StockAugmentConfig` (DALI's stock operators).
    Any :class:`LoaderConfig` field can also be given as a keyword (``image_size=(256, 256)``).

    When its first epoch starts the loader appends one ``read`` record to the version root's audit
    log (``fpload audit``), naming ``run_name`` and ``tags`` (``{"git": "4f2c1e0"}``) if given;
    ``record_reads=False`` records only that reads were not recorded (:mod:`fpload.audit._reads`).
    """

    def __init__(self, version: str | Path | Version, split: str = "train", batch_size: int | None = None,
                 device: str | None = None, shuffle: bool | None = None, seed: int | None = None,
                 augment: bool | AugmentConfig | StockAugmentConfig | Any | None = None, rank: int | None = None,
                 world_size: int | None = None, *, features: list[str] | None = None,
                 config: LoaderConfig | None = None, run_name: str | None = None,
                 tags: dict[str, str] | list[str] | None = None, **overrides: Any):
        cfg = config or LoaderConfig()
        updates = {k: v for k, v in dict(batch_size=batch_size, device=device, shuffle=shuffle,
                                         seed=seed, **overrides).items() if v is not None}
        from fpload.ops import AugmentOps

        if isinstance(augment, AugmentConfig):
            updates["augment"] = augment
            augment = True
        elif isinstance(augment, StockAugmentConfig):
            updates["augment"] = AugmentConfig(backend="stock", stock=augment)
            augment = True
        elif isinstance(augment, AugmentOps):
            updates["augment"] = AugmentConfig(backend="fpload", ops=augment)
            augment = True
        cfg = LoaderConfig.from_dict({**cfg.to_dict(), **{k: (v.to_dict() if hasattr(v, "to_dict") else v)
                                                          for k, v in updates.items()}},
                                     source="Loader arguments")
        self.config = cfg
        self.augment = True if augment is None else bool(augment)
        self.version = open_version(version)
        self.split = split
        if split not in self.version.counts:
            raise UsageError(f"version {self.version.name}/{self.version.id} has no split {split!r} "
                             f"(splits: {', '.join(self.version.splits)})")
        # every file this loader reads must match the manifest (``size`` is the old name of ``stamp``)
        self.version.require_intact("stamp" if cfg.verify == "size" else cfg.verify, split,
                                    features=bool(features))

        if rank is None and world_size is None:
            rank, world_size = _dist_rank_world()
        elif rank is None or world_size is None:
            raise UsageError("give both rank and world_size, or neither (then torch.distributed decides)")
        if world_size < 1 or not 0 <= rank < world_size:
            raise UsageError(f"rank {rank} is not in 0..world_size-1 (world_size={world_size})")
        self.rank, self.world_size = rank, world_size
        self._reads = ReadRecorder(self.version, split, rank=rank, world_size=world_size, run_name=run_name,
                                   tags=tags, enabled=cfg.record_reads, samples=self.version.counts[split])

        self.device = self._resolve_device(cfg.device)
        uses_ops = self.augment and cfg.augment.enabled and cfg.augment.backend == "fpload"
        if uses_ops or (self.version.encoding == "raw-lz4" and self.device == "cpu"):
            from fpload.ops import load_plugin, require_gpu_backend

            # fail here, not at the first batch, when the plugin is missing or lacks a backend
            require_gpu_backend() if self.device == "gpu" else load_plugin()
        self.split_size = self.version.counts[split]
        if self.split_size < world_size:
            raise UsageError(f"split {split!r} has {self.split_size} samples, fewer than the "
                             f"{world_size} ranks: every rank needs at least one")
        self._schedule = EpochSchedule(self.split_size, cfg.batch_size, rank, world_size)
        self.rank_size = self._schedule.samples[0]  # this rank's samples in the first epoch
        if cfg.last_batch == "drop" and self.split_size // world_size < cfg.batch_size:
            raise UsageError(
                f"batch_size {cfg.batch_size} is larger than a rank's share of split {split!r} "
                f"({self.split_size} samples over {world_size} rank(s)) with last_batch='drop': "
                "every epoch would be empty; lower batch_size or use last_batch='partial'")
        self.image_size = cfg.image_size or self._version_image_size()
        self._uniform = self._all_images_are(self.image_size)
        self._check_memory()
        self._torch_device = "cuda" if self.device == "gpu" else "cpu"
        self.features = list(features or [])
        self._feature_arrays = self._load_features(self.features)
        self._pipe = None
        self._epoch = 0   # epochs this loader has finished
        self._batch = 0   # pipeline runs done in the current epoch

    # -- set-up ----------------------------------------------------------------------------
    def _resolve_device(self, device: str) -> str:
        if device == "auto":
            return "gpu" if gpu_available() else "cpu"
        if device == "gpu" and not gpu_available():
            raise DeviceError("device='gpu' was asked for but no CUDA GPU is visible to torch "
                              "(torch.cuda.is_available() is False); use device='cpu' or 'auto'")
        return device

    def _version_image_size(self) -> tuple[int, int]:
        s = self.version.samples
        h = int(np.max(s.column("height").to_numpy()))
        w = int(np.max(s.column("width").to_numpy()))
        return h, w

    def _all_images_are(self, size: tuple[int, int]) -> bool:
        s = self.version.samples
        hs, ws = s.column("height").to_numpy(), s.column("width").to_numpy()
        return bool((hs == size[0]).all() and (ws == size[1]).all())

    def _check_memory(self) -> None:
        h, w = self.image_size
        out_bytes = {"float32": 4, "float16": 2, "uint8": 1}[self.config.output]
        per_batch = self.config.batch_size * h * w * (1 + out_bytes)  # decoded uint8 + output
        need = per_batch * (self.config.prefetch + 2) * 2
        if self.device == "gpu":
            import torch

            free, _ = torch.cuda.mem_get_info()
            where, have = "GPU memory", free
        else:
            where, have = "host memory", _available_host_bytes()
        if have is not None and need > 0.8 * have:
            raise DeviceError(
                f"batch_size {self.config.batch_size} of {h}×{w} images needs about {need / 2**30:.1f} GiB "
                f"of {where} for the pipeline's buffers, but only {have / 2**30:.1f} GiB is free; "
                "lower batch_size or prefetch")

    def _load_features(self, names: list[str]) -> dict[str, Any]:
        """The requested feature arrays: NumPy in host memory, or torch tensors on the GPU when
        they take under a quarter of its free memory."""
        if not names:
            return {}
        from fpload.features import open_features

        cache = open_features(self.version)
        unknown = [n for n in names if n not in cache.names]
        if unknown:
            raise UsageError(f"version {self.version.name}/{self.version.id} has no feature "
                             f"{unknown[0]!r} (features: {', '.join(cache.names)})")
        arrays = {n: np.ascontiguousarray(cache.load(n)) for n in names}
        if self.device == "gpu":
            import torch

            free, _ = torch.cuda.mem_get_info()
            if sum(a.nbytes for a in arrays.values()) < free / 4:
                return {n: torch.from_numpy(a).to("cuda") for n, a in arrays.items()}
        return arrays

    def _gather(self, index) -> dict[str, Any]:
        """Rows of every requested feature for the batch: one take / index_select per array.

        Host arrays are gathered with NumPy rather than torch, whose OpenMP threads would spin
        beside DALI's after each op and slow the pipeline."""
        import torch

        out = {}
        host_index = None
        for name, table in self._feature_arrays.items():
            if isinstance(table, np.ndarray):
                if host_index is None:
                    host_index = index.cpu().numpy()
                rows = torch.from_numpy(np.take(table, host_index, axis=0))
            else:
                rows = table.index_select(0, index.to(table.device))
            out[name] = rows.to(self._torch_device, non_blocking=True)
        return out

    def _spec(self) -> PipelineSpec:
        device_id = None
        if self.device == "gpu":
            import torch

            device_id = torch.cuda.current_device()
        threads = self.config.num_threads or max(1, min(8, os.cpu_count() or 1))
        return PipelineSpec(
            shards=self.version.shard_paths(self.split), indexes=self.version.index_paths(self.split),
            encoding=self.version.encoding, device=self.device, device_id=device_id, rank=self.rank,
            world_size=self.world_size, image_size=self.image_size, num_threads=threads,
            split_size=self.split_size, uniform=self._uniform)

    def _build(self):
        if self.config.tune_host_malloc and env_tune_malloc():
            tune_host_malloc()
        self._pipe = build_pipeline(self._spec(), self.config, augment=self.augment)
        try:
            self._pipe.build()
        except RuntimeError as err:
            self._raise_data_error(err)

    def _raise_data_error(self, err: Exception):
        # a file changed since the start-up check is hashed again (stamp) and named
        problems = self.version.check("size" if self.config.verify == "none" else "stamp", self.split)
        if problems:
            raise IntegrityError(f"version {self.version.name}/{self.version.id}: "
                                 + "; ".join(problems)) from err
        raise FploadError(f"loading split {self.split!r} of {self.version.path} failed: "
                          f"{_dali_message(err)}") from err

    # -- iteration -------------------------------------------------------------------------
    def __len__(self) -> int:
        """Batches this rank yields per epoch."""
        if self.config.last_batch == "drop":
            return self.rank_size // self.config.batch_size
        return math.ceil(self.rank_size / self.config.batch_size)

    def _images(self, out, n: int):
        """The batch's images as a torch tensor: CPU outputs without a copy (the array keeps DALI's
        buffer alive), GPU outputs copied on the current CUDA stream."""
        import torch

        tensor = out.as_tensor()
        if self.device == "cpu":
            images = torch.from_numpy(np.asarray(tensor))
        else:
            from nvidia.dali.plugin.pytorch import feed_ndarray, to_torch_type

            images = torch.empty(tensor.shape(), dtype=to_torch_type[tensor.dtype], device="cuda")
            feed_ndarray(tensor, images, cuda_stream=torch.cuda.current_stream())
        return images[:n]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        """The rest of the current epoch (a loop that broke off early is resumed, as with any
        iterator over a stream); the next ``for`` starts the next epoch."""
        import torch

        self._reads.started(self._epoch)  # the read record, written once (fpload.audit._reads)
        if self._pipe is None:
            self._build()
        while True:
            runs, last = self._schedule.runs(self._epoch)
            if self._batch >= runs:
                self._epoch, self._batch = self._epoch + 1, 0
                return
            self._batch += 1
            try:
                outs = self._pipe.run()
            except RuntimeError as err:
                self._raise_data_error(err)
            n = self.config.batch_size if self._batch < runs else last
            if n < self.config.batch_size and self.config.last_batch == "drop":
                continue
            images = self._images(outs[0], n)
            labels, index = (torch.from_numpy(formats.decode_int_members(np.asarray(outs[k].as_tensor())[:n]))
                             for k in (-2, -1))
            if self._feature_arrays:
                feats = self._gather(index)
            if self.device == "gpu":
                labels = labels.to(images.device, non_blocking=True)
                index = index.to(images.device, non_blocking=True)
            if self._feature_arrays:
                yield images, labels, index, feats
            else:
                yield images, labels, index

    @property
    def read_record(self) -> dict[str, Any] | None:
        """The ``read`` record this loader appended to its version root's audit log (None before
        the first epoch, or when the log could not be written: an :class:`AuditWarning` said so)."""
        return self._reads.record

    @property
    def num_classes(self) -> int:
        """Distinct labels of the version (the size of a classifier's output)."""
        return int(self.version.manifest["labels"])

    def __repr__(self) -> str:
        return (f"Loader({self.version.name}/{self.version.id}, split={self.split!r}, "
                f"device={self.device!r}, batch_size={self.config.batch_size}, "
                f"rank={self.rank}/{self.world_size}, image_size={self.image_size})")
