"""Loader: streams one split of a dataset version into PyTorch, through DALI, on GPU or CPU."""

from __future__ import annotations

import os
import re
import weakref
from collections import deque
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from fpload.audit import ReadRecorder
from fpload.config import env_local_rank, env_tune_malloc
from fpload.load import _order
from fpload.load._config import AugmentConfig, LoaderConfig, StockAugmentConfig
from fpload.load._device import (_available_host_bytes, _dali_message, _dist_rank_world, check_rank_device,
                                 gpu_available)
from fpload.errors import DeviceError, FploadError, IntegrityError, UsageError
from fpload.load._malloc import tune_host_malloc
from fpload.load._pipeline import PipelineSpec, build_pipeline
from fpload.load._epoch import EpochIterator
from fpload.load._geometry import TRANSFORM_FEATURES, centroid, warp_transforms
from fpload.load._labels import label_table
from fpload.load._source import SplitSource
from fpload.load._state import check_state, config_hash, make_state
from fpload.versions import Version, open_version


class Loader:
    """Iterate one split of a dataset version as PyTorch tensors, through a DALI pipeline.

    Each batch is ``(images, labels, index)``: ``images`` ``N×1×H×W``, float32 normalised with
    ``mean``/``std`` (or float16, or uint8 grey levels, per ``output``), ``labels`` int64 ``N``
    (the version's ``label``), ``index`` int64 ``N`` (the global sample index, a row of
    ``samples.parquet``), all on the loader's device.

    Epochs are honest: one ``for`` over the loader is one epoch of the split, ``len(loader)``
    batches. Across all ranks it yields every sample once (``last_batch="partial"``), or all but
    fewer than ``world_size × batch_size`` (``"drop"``: every batch full, every rank the same
    number of batches). The order is a pure function of (seed, epoch, split size): ``shuffle``
    ``global`` draws a fresh permutation of the split every epoch and deals it round robin to the
    ranks, so each rank's stream is a random sample of the whole split. A ``for`` left early
    (``break``) ends that epoch: the next ``for`` starts the next one. Starting a second iterator
    while one is live is an error. ``set_epoch(e)`` jumps to epoch ``e``. Rank and world size come
    from ``torch.distributed`` when it is initialised and the arguments are None.

    Resuming: ``state_dict()`` is a small JSON-serialisable dict (version, split, seed, epoch,
    samples consumed, config hash); ``Loader(..., state=s)`` or ``load_state_dict(s)`` continues
    with exactly the batches an uninterrupted run would have yielded, and with the same pixels
    (the fpload operators key their draws by (seed, epoch, sample index); DALI's stock operators
    do not, so with ``backend: stock`` only the samples resume exactly). A state resumes at any
    world size: the samples not yet consumed in the interrupted epoch are dealt to the new ranks,
    each read once. The state assumes the ranks step in lock step (as data-parallel training
    does), so the state of any rank, e.g. rank 0, is the state of the job.

    Example::

        loader = Loader("versions/thumbs", split="train", batch_size=64, device="cpu", seed=1)
        for epoch in range(3):
            for images, labels, index in loader:
                loss = criterion(model(images), labels)
            torch.save({"model": model.state_dict(), "data": loader.state_dict()}, "ckpt.pt")
        # later, on any number of ranks:
        loader = Loader("versions/thumbs", split="train", batch_size=64, seed=1,
                        state=torch.load("ckpt.pt")["data"])

    ``features=["quality", "orientation"]`` adds a fourth element to every batch: a dict of those
    arrays of the version's feature cache (``features.zarr``), rows aligned with ``index``, on
    the images' device. The arrays are read once into host memory (onto the GPU when they take
    under a quarter of its free memory) and gathered per batch with one take per array.
    Cached features are in the frame of the stored, *unaugmented* image. Two more names are
    computed by the loader, not read: ``warp_matrix`` (``float32 [B, 2, 3]``) and ``warp_grid``
    (``float32 [B, 2, G, G]``), the geometric transform each sample went through (centred
    crop/pad and the fpload warp); :func:`fpload.load.map_minutiae` maps cached ``minutiae``
    into the augmented images with them (:mod:`fpload.load._geometry`).

    ``augment`` is True (use ``config.augment``), False, an :class:`AugmentConfig`, or the
    parameters of one backend: an :class:`fpload.ops.AugmentOps` (the csrc operators, the default
    backend) or a :class:`StockAugmentConfig` (DALI's stock operators).
    Any :class:`LoaderConfig` field can also be given as a keyword (``image_size=(256, 256)``).

    When its first epoch starts the loader appends one ``read`` record to the version root's audit
    log (``fpload audit``), naming ``run_name`` and ``tags`` (``{"git": "4f2c1e0"}``) if given;
    ``record_reads=False`` records only that reads were not recorded (:mod:`fpload.audit._reads`).
    """

    def __init__(self, version: str | Path | Version, split: str = "train", batch_size: int | None = None,
                 device: str | None = None, shuffle: str | bool | None = None, seed: int | None = None,
                 augment: bool | AugmentConfig | StockAugmentConfig | Any | None = None, rank: int | None = None,
                 world_size: int | None = None, *, features: list[str] | None = None,
                 config: LoaderConfig | None = None, state: dict[str, Any] | None = None,
                 run_name: str | None = None, tags: dict[str, str] | list[str] | None = None,
                 **overrides: Any):
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
        self.features = list(features or [])
        cached = [n for n in self.features if n not in TRANSFORM_FEATURES]
        self.version.require_intact("stamp" if cfg.verify == "size" else cfg.verify, split,
                                    features=bool(cached))

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
        if cfg.last_batch == "drop" and self.split_size // world_size < cfg.batch_size:
            raise UsageError(
                f"batch_size {cfg.batch_size} is larger than a rank's share of split {split!r} "
                f"({self.split_size} samples over {world_size} rank(s)) with last_batch='drop': "
                "every epoch would be empty; lower batch_size or use last_batch='partial'")
        self.image_size = cfg.image_size or self._version_image_size()
        self._uniform = self._all_images_are(self.image_size)
        self._check_memory()
        self._torch_device = "cuda" if self.device == "gpu" else "cpu"
        self._feature_arrays = self._load_features(cached)
        self._transforms = any(n in TRANSFORM_FEATURES for n in self.features)
        if self._transforms and self.augment and cfg.augment.enabled and cfg.augment.backend == "stock":
            raise UsageError("features warp_matrix/warp_grid need the fpload augmentation backend "
                             "(backend: fpload): the stock operators draw their parameters inside DALI")
        warp = cfg.augment.ops.warp
        self._warp = warp if uses_ops and warp.enabled else None
        self._centroid = self._transforms and self._warp is not None and warp.center_mode == "foreground"
        if self._transforms:  # stored (height, width) by global index, for the crop offsets
            s = self.version.samples
            self._stored_hw = np.stack([s.column("height").to_numpy(), s.column("width").to_numpy()], 1)
        self._source = SplitSource(self.version, split)
        #: the version labels of the split, sorted: position k is split label k
        self._split_labels = np.unique(self._source.label)
        self._labels = (np.searchsorted(self._split_labels, self._source.label).astype(np.int64)
                        if cfg.labels == "split" else self._source.label)
        self._config_hash = config_hash({**cfg.to_dict(), "image_size": list(self.image_size),
                                         "augment_on": self.augment})
        self._pipe = None
        self._epoch = 0     # the current epoch
        self._start = 0     # samples of its order consumed before this loader's position
        self._yielded = 0   # batches this rank has yielded since then
        self._live: weakref.ref | None = None  # the live iterator, if any
        self._orders: dict[int, np.ndarray] = {}
        self._feed: Iterator[tuple[tuple[int, int, int], np.ndarray]] | None = None
        self._feed_head: tuple[tuple[int, int, int], np.ndarray] | None = None
        self._pending: deque[tuple[tuple[int, int, int], np.ndarray]] = deque()  # fed, not yet output
        if state is not None:
            self.load_state_dict(state)

    # -- set-up ----------------------------------------------------------------------------
    def _resolve_device(self, device: str) -> str:
        if device == "auto":
            device = "gpu" if gpu_available() else "cpu"
        elif device == "gpu" and not gpu_available():
            raise DeviceError("device='gpu' was asked for but no CUDA GPU is visible to torch "
                              "(torch.cuda.is_available() is False); use device='cpu' or 'auto'")
        if device == "gpu" and self.world_size > 1:  # the DDP habit: torch.cuda.set_device(local_rank)
            import torch

            check_rank_device(env_local_rank(), torch.cuda.current_device(), torch.cuda.device_count())
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
        return PipelineSpec(encoding=self.version.encoding, device=self.device, device_id=device_id,
                            rank=self.rank, image_size=self.image_size, num_threads=threads,
                            uniform=self._uniform)

    def _build(self):
        if self.config.tune_host_malloc and env_tune_malloc():
            tune_host_malloc()
        ref = weakref.ref(self)  # the pipeline holds the callback: no reference cycle through it

        def feed():
            return ref()._next_feed()

        self._pipe = build_pipeline(self._spec(), self.config, augment=self.augment, source=feed,
                                    centroid=self._centroid)
        try:
            self._pipe.build()
        except RuntimeError as err:
            self._raise_data_error(err)

    def _raise_data_error(self, err: Exception, positions: np.ndarray | None = None):
        feed_error, self._feed_error = getattr(self, "_feed_error", None), None
        if feed_error is not None:
            raise feed_error from err
        # a file changed since the start-up check is hashed again (stamp) and named
        problems = self.version.check("size" if self.config.verify == "none" else "stamp", self.split)
        if problems:
            raise IntegrityError(f"version {self.version.name}/{self.version.id}: "
                                 + "; ".join(problems)) from err
        message = _dali_message(err)
        m = re.search(r"sample (\d+) \(\)", message)
        if m and positions is not None and int(m.group(1)) < len(positions):
            # samples reach DALI through external_source, without a source: name the member
            where = self._source.describe(int(positions[int(m.group(1))]))
            message = message.replace(m.group(0), f"sample {m.group(1)} ({where})")
        raise FploadError(f"loading split {self.split!r} of {self.version.path} failed: {message}") from err

    # -- order and state --------------------------------------------------------------------
    def _order(self, epoch: int) -> np.ndarray:
        order = self._orders.get(epoch)
        if order is None:
            cfg = self.config
            order = _order.epoch_order(self.split_size, mode=cfg.shuffle, seed=cfg.seed, epoch=epoch,
                                       buffer=cfg.shuffle_buffer, batch_size=cfg.batch_size,
                                       last_batch=cfg.last_batch)
            self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}
            self._orders[epoch] = order
        return order

    def _rank_kw(self) -> dict[str, Any]:
        return dict(world_size=self.world_size, batch_size=self.config.batch_size,
                    last_batch=self.config.last_batch)

    @property
    def epoch(self) -> int:
        """The current epoch (the one the next or the live ``for`` yields)."""
        return self._epoch

    @property
    def rank_size(self) -> int:
        """Samples this rank yields in the current epoch (from the loader's start position)."""
        kept = _order.kept_count(self.split_size - self._start, **self._rank_kw())
        return len(range(self.rank, kept, self.world_size))

    def __len__(self) -> int:
        """Batches this rank yields in the current epoch: what one ``for`` over the loader yields
        (fewer after resuming mid-epoch). Ranks differ by at most one batch with
        ``last_batch="partial"``, never with ``"drop"``."""
        return _order.rank_batches(self.split_size - self._start, rank=self.rank, **self._rank_kw())

    def _consumed(self) -> int:
        return _order.consumed_after(self._start, self.split_size, batches=self._yielded, **self._rank_kw())

    def state_dict(self) -> dict[str, Any]:
        """Where this loader stands, as a small JSON-serialisable dict: format and version,
        ``version_id``, ``split``, ``split_size``, ``seed``, ``shuffle``, ``config_hash``,
        ``epoch``, ``consumed`` (samples of the epoch's order read by all ranks together),
        ``world_size`` and ``rank_consumed`` (per rank, in this world). Pass it to
        ``Loader(..., state=...)`` or :meth:`load_state_dict`, at any world size.

        Example::

            json.dump(loader.state_dict(), open("data-state.json", "w"))
        """
        consumed = self._consumed()
        kept = _order.kept_count(self.split_size - self._start, **self._rank_kw())
        done = self._yielded * self.config.batch_size
        per_rank = [min(done, len(range(r, kept, self.world_size))) for r in range(self.world_size)]
        return make_state(version_id=self.version.id, split=self.split, split_size=self.split_size,
                          seed=self.config.seed, shuffle=self.config.shuffle, cfg_hash=self._config_hash,
                          epoch=self._epoch, consumed=consumed, world_size=self.world_size,
                          rank_consumed=per_rank)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (from :meth:`state_dict`, maybe of another world size): the next
        ``for`` yields the rest of the saved epoch. A state of another version, split or config
        raises :class:`fpload.errors.LoaderStateError`."""
        epoch, consumed = check_state(state, version_id=self.version.id, split=self.split,
                                      split_size=self.split_size, cfg_hash=self._config_hash)
        self._require_idle("load_state_dict")
        self._epoch, self._start, self._yielded = epoch, consumed, 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``for`` yield epoch ``epoch`` from its start (the ``DistributedSampler``
        habit; not needed otherwise: each ``for`` moves to the next epoch)."""
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise UsageError(f"set_epoch: epoch must be an integer >= 0, got {epoch!r}")
        self._require_idle("set_epoch")
        if (epoch, self._start, self._yielded) != (self._epoch, 0, 0):
            self._epoch, self._start, self._yielded = epoch, 0, 0

    def _require_idle(self, what: str) -> None:
        if self._live is not None and self._live() is not None:
            raise UsageError(f"{what}: an iterator over this loader is still live; finish it or "
                             "call its close() first")

    def _advance(self) -> None:
        self._epoch, self._start, self._yielded = self._epoch + 1, 0, 0

    # -- the feed: what DALI decodes next ---------------------------------------------------
    def _batches_from(self, epoch: int, start: int, skip: int):
        """``((epoch, start, batch number), split positions)`` of this rank, from ``epoch``
        (``start`` consumed, ``skip`` batches yielded) on, through the following epochs."""
        batch = self.config.batch_size
        while True:
            pos = _order.rank_positions(self._order(epoch), start, rank=self.rank, **self._rank_kw())
            for k in range(skip, -(-len(pos) // batch)):
                yield (epoch, start, k), pos[k * batch:(k + 1) * batch]
            epoch, start, skip = epoch + 1, 0, 0

    def _next_feed(self):
        """external_source callback: the next batch of this rank, padded to ``batch_size`` by
        repeating its last sample (sliced off again on output)."""
        if self._feed_head is None:
            self._feed_head = next(self._feed)
        key, pos = self._feed_head
        self._feed_head = next(self._feed)
        self._pending.append((key, pos))
        padded = np.concatenate([pos, np.repeat(pos[-1:], self.config.batch_size - len(pos))])
        try:
            images, shapes = self._source.read(padded)
        except FploadError as err:  # e.g. a remote shard that cannot be fetched: raised as it is
            self._feed_error = err
            raise
        return images, shapes, self._source.index[padded], np.full(len(padded), key[0], dtype=np.int64)

    def _seek(self) -> None:
        """Make the pipeline's next output the loader's position: keep what is in flight when it
        already is (the next epoch prefetched at the end of the last), else drain and re-feed."""
        want = (self._epoch, self._start, self._yielded)
        head = self._pending[0][0] if self._pending else (self._feed_head[0] if self._feed_head else None)
        if head == want and self._feed is not None:
            return
        while self._pending:
            self._pending.popleft()
            try:
                self._pipe.outputs()
            except RuntimeError:  # a broken batch nobody asked for any more
                pass
        self._feed = self._batches_from(*want)
        self._feed_head = None

    def _fill(self) -> None:
        """Keep ``prefetch`` batches in flight."""
        while len(self._pending) < self.config.prefetch:
            try:
                self._pipe.schedule_run()
            except RuntimeError as err:
                self._raise_data_error(err)

    def _next_batch(self):
        """The next batch of the current epoch (called by the live iterator)."""
        import torch

        self._fill()
        key, pos = self._pending[0]
        try:
            outs = self._pipe.outputs()
        except RuntimeError as err:
            self._pending.popleft()
            self._raise_data_error(err, pos)
        self._pending.popleft()
        self._yielded += 1
        n = len(pos)
        images = self._images(outs[0], n)
        labels = torch.from_numpy(self._labels[pos])
        index = torch.from_numpy(self._source.index[pos])
        if self._feature_arrays or self._transforms:
            feats = self._gather(index)
            if self._transforms:
                feats.update(self._warp_features(key[0], pos, outs))
        if self.device == "gpu":
            labels = labels.to(images.device, non_blocking=True)
            index = index.to(images.device, non_blocking=True)
        if self._feature_arrays or self._transforms:
            return images, labels, index, {n: feats[n] for n in self.features}
        return images, labels, index

    def _warp_features(self, epoch: int, pos: np.ndarray, outs) -> dict[str, Any]:
        """``warp_matrix`` and ``warp_grid`` of the batch (see :mod:`fpload.load._geometry`)."""
        import torch

        n = len(pos)
        index = self._source.index[pos]
        centers = None
        if self._centroid:
            cols, rows = (np.asarray(o.as_cpu().as_tensor() if self.device == "gpu" else o.as_tensor())
                          for o in outs[1:3])
            centers = [centroid(cols[k], rows[k]) for k in range(n)]
        mats, grids = warp_transforms(index, epoch, seed=self.config.seed, warp=self._warp, stored=self._stored_hw[index],
                                      in_size=self.image_size, centers=centers)
        return {"warp_matrix": torch.from_numpy(mats).to(self._torch_device),
                "warp_grid": torch.from_numpy(grids).to(self._torch_device)}

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

    def __iter__(self) -> "EpochIterator":
        """One epoch: the rest of the current one (all of it unless resumed mid-epoch). A second
        iterator while one is live raises UsageError; a ``for`` left early ends its epoch."""
        self._require_idle("iter")
        self._reads.started(self._epoch)  # the read record, written once (fpload.audit._reads)
        if self._pipe is None:
            self._build()
        it = EpochIterator(self)
        self._live = weakref.ref(it)
        return it

    @property
    def read_record(self) -> dict[str, Any] | None:
        """The ``read`` record this loader appended to its version root's audit log (None before
        the first epoch, or when the log could not be written: an :class:`AuditWarning` said so)."""
        return self._reads.record

    @property
    def num_classes(self) -> int:
        """Distinct labels the batches can hold (the size of a classifier's output): the version's
        label count with ``labels="version"``, the split's with ``labels="split"``."""
        if self.config.labels == "split":
            return len(self._split_labels)
        return int(self.version.manifest["labels"])

    def label_table(self):
        """The labels of this split as a pyarrow table, one row per label, sorted: ``label`` (as
        the batches hold it), ``version_label``, ``label_key`` (``subject/finger``, ``subject``
        or ``finger``, per the pack's ``label``), ``subject_id`` and ``finger`` (null where a
        label spans several), and ``samples``.

        Example::

            names = loader.label_table().to_pandas().set_index("label")
            names.loc[int(labels[0]), ["subject_id", "finger"]]
        """
        return label_table(self.version.samples, self.split, self._split_labels,
                           renumber=self.config.labels == "split")

    def __repr__(self) -> str:
        return (f"Loader({self.version.name}/{self.version.id}, split={self.split!r}, "
                f"device={self.device!r}, batch_size={self.config.batch_size}, "
                f"rank={self.rank}/{self.world_size}, image_size={self.image_size})")

