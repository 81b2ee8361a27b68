"""benchmarks/bench_ops.py runs at a tiny size, so it never rots (no speed assertions)."""

import runpy
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_ops.py"


def test_bench_ops_tiny(plugin: dict, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", [str(BENCH), "--tiny"])
    runpy.run_path(str(BENCH), run_name="__main__")
    out = capsys.readouterr().out
    for op in ("warp", "occlusion", "photometric", "chain"):
        assert op in out
