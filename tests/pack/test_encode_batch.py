"""encode_batch computes a chunk's features together and fails as one sample at a time would."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fpload import formats
from fpload.errors import DataError, ImageError
from fpload.features import FeaturesConfig, resolve_extractors
from fpload.pack._encode import encode_batch, encode_sample


def dark_fails(image: np.ndarray) -> dict:
    """A custom extractor that fails on images whose first pixel is black."""
    if image[0, 0] == 0:
        raise ValueError("black corner")
    return {"mean": np.float32(image.mean())}


def _task(tmp_path, k: int, value: int, job) -> tuple:
    buf = io.BytesIO()
    Image.fromarray(np.full((20, 30), value, np.uint8)).save(buf, format="PNG")
    data = buf.getvalue()
    path = tmp_path / f"{k}.png"
    path.write_bytes(data)
    row = {"sample_id": formats.sample_key(data), "uri": str(path), "format": "png", "subject_id": f"s{k}",
           "finger": 1, "impression": 0, "sensor": "x", "ppi": 500, "width": 30, "height": 20, "quality": None,
           "split": "train", "synthetic": False, "label": k, "index": k, "captured_at": None, "extra": None}
    return row, {"encoding": "passthrough"}, job, ["foreground", "m"]


@pytest.fixture()
def job():
    return resolve_extractors(FeaturesConfig(extractors=["foreground", {"name": "m", "function": f"{__name__}:dark_fails"}]))


def test_batch_equals_one_at_a_time(tmp_path, job):
    tasks = [_task(tmp_path, k, v, job) for k, v in enumerate((200, 90, 17))]
    got, want = encode_batch(tasks), [encode_sample(t) for t in tasks]
    assert [m for m, _ in got] == [m for m, _ in want]
    for (_, a), (_, b) in zip(got, want):
        assert a.keys() == b.keys() and all(np.array_equal(a[e][n], b[e][n]) for e in a for n in a[e])


@pytest.mark.parametrize("first_bad, expected", [
    ("features", (DataError, "sample {0}: extractor m v1 .* failed: ValueError: black corner")),
    ("source", (ImageError, "sample {1}: source image .* changed since it was catalogued")),
])
def test_the_first_failing_sample_is_reported(tmp_path, job, first_bad, expected):
    """Sample 1's source changed after cataloguing; sample 0's features fail or not: the error is the
    one a one-at-a-time loop meets first, though the chunk decodes before it computes features."""
    tasks = [_task(tmp_path, 0, 0 if first_bad == "features" else 200, job), _task(tmp_path, 1, 90, job),
             _task(tmp_path, 2, 0, job)]
    (tmp_path / "1.png").write_bytes((tmp_path / "2.png").read_bytes())
    ids = [t[0]["sample_id"] for t in tasks]
    err, words = expected
    with pytest.raises(err, match=words.format(*ids)):
        encode_batch(tasks)


def test_a_chunk_reads_its_sources_at_once_and_fails_in_order(tmp_path, job, monkeypatch):
    """The chunk's source files are read by several threads together (on a network filesystem a
    read waits on latency); a missing source is still reported as the one-at-a-time loop would,
    after the samples before it, naming its sample."""
    import threading

    from fpload.pack import _encode

    tasks = [_task(tmp_path, k, v, job) for k, v in enumerate((200, 90, 170, 60))]
    want = [m for m, _ in (encode_sample(t) for t in tasks)]
    meet = threading.Barrier(2, timeout=30)   # broken (an error) unless two reads wait at once
    real = _encode.read_source_bytes

    def read(uri, max_bytes):
        meet.wait()
        return real(uri, max_bytes)

    monkeypatch.setattr(_encode, "read_source_bytes", read)
    assert [m for m, _ in encode_batch(tasks)] == want
    monkeypatch.setattr(_encode, "read_source_bytes", real)
    (tmp_path / "2.png").unlink()
    with pytest.raises(ImageError, match=f"sample {tasks[2][0]['sample_id']}: source image .*2.png"):
        encode_batch(tasks)
