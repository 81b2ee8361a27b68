"""fn.fpload_inflate: the CPU twin of DALI's LZ4 decoders.inflate, against the lz4 library."""

from __future__ import annotations

import lz4.block
import numpy as np
import pytest


def _run(blocks: list[bytes], shapes: list[tuple[int, int, int]]) -> list[np.ndarray]:
    from nvidia.dali import fn, pipeline_def

    n = len(blocks)
    data = [np.frombuffer(b, np.uint8) for b in blocks]
    dims = [np.asarray(s, np.int32) for s in shapes]

    @pipeline_def(batch_size=n, num_threads=2, device_id=None, prefetch_queue_depth=1)
    def pipe():  # noqa: ANN202
        return fn.fpload_inflate(fn.external_source(source=lambda: data, batch=True),
                                 fn.external_source(source=lambda: dims, batch=True))

    p = pipe()
    p.build()
    (out,) = p.run()
    return [np.array(out[k]) for k in range(n)]


def _images(rng: np.random.Generator) -> list[np.ndarray]:
    y, x = np.mgrid[0:61, 0:77]
    ridges = (128 + 100 * np.sin(0.7 * x + 0.3 * y)).astype(np.uint8)
    return [ridges, rng.integers(0, 256, (33, 17), dtype=np.uint8), np.full((40, 300), 255, np.uint8),
            np.zeros((1, 1), np.uint8)]


def test_matches_the_lz4_library(plugin: dict) -> None:
    imgs = _images(np.random.default_rng(0))
    blocks = [lz4.block.compress(a.tobytes(), store_size=False) for a in imgs]
    got = _run(blocks, [(*a.shape, 1) for a in imgs])
    for g, a in zip(got, imgs):
        assert g.shape == (*a.shape, 1) and np.array_equal(g[..., 0], a)


@pytest.mark.parametrize("damage,message", [
    ("truncate", "truncated"),
    ("bigger-shape", "fewer bytes than its shape"),
    ("smaller-shape", "more bytes than its shape"),
])
def test_corrupt_blocks_are_named(plugin: dict, damage: str, message: str) -> None:
    img = _images(np.random.default_rng(1))[0]
    block = lz4.block.compress(img.tobytes(), store_size=False)
    shape = (*img.shape, 1)
    if damage == "truncate":
        block = block[: len(block) // 2]
    elif damage == "bigger-shape":
        shape = (img.shape[0] + 1, img.shape[1], 1)
    else:
        shape = (img.shape[0] - 1, img.shape[1], 1)
    with pytest.raises(RuntimeError, match=rf"fpload_inflate: sample 0 .*{message}"):
        _run([block], [shape])
