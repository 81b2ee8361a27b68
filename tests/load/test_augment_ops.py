"""The loader with the csrc operators (backend: fpload): seeded, epoch-keyed, equal to the reference."""

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from fpload.load import AugmentConfig, LoaderConfig
from fpload.load import Loader
from fpload.ops import AugmentOps
from fpload.ops import _reference as ref

pytestmark = pytest.mark.usefixtures("plugin")


def _collect(loader, epochs=1):
    out = []
    for _ in range(epochs):
        batch = {}
        for x, _, i in loader:
            for img, k in zip(x, i):
                batch[int(k)] = img.clone()
        out.append(batch)
    return out


def test_default_config_uses_the_fpload_operators():
    assert LoaderConfig().augment.backend == "fpload"


def test_seeded_and_keyed_by_epoch(packed):
    path = packed["raw"].path

    def run(seed):
        return _collect(Loader(path, split="train", batch_size=5, device="cpu", seed=seed, num_threads=2), epochs=2)

    a, b, c = run(3), run(3), run(4)
    assert a[0].keys() == a[1].keys() == c[0].keys()
    for k in a[0]:
        assert torch.equal(a[0][k], b[0][k]) and torch.equal(a[1][k], b[1][k])
    assert sum(not torch.equal(a[0][k], c[0][k]) for k in a[0]) >= len(a[0]) - 1
    assert sum(not torch.equal(a[0][k], a[1][k]) for k in a[0]) >= len(a[0]) - 1


def test_loader_output_equals_the_numpy_reference(packed):
    res = packed["raw"]
    rows = pq.read_table(res.path / "samples.parquet").to_pylist()
    ops = AugmentOps()
    loader = Loader(res.path, split="val", batch_size=4, device="cpu", seed=11, augment=ops,
                    image_size=(48, 48), mean=0.5, std=0.25)
    got = _collect(loader)[0]
    assert len(got) == res.counts["val"]
    for k, img in got.items():
        src = np.asarray(Image.open(rows[k]["uri"]).convert("L"))
        h, w = src.shape
        canvas = np.full((48, 48), 255, np.uint8)
        top, left = (48 - h + 1) // 2, (48 - w + 1) // 2
        canvas[top:top + h, left:left + w] = src
        x = [canvas[..., None]]
        x = ref.warp(x, [k], 0, 11, **ops.warp.op_kwargs())
        x = ref.occlusion(x, [k], 0, 11, **ops.occlusion.op_kwargs())
        x = ref.photometric(x, [k], 0, 11, **ops.photometric.op_kwargs(), dtype="float32",
                            mean=0.5 * 255, std=0.25 * 255)
        want = x[0][..., 0]
        assert img.shape == (1, 48, 48)
        assert np.allclose(img[0].numpy(), want, rtol=1e-3, atol=1e-3 * 4), k


def test_identity_ops_equal_no_augmentation(packed):
    path = packed["png"].path
    kw = dict(split="val", batch_size=4, device="cpu", shuffle=False, image_size=(48, 48))
    plain = _collect(Loader(path, augment=False, **kw))[0]
    ident = _collect(Loader(path, augment=AugmentOps.identity(), **kw))[0]
    for k in plain:
        assert torch.allclose(plain[k], ident[k], atol=1e-6)


def test_stock_backend_still_available(packed):
    cfg = AugmentConfig(backend="stock")
    x, _, _ = next(iter(Loader(packed["raw"].path, split="train", batch_size=4, device="cpu", augment=cfg)))
    assert x.shape[0] == 4 and torch.isfinite(x).all()


def test_uint8_output_of_the_operators_equals_the_reference(packed):
    res = packed["raw"]
    rows = pq.read_table(res.path / "samples.parquet").to_pylist()
    ops = AugmentOps()
    loader = Loader(res.path, split="val", batch_size=4, device="cpu", seed=5, augment=ops,
                    image_size=(48, 48), output="uint8")
    for k, img in _collect(loader)[0].items():
        src = np.asarray(Image.open(rows[k]["uri"]).convert("L"))
        h, w = src.shape
        canvas = np.full((48, 48), 255, np.uint8)
        canvas[(48 - h + 1) // 2:(48 - h + 1) // 2 + h, (48 - w + 1) // 2:(48 - w + 1) // 2 + w] = src
        x = ref.warp([canvas[..., None]], [k], 0, 5, **ops.warp.op_kwargs())
        x = ref.occlusion(x, [k], 0, 5, **ops.occlusion.op_kwargs())
        x = ref.photometric(x, [k], 0, 5, **ops.photometric.op_kwargs(), dtype="uint8")
        assert img.dtype == torch.uint8
        assert np.abs(img[0].numpy().astype(int) - x[0][..., 0].astype(int)).max() <= 1


def test_missing_plugin_fails_at_construction_with_a_clear_error(packed, tmp_path):
    import os
    import subprocess
    import sys

    code = ("from fpload.load import Loader\n"
            "from fpload.errors import PluginError\n"
            f"try:\n    Loader({str(packed['raw'].path)!r}, device='cpu')\n"
            "except PluginError as e:\n    print('PluginError:', e)\n"
            f"Loader({str(packed['raw'].path)!r}, device='cpu', augment=False)\nprint('plain ok')\n")
    env = {**os.environ, "FPLOAD_PLUGIN": str(tmp_path / "missing.so")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "PluginError:" in out.stdout and "missing.so" in out.stdout and "fpload ops build" in out.stdout
    assert "plain ok" in out.stdout
