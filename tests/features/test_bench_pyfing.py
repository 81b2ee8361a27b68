"""benchmarks/validate_features.py and bench_pyfing.py run at a tiny size, so they never rot
(no speed assertions; the tiny validation checks only that the table is there and sane)."""

import re
import runpy
import sys
from pathlib import Path

import pytest

from fpload.features._pyfing import import_pyfing

try:
    import_pyfing()
except Exception as err:  # noqa: BLE001 - the extra is not installed here
    pytest.skip(f"needs the fpload[pyfing] extra ({err})", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(monkeypatch, capsys, script: str) -> str:
    monkeypatch.setattr(sys, "argv", [str(ROOT / script), "--tiny"])
    runpy.run_path(str(ROOT / script), run_name="__main__")
    return capsys.readouterr().out


def test_validate_features_tiny(monkeypatch, capsys):
    out = _run(monkeypatch, capsys, "validate_features.py")
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ") and "---" not in line}
    assert {"built-in", "pyfing classical (GBFOE, XSFFE, GMFS)"} <= set(rows)
    for label in ("built-in", "pyfing classical (GBFOE, XSFFE, GMFS)"):
        orientation = float(rows[label].split("|")[2].split()[0])
        assert orientation < 10  # degrees, on clean synthetic prints
    m = re.search(r"recovered (\d+) of (\d+) ground-truth minutiae \((\d+)%\)", out)
    assert m and int(m.group(2)) > 0 and int(m.group(3)) > 30


def test_bench_pyfing_tiny(monkeypatch, capsys):
    out = _run(monkeypatch, capsys, "bench_pyfing.py")
    assert "| pyfing classical: GMFS, GBFOE, XSFFE | auto | 2 |" in out and "| none (features off) | auto | 2 |" in out
