"""An empty batch through the operators: DALI does not run operators on empty batches, so the
result is an empty batch (the C++ checks and the NumPy references raise on an empty batch)."""

from __future__ import annotations

import pytest

from fpload.errors import UsageError
from fpload.ops import _reference as ref


@pytest.mark.parametrize("op", ["fpload_warp", "fpload_occlusion", "fpload_photometric"])
def test_empty_batch_gives_an_empty_batch(plugin: dict, op: str) -> None:
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=4, num_threads=1, device_id=None, prefetch_queue_depth=1)
    def pipe():  # noqa: ANN202
        x = fn.external_source(source=lambda: [], layout="HWC", batch=True, dtype=types.UINT8, ndim=3)
        i = fn.external_source(source=lambda: [], batch=True, dtype=types.INT64, ndim=0)
        return getattr(fn, op)(x, sample_idx=i)

    p = pipe()
    p.build()
    (out,) = p.run()
    assert len(out) == 0


def test_reference_refuses_an_empty_batch() -> None:
    with pytest.raises(UsageError, match="empty batch"):
        ref.photometric([], [], 0, 0)
