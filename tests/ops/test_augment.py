"""The augment() chain in a CPU pipeline: identity config, determinism, float output."""

from __future__ import annotations

import numpy as np
import pytest

from fpload.errors import PluginError, UsageError
from fpload.ops import AugmentOps, _plugin, augment


def _run_chain(images: list[np.ndarray], idx: list[int], config: AugmentOps, seed: int = 0, epoch: int = 0) -> list[np.ndarray]:
    from nvidia.dali import fn, pipeline_def

    n = len(images)

    @pipeline_def(batch_size=n, num_threads=2, device_id=None, prefetch_queue_depth=1)
    def pipe():  # noqa: ANN202
        x = fn.external_source(source=lambda: images, layout="HWC", batch=True)
        i = fn.external_source(source=lambda: [np.array(v, np.int64) for v in idx], batch=True)
        e = fn.external_source(source=lambda: [np.array(epoch, np.int64)] * n, batch=True)
        return augment(x, sample_idx=i, epoch=e, config=config, seed=seed, device="cpu")

    p = pipe()
    p.build()
    (out,) = p.run()
    return [np.array(out[k]) for k in range(n)]


def test_identity_config_gives_identity(random_batch, plugin: dict) -> None:
    imgs = random_batch(np.random.default_rng(0), [(40, 41), (17, 64)])
    for got, img in zip(_run_chain(imgs, [0, 1], AugmentOps.identity()), imgs):
        assert np.array_equal(got, img)


def test_default_chain_is_deterministic_float_and_augments(random_batch, plugin: dict) -> None:
    imgs = random_batch(np.random.default_rng(1), [(64, 64), (64, 64), (50, 71)])
    cfg = AugmentOps()
    a = _run_chain(imgs, [0, 1, 2], cfg, seed=3)
    b = _run_chain(imgs, [0, 1, 2], cfg, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(x.dtype == np.float32 and x.shape == i.shape for x, i in zip(a, imgs))
    assert all(-1.0 - 1e-6 <= x.min() and x.max() <= 1.0 + 1e-6 for x in a)
    plain = [(i.astype(np.float32) - 127.5) / 127.5 for i in imgs]
    assert all(not np.allclose(x, p) for x, p in zip(a, plain))


def test_float_output_without_photometric_is_just_normalised(random_batch, plugin: dict) -> None:
    imgs = random_batch(np.random.default_rng(2), [(30, 31)])
    cfg = AugmentOps.from_dict({**AugmentOps.identity().to_dict(), "output": {"dtype": "float32", "mean": 100.0, "std": 50.0}})
    (got,) = _run_chain(imgs, [0], cfg)
    np.testing.assert_allclose(got, (imgs[0].astype(np.float32) - 100.0) / 50.0, rtol=1e-6, atol=1e-6)


def test_bad_device_and_seed_are_usage_errors(plugin: dict) -> None:
    with pytest.raises(UsageError, match="device"):
        augment(None, sample_idx=None, epoch=None, config=AugmentOps(), seed=0, device="tpu")
    with pytest.raises(UsageError, match="seed"):
        augment(None, sample_idx=None, epoch=None, config=AugmentOps(), seed=1.5, device="cpu")  # type: ignore[arg-type]


def test_gpu_device_without_gpu_backend_refuses(plugin: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    if plugin["gpu_backend"]:
        monkeypatch.setattr(_plugin, "_loaded", {**_plugin._loaded, "gpu_backend": False})  # type: ignore[dict-item]
        monkeypatch.setattr(_plugin, "plugin_info", lambda: {**plugin, "gpu_backend": False})
    with pytest.raises(PluginError, match="CUDA backend"):
        augment(None, sample_idx=None, epoch=None, config=AugmentOps(), seed=0, device="gpu")
