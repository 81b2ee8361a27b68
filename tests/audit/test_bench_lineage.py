"""benchmarks/bench_lineage.py runs at the tiny size, so it never rots (no speed assertions)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_lineage.py"


def test_bench_lineage_tiny(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_lineage", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--size", "tiny", "--out", str(tmp_path)]) == 0
    lines = [json.loads(line) for line in (tmp_path / "lineage.jsonl").read_text().splitlines()]
    assert {(r["contender"], r["query"]) for r in lines} == {
        ("pyarrow-scan", "subject"), ("fpload-find", "subject"), ("fpload-find", "sample"),
        ("fpload-find", "1000 ids"), ("fpload-audit", "subject")}
    assert all(r["rows"] == 5000 and r["best_s"] > 0 and r["hits"] >= 1 for r in lines)
    base = next(r for r in lines if r["contender"] == "pyarrow-scan")
    assert base["ratio_vs_baseline"] == 1.0
    assert "fpload bench lineage" in capsys.readouterr().out
