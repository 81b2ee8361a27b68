"""GPU backends against the CPU backends (same function, same random streams). Needs a GPU."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

CASES = {
    "fpload_warp": dict(angle=[-20.0, 20.0], scale=[0.9, 1.1], distortion=5.0, translate=[4.0, 4.0],
                        center_mode="foreground"),
    "fpload_occlusion": dict(contact_prob=0.8, window_prob=0.5, erase_max=2, blob_max=3),
    "fpload_photometric": dict(contrast=[0.7, 1.3], gamma=[0.8, 1.2], noise_std=[0.0, 6.0], blur_prob=0.5,
                               dry_prob=0.3, wet_prob=0.3, invert_prob=0.3),
}


@pytest.mark.parametrize("op", sorted(CASES))
def test_gpu_matches_cpu(gpu, plugin, run_op, random_batch, op: str) -> None:
    if not plugin["gpu_backend"]:
        pytest.fail("the plugin was built without its CUDA backend; run `fpload ops build --cuda`")
    imgs = random_batch(np.random.default_rng(0), [(64, 64), (37, 51), (128, 97), (1, 7)])
    idx = [0, 9, 2**33, 4]
    cpu = run_op(op, imgs, idx, epoch=3, seed=5, device="cpu", **CASES[op])
    dev = run_op(op, imgs, idx, epoch=3, seed=5, device="gpu", **CASES[op])
    for c, g in zip(cpu, dev):
        assert c.shape == g.shape
        assert int(np.abs(c.astype(np.int16) - g.astype(np.int16)).max()) <= 1
