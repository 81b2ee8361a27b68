"""benchmarks/bench_s3.py runs at a tiny size, so it never rots (no speed assertions)."""

import runpy
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_s3.py"


def test_bench_s3_tiny(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(BENCH), "--tiny"])
    runpy.run_path(str(BENCH), run_name="__main__")
    out = capsys.readouterr().out
    assert "s3 cold epoch" in out and "s3 warm epochs" in out and "× local" in out
    assert (tmp_path / "bench-results" / "bench_s3.jsonl").is_file()
