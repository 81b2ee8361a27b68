"""Minutiae rows of the realism report: density for any set, ground-truth recovery for synthetic sets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from fpload.errors import ConfigError, UsageError
from fpload.synth._minutiae_rows import minutiae_provider
from fpload.synth._realism import ImageSet, builtin_rows, realism_report


def _truth(k: int) -> list[list[float]]:
    return [[20.0 + 10 * i, 30.0 + 5 * i, 0.5, "ending"] for i in range(k)]


def test_rows_count_detections_per_mm2_and_recovered_truth() -> None:
    images = [np.full((64, 64), 255, np.uint8) for _ in range(3)]
    truth = [_truth(4), _truth(2), []]

    def detector(picked, ppi):  # finds the first half of each truth, plus one stray point far away
        assert ppi == 500
        out = []
        for t in truth[: len(picked)]:
            found = [[x, y, a, 1] for x, y, a, _ in t[: len(t) // 2]] + [[500.0, 500.0, 0.0, 2]]
            out.append(np.array(found, np.float32).reshape(-1, 4))
        return out

    provider = minutiae_provider(2, detector=detector, area=lambda image, ppi: 2.0)
    synthetic = ImageSet("synthetic", images, [{"minutiae": t} for t in truth])
    rows = {m.name: m for m in provider(synthetic)}
    assert rows["leader_per_mm2"].values == (1.5, 1.0)  # 3 and 2 detections on 2 mm², first 2 images only
    assert rows["leader_recovery"].values == (0.5, 0.5)
    assert rows["leader_recovery"].text() == "50%"
    real = {m.name for m in provider(ImageSet("real", images))}
    assert real == {"leader_per_mm2"}  # no truth: no recovery row


def test_report_puts_the_rows_beside_the_builtin_ones(tmp_path: Path) -> None:
    images = [np.full((64, 64), 255, np.uint8)]
    provider = minutiae_provider(1, detector=lambda picked, ppi: [np.zeros((0, 4), np.float32)] * len(picked),
                                 area=lambda image, ppi: 0.0)
    report = realism_report([ImageSet("s", images, [{"minutiae": _truth(3)}])], tmp_path / "r",
                            providers=[builtin_rows, provider])
    assert report.value("leader_recovery", "s") == 0.0
    assert math.isnan(report.value("leader_per_mm2", "s"))  # no foreground: not a number, not a crash
    assert "ground-truth minutiae LEADER recovers" in (tmp_path / "r" / "realism.md").read_text()
    with pytest.raises(UsageError, match="at least 1"):
        minutiae_provider(0)


def test_cli_minutiae_needs_report_and_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from fpload.cli import main
    from fpload.features import _pyfing

    base = ["synth", "--subjects", "1", "--fingers", "1", "--impressions", "1", "--size", "256", "--workers", "1",
            "--no-progress", "--out", str(tmp_path / "o")]
    assert main([*base, "--minutiae", "2"]) == 2
    assert "--report" in capsys.readouterr().err

    def missing() -> None:
        raise ConfigError("features: the pyfing extractors need the optional extra: pip install 'fpload[pyfing]'")

    monkeypatch.setattr(_pyfing, "import_pyfing", missing)
    assert main([*base, "--report", str(tmp_path / "r"), "--minutiae", "2"]) != 0
    assert "fpload[pyfing]" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_cli_runs_leader_on_a_synthetic_impression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fpload.cli import main
    from fpload.features._pyfing import import_pyfing

    try:  # the test extra installs pyfing; outside it this one test has nothing to run
        import_pyfing()
    except ConfigError as err:
        pytest.skip(str(err))

    argv = ["synth", "--subjects", "1", "--fingers", "1", "--impressions", "1", "--size", "256", "--workers", "1",
            "--no-progress", "--out", str(tmp_path / "o"), "--report", str(tmp_path / "r"), "--minutiae", "1",
            "--json"]
    assert main(argv) == 0
    stats = json.loads(capsys.readouterr().out)["report"]["statistics"]
    recovered = stats["leader_recovery"]["fpload synth"]
    assert recovered["n"] == 1 and 0.0 <= recovered["mean"] <= 1.0
    assert stats["leader_per_mm2"]["fpload synth"]["mean"] > 0  # LEADER finds minutiae on a synthetic print
