"""Fixtures of the operator tests: the plugin (built CPU-only once if missing) and a runner."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest



def _gpu_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover
        return False


@pytest.fixture(scope="session")
def gpu() -> None:
    if not _gpu_available():
        pytest.skip("no CUDA GPU visible")


def _random_batch(rng: np.random.Generator, shapes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """Fingerprint-like test images: a ridge pattern with noise, light background."""
    out = []
    for h, w in shapes:
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        ridges = 128 + 100 * np.sin((x * np.cos(0.7) + y * np.sin(0.7)) * 0.6 + rng.uniform(0, 6))
        blob = ((x - w / 2) ** 2 / (0.4 * w) ** 2 + (y - h / 2) ** 2 / (0.45 * h) ** 2) < 1
        img = np.where(blob, ridges, 235) + rng.normal(0, 12, (h, w))
        out.append(np.clip(img, 0, 255).astype(np.uint8)[:, :, None])
    return out


@pytest.fixture(scope="session")
def random_batch() -> Callable[..., list[np.ndarray]]:
    """``random_batch(rng, shapes)`` → fingerprint-like uint8 HWC images."""
    return _random_batch


Runner = Callable[..., list[np.ndarray]]


@pytest.fixture(scope="session")
def run_op(plugin: dict) -> Runner:
    """``run_op(name, images, sample_idx, epoch=0, seed=0, device="cpu", **kw)`` → outputs."""

    def run(name: str, images: list[np.ndarray], sample_idx: Sequence[int], epoch: int = 0, seed: int = 0,
            device: str = "cpu", **kw: object) -> list[np.ndarray]:
        from nvidia.dali import fn, pipeline_def

        n = len(images)
        idx = [np.array(v, dtype=np.int64) for v in sample_idx]
        ep = [np.array(epoch, dtype=np.int64)] * n

        @pipeline_def(batch_size=n, num_threads=2, device_id=0 if device == "gpu" else None, prefetch_queue_depth=1)
        def pipe():  # noqa: ANN202
            x = fn.external_source(source=lambda: images, layout="HWC", batch=True)
            i = fn.external_source(source=lambda: idx, batch=True)
            e = fn.external_source(source=lambda: ep, batch=True)
            if device == "gpu":
                x = x.gpu()
            return getattr(fn, name)(x, sample_idx=i, epoch=e, aug_seed=seed, device=device, **kw)

        p = pipe()
        p.build()
        (out,) = p.run()
        if device == "gpu":
            out = out.as_cpu()
        return [np.array(out[k]) for k in range(n)]

    return run
