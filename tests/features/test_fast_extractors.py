"""The fast built-ins agree with the reference implementation they replaced (issue 14 §4).

``_reference_builtin.py`` is the previous ``fpload/features/_builtin.py`` verbatim (per-pixel float
pipelines, numpy.fft). Orientation, foreground, quality and thumbnail are now computed from exact
integer sums and must be *bit-identical* to it (so their extractor versions stay); frequency moved
to scipy.fft (version 3), then to float64 sums in bin order (version 4, the same bits in C++ and
NumPy: tests/features/test_native.py), and must agree within 10 % wherever both have a value.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpload.features import BUILTINS
from fpload.features import _builtin as fast
from fpload.synth._config import SynthConfig
from fpload.synth._impression import render_impression
from fpload.synth._master import generate_master
from fpload.testing import ridge_image

_spec = importlib.util.spec_from_file_location("fpload_reference_builtin", Path(__file__).with_name("_reference_builtin.py"))
ref = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(ref)

EXACT = ("orientation", "foreground", "quality", "thumbnail")


def _run(module, image: np.ndarray, block: int, name: str, **params) -> dict[str, np.ndarray]:
    b = module.BUILTINS[name]
    return b.fn(module.ImageAnalysis(image, block), **{**b.defaults, **params})


def _assert_same(image: np.ndarray, block: int) -> None:
    for name in EXACT:
        new, old = _run(fast, image, block, name), _run(ref, image, block, name)
        for key in old:
            assert new[key].dtype == old[key].dtype and new[key].shape == old[key].shape, (name, key)
            np.testing.assert_array_equal(new[key], old[key], err_msg=f"{name} {image.shape} block {block}")


def _fingerprint(size: int, subject: int) -> np.ndarray:
    cfg = SynthConfig(subjects=subject, size=size, seed=5)
    return render_impression(generate_master(cfg, subject, 1), 0, cfg).image


@pytest.fixture(scope="module")
def fingerprints() -> list[np.ndarray]:
    return [_fingerprint(256, s) for s in (1, 2, 3)]


def test_versions_record_the_change():
    # frequency's FFT changed (numpy.fft → scipy.fft): a parent cache written by v2 is not reused
    assert BUILTINS["frequency"].version > ref.BUILTINS["frequency"].version
    for name in EXACT:  # bit-identical outputs keep their version, so old caches stay reusable
        assert BUILTINS[name].version == ref.BUILTINS[name].version


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 90), w=st.integers(1, 90), block=st.sampled_from([4, 8, 12, 16, 32]),
       kind=st.sampled_from(["ridges", "noise", "flat", "extremes"]), seed=st.integers(0, 2 ** 16))
def test_exact_extractors_are_bit_identical(h, w, block, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "ridges":
        image = ridge_image(rng, (h, w), period=float(rng.uniform(4, 14)))
    elif kind == "noise":
        image = rng.integers(0, 256, (h, w), dtype=np.uint8)
    elif kind == "flat":
        image = np.full((h, w), rng.integers(0, 256), np.uint8)
    else:  # saturated: the largest sums the integer paths must hold exactly
        image = np.where(rng.random((h, w)) < 0.5, 0, 255).astype(np.uint8)
    _assert_same(image, block)


@pytest.mark.parametrize("shape", [(512, 512), (256, 1024), (128, 96), (500, 500), (480, 640), (64, 64),
                                   (63, 200)])
def test_exact_extractors_on_full_sized_images(shape):
    # power-of-two thumbnail cells (512 → 64, 1024 → 64, 128 × 96 → 64 × 48), whole cells of 10
    # rows (480 → 48), uneven cells (500 → 64), upscaling (63 → 64) and padding
    _assert_same(ridge_image(np.random.default_rng(shape[0]), shape), 16)


@pytest.mark.parametrize("thumb", [16, 64, 100, 640])
def test_thumbnail_sizes(thumb):
    image = ridge_image(np.random.default_rng(thumb), (300, 512))
    np.testing.assert_array_equal(fast.thumbnail_of(image, thumb), ref.thumbnail_of(image, thumb))


def _frequency_agreement(image: np.ndarray, **params) -> tuple[float, float]:
    """(largest relative difference where both have a value, fraction of blocks valued by exactly one)."""
    new = _run(fast, image, 16, "frequency", **params)["frequency"].astype(np.float64)
    old = _run(ref, image, 16, "frequency", **params)["frequency"].astype(np.float64)
    both = (new > 0) & (old > 0)
    rel = float(np.max(np.abs(new[both] - old[both]) / old[both])) if both.any() else 0.0
    return rel, float(np.mean((new > 0) != (old > 0)))


def test_frequency_agrees_on_synthetic_fingerprints(fingerprints):
    for image in fingerprints:
        fg = _run(ref, image, 16, "foreground")["foreground"]
        assert fg.mean() > 0.3  # the comparison covers a real fingerprint area
        rel, mismatch = _frequency_agreement(image)
        assert rel <= 0.10 and mismatch <= 0.01
        # orientation is bit-identical, so the angle difference on the foreground is 0
        new = _run(fast, image, 16, "orientation")["orientation"].astype(np.float64)
        old = _run(ref, image, 16, "orientation")["orientation"].astype(np.float64)
        angle = 0.5 * (np.arctan2(new[1], new[0]) - np.arctan2(old[1], old[0]))
        angle = np.abs((angle + np.pi / 2) % np.pi - np.pi / 2)
        assert np.degrees(angle[fg]).max() <= 10.0


@settings(max_examples=25, deadline=None)
@given(h=st.integers(8, 120), w=st.integers(8, 120), step=st.sampled_from([1, 2, 3]),
       window=st.sampled_from([16, 24, 32, 48]), seed=st.integers(0, 2 ** 16),
       paper=st.tuples(st.integers(0, 120), st.integers(0, 120), st.integers(0, 120), st.integers(0, 120)))
def test_frequency_agrees_on_any_geometry(h, w, step, window, seed, paper):
    # tiling windows (window == 16·step), overlapping ones, odd sizes and padded edges; a flat
    # rectangle of paper, whose windows are skipped when none of their blocks has contrast
    rng = np.random.default_rng(seed)
    image = ridge_image(rng, (h, w), period=float(rng.uniform(4, 14)))
    y0, x0, y1, x1 = paper
    image[min(y0, y1):max(y0, y1), min(x0, x1):max(x0, x1)] = 255
    rel, mismatch = _frequency_agreement(image, window=window, step=step)
    assert rel <= 0.10 and mismatch <= 0.05


def test_a_parent_cache_of_the_old_frequency_version_is_not_reused(tmp_path, monkeypatch):
    # a cache written by an older frequency (v2: numpy.fft; v3: float32 pairwise sums) must not be
    # mixed into a pack of the current version
    import dataclasses

    import fpload.features._extract as extract
    from fpload.catalog import open_catalog
    from fpload.features import open_features
    from fpload.pack import PackConfig, pack_version
    from fpload.testing import make_captures

    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(make_captures(tmp_path / "caps", subjects=3, fingers=2, impressions=2, size=(40, 33), seed=4))
    cfg = PackConfig(shard_max_samples=5)
    old = dict(extract.BUILTINS)
    old["frequency"] = dataclasses.replace(old["frequency"], version=3)
    monkeypatch.setattr(extract, "BUILTINS", old)
    parent = pack_version(cat, out=tmp_path / "v", name="fp", where="consent", config=cfg)
    assert open_features(parent.path).spec("frequency").version == 3
    monkeypatch.undo()
    child = pack_version(cat, out=tmp_path / "v", name="fp", where="consent", config=cfg, parent="latest")
    assert (child.features_computed, child.features_reused) == (12, 0)  # frequency ran for every sample
    assert open_features(child.path).spec("frequency").version == BUILTINS["frequency"].version
    # the control: the same repack from a parent of the current version copies everything
    again = pack_version(cat, out=tmp_path / "w", name="fp", where="consent", config=cfg, parent=child.path)
    assert (again.features_computed, again.features_reused) == (0, 12)
    cat.close()
