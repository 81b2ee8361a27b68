"""The erasure benchmark at a tiny size, so it never rots (no speed assertion)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def test_erase_bench_tiny(tmp_path):
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "erase_bench.py"
    spec = importlib.util.spec_from_file_location("erase_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.run(6, tmp_path / "b", shard=4, workers=1)
    assert out["samples"] == 24 and out["verify_ok"]
    assert 1 <= out["shards_rewritten"] <= 2 < out["shards"]
