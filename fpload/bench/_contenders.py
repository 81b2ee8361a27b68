"""The loader benchmark's contenders, each delivering N×1×H×W float32 PyTorch tensors with the
same augmentation: one affine warp (rotation ±15°, scale 0.95–1.05, translation ±16 px), then
brightness/contrast and Gaussian noise (σ 4 grey levels), normalised to (x - 127.5) / 127.5.

- ``fpload-gpu`` / ``fpload-cpu``: :class:`fpload.load.Loader` with the csrc operators.
- ``fpload-noaug``: the same Loader with augmentation off (decode → crop → normalise), ``shuffle:
  global`` (the default); ``fpload-noaug-buffer`` / ``fpload-noaug-none``: the same with ``shuffle:
  buffer`` / ``none``, the shuffle modes side by side.
- ``fpload-noaug-u8``: augmentation off and ``output: uint8`` (grey levels, normalised later on
  the GPU): the fpload path closest to the I/O floor.
- ``dali-stock``: the Loader with ``backend: stock`` (``warp_affine``, ``brightness_contrast``,
  ``noise.gaussian``): what a DALI user writes without fpload.
- ``wds-torch``: ``webdataset.WebDataset`` + ``torch.utils.data.DataLoader`` (``num_workers`` =
  cores), PIL decode and affine, NumPy brightness/contrast/noise: the common choice.
- ``io-floor``: DALI's ``readers.webdataset`` returning the undecoded members (no decode, no copy
  to torch): how fast the shard bytes can be read at all.
"""

from __future__ import annotations

import gc
import io
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from fpload.bench._common import Window, cores

ROTATION_DEG = 15.0
SCALE = (0.95, 1.05)
TRANSLATE_PX = 16.0
CONTRAST = (0.8, 1.2)
BRIGHTNESS = (0.92, 1.08)       # multiplicative (DALI brightness_contrast, NumPy)
BRIGHTNESS_SHIFT = (-0.08, 0.08)  # additive fraction of full scale (fpload_photometric)
NOISE_STD = 4.0
MEAN = STD = 127.5

CONTENDERS = ("fpload-gpu", "fpload-cpu", "fpload-noaug", "fpload-noaug-buffer", "fpload-noaug-none",
              "fpload-noaug-u8", "dali-stock", "wds-torch", "io-floor")
DESCRIPTIONS = {
    "fpload-gpu": "fpload Loader on GPU: DALI mixed decode + csrc operators (CUDA)",
    "fpload-cpu": "fpload Loader on CPU: DALI CPU decode + csrc operators (C++)",
    "fpload-noaug": "fpload Loader on CPU, augmentation off, shuffle: global",
    "fpload-noaug-buffer": "fpload Loader on CPU, augmentation off, shuffle: buffer",
    "fpload-noaug-none": "fpload Loader on CPU, augmentation off, shuffle: none",
    "fpload-noaug-u8": "fpload Loader on CPU, augmentation off, uint8 output",
    "dali-stock": "DALI stock operators on CPU: warp_affine + brightness_contrast + noise.gaussian",
    "wds-torch": "webdataset + torch DataLoader (workers = cores), PIL affine + NumPy photometric",
    "io-floor": "DALI readers.webdataset, undecoded bytes (no decode)",
}


def fpload_ops():
    """The fpload operator chain of the benchmark: affine warp (no distortion) + tone and noise."""
    from fpload.ops import AugmentOps, OcclusionOps, PhotometricOps, WarpOps

    return AugmentOps(
        warp=WarpOps(angle=(-ROTATION_DEG, ROTATION_DEG), scale=SCALE, translate=(TRANSLATE_PX, TRANSLATE_PX),
                     distortion=0.0, center_mode="image"),
        occlusion=OcclusionOps(enabled=False),
        photometric=PhotometricOps(contrast=CONTRAST, brightness=BRIGHTNESS_SHIFT, gamma=(1.0, 1.0),
                                   noise_std=(NOISE_STD, NOISE_STD), blur_prob=0.0, dry_prob=0.0,
                                   wet_prob=0.0, invert_prob=0.0))


def stock_ops():
    """The same augmentation with DALI's stock operators."""
    from fpload.load import StockAugmentConfig

    return StockAugmentConfig(rotation_deg=ROTATION_DEG, translate_px=TRANSLATE_PX, scale=SCALE,
                              brightness=BRIGHTNESS, contrast=CONTRAST, noise_std=NOISE_STD)


# -------------------------------------------------------------------------------------------
# webdataset + DataLoader: decode and augmentation in the worker processes
# -------------------------------------------------------------------------------------------

_RNG: np.random.Generator | None = None


def _rng() -> np.random.Generator:
    global _RNG
    if _RNG is None:
        import torch.utils.data

        info = torch.utils.data.get_worker_info()
        _RNG = np.random.default_rng(info.seed if info is not None else 0)
    return _RNG


def _decode_pil(sample: dict[str, Any]):
    from PIL import Image

    for ext in ("png", "jpg"):
        if ext in sample:
            img = Image.open(io.BytesIO(sample[ext]))
            return img if img.mode == "L" else img.convert("L")
    h, w, _ = (int(v) for v in np.frombuffer(sample["shape"], dtype="<i4"))
    if "lz4" in sample:
        import lz4.block

        data = lz4.block.decompress(sample["lz4"], uncompressed_size=h * w)
    else:
        data = sample["raw"]
    return Image.fromarray(np.frombuffer(data, dtype=np.uint8).reshape(h, w))


def affine_pil(img, rng: np.random.Generator):
    """Rotation, scale and translation about the centre in one PIL affine transform (bilinear)."""
    from PIL import Image

    w, h = img.size
    a = np.deg2rad(rng.uniform(-ROTATION_DEG, ROTATION_DEG))
    s = rng.uniform(*SCALE)
    tx, ty = rng.uniform(-TRANSLATE_PX, TRANSLATE_PX, 2)
    cx, cy = w / 2.0, h / 2.0
    # forward p' = c + s·R(p - c) + t, so PIL's output→input map is p = c + R⁻¹(p' - c - t) / s
    ia, ib = np.cos(a) / s, np.sin(a) / s
    id_, ie = -np.sin(a) / s, np.cos(a) / s
    c = cx - ia * (cx + tx) - ib * (cy + ty)
    f = cy - id_ * (cx + tx) - ie * (cy + ty)
    return img.transform((w, h), Image.Transform.AFFINE, (ia, ib, c, id_, ie, f),
                         resample=Image.Resampling.BILINEAR, fillcolor=255)


def photometric_numpy(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast about 128, brightness, Gaussian noise, clipped, normalised to float32 (1×H×W)."""
    x = pixels.astype(np.float32)
    x -= 128.0
    x *= rng.uniform(*CONTRAST)
    x += 128.0
    x *= rng.uniform(*BRIGHTNESS)
    x += rng.standard_normal(x.shape, dtype=np.float32) * NOISE_STD
    np.clip(x, 0.0, 255.0, out=x)
    x -= MEAN
    x /= STD
    return x[None]


def _decode_augment(sample: dict[str, Any]) -> tuple[np.ndarray, int, int]:
    rng = _rng()
    img = affine_pil(_decode_pil(sample), rng)
    return photometric_numpy(np.asarray(img), rng), int(sample["cls"]), int(sample["idx"])


def _collate(samples: list[tuple[np.ndarray, int, int]]):
    import torch

    images, labels, index = zip(*samples)
    return torch.from_numpy(np.stack(images)), torch.tensor(labels), torch.tensor(index)


def _wds_batches(version: Path, batch: int, workers: int, holder: dict) -> Iterator[Any]:
    import torch.utils.data
    import webdataset as wds

    from fpload.versions import open_version

    urls = [str(p) for p in open_version(version).shard_paths("train")]
    ds = (wds.WebDataset(urls, shardshuffle=False, empty_check=False)
          .shuffle(1024, initial=256)
          .map(_decode_augment)
          .batched(batch, collation_fn=_collate, partial=True))
    dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers, persistent_workers=workers > 0,
                                     prefetch_factor=2 if workers > 0 else None)
    holder["dl"] = dl
    while True:
        yield from dl


def _close_dataloader(dl) -> None:
    it = getattr(dl, "_iterator", None)
    shutdown = getattr(it, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()  # joins the worker processes, so their CPU time is reaped
    gc.collect()


# -------------------------------------------------------------------------------------------
# DALI contenders
# -------------------------------------------------------------------------------------------

def _loader_batches(loader) -> Iterator[Any]:
    while True:
        empty = True
        for b in loader:
            empty = False
            yield b
        if empty:
            raise RuntimeError(f"{loader!r} yields no batches")


def _io_floor_batches(version: Path, batch: int, threads: int) -> Iterator[Any]:
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def

    from fpload.load import LoaderConfig
    from fpload.load._pipeline import ENCODED_EXTS
    from fpload.versions import open_version

    v = open_version(version)
    raw = v.encoding in ("raw", "raw-lz4")
    image_ext = {"raw": "raw", "raw-lz4": "lz4"}.get(v.encoding, ENCODED_EXTS)
    exts = [image_ext] + (["shape"] if raw else []) + ["cls", "idx"]
    dtypes = [types.UINT8] + ([types.INT32] if raw else []) + [types.UINT8, types.UINT8]
    cfg = LoaderConfig()

    @pipeline_def(batch_size=batch, num_threads=threads, device_id=None, prefetch_queue_depth=cfg.prefetch,
                  exec_dynamic=True)
    def pipe():
        return tuple(fn.readers.webdataset(
            paths=[str(p) for p in v.shard_paths("train")], index_paths=[str(p) for p in v.index_paths("train")],
            ext=exts, dtypes=dtypes, missing_component_behavior="error", random_shuffle=True,
            initial_fill=cfg.shuffle_buffer, pad_last_batch=True, prefetch_queue_depth=1))

    p = pipe()
    p.build()
    while True:
        out = p.run()
        yield [range(len(out[0]))]


def _threads() -> int:
    return max(1, min(8, cores()))


def run_loader_contender(spec: dict[str, Any], window: Window) -> dict[str, Any]:
    """Run one contender on one version: a warm-up batch, then ``spec['samples']`` timed samples."""
    from fpload.versions import open_version

    name, version, batch = spec["contender"], Path(spec["version"]), int(spec["batch"])
    holder: dict[str, Any] = {}
    if name == "wds-torch":
        batches = _wds_batches(version, batch, int(spec.get("workers") or cores()), holder)
    elif name == "io-floor":
        batches = _io_floor_batches(version, batch, _threads())
    else:
        from fpload.load import Loader

        augment: Any = {"fpload-gpu": fpload_ops(), "fpload-cpu": fpload_ops(), "fpload-noaug": False,
                        "fpload-noaug-buffer": False, "fpload-noaug-none": False,
                        "fpload-noaug-u8": False, "dali-stock": stock_ops()}[name]
        device = "gpu" if name == "fpload-gpu" else "cpu"
        output = "uint8" if name.endswith("-u8") else "float32"
        shuffle = {"fpload-noaug-buffer": "buffer", "fpload-noaug-none": "none"}.get(name, "global")
        loader = Loader(version, split="train", batch_size=batch, device=device, seed=0, augment=augment,
                        num_threads=_threads(), output=output, shuffle=shuffle)
        batches = _loader_batches(loader)
    sync = _cuda_sync if name == "fpload-gpu" else (lambda: None)
    try:
        first = next(batches)  # warm-up: start-up, first decode, prefetch
        shape = list(first[0].shape) if hasattr(first[0], "shape") else None
        dtype = str(getattr(first[0], "dtype", "bytes"))
        target = int(spec["samples"])
        window.start()
        count = 0
        while count < target:
            out = next(batches)
            count += len(out[0])
        sync()
        window.stop(count)
    finally:
        batches.close()
        if "dl" in holder:
            _close_dataloader(holder["dl"])
    v = open_version(version)
    per_sample = sum(s["bytes"] for s in v.shards("train")) / max(1, v.counts["train"])
    sps = window.samples / window.seconds if window.seconds > 0 else 0.0
    return {"batch_shape": shape, "dtype": dtype, "bytes_per_sample": round(per_sample, 1),
            "mb_per_s": round(sps * per_sample / 1e6, 2)}


def _cuda_sync() -> None:
    import torch

    torch.cuda.synchronize()
