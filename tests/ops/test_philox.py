"""The NumPy Philox4x32-10 and hash match the published vectors and the C++ definitions."""

import numpy as np

from fpload.ops import _reference as ref


def test_philox_known_answers() -> None:
    # Random123 kat_vectors: philox4x32 10 rounds
    ctr = np.array([[0, 0, 0, 0], [0xFFFFFFFF] * 4, [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344]], dtype=np.uint32)
    key = np.array([[0, 0], [0xFFFFFFFF] * 2, [0xA4093822, 0x299F31D0]], dtype=np.uint32)
    want = np.array([
        [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8],
        [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ], dtype=np.uint32)
    np.testing.assert_array_equal(ref.philox4x32_10(ctr, key), want)


def test_streams_are_keyed_by_seed_epoch_index_and_tag() -> None:
    base = ref.draw_u32(7, 3, 1, ref.TAG_WARP, range(8))
    assert base.dtype == np.uint32 and len(set(base.tolist())) == 8
    for other in (ref.draw_u32(8, 3, 1, ref.TAG_WARP, range(8)), ref.draw_u32(7, 4, 1, ref.TAG_WARP, range(8)),
                  ref.draw_u32(7, 3, 2, ref.TAG_WARP, range(8)), ref.draw_u32(7, 3, 1, ref.TAG_OCCLUSION, range(8))):
        assert not np.array_equal(base, other)
    np.testing.assert_array_equal(base, ref.draw_u32(7, 3, 1, ref.TAG_WARP, range(8)))


def test_hash_normal_is_roughly_standard() -> None:
    n = ref.hash_normal(12345, np.arange(200_000, dtype=np.uint32))
    assert abs(float(n.mean())) < 0.01
    assert abs(float(n.std()) - 1.0) < 0.01
    assert float(np.abs(n).max()) <= 3.46
