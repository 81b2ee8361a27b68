"""Property: every packed sample is loaded exactly once per epoch, pixels equal, for any shard size
and world size."""

import numpy as np
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fpload.pack import PackConfig
from fpload.load import Loader
from fpload.pack import pack_version


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shard_max_samples=st.integers(1, 12), world_size=st.integers(1, 4), batch_size=st.integers(1, 9),
       encoding=st.sampled_from(["raw", "png", "raw-lz4"]))
def test_packed_samples_load_exactly_once_with_equal_pixels(tmp_path_factory, session_catalog,
                                                            shard_max_samples, world_size, batch_size,
                                                            encoding):
    root = tmp_path_factory.mktemp("prop")
    res = pack_version(session_catalog, out=root, name="p", where="consent",
                       config=PackConfig(encoding=encoding, shard_max_samples=shard_max_samples))
    rows = pq.read_table(res.path / "samples.parquet").to_pylist()
    seen = []
    for rank in range(world_size):
        loader = Loader(res.path, split="train", batch_size=batch_size, device="cpu", augment=False,
                        rank=rank, world_size=world_size, image_size=(48, 48), mean=0.0, std=1.0)
        for images, labels, index in loader:
            for img, k in zip(images, index):
                row = rows[int(k)]
                src = np.asarray(Image.open(row["uri"]).convert("L"))
                h, w = src.shape
                top, left = (48 - h + 1) // 2, (48 - w + 1) // 2
                got = np.rint(img[0, top:top + h, left:left + w].numpy() * 255).astype(np.uint8)
                assert np.array_equal(got, src)
                seen.append(int(k))
    train = [r["index"] for r in rows if r["split"] == "train"]
    assert sorted(seen) == train
