"""Each operator's CPU backend against the NumPy reference (within 1 grey level / 1e-3 relative)."""

from __future__ import annotations

import numpy as np
import pytest

from fpload.ops import _reference as ref

SHAPES = [(64, 64), (37, 51), (96, 33), (1, 7), (128, 97)]  # odd widths, mixed sizes in one batch
IDX = [0, 5, 123456789012, 3, 2**40 + 1]

WARP_CASES = {
    "affine": dict(angle=[-30.0, 30.0], scale=[0.8, 1.25], translate=[6.0, 4.0]),
    "distortion": dict(angle=[-10.0, 10.0], distortion=5.0, grid=5, fill=200.0),
    "nearest_foreground": dict(angle=[-20.0, 20.0], distortion=3.0, interp="nearest", center_mode="foreground"),
    "resize_center": dict(scale=[0.9, 1.1], size=[48, 40], center=[20.0, 18.0]),
}
OCC_CASES = {
    "contact": dict(contact_prob=1.0, contact_axes=[0.4, 0.9], contact_jitter=0.1, fill=250),
    "all": dict(contact_prob=0.7, window_prob=0.7, window_size=[0.5, 0.9], erase_max=3, erase_area=[0.02, 0.1],
                blob_max=4, blob_radius=[0.05, 0.2]),
}
PHOTO_CASES = {
    "tone_noise": dict(contrast=[0.6, 1.4], brightness=[-0.1, 0.1], gamma=[0.7, 1.4], noise_std=[2.0, 10.0]),
    "spatial": dict(blur_prob=0.5, blur_strength=[0.2, 1.0], dry_prob=0.3, wet_prob=0.3, invert_prob=0.5,
                    noise_std=[0.0, 4.0]),
}


def _compare_u8(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == np.uint8
        diff = np.abs(g.astype(np.int16) - w.astype(np.int16))
        assert int(diff.max(initial=0)) <= 1, f"max diff {diff.max()} at {np.unravel_index(diff.argmax(), diff.shape)}"


@pytest.mark.parametrize("case", sorted(WARP_CASES))
def test_warp_matches_reference(random_batch, run_op, case: str) -> None:
    imgs = random_batch(np.random.default_rng(1), SHAPES)
    kw = WARP_CASES[case]
    got = run_op("fpload_warp", imgs, IDX, epoch=2, seed=11, **kw)
    _compare_u8(got, ref.warp(imgs, IDX, 2, 11, **kw))


@pytest.mark.parametrize("case", sorted(OCC_CASES))
def test_occlusion_matches_reference(random_batch, run_op, case: str) -> None:
    imgs = random_batch(np.random.default_rng(2), SHAPES)
    kw = OCC_CASES[case]
    got = run_op("fpload_occlusion", imgs, IDX, epoch=1, seed=5, **kw)
    want = ref.occlusion(imgs, IDX, 1, 5, **kw)
    _compare_u8(got, want)
    assert any(not np.array_equal(g, i) for g, i in zip(got, imgs))


@pytest.mark.parametrize("case", sorted(PHOTO_CASES))
def test_photometric_u8_matches_reference(random_batch, run_op, case: str) -> None:
    imgs = random_batch(np.random.default_rng(3), SHAPES)
    kw = PHOTO_CASES[case]
    _compare_u8(run_op("fpload_photometric", imgs, IDX, epoch=0, seed=9, **kw), ref.photometric(imgs, IDX, 0, 9, **kw))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_photometric_float_matches_reference(random_batch, run_op, dtype: str) -> None:
    from nvidia.dali import types

    imgs = random_batch(np.random.default_rng(4), SHAPES)
    kw = dict(PHOTO_CASES["spatial"], contrast=[0.8, 1.2], gamma=[0.8, 1.2], mean=127.5, std=64.0)
    dali_dtype = types.FLOAT if dtype == "float32" else types.FLOAT16
    got = run_op("fpload_photometric", imgs, IDX, seed=3, dtype=dali_dtype, **kw)
    want = ref.photometric(imgs, IDX, 0, 3, dtype=dtype, **kw)
    for g, w in zip(got, want):
        assert g.dtype == np.dtype(dtype) and g.shape == w.shape
        rtol = 1e-3 if dtype == "float32" else 2e-3  # half has an 11-bit significand
        np.testing.assert_allclose(g.astype(np.float32), w.astype(np.float32), rtol=rtol, atol=rtol)


def test_warp_output_is_usually_bit_exact(random_batch, run_op) -> None:
    """Same float expressions, no FMA contraction: agreement is exact, not just within 1."""
    imgs = random_batch(np.random.default_rng(5), [(80, 81), (64, 63)])
    kw = WARP_CASES["distortion"]
    for g, w in zip(run_op("fpload_warp", imgs, [1, 2], seed=4, **kw), ref.warp(imgs, [1, 2], 0, 4, **kw)):
        assert np.array_equal(g, w)


@pytest.mark.parametrize("op", ["warp", "occlusion", "photometric"])
def test_small_batch_split_into_row_blocks_matches_reference(random_batch, run_op, op: str) -> None:
    """One or two large samples: the CPU backend splits them into row blocks across threads;
    rows wider than one CPU chunk (256 pixels) and not a multiple of it."""
    imgs = random_batch(np.random.default_rng(6), [(300, 517), (211, 260)])
    idx = [7, 8]
    if op == "warp":
        for kw in (WARP_CASES["distortion"], dict(WARP_CASES["nearest_foreground"], grid=7),
                   dict(WARP_CASES["affine"], center_mode="foreground")):
            for n in (1, 2):
                got = run_op("fpload_warp", imgs[:n], idx[:n], seed=4, **kw)
                want = ref.warp(imgs[:n], idx[:n], 0, 4, **kw)
                for g, w in zip(got, want):
                    assert np.array_equal(g, w)
    elif op == "occlusion":
        kw = OCC_CASES["all"]
        _compare_u8(run_op("fpload_occlusion", imgs[:1], idx[:1], seed=5, **kw), ref.occlusion(imgs[:1], idx[:1], 0, 5, **kw))
    else:
        for kw in (PHOTO_CASES["tone_noise"], dict(PHOTO_CASES["spatial"], blur_prob=1.0),
                   dict(PHOTO_CASES["spatial"], blur_prob=0.0, dry_prob=0.5, wet_prob=0.5)):
            for seed in (1, 2, 3):
                _compare_u8(run_op("fpload_photometric", imgs[:1], idx[:1], seed=seed, **kw),
                            ref.photometric(imgs[:1], idx[:1], 0, seed, **kw))


def test_photometric_float16_is_float32_rounded_to_nearest_even(random_batch, run_op) -> None:
    """The CPU half store rounds the float32 value to nearest even, as numpy's astype does."""
    from nvidia.dali import types

    imgs = random_batch(np.random.default_rng(7), [(64, 300), (33, 47)])
    kw = dict(PHOTO_CASES["tone_noise"], blur_prob=0.5, mean=100.0, std=3.0)  # wide range of halves
    f32 = run_op("fpload_photometric", imgs, [1, 2], seed=3, dtype=types.FLOAT, **kw)
    f16 = run_op("fpload_photometric", imgs, [1, 2], seed=3, dtype=types.FLOAT16, **kw)
    for a, b in zip(f32, f16):
        assert b.dtype == np.float16
        assert np.array_equal(a.astype(np.float16).view(np.uint16), b.view(np.uint16))
