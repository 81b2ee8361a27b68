"""Deep pyfing extractors batched per encode chunk: the batch changes nothing in the outputs.

Deep models are slow on a CPU: the real-model tests run on 4 images of 256² (one cropped to
200×230, another network input shape). Tolerance: the network outputs of a batch of 4 must equal
those of one image at a time within 1e-5 (float32 radians for SNFOE, pixels/10 for SNFFE); masks,
minutiae and the stored feature arrays exactly (on this CPU they are bit-identical).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpload.features._pyfing import import_pyfing  # noqa: E402

try:
    import_pyfing()  # sets KERAS_BACKEND=torch first, as the extractors do
except Exception as err:  # noqa: BLE001 - the extra is not installed here
    pytest.skip(f"needs the fpload[pyfing] extra ({err})", allow_module_level=True)

from fpload.catalog import open_catalog  # noqa: E402
from fpload.errors import ConfigError  # noqa: E402
from fpload.features import FeaturesConfig, open_features, resolve_extractors, run_extractors  # noqa: E402
from fpload.features import _pyfing, _pyfing_batch  # noqa: E402
from fpload.features._builtin import ImageAnalysis  # noqa: E402
from fpload.features._validate import master_print  # noqa: E402
from fpload.pack import PackConfig, pack_version  # noqa: E402
from fpload.synth import SynthConfig, generate_master, synthesize  # noqa: E402

DEEP = [{"name": "pyfing.frequency", "params": {"method": "deep"}}, "pyfing.minutiae"]


def _job(batch_size):
    return resolve_extractors(FeaturesConfig(extractors=[
        {"name": "pyfing.frequency", "params": {"method": "deep", "batch_size": batch_size}},
        {"name": "pyfing.minutiae", "params": {"batch_size": batch_size}}]))


def test_batch_size_is_validated_and_kept_out_of_the_identity():
    one, four, auto = _job(1), _job(4), resolve_extractors(FeaturesConfig(extractors=DEEP))
    assert [e.batch_size for e in four.extractors] == [4, 4]
    assert [e.batch_size for e in auto.extractors] == [None, None]
    assert [e.identity() for e in one.extractors] == [e.identity() for e in four.extractors] \
        == [e.identity() for e in auto.extractors]
    assert "batch_size" not in four.extractors[0].params
    for bad in (0, -1, 1025, 2.5, True, "big"):
        with pytest.raises(ConfigError, match=f"batch_size {bad!r} must be 'auto' or an integer in 1..1024"):
            _job(bad)
    assert _pyfing_batch.effective_batch(3) == 3
    import torch

    assert _pyfing_batch.effective_batch(None) == (_pyfing_batch.GPU_BATCH if torch.cuda.is_available() else 1)


@pytest.fixture(scope="module")
def images():
    cfg = SynthConfig(subjects=3, size=256, seed=5)
    out = [master_print(generate_master(cfg, s, 1))[0] for s in (1, 2, 3)]
    return [*out, np.ascontiguousarray(out[0][:200, :230])]


def test_batched_outputs_equal_one_at_a_time(images, monkeypatch):
    batches: list[int] = []
    real_call = _pyfing.HostOutput.__call__
    monkeypatch.setattr(_pyfing.HostOutput, "__call__",
                        lambda self, x, training=False: batches.append(len(x)) or real_call(self, x, training))
    single = [ImageAnalysis(im, 16) for im in images]
    one = [run_extractors(im, _job(1), analysis=an) for im, an in zip(images, single)]
    assert set(batches) == {1}
    batches.clear()
    job = _job(4)
    batched = [ImageAnalysis(im, 16) for im in images]
    for ext in job.extractors:
        _pyfing_batch.prefill(batched, ext.params, _pyfing.PYFING_EXTRACTORS[ext.name].step, 4)
    # 3 images of one network input shape share each forward pass (the 200×230 one has its own)
    assert sorted(batches) == [1, 1, 1, 1, 3, 3, 3, 3]
    # the raw network outputs, memoised in the batched pass, against one at a time
    for a, b in zip(single, batched):
        keys = [k for k in a._memo if k[0] == "pyfing"]
        assert sorted(k[1] for k in keys) == ["LEADER", "SNFFE", "SNFOE", "SUFS"] and set(keys) <= set(b._memo)
        for k in keys:
            if k[1] == "LEADER":
                assert a._memo[k] == b._memo[k]
            elif k[1] == "SUFS":
                np.testing.assert_array_equal(a._memo[k], b._memo[k])
            else:
                np.testing.assert_allclose(a._memo[k], b._memo[k], rtol=0, atol=1e-5)
    # and the feature arrays made from them (no forward pass left to run)
    many = [run_extractors(im, job, analysis=an) for im, an in zip(images, batched)]
    assert len(batches) == 8
    for i, (a, b) in enumerate(zip(one, many)):
        for ext in a:
            for name in a[ext]:
                np.testing.assert_array_equal(a[ext][name], b[ext][name], err_msg=f"image {i} {name}")


@pytest.fixture(scope="module")
def synth_catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("pyfing_batch")
    res = synthesize(root / "synth", subjects=2, fingers=1, impressions=2, size=256, progress=False, workers=1)
    cat = open_catalog(root / "cat.duckdb")
    cat.ingest(res.metadata_path)
    yield cat, root
    cat.close()


def test_pack_arrays_are_the_same_for_batch_1_and_4(synth_catalog, monkeypatch):
    cat, root = synth_catalog
    batches: list[int] = []
    real_call = _pyfing.HostOutput.__call__
    monkeypatch.setattr(_pyfing.HostOutput, "__call__",
                        lambda self, x, training=False: batches.append(len(x)) or real_call(self, x, training))

    def cfg(batch):
        return PackConfig(shard_max_samples=4, features=FeaturesConfig(extractors=[
            {"name": "pyfing.orientation", "params": {"method": "deep", "batch_size": batch}},
            {"name": "pyfing.minutiae", "params": {"batch_size": batch}}]))

    one = pack_version(cat, out=root / "b1", name="pf", where="consent", config=cfg(1), workers=1)
    assert set(batches) == {1}
    batches.clear()
    four = pack_version(cat, out=root / "b4", name="pf", where="consent", config=cfg(4), workers=1)
    assert batches == [4, 4, 4]  # SUFS, SNFOE, LEADER: the encode chunk's 4 samples in one pass each
    # (the version ids differ: the manifest records the config as given, batch_size included;
    # with the default ``auto`` a CPU and a GPU pack record the same)
    assert one.features_computed == four.features_computed == 4
    a, b = open_features(one.path), open_features(four.path)
    assert sorted(a.names) == ["minutiae", "minutiae_count", "minutiae_quality", "pyfing_orientation"]
    for name in a.names:
        np.testing.assert_array_equal(a.load(name), b.load(name), err_msg=name)
    # the batch is no part of the identity: a batch-4 pack reuses the batch-1 arrays
    again = pack_version(cat, out=root / "b4r", name="pf", where="consent", config=cfg(4), parent=one.path,
                         workers=1)
    assert (again.features_computed, again.features_reused) == (0, 4)


# -- the batching logic on a stand-in network (fast): any shapes, any batch size -----------------

class _Model:
    """A per-image function (each output row depends on its own image only) that records its batches."""

    def __init__(self, fail_above: int | None = None):
        self.batches: list[tuple[int, ...]] = []
        self.fail_above = fail_above

    def __call__(self, x, training=False):
        x = np.asarray(x, np.float32)
        self.batches.append(x.shape)
        if self.fail_above is not None and len(x) > self.fail_above:
            raise MemoryError("out of device memory")
        return _pyfing._Host(x * 2 + x.mean(axis=(1, 2), keepdims=True))


class _Algorithm:
    """pyfing's shape of a segmentation run: pad to a multiple of 8, one forward pass, crop back."""

    def __init__(self, model):
        self.model = model

    def run(self, image):
        h, w = image.shape
        ph, pw = -h % 8, -w % 8
        x = np.pad(image, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)), constant_values=image[0, 0])
        out = self.model(x[np.newaxis], training=False).numpy()[0]
        return out[ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]


@given(st.lists(st.tuples(st.integers(1, 20), st.integers(1, 20)), min_size=1, max_size=12),
       st.integers(1, 6), st.sampled_from([None, 1, 2]), st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_shapes_and_batch_give_one_at_a_time_results(monkeypatch, shapes, batch, fail_above, seed):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, s, dtype=np.uint8) for s in shapes]
    model = _Model(fail_above)
    monkeypatch.setattr(_pyfing_batch, "_algorithm", lambda alg, pj: _Algorithm(model))
    params = {"SUFS": {"p": 1}}
    ans = [ImageAnalysis(im, 4) for im in images]
    _pyfing_batch.run_batched("SUFS", params, 500, [(an, ()) for an in ans], batch)
    key = _pyfing._memo_key("SUFS", params, 500)
    forwards = [s for s in model.batches if s[0] >= 1]
    for s in forwards:  # one network input shape per forward pass, at most `batch` images
        assert s[0] <= batch
    for im, an in zip(images, ans):
        expected = _Algorithm(_Model()).run(im)
        if fail_above is not None and batch > fail_above:
            # a failed batch fills in nothing: the one-at-a-time path computes (and reports) it
            assert key not in an._memo or np.array_equal(an._memo[key], expected)
        else:
            np.testing.assert_array_equal(an._memo[key], expected)


def test_many_raises_the_first_bad_sample_in_order():
    from fpload.errors import DataError
    from fpload.features import run_extractors_many

    job = resolve_extractors(FeaturesConfig(extractors=["foreground", *DEEP[:1]]))
    good = np.full((40, 40), 255, np.uint8)
    items = [(good, job, frozenset({"foreground"}), "a"), (np.zeros((4, 4, 3), np.uint8), job, None, "b"),
             (np.zeros((5, 5, 2), np.uint8), job, None, "c")]
    with pytest.raises(DataError, match="sample b: features need a 2-D 8-bit gray image"):
        run_extractors_many(items)
    assert run_extractors_many(items[:1])[0]["foreground"]["foreground"].shape == (3, 3)
