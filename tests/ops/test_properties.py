"""Determinism by seed, identity parameters, and clear errors for bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from fpload.errors import UsageError
from fpload.ops import _reference as ref

OPS_KW = {
    "fpload_warp": dict(angle=[-20.0, 20.0], distortion=4.0, translate=[5.0, 5.0]),
    "fpload_occlusion": dict(contact_prob=1.0, blob_max=3, erase_max=2),
    "fpload_photometric": dict(contrast=[0.7, 1.3], noise_std=[3.0, 6.0], dry_prob=0.5),
}


@pytest.mark.parametrize("op", sorted(OPS_KW))
def test_deterministic_by_seed_epoch_and_index(random_batch, run_op, op: str) -> None:
    imgs = random_batch(np.random.default_rng(0), [(48, 47), (48, 47)])
    a = run_op(op, imgs, [3, 4], epoch=1, seed=7, **OPS_KW[op])
    b = run_op(op, imgs, [3, 4], epoch=1, seed=7, **OPS_KW[op])
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    for other in (dict(epoch=2, seed=7), dict(epoch=1, seed=8)):
        c = run_op(op, imgs, [3, 4], **other, **OPS_KW[op])
        assert any(not np.array_equal(x, y) for x, y in zip(a, c))
    # a sample's augmentation depends on its index, not its position in the batch
    swapped = run_op(op, imgs[::-1], [4, 3], epoch=1, seed=7, **OPS_KW[op])
    assert np.array_equal(swapped[0], a[1])


@pytest.mark.parametrize("op", sorted(OPS_KW))
def test_identity_parameters_give_identity(random_batch, run_op, op: str) -> None:
    imgs = random_batch(np.random.default_rng(1), [(33, 65), (20, 19), (1, 1)])
    for got, img in zip(run_op(op, imgs, [0, 1, 2], seed=3), imgs):
        assert np.array_equal(got, img)


@pytest.mark.parametrize(
    ("op", "kw", "match"),
    [
        ("fpload_warp", dict(distortion=-1.0), "distortion"),
        ("fpload_warp", dict(scale=[0.0, 1.0]), "scale"),
        ("fpload_warp", dict(translate=[-1.0, 0.0]), "translate"),
        ("fpload_warp", dict(interp="cubic"), "interp"),
        ("fpload_occlusion", dict(contact_prob=1.5), "contact_prob"),
        ("fpload_occlusion", dict(blob_max=9), "blob_max"),
        ("fpload_photometric", dict(noise_std=[-2.0, 1.0]), "noise_std"),
        ("fpload_photometric", dict(gamma=[2.0, 1.0]), "gamma"),
    ],
)
def test_bad_arguments_are_refused(random_batch, run_op, op: str, kw: dict, match: str) -> None:
    imgs = random_batch(np.random.default_rng(0), [(8, 8)])
    with pytest.raises(RuntimeError, match=match):
        run_op(op, imgs, [0], **kw)
    ref_fn = {"fpload_warp": ref.warp, "fpload_occlusion": ref.occlusion, "fpload_photometric": ref.photometric}[op]
    with pytest.raises(UsageError, match=match):
        ref_fn(imgs, [0], **kw)


@pytest.mark.parametrize("op", sorted(OPS_KW))
def test_wrong_dtype_and_channels_are_refused(run_op, op: str) -> None:
    with pytest.raises(RuntimeError, match="uint8"):
        run_op(op, [np.zeros((8, 8, 1), np.float32)], [0])
    with pytest.raises(RuntimeError, match="C = 1|channels"):
        run_op(op, [np.zeros((8, 8, 3), np.uint8)], [0])


def test_reference_refuses_empty_batch_and_bad_layout() -> None:
    with pytest.raises(UsageError, match="empty batch"):
        ref.warp([], [])
    with pytest.raises(UsageError, match="HWC"):
        ref.photometric([np.zeros((8, 8), np.uint8)], [0])
    with pytest.raises(UsageError, match="uint8"):
        ref.occlusion([np.zeros((8, 8, 1), np.int16)], [0])
