"""The DALI pipeline of the loader: one graph for both devices, placements chosen by ``device``.

Samples enter through ``fn.external_source`` in the order the loader computes
(:mod:`fpload.load._order`), read by (shard, offset, size) from the shards' indexes
(:mod:`fpload.load._source`); DALI decodes, crops, augments and normalises.
"""

from __future__ import annotations

from dataclasses import dataclass

from fpload import formats
from fpload.load._config import LoaderConfig, StockAugmentConfig
from fpload.errors import DeviceError

#: extensions an encoded (passthrough/png/jpeg) image member may have
ENCODED_EXTS = "png;jpg;jp2;tiff;bmp"


@dataclass(frozen=True)
class PipelineSpec:
    """How one rank's pipeline is placed and what it decodes (the samples come from a feed)."""

    encoding: str
    device: str            # "gpu" or "cpu"
    device_id: int | None  # None for CPU-only pipelines
    rank: int
    image_size: tuple[int, int]
    num_threads: int
    uniform: bool = False  # every image of the version already has image_size: no crop needed


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


def _augment_fpload(img, cfg: LoaderConfig, sample_idx, epoch, spec: PipelineSpec):
    """The csrc operators: warp → occlusion → photometric, normalised to float in the last pass;
    random draws keyed by (seed, epoch, global sample index), both fed per sample."""
    from fpload.ops import augment
    from fpload.ops._config import OutputOps

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


def _centroid_sums(img, threshold: int):
    """Per-column and per-row sums (int64, exact) of ``max(0, threshold - pixel)``: the
    foreground weights ``fpload_warp`` centres on (``center_mode: foreground``)."""
    import nvidia.dali.fn as fn
    import nvidia.dali.math as dmath
    import nvidia.dali.types as types

    wt = dmath.max(types.Constant(int(threshold), dtype=types.INT32) - fn.cast(img, dtype=types.INT32),
                   types.Constant(0, dtype=types.INT32))
    return (fn.reductions.sum(wt, axes=[0, 2], dtype=types.INT64),
            fn.reductions.sum(wt, axes=[1, 2], dtype=types.INT64))


def build_pipeline(spec: PipelineSpec, cfg: LoaderConfig, *, augment: bool, source, centroid: bool = False):
    """Build (but do not start) the DALI pipeline of one rank.

    ``source`` is called once per pipeline iteration (``fn.external_source``, batch mode) and
    returns the batch to decode: ``(images, shapes, indexes, epochs)``, lists of
    ``cfg.batch_size`` arrays: the image members' bytes (uint8), their ``shape`` members
    (int32 ``[H, W, C]``; raw encodings only, else None), and the global sample index and epoch of
    each sample (int64 scalars, which key the fpload operators' random draws). The one output is
    ``images`` (N×1×H×W; float32/float16 normalised, or uint8 grey levels, per ``cfg.output``);
    with ``centroid`` (fpload backend, warp with ``center_mode: foreground``) two more follow: the
    warp input's foreground weight sums per column and per row (:mod:`fpload.load._geometry`).
    """
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def

    raw = spec.encoding in ("raw", "raw-lz4")
    gpu = spec.device == "gpu"
    h, w = spec.image_size
    use_fpload = augment and cfg.augment.enabled and cfg.augment.backend == "fpload"
    use_stock = augment and cfg.augment.enabled and cfg.augment.backend == "stock"
    if use_fpload or (spec.encoding == "raw-lz4" and not gpu):
        from fpload.ops import load_plugin, require_gpu_backend

        # PluginError names what is missing
        require_gpu_backend() if gpu and use_fpload else load_plugin()

    def feed():  # only the outputs the graph uses (DALI warns about the others)
        images, shapes, indexes, epochs = source()
        return tuple([images] + ([shapes] if raw else []) + ([indexes, epochs] if use_fpload else []))

    dtypes = [types.UINT8] + ([types.INT32] if raw else []) + ([types.INT64, types.INT64] if use_fpload else [])
    ndims = [1] + ([1] if raw else []) + ([0, 0] if use_fpload else [])

    @pipeline_def(batch_size=cfg.batch_size, num_threads=spec.num_threads, device_id=spec.device_id,
                  seed=cfg.seed * 1_000_003 + spec.rank, prefetch_queue_depth=cfg.prefetch,
                  exec_dynamic=True)
    def pipe():
        outs = fn.external_source(source=feed, num_outputs=len(dtypes), batch=True, dtype=dtypes,
                                  ndim=ndims)
        data, idx, epoch = (outs[0], outs[-2], outs[-1]) if use_fpload else (outs[0], None, None)
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
                return _to_chw(img, (h, w))
            # one pass: centre crop/pad to the batch size and normalise (padding in output units)
            return fn.crop_mirror_normalize(
                img, crop=[h, w], out_of_bounds_policy="pad", dtype=out_type, output_layout="CHW",
                mean=[cfg.mean * 255.0], std=[cfg.std * 255.0],
                fill_values=[(fill - cfg.mean * 255.0) / (cfg.std * 255.0)])
        if not spec.uniform:
            img = fn.crop(img, crop=[h, w], out_of_bounds_policy="pad", fill_values=fill)
        if use_fpload:
            out = _to_chw(_augment_fpload(img, cfg, idx, epoch, spec), (h, w))
            if centroid:
                return (out, *_centroid_sums(img, cfg.augment.ops.warp.fg_threshold))
            return out
        img = _augment_stock(img, cfg.augment.stock, (h, w), cfg.background)
        if cfg.output == "uint8":
            return _to_chw(img, (h, w))
        return fn.crop_mirror_normalize(img, dtype=out_type, output_layout="CHW",
                                        mean=[cfg.mean * 255.0], std=[cfg.std * 255.0])

    try:
        return pipe()
    except RuntimeError as err:  # pragma: no cover - depends on the machine
        raise DeviceError(f"cannot build the DALI pipeline on {spec.device}: {str(err).splitlines()[0]}") from None
