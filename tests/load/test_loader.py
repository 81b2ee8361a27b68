import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from fpload.load import LoaderConfig, StockAugmentConfig
from fpload.errors import ConfigError, DeviceError, IntegrityError, ShardNotFoundError, UsageError
from fpload.load import Loader, gpu_available
from fpload.pack import pack_version


def _epoch(loader):
    return [(x.clone(), y.clone(), i.clone()) for x, y, i in loader]


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_every_sample_exactly_once_per_epoch(packed, world_size):
    res = packed["raw"]
    n = res.counts["train"]
    for epoch in range(2):
        seen = []
        for rank in range(world_size):
            loader = Loader(res.path, split="train", batch_size=3, device="cpu", shuffle=True, seed=epoch,
                            augment=False, rank=rank, world_size=world_size)
            got = [i.tolist() for _, _, i in loader]
            assert all(len(b) <= 3 for b in got)
            seen += [k for b in got for k in b]
        assert sorted(seen) == list(range(n)), f"epoch {epoch}, world size {world_size}"


def test_consecutive_epochs_of_one_loader(packed):
    res = packed["png"]
    n = res.counts["train"]
    loaders = [Loader(res.path, split="train", batch_size=4, device="cpu", augment=False, rank=r, world_size=2)
               for r in range(2)]
    orders = []
    for _ in range(2):  # each for over each rank's loader is one epoch: together every sample once
        epoch = [[int(k) for _, _, i in loader for k in i] for loader in loaders]
        assert all(len(e) == loader.rank_size for e, loader in zip(epoch, loaders))
        assert sorted(epoch[0] + epoch[1]) == sorted(set(epoch[0] + epoch[1])) and len(epoch[0] + epoch[1]) == n
        orders.append(epoch[0])
    assert orders[0] != orders[1]  # global shuffle: a fresh order each epoch


@pytest.mark.parametrize("encoding", ["passthrough", "png", "jpeg", "raw", "raw-lz4"])
def test_images_labels_and_indices_match_the_version(packed, encoding):
    res = packed[encoding]
    rows = pq.read_table(res.path / "samples.parquet").to_pylist()
    loader = Loader(res.path, split="val", batch_size=5, device="cpu", shuffle=False, augment=False,
                    image_size=(48, 48), mean=0.0, std=1.0)
    n = 0
    for images, labels, index in loader:
        assert images.dtype == torch.float32 and images.shape[1:] == (1, 48, 48)
        assert labels.dtype == torch.int64 and index.dtype == torch.int64
        for img, lab, k in zip(images, labels, index):
            row = rows[int(k)]
            assert row["split"] == "val" and int(lab) == row["label"]
            src = np.asarray(Image.open(row["uri"]).convert("L")).astype(np.float32) / 255
            h, w = src.shape
            # centre pad to 48×48 with background 255 (DALI rounds the half pixel up)
            canvas = np.ones((48, 48), np.float32)
            top, left = (48 - h + 1) // 2, (48 - w + 1) // 2
            canvas[top:top + h, left:left + w] = src
            tol = 8 / 255 if encoding == "jpeg" else 1e-6
            assert np.abs(img[0].numpy() - canvas).mean() <= tol
            n += 1
    assert n == res.counts["val"]


def test_augmentation_changes_pixels_and_is_seeded(packed):
    res = packed["raw"]
    aug = StockAugmentConfig(rotation_deg=20, translate_px=3, noise_std=5)

    def run(seed):
        return _epoch(Loader(res.path, split="train", batch_size=8, device="cpu", seed=seed, augment=aug,
                             num_threads=1))

    plain = _epoch(Loader(res.path, split="train", batch_size=8, device="cpu", seed=0, augment=False,
                          num_threads=1))
    a, b, c = run(0), run(0), run(1)
    for (xa, ya, ia), (xb, yb, ib) in zip(a, b):
        assert torch.equal(ia, ib) and torch.equal(xa, xb)
    assert not all(torch.equal(x[2], y[2]) for x, y in zip(a, c))
    assert [p[2].tolist() for p in plain] == [p[2].tolist() for p in a]  # same order, same seed
    assert not torch.equal(plain[0][0], a[0][0])


def test_drop_last_gives_full_batches(packed):
    res = packed["raw"]
    loader = Loader(res.path, split="train", batch_size=4, device="cpu", augment=False, last_batch="drop")
    sizes = [x.shape[0] for x, _, _ in loader]
    assert sizes and set(sizes) == {4} and len(sizes) == len(loader) == res.counts["train"] // 4


def test_config_object_and_yaml(tmp_path, packed):
    f = tmp_path / "l.yaml"
    f.write_text("batch_size: 6\ndevice: cpu\nshuffle: false\naugment: {enabled: false}\n")
    loader = Loader(packed["raw"].path, split="train", config=LoaderConfig.from_yaml(f))
    assert loader.config.batch_size == 6 and loader.config.shuffle == "none"  # the old boolean still reads
    f.write_text("batch_size: 6\nshufle: false\n")
    with pytest.raises(ConfigError, match=r"l.yaml: key 'shufle': unknown key \(allowed: .*shuffle"):
        LoaderConfig.from_yaml(f)
    f.write_text("device: tpu\n")
    with pytest.raises(ConfigError, match="key 'device'.*'gpu', 'cpu' or 'auto'"):
        LoaderConfig.from_yaml(f)


@pytest.mark.skipif(gpu_available(), reason="checks the error on a machine without a GPU")
def test_gpu_without_gpu_is_a_clear_error(packed):
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        Loader(packed["raw"].path, device="gpu")


def test_unservable_batch_sizes(packed):
    with pytest.raises(DeviceError, match="GiB"):
        Loader(packed["raw"].path, device="cpu", batch_size=2_000_000, image_size=(4096, 4096))
    with pytest.raises(UsageError, match="every epoch would be empty"):
        Loader(packed["raw"].path, device="cpu", batch_size=500, last_batch="drop")
    with pytest.raises(ConfigError, match="batch_size"):
        Loader(packed["raw"].path, device="cpu", batch_size=0)
    with pytest.raises(UsageError, match="no split 'nope'"):
        Loader(packed["raw"].path, split="nope")
    with pytest.raises(UsageError, match="rank 4 is not in"):
        Loader(packed["raw"].path, rank=4, world_size=4)


def test_missing_or_altered_shard_at_load_time(tmp_path, catalog):
    res = pack_version(catalog, out=tmp_path, name="v", where="consent")
    shard = sorted((res.path / "shards").glob("train-*.tar"))[0]
    shard.rename(shard.with_suffix(".bak"))
    with pytest.raises(ShardNotFoundError, match=shard.name):
        Loader(res.path, split="train", device="cpu")
    Loader(res.path, split="val", device="cpu")  # other splits still load
    shard.with_suffix(".bak").rename(shard)
    with open(shard, "ab") as fh:
        fh.write(b"\0" * 512)
    with pytest.raises(IntegrityError, match=f"{shard.name}.*altered"):
        Loader(res.path, split="train", device="cpu")
    # same size, other bytes: caught by the default (stamp) check and by verify="sha256"
    shard.write_bytes(shard.read_bytes()[:-512])
    data = bytearray(shard.read_bytes())
    data[600] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=f"{shard.name}: sha256 differs"):
        Loader(res.path, split="train", device="cpu")
    with pytest.raises(IntegrityError, match=shard.name):
        Loader(res.path, split="train", device="cpu", verify="sha256")
    Loader(res.path, split="train", device="cpu", verify="none")  # the explicit opt-out


@pytest.mark.gpu
def test_gpu_matches_cpu_without_augmentation(packed):
    for enc in ("png", "raw", "raw-lz4"):
        kw = dict(split="val", batch_size=4, shuffle=False, augment=False, image_size=(48, 48))
        cpu = _epoch(Loader(packed[enc].path, device="cpu", **kw))
        gpu = _epoch(Loader(packed[enc].path, device="gpu", **kw))
        for (xc, yc, ic), (xg, yg, ig) in zip(cpu, gpu):
            assert torch.equal(ic, ig.cpu()) and torch.equal(yc, yg.cpu())
            assert torch.allclose(xc, xg.cpu(), atol=1e-5)


@pytest.mark.parametrize("encoding", ["png", "raw"])
def test_output_dtypes(packed, encoding):
    kw = dict(split="val", batch_size=4, device="cpu", shuffle=False, augment=False, image_size=(48, 48))
    f32 = _epoch(Loader(packed[encoding].path, **kw))
    f16 = _epoch(Loader(packed[encoding].path, output="float16", **kw))
    u8 = _epoch(Loader(packed[encoding].path, output="uint8", **kw))
    for (a, _, ia), (b, _, ib), (c, _, ic) in zip(f32, f16, u8):
        assert torch.equal(ia, ib) and torch.equal(ia, ic)
        assert b.dtype == torch.float16 and c.dtype == torch.uint8 and c.shape == a.shape
        assert torch.allclose(a, b.float(), atol=1e-2)
        assert torch.allclose(a, (c.float() / 255 - 0.5) / 0.5, atol=1e-6)


def test_uniform_versions_skip_the_crop_and_match(tmp_path):
    from fpload.catalog import open_catalog
    from fpload.pack import PackConfig
    from fpload.testing import make_captures

    cat = open_catalog(tmp_path / "c.duckdb")
    cat.ingest(make_captures(tmp_path / "c", subjects=3, size=(24, 20)))
    res = pack_version(cat, out=tmp_path, name="u", where="consent",
                       config=PackConfig(encoding="raw", splits={"train": 1.0}))
    rows = pq.read_table(res.path / "samples.parquet").to_pylist()
    loader = Loader(res.path, batch_size=5, device="cpu", shuffle=False, augment=False, output="uint8")
    assert loader._uniform
    for x, _, idx in loader:
        for img, k in zip(x, idx):
            src = np.asarray(Image.open(rows[int(k)]["uri"]).convert("L"))
            assert np.array_equal(img[0].numpy(), src)


def test_more_ranks_than_samples_is_a_clear_error(packed):
    with pytest.raises(UsageError, match="fewer than the 100 ranks"):
        Loader(packed["raw"].path, split="test", rank=0, world_size=100)


def test_batches_stay_valid_after_later_batches(packed):
    """CPU batches share DALI's buffers without a copy: earlier batches must not change."""
    loader = Loader(packed["raw"].path, split="train", batch_size=3, device="cpu", augment=False)
    kept = [(x, x.clone()) for _ in range(3) for x, _, _ in loader]
    assert all(torch.equal(a, b) for a, b in kept)


def test_corrupt_sample_inside_an_intact_size_shard_is_named(tmp_path, catalog):
    from fpload.pack import PackConfig
    from fpload.errors import FploadError

    res = pack_version(catalog, out=tmp_path, name="z", where="consent",
                       config=PackConfig(encoding="raw-lz4", splits={"train": 1.0}))
    shard = sorted((res.path / "shards").glob("*.tar"))[0]
    data = bytearray(shard.read_bytes())
    data[512:552] = b"\xff" * 40  # the first sample's LZ4 block, same shard size
    shard.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=f"{shard.name}: sha256 differs"):
        Loader(res.path, batch_size=4, device="cpu", augment=False)  # refused before the first batch
    # with the content check off, the decoder names the sample
    with pytest.raises(FploadError, match=rf"fpload_inflate: sample \d+ \(.*{shard.name}:512:.*\.lz4\)"):
        for _ in Loader(res.path, batch_size=4, device="cpu", augment=False, verify="none"):
            pass


def test_ddp_rank_device_check():
    """torchrun's LOCAL_RANK k wants torch.cuda.set_device(k) before a GPU loader is built."""
    from fpload.config import env_local_rank
    from fpload.load._device import check_rank_device

    check_rank_device(None, 0, 8)   # not under torchrun: nothing to check
    check_rank_device(3, 3, 8)
    check_rank_device(9, 1, 8)      # more local ranks than devices: k % count
    with pytest.raises(DeviceError, match=r"LOCAL_RANK=3 but the current CUDA device is cuda:0: "
                                          r"call torch.cuda.set_device\(3\)"):
        check_rank_device(3, 0, 8)
    import os

    old = os.environ.get("LOCAL_RANK")
    try:
        os.environ["LOCAL_RANK"] = "2"
        assert env_local_rank() == 2
        os.environ["LOCAL_RANK"] = "x"
        assert env_local_rank() is None
    finally:
        os.environ.pop("LOCAL_RANK", None)
        if old is not None:
            os.environ["LOCAL_RANK"] = old


def test_a_damaged_index_is_named_when_content_checks_are_off(tmp_path, catalog):
    from fpload.pack import PackConfig

    res = pack_version(catalog, out=tmp_path, name="i", where="consent",
                       config=PackConfig(encoding="raw", splits={"train": 1.0}))
    idx = sorted((res.path / "shards").glob("*.idx"))[0]
    lines = idx.read_text().splitlines()
    lines[1] = lines[1].replace(" 512 ", " x12 ", 1)
    idx.write_text("\n".join(lines) + "\n")
    with pytest.raises(IntegrityError, match=rf"{idx.name}: sample line 1 has no image or shape member"):
        Loader(res.path, device="cpu", augment=False, verify="none")
