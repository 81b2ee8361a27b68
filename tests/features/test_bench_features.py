"""benchmarks/bench_features.py runs at a tiny size, so it never rots (no speed assertions)."""

import runpy
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_features.py"


def test_bench_features_tiny(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", [str(BENCH), "--tiny"])
    runpy.run_path(str(BENCH), run_name="__main__")
    out = capsys.readouterr().out
    assert "samples/s" in out and "parent=latest (+1 new)" in out
    assert "computed     1  reused    16" in out
    # the warm arms copy what the earlier version holds: all 16 samples, or the 8 of finger 1
    assert "all found" in out and "found 16" in out and "found 8" in out
    assert "ingest --features default" in out
