"""The DALI pipeline of the loader: one graph for both devices, placements chosen by ``device``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpload import formats
from fpload.load._config import LoaderConfig, StockAugmentConfig
from fpload.errors import DeviceError

#: extensions an encoded (passthrough/png/jpeg) image member may have
ENCODED_EXTS = "png;jpg;jp2;tiff;bmp"
READER_NAME = "reader"


@dataclass(frozen=True)
class PipelineSpec:
    """What one rank's pipeline reads and how it is placed."""

    shards: list[Path]
    indexes: list[Path]
    encoding: str
    device: str            # "gpu" or "cpu"
    device_id: int | None  # None for CPU-only pipelines
    rank: int
    world_size: int
    image_size: tuple[int, int]
    num_threads: int
    split_size: int = 0  # samples in the split (for the epoch schedule of the fpload operators)
    uniform: bool = False  # every image of the version already has image_size: no crop needed


class EpochSchedule:
    """Which epoch a pipeline iteration belongs to, for one rank.

    DALI's reader pads each rank's last batch, and without ``stick_to_shard`` rank r reads DALI
    shard ``(r + e) % world_size`` in epoch e, so epoch e takes ``ceil(shard_size / batch)``
    iterations. The pipeline counts iterations deterministically (prefetching included), so this
    gives the same epoch on CPU and GPU.
    """

    def __init__(self, split_size: int, batch_size: int, rank: int, world_size: int):
        sizes = [split_size * (s + 1) // world_size - split_size * s // world_size for s in range(world_size)]
        #: samples this rank reads in epoch e is ``self.samples[e % world_size]``
        self.samples = [sizes[(rank + e) % world_size] for e in range(world_size)]
        self._per_epoch = [max(1, -(-n // batch_size)) for n in self.samples]
        self._batch = batch_size
        self._cycle = sum(self._per_epoch)
        self._world = world_size

    def runs(self, epoch: int) -> tuple[int, int]:
        """``(pipeline runs, real samples in the last run)`` of this rank in ``epoch``."""
        e = epoch % self._world
        runs = self._per_epoch[e]
        return runs, self.samples[e] - (runs - 1) * self._batch

    def epoch_of(self, iteration: int) -> int:
        cycles, rest = divmod(iteration, self._cycle)
        e = 0
        while rest >= self._per_epoch[e]:
            rest -= self._per_epoch[e]
            e += 1
        return cycles * self._world + e


def _augment_stock(img, aug: StockAugmentConfig, size: tuple[int, int], background: int):
    """Rotation + scale + translation in one affine warp, then brightness/contrast and noise."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types

    h, w = size
    center = [w / 2.0, h / 2.0]
    transforms = []
    if aug.scale != (1.0, 1.0):
        s = fn.random.uniform(range=list(aug.scale))
        transforms.append(fn.transforms.scale(scale=fn.stack(s, s), center=center))
    if aug.rotation_deg > 0:
        transforms.append(fn.transforms.rotation(
            angle=fn.random.uniform(range=[-aug.rotation_deg, aug.rotation_deg]), center=center))
    if aug.translate_px > 0:
        transforms.append(fn.transforms.translation(
            offset=fn.random.uniform(range=[-aug.translate_px, aug.translate_px], shape=[2])))
    if transforms:
        mt = transforms[0] if len(transforms) == 1 else fn.transforms.combine(*transforms)
        img = fn.warp_affine(img, matrix=mt, fill_value=float(background), inverse_map=False,
                             interp_type=types.INTERP_LINEAR)
    if aug.brightness != (1.0, 1.0) or aug.contrast != (1.0, 1.0):
        img = fn.brightness_contrast(img, brightness=fn.random.uniform(range=list(aug.brightness)),
                                     contrast=fn.random.uniform(range=list(aug.contrast)),
                                     contrast_center=128.0)
    if aug.noise_std > 0:
        img = fn.noise.gaussian(img, stddev=aug.noise_std)
    return img


def _augment_fpload(img, cfg: LoaderConfig, idx, spec: PipelineSpec):
    """The csrc operators: warp → occlusion → photometric, normalised to float in the last pass."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types

    from fpload.ops import augment
    from fpload.ops._config import OutputOps

    sample_idx = decode_int_member(idx)
    schedule = EpochSchedule(spec.split_size, cfg.batch_size, spec.rank, spec.world_size)
    batch = cfg.batch_size

    def epochs(info):
        return [np.array(schedule.epoch_of(info.iteration), dtype=np.int64)] * batch

    epoch = fn.external_source(source=epochs, batch=True, batch_info=True)
    ops = cfg.augment.ops.model_copy(update={"output": OutputOps(
        dtype=cfg.output, mean=cfg.mean * 255.0, std=cfg.std * 255.0)})
    return augment(img, sample_idx=sample_idx, epoch=epoch, config=ops, seed=cfg.seed, device=spec.device)


def _to_chw(img, size: tuple[int, int]):
    """HWC with one channel → CHW: the same bytes, so a metadata-only reshape, not a transpose."""
    import nvidia.dali.fn as fn

    return fn.reshape(img, shape=[1, size[0], size[1]], layout="CHW")


def decode_int_member(digits):
    """DALI graph node: a ``cls``/``idx`` member's fixed-width ASCII digits → an int64 scalar
    (the in-pipeline twin of :func:`fpload.formats.decode_int_members`)."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types

    weights = types.Constant(formats.int_member_weights(), dtype=types.INT64)
    return fn.reductions.sum((fn.cast(digits, dtype=types.INT64) - ord("0")) * weights, axes=[0])


def reader_exts(encoding: str) -> list[str]:
    """The members the loader's reader takes, in the shard's member order
    (:data:`fpload.formats.MEMBER_ORDER`; the image's extension stands for ``image``, ``json`` is
    not read). Raw encodings add ``shape``."""
    image = {"raw-lz4": "lz4", "raw": "raw"}.get(encoding, ENCODED_EXTS)
    raw = encoding in ("raw", "raw-lz4")
    return [image if m == "image" else m for m in formats.MEMBER_ORDER
            if m != "json" and (m != "shape" or raw)]


def build_pipeline(spec: PipelineSpec, cfg: LoaderConfig, *, augment: bool):
    """Build (but do not start) the DALI pipeline of one rank.

    Outputs: ``images`` (N×1×H×W; float32/float16 normalised, or uint8 grey levels, per
    ``cfg.output``), ``cls`` and ``idx`` as fixed-width ASCII
    digits (decoded to integers by the loader, see :func:`fpload.formats.decode_int_members`).
    """
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def

    raw = spec.encoding in ("raw", "raw-lz4")
    gpu = spec.device == "gpu"
    exts = reader_exts(spec.encoding)
    dtypes = [types.UINT8] + ([types.INT32] if raw else []) + [types.UINT8, types.UINT8]
    h, w = spec.image_size
    use_fpload = augment and cfg.augment.enabled and cfg.augment.backend == "fpload"
    use_stock = augment and cfg.augment.enabled and cfg.augment.backend == "stock"
    if use_fpload or (spec.encoding == "raw-lz4" and not gpu):
        from fpload.ops import load_plugin, require_gpu_backend

        # PluginError names what is missing
        require_gpu_backend() if gpu and use_fpload else load_plugin()

    @pipeline_def(batch_size=cfg.batch_size, num_threads=spec.num_threads, device_id=spec.device_id,
                  seed=cfg.seed * 1_000_003 + spec.rank, prefetch_queue_depth=cfg.prefetch,
                  exec_dynamic=True)
    def pipe():
        outs = fn.readers.webdataset(
            paths=[str(p) for p in spec.shards], index_paths=[str(p) for p in spec.indexes],
            ext=exts, dtypes=dtypes, missing_component_behavior="error", name=READER_NAME,
            shard_id=spec.rank, num_shards=spec.world_size, pad_last_batch=True,
            random_shuffle=cfg.shuffle, initial_fill=cfg.shuffle_buffer, seed=cfg.seed + 7919 * spec.rank,
            prefetch_queue_depth=1)
        data, cls, idx = outs[0], outs[-2], outs[-1]
        if spec.encoding == "raw":
            img = fn.reshape(data.gpu() if gpu else data, shape=outs[1], layout="HWC")
        elif spec.encoding == "raw-lz4":
            if gpu:
                img = fn.decoders.inflate(data.gpu(), shape=outs[1], algorithm="LZ4", layout="HWC")
            else:
                img = fn.fpload_inflate(data, outs[1])  # the plugin's CPU twin of decoders.inflate
        else:
            img = fn.decoders.image(data, device="mixed" if gpu else "cpu", output_type=types.GRAY)
        out_type = {"float32": types.FLOAT, "float16": types.FLOAT16, "uint8": types.UINT8}[cfg.output]
        fill = float(cfg.background)
        if not (use_fpload or use_stock):
            if cfg.output == "uint8":
                if not spec.uniform:
                    img = fn.crop(img, crop=[h, w], out_of_bounds_policy="pad", fill_values=fill)
                return _to_chw(img, (h, w)), cls, idx
            # one pass: centre crop/pad to the batch size and normalise (padding in output units)
            img = fn.crop_mirror_normalize(
                img, crop=[h, w], out_of_bounds_policy="pad", dtype=out_type, output_layout="CHW",
                mean=[cfg.mean * 255.0], std=[cfg.std * 255.0],
                fill_values=[(fill - cfg.mean * 255.0) / (cfg.std * 255.0)])
            return img, cls, idx
        if not spec.uniform:
            img = fn.crop(img, crop=[h, w], out_of_bounds_policy="pad", fill_values=fill)
        if use_fpload:
            return _to_chw(_augment_fpload(img, cfg, idx, spec), (h, w)), cls, idx
        img = _augment_stock(img, cfg.augment.stock, (h, w), cfg.background)
        if cfg.output == "uint8":
            return _to_chw(img, (h, w)), cls, idx
        img = fn.crop_mirror_normalize(img, dtype=out_type, output_layout="CHW",
                                       mean=[cfg.mean * 255.0], std=[cfg.std * 255.0])
        return img, cls, idx

    try:
        return pipe()
    except RuntimeError as err:  # pragma: no cover - depends on the machine
        raise DeviceError(f"cannot build the DALI pipeline on {spec.device}: {str(err).splitlines()[0]}") from None
