"""The pyfing extractors: resolution, conventions against synthetic truth, packing and reuse.

Deep models are slow on a CPU: only the pack test runs one (LEADER, on 4 images of 256²).
"""

from __future__ import annotations

import json
import sys

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
from fpload.features import FeaturesConfig, extract_features, open_features, resolve_extractors  # noqa: E402
from fpload.features import _pyfing  # noqa: E402
from fpload.features._config import ExtractorSpec  # noqa: E402
from fpload.features._pyfing import pack_minutiae  # noqa: E402
from fpload.features._validate import block_errors, master_print, truth_blocks  # noqa: E402
from fpload.pack import PackConfig, pack_version  # noqa: E402
from fpload.synth import SynthConfig, generate_master, synthesize  # noqa: E402

CLASSICAL = [{"name": f"pyfing.{s}", "params": {"method": "classical"}}
             for s in ("segmentation", "orientation", "frequency")]


def _params(name: str, **params) -> dict:
    return resolve_extractors(FeaturesConfig(extractors=[{"name": name, "params": params}])).extractors[0].params


def test_resolved_params_record_versions_and_every_pyfing_parameter():
    import pyfing

    p = _params("pyfing.frequency")
    assert p["method"] == "classical" and p["library"] == {"pyfing": pyfing.__version__}
    assert set(p["algorithms"]) == {"GMFS", "GBFOE", "XSFFE"}
    assert p["algorithms"]["XSFFE"]["step"] == 16 and p["algorithms"]["GMFS"]["image_dpi"] == 500
    deep = _params("pyfing.orientation", method="deep", dpi=1000)
    assert set(deep["algorithms"]) == {"SUFS", "SNFOE"} and deep["algorithms"]["SUFS"]["image_dpi"] == 1000
    assert {"pyfing", "keras", "keras_backend"} <= set(deep["library"])
    m = _params("pyfing.minutiae")
    assert (m["method"], m["max_minutiae"], set(m["algorithms"])) == ("deep", 128, {"LEADER"})
    assert _params("pyfing.frequency", options={"XSFFE": {"step": 8}})["algorithms"]["XSFFE"]["step"] == 8


@pytest.mark.parametrize("name, params, words", [
    ("pyfing.orientation", {"smooth": 1}, ["unknown param 'smooth'", "method"]),
    ("pyfing.orientation", {"method": "fast"}, ["method 'fast'", "classical, deep"]),
    ("pyfing.frequency", {"options": {"SNFFE": {}}}, ["not 'SNFFE'", "GMFS, GBFOE, XSFFE"]),
    ("pyfing.frequency", {"options": {"XSFFE": {"stride": 2}}}, ["XSFFE has no parameter 'stride'"]),
    ("pyfing.segmentation", {"options": {"GMFS": {"image_dpi": 1000}}}, ["dpi param"]),
    ("pyfing.frequency", {"dpi": 1000}, ["only dpi 500", "method: deep"]),
    ("pyfing.minutiae", {"max_minutiae": 0}, ["max_minutiae 0"]),
    ("pyfing.segmentation", {"coverage": 1.5}, ["coverage 1.5"]),
    ("pyfing.orientation", {"dpi": "500"}, ["dpi '500'"]),
    ("pyfing.orientation", {"options": [1]}, ["options must map"]),
])
def test_bad_params_are_one_line_config_errors(name, params, words):
    with pytest.raises(ConfigError) as err:
        _params(name, **params)
    msg = str(err.value)
    assert name in msg and "\n" not in msg
    for w in words:
        assert w in msg


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyfing", None)
    with pytest.raises(ConfigError, match=r"fpload\[pyfing\]"):
        _params("pyfing.orientation")


_part = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}", fullmatch=True)


@given(st.lists(_part, min_size=1, max_size=3), st.sampled_from(["", ".", "..", "-", " ", "1"]))
@settings(max_examples=60, deadline=None)
def test_extractor_names_are_dotted_identifiers(parts, bad):
    name = ".".join(parts)
    assert ExtractorSpec(name=name).name == name
    broken = {"": "." + name, ".": name + ".", "..": name.replace(".", "..") if "." in name else name + "..x",
              "-": name + "-x", " ": name + " x", "1": "1" + name}[bad]
    with pytest.raises(ValueError):
        ExtractorSpec(name=broken)


def test_classical_fields_follow_fplods_conventions_on_synthetic_truth():
    """Orientation mirrored to y-down (unmirrored it is ~45° off), frequency in cycles/pixel."""
    cfg = SynthConfig(subjects=1, size=256, seed=3)
    image, truth = master_print(generate_master(cfg, 1, 1))
    f = extract_features(image, FeaturesConfig(extractors=CLASSICAL))
    tb = truth_blocks(truth["theta"], truth["period"], truth["mask"], 16)
    err = block_errors(tb, orientation=f["pyfing_orientation"], frequency=f["pyfing_frequency"],
                       foreground=f["pyfing_foreground"])
    assert err["orientation_deg"] < 6 and err["orientation_cover"] > 0.9
    assert err["frequency_rel"] < 0.15 and err["foreground_iou"] > 0.8
    mirrored = f["pyfing_orientation"].astype(np.float64) * np.array([1, -1])[:, None, None]
    assert block_errors(tb, orientation=mirrored)["orientation_deg"] > 20


@given(st.integers(1, 70), st.integers(1, 70), st.integers(0, 2**32 - 1), st.sampled_from(["noise", "flat", "ridges"]))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_classical_extractors_take_any_image(h, w, seed, kind):
    rng = np.random.default_rng(seed)
    if kind == "noise":
        img = rng.integers(0, 256, (h, w)).astype(np.uint8)
    elif kind == "flat":
        img = np.full((h, w), rng.integers(0, 256), np.uint8)
    else:
        y, x = np.mgrid[:h, :w]
        img = (128 + 100 * np.sin(x * 0.6 + y * 0.3)).astype(np.uint8)
    f = extract_features(img, FeaturesConfig(extractors=CLASSICAL))
    hb, wb = -(-h // 16), -(-w // 16)
    assert f["pyfing_foreground"].shape == (hb, wb) and f["pyfing_frequency"].shape == (hb, wb)
    assert f["pyfing_orientation"].shape == (2, hb, wb)
    for v in f.values():
        assert np.isfinite(v.astype(np.float64)).all()
    o = f["pyfing_orientation"].astype(np.float64)
    norm = np.hypot(o[0], o[1])
    assert np.all((norm == 0) | (np.abs(norm - 1) < 1e-2))


_minutia = st.tuples(st.floats(0, 500), st.floats(0, 500), st.floats(-3.14, 3.14), st.sampled_from([1, 2]),
                     st.floats(0, 1))


@given(st.lists(_minutia, max_size=40), st.integers(1, 24))
@settings(max_examples=80, deadline=None)
def test_pack_minutiae_keeps_the_best_k_padded(found, k):
    out = pack_minutiae(found, k)
    n = min(len(found), k)
    assert out["minutiae"].shape == (k, 4) and out["minutiae_quality"].shape == (k,)
    assert int(out["minutiae_count"]) == n
    assert not out["minutiae"][n:].any() and not out["minutiae_quality"][n:].any()
    q = [m[4] for m in found]
    kept = np.asarray(out["minutiae_quality"][:n], np.float64)
    assert np.all(np.diff(kept) <= 1e-3)  # best first (float16)
    if n:
        threshold = sorted(q, reverse=True)[n - 1]
        assert all(any(np.allclose(r, m[:4], atol=1e-3) for m in found if m[4] >= threshold)
                   for r in out["minutiae"][:n])
        assert set(out["minutiae"][:n, 3].tolist()) <= {1.0, 2.0}


@pytest.fixture(scope="module")
def synth_catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("pyfing")
    res = synthesize(root / "synth", subjects=2, fingers=1, impressions=2, size=256, progress=False, workers=1)
    cat = open_catalog(root / "cat.duckdb")
    cat.ingest(res.metadata_path)
    yield cat, root
    cat.close()


def test_pack_writes_pyfing_arrays_and_reuses_them_only_when_identical(synth_catalog, monkeypatch):
    cat, root = synth_catalog
    extractors = [*CLASSICAL, {"name": "pyfing.minutiae", "params": {"max_minutiae": 64}}]
    cfg = PackConfig(shard_max_samples=4, features=FeaturesConfig(extractors=extractors))
    first = pack_version(cat, out=root / "v", name="pf", where="consent", config=cfg, workers=1)
    cache = open_features(first.path)
    assert sorted(cache.names) == ["minutiae", "minutiae_count", "minutiae_quality", "pyfing_foreground",
                                   "pyfing_frequency", "pyfing_orientation"]
    grid = cache.grid
    assert cache.load("pyfing_orientation").shape == (4, 2, *grid)
    assert cache.load("minutiae").shape == (4, 64, 4) and cache.load("minutiae_count").dtype == np.int32
    counts = cache.load("minutiae_count")
    assert counts.min() > 5  # LEADER finds minutiae on every synthetic impression
    spec = cache.spec("minutiae")
    assert spec.extractor == "pyfing.minutiae" and spec.params["library"]["pyfing"] == _pyfing.import_pyfing().__version__
    attrs = dict(cache.array("pyfing_frequency").attrs)
    assert attrs["params"]["algorithms"]["XSFFE"]["step"] == 16 and attrs["layout"] == "block"

    # hit: the same extractors, versions and params -> everything copied
    again = pack_version(cat, out=root / "v2", name="pf", where="consent", config=cfg, parent=first.path, workers=1)
    assert (again.features_computed, again.features_reused) == (0, 4)
    for name in cache.names:
        np.testing.assert_array_equal(open_features(again.path).load(name), cache.load(name), err_msg=name)

    # miss: another pyfing version recorded -> every pyfing array is recomputed
    real = _pyfing.library_versions
    monkeypatch.setattr(_pyfing, "library_versions", lambda deep: {**real(deep), "pyfing": "0.0.1"})
    calls: list[str] = []
    real_run = _pyfing._run
    monkeypatch.setattr(_pyfing, "_run", lambda an, alg, *a: calls.append(alg) or real_run(an, alg, *a))
    other = pack_version(cat, out=root / "v3", name="pf", where="consent",
                         config=PackConfig(shard_max_samples=4, features=FeaturesConfig(extractors=CLASSICAL)),
                         parent=first.path, workers=1)
    assert (other.features_computed, other.features_reused) == (4, 0)
    assert calls.count("GMFS") >= 4
    got = json.loads(json.dumps(open_features(other.path).spec("pyfing_foreground").params))
    assert got["library"]["pyfing"] == "0.0.1"


def test_pack_workers_compute_the_same_arrays_as_in_process(synth_catalog):
    """Encode workers (one torch/OpenCV thread each) give the in-process pack's arrays."""
    cat, root = synth_catalog
    cfg = PackConfig(shard_max_samples=4, features=FeaturesConfig(extractors=CLASSICAL))
    one = pack_version(cat, out=root / "w1", name="pf", where="consent", config=cfg, workers=1)
    two = pack_version(cat, out=root / "w2", name="pf", where="consent", config=cfg, workers=2)
    a, b = open_features(one.path), open_features(two.path)
    assert one.version_id == two.version_id
    for name in a.names:
        np.testing.assert_array_equal(a.load(name), b.load(name), err_msg=name)
