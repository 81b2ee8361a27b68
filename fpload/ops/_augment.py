"""The augmentation chain inside a DALI pipeline definition: warp → occlusion → photometric."""

from __future__ import annotations

from typing import Any

from fpload.errors import UsageError
from fpload.ops._config import AugmentOps
from fpload.ops._plugin import load_plugin, require_gpu_backend

_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


def augment(images: Any, *, sample_idx: Any, epoch: Any, config: AugmentOps, seed: int, device: str) -> Any:
    """Apply the configured fpload operators to ``images`` (DataNode, uint8 HWC, C = 1).

    ``sample_idx`` and ``epoch``: CPU DataNodes of int64 scalars per sample (argument inputs),
    which with ``seed`` key every sample's random stream, so "cpu" and "gpu" give the same
    augmentation. Returns uint8, or float32/float16 normalised per ``config.output``. A GPU
    pipeline with a plugin built without its CUDA backend raises PluginError.
    """
    if device not in ("cpu", "gpu"):
        raise UsageError(f"augment: device must be 'cpu' or 'gpu', got {device!r}")
    if not isinstance(config, AugmentOps):
        raise UsageError(f"augment: config must be an AugmentOps, got {type(config).__name__}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not _INT64_MIN <= seed <= _UINT64_MAX:
        raise UsageError(f"augment: seed must be an integer in [-2**63, 2**64), got {seed!r}")
    if device == "gpu":
        require_gpu_backend()
    else:
        load_plugin()
    from nvidia.dali import fn, types

    aug_seed = seed - 2**64 if seed >= 2**63 else seed  # same 64 bits, as DALI's int64 argument
    common = {"sample_idx": sample_idx, "epoch": epoch, "aug_seed": aug_seed, "device": device}
    x = images.gpu() if device == "gpu" and getattr(images, "device", "gpu") == "cpu" else images
    if config.warp.enabled:
        x = fn.fpload_warp(x, **common, **config.warp.op_kwargs())
    if config.occlusion.enabled:
        x = fn.fpload_occlusion(x, **common, **config.occlusion.op_kwargs())
    out = config.output
    if config.photometric.enabled or out.dtype != "uint8":
        kw = config.photometric.op_kwargs() if config.photometric.enabled else {}
        dtype = {"uint8": types.UINT8, "float32": types.FLOAT, "float16": types.FLOAT16}[out.dtype]
        x = fn.fpload_photometric(x, **common, **kw, dtype=dtype, mean=out.mean, std=out.std)
    return x
