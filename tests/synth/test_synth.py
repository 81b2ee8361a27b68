"""Tests of fpload.synth: determinism, the catalog contract, realism checks, errors, CLI, bench."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fpload.errors import ConfigError, UsageError
from fpload.synth import (
    PATTERN_CLASSES,
    SynthConfig,
    estimate_orientation,
    generate_master,
    render_impression,
    similarity,
    synthesize,
    write_preview,
)
from fpload.synth._orientation import draw_pattern_class, poincare_indices
from fpload.synth._realism import foreground, ridge_period_px

REPO = Path(__file__).resolve().parents[2]
REQUIRED = {
    "file": str,
    "subject_id": str,
    "finger": int,
    "impression": int,
    "sensor": str,
    "ppi": int,
    "consent": bool,
    "synthetic": bool,
    "quality": float,
}
SMALL = {"subjects": 2, "fingers": 2, "impressions": 2, "size": 160, "progress": False}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(result) -> list[dict]:
    return [json.loads(line) for line in result.metadata_path.read_text().splitlines()]


# ---------------------------------------------------------------- determinism and the contract


def test_same_seed_gives_identical_bytes_whatever_the_workers(tmp_path: Path) -> None:
    one = synthesize(tmp_path / "a", seed=7, workers=1, **SMALL)
    two = synthesize(tmp_path / "b", seed=7, workers=2, **SMALL)
    assert one.images == two.images == 8
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_different_seeds_give_different_fingers(tmp_path: Path) -> None:
    config_a = SynthConfig(subjects=1, fingers=1, impressions=1, size=160, seed=1)
    config_b = SynthConfig(subjects=1, fingers=1, impressions=1, size=160, seed=2)
    a, b = generate_master(config_a, 1, 1), generate_master(config_b, 1, 1)
    assert not np.array_equal(a.ridges, b.ridges)
    assert a.minutiae != b.minutiae
    ra = synthesize(tmp_path / "a", seed=1, workers=1, **SMALL)
    rb = synthesize(tmp_path / "b", seed=2, workers=1, **SMALL)
    images_a, images_b = _files(ra.out / "images"), _files(rb.out / "images")
    assert images_a.keys() == images_b.keys()
    assert all(images_a[k] != images_b[k] for k in images_a)


def test_metadata_follows_the_catalog_contract(tmp_path: Path) -> None:
    result = synthesize(tmp_path / "out", seed=3, workers=1, **SMALL)
    assert result.metadata_path == tmp_path / "out" / "metadata.jsonl"
    assert result.seconds > 0
    lines = result.metadata_path.read_text().splitlines()
    assert len(lines) == result.images == 8
    rows = [json.loads(line) for line in lines]
    for line, row in zip(lines, rows):
        assert line == json.dumps(row, sort_keys=True, separators=(",", ":"))
        for key, kind in REQUIRED.items():
            assert isinstance(row[key], kind), (key, row[key])
        assert row["subject_id"].startswith("syn-")
        assert 1 <= row["finger"] <= 10 and row["impression"] >= 0
        assert row["consent"] is True and row["synthetic"] is True
        assert 0.0 <= row["quality"] <= 100.0
        assert row["ppi"] == 500 and row["seed"] == 3
        assert row["pattern_class"] in PATTERN_CLASSES
        for x, y, theta, kind in row["minutiae"]:
            assert 0 <= x < 160 and 0 <= y < 160 and -np.pi <= theta <= np.pi
            assert kind in ("ending", "bifurcation")
        with Image.open(result.out / row["file"]) as image:
            assert image.mode == "L" and image.size == (160, 160)
            pixels = np.asarray(image)
        assert np.percentile(pixels, 90) > 190  # white-ish background and valleys
        assert np.percentile(pixels, 5) < 110  # dark ridges
    keys = [(r["subject_id"], r["finger"], r["impression"]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert {r["finger"] for r in rows} == {1, 2}


def test_jp2_is_lossless(tmp_path: Path) -> None:
    params = {**SMALL, "subjects": 1, "fingers": 1}
    png = synthesize(tmp_path / "png", seed=5, workers=1, **params)
    jp2 = synthesize(tmp_path / "jp2", seed=5, workers=1, fmt="jp2", **params)
    for a, b in zip(_rows(png), _rows(jp2)):
        assert b["file"].endswith(".jp2")
        with Image.open(png.out / a["file"]) as x, Image.open(jp2.out / b["file"]) as y:
            assert np.array_equal(np.asarray(x), np.asarray(y))


# ---------------------------------------------------------------- realism


@pytest.mark.parametrize("period", [(8.0, 9.0), (11.0, 12.0)])
def test_dominant_ridge_period_is_in_the_requested_range(period: tuple[float, float]) -> None:
    config = SynthConfig(subjects=3, fingers=1, impressions=1, size=256, ridge_period=period)
    for subject in range(1, 4):
        master = generate_master(config, subject, 1)
        clean = np.where(master.mask > 0.5, 128 - 100 * master.ridges, 255).astype(np.uint8)
        # median over the fingertip's windows (one patch at the centre straddles the core)
        measured = ridge_period_px(clean, foreground(clean))
        assert period[0] - 0.5 <= measured <= period[1] + 0.5, (subject, measured)
        image = render_impression(master, 0, config).image
        # ragged optical ridges: the median over the print's windows, not one patch's peak
        measured = ridge_period_px(image, foreground(image))
        assert period[0] - 0.75 <= measured <= period[1] + 0.75, (subject, measured)


def _cluster(index: np.ndarray, coords: tuple[np.ndarray, np.ndarray], value: int, radius: float) -> int:
    """Number of groups of grid points with Poincaré index ``value`` (points within ``radius``)."""
    ys, xs = np.nonzero(index == value)
    points = np.stack([coords[0][ys], coords[1][xs]], 1).astype(float)
    groups: list[np.ndarray] = []
    for p in points:
        if not any(np.hypot(*(p - g)) < radius for g in groups):
            groups.append(p)
    return len(groups)


EXPECTED_POINTS = {"left_loop": (1, 1), "right_loop": (1, 1), "whorl": (2, 2), "tented_arch": (1, 1), "arch": (0, 0)}


@pytest.mark.parametrize("pattern", sorted(EXPECTED_POINTS))
def test_each_class_has_its_singular_points_and_a_smooth_field(pattern: str) -> None:
    config = SynthConfig(subjects=4, fingers=1, impressions=1, size=256)
    for subject in (1, 2):
        master = generate_master(config, subject, 1, pattern=pattern)
        assert [p.kind for p in master.singular_points].count("core") == EXPECTED_POINTS[pattern][0]
        index, coords = poincare_indices(master.theta, step=4, radius=1)
        cores = _cluster(index, coords, 1, radius=12.0)
        deltas = _cluster(index, coords, -1, radius=12.0)
        assert (cores, deltas) == EXPECTED_POINTS[pattern], (subject, cores, deltas)
        # smooth away from singular points: neighbouring orientations differ little
        doubled = np.exp(2j * master.theta)
        jump = np.maximum(
            np.abs(np.angle(doubled[1:, :-1] * np.conj(doubled[:-1, :-1]))),
            np.abs(np.angle(doubled[:-1, 1:] * np.conj(doubled[:-1, :-1]))),
        )
        y, x = np.mgrid[0 : jump.shape[0], 0 : jump.shape[1]]
        far = np.ones(jump.shape, bool)
        for p in master.singular_points:
            far &= np.hypot(x - p.x, y - p.y) > 30
        assert jump[far].max() < 0.2  # doubled-angle radians per pixel: no jumps, no kinks
        # the ridges follow the field: the orientation estimated from the ridges agrees
        field = estimate_orientation(np.where(master.mask > 0.5, 128 - 100 * master.ridges, 250).astype(np.uint8))
        b = field.block
        model = master.theta[b // 2 :: b, b // 2 :: b][: field.theta.shape[0], : field.theta.shape[1]]
        diff = np.abs(np.angle(np.exp(2j * (field.theta - model)))) / 2
        cy, cx = (np.mgrid[0 : diff.shape[0], 0 : diff.shape[1]] + 0.5) * b
        use = field.foreground.copy()
        for p in master.singular_points:
            use &= np.hypot(cx - p.x, cy - p.y) > 2 * b
        assert np.median(diff[use]) < np.deg2rad(6) and np.mean(diff[use]) < np.deg2rad(10)


def test_pattern_classes_follow_population_frequencies() -> None:
    rng = np.random.default_rng(0)
    names = [draw_pattern_class(rng) for _ in range(20000)]
    for name, share in PATTERN_CLASSES.items():
        assert abs(names.count(name) / len(names) - share / sum(PATTERN_CLASSES.values())) < 0.015


def test_minutiae_ground_truth_is_plausible() -> None:
    config = SynthConfig(subjects=1, fingers=1, impressions=2, size=512)
    master = generate_master(config, 1, 1)
    assert 25 <= len(master.minutiae) <= 150
    assert {kind for *_, kind in master.minutiae} == {"ending", "bifurcation"}
    for k in range(2):
        imp = render_impression(master, k, config)
        assert 0 < len(imp.minutiae) <= len(master.minutiae)
        on_ridges = [  # mapped minutiae lie on visible ridges (a few may sit in a dry break)
            imp.image[max(0, int(y) - 6) : int(y) + 7, max(0, int(x) - 6) : int(x) + 7].min() < 150
            for x, y, _, _ in imp.minutiae
        ]
        assert np.mean(on_ridges) >= 0.9


def test_same_finger_is_far_more_alike_than_different_fingers() -> None:
    """50 fingers x 2 impressions at 256 x 256: genuine vs impostor ``similarity`` separate."""
    config = SynthConfig(subjects=25, fingers=2, impressions=2, size=256)
    pairs = []
    for subject in range(1, 26):
        for finger in (1, 2):
            master = generate_master(config, subject, finger)
            pairs.append([render_impression(master, k, config).image for k in range(2)])
    genuine = np.array([similarity(a, b) for a, b in pairs])
    n = len(pairs)
    impostor = np.array([similarity(pairs[i][0], pairs[(i + s) % n][1]) for s in (1, 7, 19) for i in range(n)])
    spread = np.sqrt((genuine.var() + impostor.var()) / 2)
    d_prime = (genuine.mean() - impostor.mean()) / spread
    assert n == 50
    assert d_prime > 3.0, d_prime
    assert np.median(genuine) > 2.5 * np.median(impostor)
    assert np.percentile(genuine, 10) > np.percentile(impostor, 90)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("override", "name"),
    [
        ({"subjects": 0}, "subjects"),
        ({"subjects": -3}, "subjects"),
        ({"fingers": 0}, "fingers"),
        ({"fingers": 11}, "fingers"),
        ({"impressions": 0}, "impressions"),
        ({"size": 64}, "size"),
        ({"ppi": 100}, "ppi"),
        ({"fmt": "bmp"}, "format"),
        ({"workers": 0}, "workers"),
        ({"seed": -1}, "seed"),
        ({"subjects": 2.5}, "subjects"),
    ],
)
def test_bad_arguments_raise_a_clear_usage_error(tmp_path: Path, override: dict, name: str) -> None:
    params = {**SMALL, **override}
    with pytest.raises(UsageError) as info:
        synthesize(tmp_path / "out", **params)
    message = str(info.value)
    assert message.startswith(name) and str(next(iter(override.values()))) in message
    assert "allowed" in message
    assert not (tmp_path / "out").exists()


def test_config_round_trips_and_rejects_unknown_keys() -> None:
    config = SynthConfig(subjects=3, ridge_period=(9, 11), sensors=("syn-optical",))
    assert SynthConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown key"):
        SynthConfig.from_dict({"subjects": 1, "fingerz": 2})
    with pytest.raises(ConfigError, match="ridge_period"):
        SynthConfig.from_dict({"subjects": 1, "ridge_period": [12, 8]})
    with pytest.raises(UsageError, match="pattern"):
        generate_master(config, 1, 1, pattern="spiral")


# ---------------------------------------------------------------- CLI, preview, benchmark


def test_cli_writes_data_json_and_preview(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fpload.cli import main

    out, preview = tmp_path / "out", tmp_path / "sheet.png"
    argv = ["synth", "--subjects", "1", "--fingers", "1", "--impressions", "2", "--out", str(out)]
    argv += ["--size", "128", "--workers", "1", "--no-progress", "--json", "--preview", str(preview)]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 2 and Path(summary["metadata_path"]).is_file()
    with Image.open(preview) as image:
        assert image.mode == "P" and image.size[0] > image.size[1]  # palette: 1 master + 2 impressions


@pytest.mark.parametrize(
    ("flag", "value"), [("--subjects", "0"), ("--impressions", "-1"), ("--size", "32"), ("--format", "tiff")]
)
def test_cli_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str) -> None:
    from fpload.cli import main

    argv = ["synth", "--out", str(tmp_path / "o"), "--no-progress", "--size", "128", flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert value in err and "error" in err


def test_write_preview_draws_masters_and_impressions(tmp_path: Path) -> None:
    config = SynthConfig(subjects=2, fingers=1, impressions=2, size=128)
    path = write_preview(tmp_path / "p.png", config, rows=2, tile=96)
    with Image.open(path) as image:
        assert image.size == (3 * 96 + 4 * 4, 2 * 96 + 3 * 4)
    with pytest.raises(UsageError, match="tile"):
        write_preview(tmp_path / "q.png", config, tile=8)


def test_benchmark_runs_at_tiny_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_synth", REPO / "benchmarks" / "bench_synth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = tmp_path / "bench" / "synth.jsonl"
    assert module.main(["--size", "tiny", "--workers", "2", "--results", str(results)]) == 0
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["run"] for r in records] == ["serial", "parallel"]
    assert all(r["images"] > 0 and r["images_per_second"] > 0 for r in records)
    assert "images/s" in capsys.readouterr().out
