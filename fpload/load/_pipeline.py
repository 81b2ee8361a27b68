"""The DALI pipeline of the loader: one graph for both devices, placements chosen by ``device``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpload import formats
from fpload.config import LoaderConfig, StockAugmentConfig
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


def _inflate_lz4_cpu(data: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """CPU twin of ``fn.decoders.inflate`` for LZ4 blocks (used until the csrc CPU inflate lands)."""
    import lz4.block

    h, w, c = (int(x) for x in shape)
    out = lz4.block.decompress(data.tobytes(), uncompressed_size=h * w * c)
    return np.frombuffer(out, dtype=np.uint8).reshape(h, w, c)


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


def build_pipeline(spec: PipelineSpec, cfg: LoaderConfig, *, augment: bool):
    """Build (but do not start) the DALI pipeline of one rank.

    Outputs: ``images`` (float, N×1×H×W, normalised), ``cls`` and ``idx`` as fixed-width ASCII
    digits (decoded to integers by the loader, see :func:`fpload.formats.decode_int_members`).
    """
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def

    raw = spec.encoding in ("raw", "raw-lz4")
    gpu = spec.device == "gpu"
    if spec.encoding == "raw-lz4":
        image_ext = "lz4"
    elif spec.encoding == "raw":
        image_ext = "raw"
    else:
        image_ext = ENCODED_EXTS
    exts = [image_ext] + (["shape"] if raw else []) + ["cls", "idx"]
    dtypes = [types.UINT8] + ([types.INT32] if raw else []) + [types.UINT8, types.UINT8]
    h, w = spec.image_size

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
                img = fn.python_function(data, outs[1], function=_inflate_lz4_cpu, num_outputs=1)
                img = fn.reshape(img, layout="HWC")
        else:
            img = fn.decoders.image(data, device="mixed" if gpu else "cpu", output_type=types.GRAY)
        img = fn.crop(img, crop=[h, w], out_of_bounds_policy="pad", fill_values=float(cfg.background))
        if augment and cfg.augment.enabled:
            img = _augment_stock(img, cfg.augment, (h, w), cfg.background)
        img = fn.crop_mirror_normalize(img, dtype=types.FLOAT, output_layout="CHW",
                                       mean=[cfg.mean * 255.0], std=[cfg.std * 255.0])
        return img, cls, idx

    try:
        return pipe()
    except RuntimeError as err:  # pragma: no cover - depends on the machine
        raise DeviceError(f"cannot build the DALI pipeline on {spec.device}: {str(err).splitlines()[0]}") from None
