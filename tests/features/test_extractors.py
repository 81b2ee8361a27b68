"""The built-in extractors recover known orientation and frequency; custom extractors plug in."""

import numpy as np
import pytest

from fpload.errors import ConfigError, DataError
from fpload.features import FeaturesConfig, extract_features, resolve_extractors, run_extractors
from fpload.features._builtin import thumbnail_of


def sinusoid(h: int, w: int, alpha: float, period: float, noise: float = 8.0, seed: int = 0) -> np.ndarray:
    """Parallel ridges whose wave vector points at ``alpha`` (so ridges run at alpha + 90°)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 128 + 100 * np.cos(2 * np.pi * (x * np.cos(alpha) + y * np.sin(alpha)) / period)
    img += np.random.default_rng(seed).normal(0, noise, (h, w))
    return np.clip(img, 0, 255).astype(np.uint8)


def angle_error(a: np.ndarray, b: float) -> np.ndarray:
    return np.abs((a - b + np.pi / 2) % np.pi - np.pi / 2)


@pytest.mark.parametrize("period", [6.0, 9.0, 12.0])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.2, 2.3])
def test_orientation_and_frequency_of_a_sinusoid(alpha, period):
    img = sinusoid(96, 112, alpha, period, seed=int(alpha * 10 + period))
    f = extract_features(img)
    cos2, sin2 = f["orientation"].astype(np.float64)
    assert f["orientation"].shape == (2, 6, 7) and f["orientation"].dtype == np.float16
    theta = 0.5 * np.arctan2(sin2, cos2) % np.pi
    assert angle_error(theta, (alpha + np.pi / 2) % np.pi).max() < 0.08  # radians (< 5°)
    np.testing.assert_allclose(np.hypot(cos2, sin2), 1.0, atol=2e-3)
    freq = f["frequency"].astype(np.float64)
    assert f["frequency"].dtype == np.float16
    assert np.abs(freq * period - 1).max() < 0.1  # within 10 % of 1 / period
    assert f["foreground"].all()
    assert 80 <= float(f["quality"]) <= 100


def test_padding_and_background_are_not_foreground():
    img = np.full((70, 90), 255, np.uint8)
    img[:40, :50] = sinusoid(40, 50, 0.3, 8.0)
    f = extract_features(img)
    assert f["foreground"].shape == (5, 6)  # ceil(70/16) × ceil(90/16)
    fg = f["foreground"]
    assert fg[:2, :3].all()             # blocks fully inside the ridges
    assert not fg[3:, :].any() and not fg[:, 4:].any()  # flat background
    assert not np.any(f["frequency"][3:, :])
    # orientation is smoothed over one block around: two blocks away from the ridges it is empty
    assert not np.any(f["orientation"][:, 4:, :]) and not np.any(f["orientation"][:, :, 5:])
    blank = extract_features(np.full((33, 17), 255, np.uint8))
    assert not blank["foreground"].any() and float(blank["quality"]) == 0.0


def test_quality_ranks_clean_over_noisy_and_is_bounded():
    clean = extract_features(sinusoid(128, 128, 0.7, 9.0, noise=4))["quality"]
    noisy = extract_features(sinusoid(128, 128, 0.7, 9.0, noise=70))["quality"]
    faint = extract_features((128 + (sinusoid(128, 128, 0.7, 9.0).astype(int) - 128) // 8).astype(np.uint8))["quality"]
    assert clean.dtype == np.float32 and 0 <= noisy < clean <= 100 and faint < clean


def test_thumbnail_keeps_aspect_top_left():
    img = np.zeros((100, 50), np.uint8)
    t = thumbnail_of(img, 64)
    assert t.shape == (64, 64) and t.dtype == np.uint8
    assert (t[:, :32] == 0).all() and (t[:, 32:] == 255).all()
    ramp = np.tile(np.arange(128, dtype=np.uint8) * 2, (128, 1))
    np.testing.assert_array_equal(thumbnail_of(ramp, 64)[0], (np.arange(64) * 4 + 1).astype(np.uint8))


def double(image, factor=2.0):
    return {"mean2": np.float32(image.mean() * factor), "hist": np.bincount(image.ravel() // 64, minlength=4)}


double.fpload_version = 3


def bad_shape(image):
    return {"vec": np.zeros(image.shape[0] % 3 + 1)}


def test_custom_extractor_by_module_function():
    cfg = FeaturesConfig(extractors=["quality", {"name": "stats", "function": f"{__name__}:double",
                                                 "params": {"factor": 3}}])
    job = resolve_extractors(cfg)
    assert [e.version for e in job.extractors] == [1, 3]  # fpload_version attribute
    out = run_extractors(np.full((20, 20), 100, np.uint8), job)
    assert float(out["stats"]["mean2"]) == 300.0 and out["stats"]["hist"].tolist() == [0, 400, 0, 0]


def test_bad_extractor_specs_are_config_errors():
    with pytest.raises(ConfigError, match="unknown extractor 'nope'.*built-ins: orientation"):
        resolve_extractors(FeaturesConfig(extractors=["nope"]))
    with pytest.raises(ConfigError, match="cannot load 'no_such_module:f'"):
        resolve_extractors(FeaturesConfig(extractors=[{"name": "x", "function": "no_such_module:f"}]))
    with pytest.raises(ConfigError, match="unknown param 'smoth'.*allowed: smooth"):
        resolve_extractors(FeaturesConfig(extractors=[{"name": "orientation", "params": {"smoth": 2}}]))
    with pytest.raises(ConfigError, match="built-in extractor 'quality' is version 1"):
        resolve_extractors(FeaturesConfig(extractors=[{"name": "quality", "version": 2}]))
    with pytest.raises(ConfigError, match="listed twice"):
        FeaturesConfig.from_dict({"extractors": ["quality", "quality"]})
    with pytest.raises(ConfigError, match="must look like 'package.module:function'"):
        FeaturesConfig.from_dict({"extractors": [{"name": "x", "function": "nocolon"}]})
    with pytest.raises(ConfigError, match="key 'extractors.0.name': Field required"):
        FeaturesConfig.from_dict({"extractors": [{"nmae": "x"}]})


def test_custom_extractor_failure_names_the_sample():
    def boom(image):
        raise RuntimeError("kaput")

    import sys

    sys.modules[__name__].boom = boom
    job = resolve_extractors(FeaturesConfig(extractors=[{"name": "b", "function": f"{__name__}:boom"}]))
    with pytest.raises(DataError, match="sample abc: extractor b v1 .* failed: RuntimeError: kaput"):
        run_extractors(np.zeros((8, 8), np.uint8), job, sample_id="abc")
