"""The realism report: its statistics measure what they claim, the CLI writes and prints them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fpload.errors import UsageError
from fpload.synth._realism import ImageSet, Measurement, load_folder, measure_image, realism_report


def _print(period: float, height: float, width: float, *, size: int = 320, cx: float = 160, cy: float = 160,
           angle: float = 0.3) -> np.ndarray:
    """A clean optical-like print: sinusoidal ridges in an ellipse, saturated white around."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    ridges = np.cos(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
    inside = ((x - cx) / (width / 2)) ** 2 + ((y - cy) / (height / 2)) ** 2 < 1
    return np.where(inside, 128 - 120 * ridges, 255).astype(np.uint8)


@settings(max_examples=15, deadline=None)
@given(st.floats(6.0, 14.0), st.floats(1.0, 1.8), st.floats(0.0, 3.1))
def test_statistics_recover_the_drawn_period_shape_and_background(period: float, ratio: float, angle: float) -> None:
    width = 150.0
    stats = measure_image(_print(period, ratio * width, width, angle=angle))
    assert stats["ridge_period_px"] == pytest.approx(period, rel=0.08)
    assert stats["height_width"] == pytest.approx(ratio, abs=0.2)
    assert stats["coherence"] > 0.8  # straight parallel ridges
    assert stats["background_mean"] == 255 and stats["background_noise"] == 0
    assert stats["cut_by_frame"] == 0


def test_noise_and_cut_prints_are_seen() -> None:
    rng = np.random.default_rng(0)
    cut = _print(9.0, 300, 200, cx=40, cy=120)  # shifted off the left edge
    assert measure_image(cut)["cut_by_frame"] == 1
    noisy = np.clip(_print(9.0, 200, 140).astype(np.float32) - 30 + rng.normal(0, 5, (320, 320)), 0, 255)
    stats = measure_image(noisy.astype(np.uint8))
    assert 3.5 < stats["background_noise"] < 6.5 and 215 < stats["background_mean"] < 235
    messy = np.clip(_print(9.0, 200, 140).astype(np.float32) + rng.normal(0, 60, (320, 320)), 0, 255)
    assert measure_image(messy.astype(np.uint8))["coherence"] < measure_image(_print(9.0, 200, 140))["coherence"]


def test_report_writes_table_json_samples_and_takes_extra_rows(tmp_path: Path) -> None:
    a = ImageSet("clean", [_print(9.0, 220, 150), _print(10.0, 240, 150)])
    b = ImageSet("cut", [_print(9.0, 300, 200, cx=30)])

    def extra(images: ImageSet) -> list[Measurement]:
        return [Measurement("count", (float(len(images.images)),), "images measured")]

    from fpload.synth._realism import ROW_PROVIDERS

    report = realism_report([a, b], tmp_path / "rep", providers=[*ROW_PROVIDERS, extra])
    assert report.value("cut_by_frame", "cut") == 1 and report.value("cut_by_frame", "clean") == 0
    assert report.value("count", "clean") == 2
    text = (tmp_path / "rep" / "realism.md").read_text()
    assert "| images measured |" in text and "| clean | cut |" in text.splitlines()[0] + " |"
    data = json.loads((tmp_path / "rep" / "realism.json").read_text())
    assert data["statistics"]["ridge_period_px"]["clean"]["n"] == 2
    with Image.open(tmp_path / "rep" / "samples.png") as sheet:
        assert sheet.size[1] > 2 * 320  # two rows of unscaled tiles
    with pytest.raises(UsageError, match="labels"):
        realism_report([a, a])


def test_load_folder_refuses_empty_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a folder"):
        load_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no images"):
        load_folder(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(UsageError, match="x.png"):
        load_folder(tmp_path / "bad")


def test_cli_report_compares_with_a_real_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fpload.cli import main

    real = tmp_path / "real"
    real.mkdir()
    for k in range(3):
        Image.fromarray(_print(9.0 + k, 260, 170, cx=150 + 10 * k)).save(real / f"{k}.png")
    argv = ["synth", "--subjects", "1", "--fingers", "1", "--impressions", "2", "--size", "256", "--workers", "1",
            "--no-progress", "--out", str(tmp_path / "o"), "--report", str(tmp_path / "r"), "--compare", str(real)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| statistic | real captures (issue 16) | fpload synth | real |" in out
    assert (tmp_path / "r" / "samples.png").is_file()
    assert main([*argv[:-4], "--json", "--compare", str(real)]) == 2  # --compare needs --report
    assert "--report" in capsys.readouterr().err
    bad = [a if a != str(tmp_path / "o") else str(tmp_path / "o2") for a in argv[:-1]]
    assert main([*bad, str(tmp_path / "missing")]) == 2  # refused before anything is written
    assert not (tmp_path / "o2").exists()
