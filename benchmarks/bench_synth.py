"""Benchmark of ``fpload.synth``: impressions per second at 512 x 512.

    python benchmarks/bench_synth.py --size full    # 1,000 impressions at 512 x 512 (target: <= 60 s on 2 cores)
    python benchmarks/bench_synth.py --size demo    # the synthesis of `fpload demo`: 192 at 256 x 256
    python benchmarks/bench_synth.py --size tiny    # seconds; what the test suite runs

Prints a table (a single-process run on a tenth of the subjects is the baseline the parallel
run is compared with, both measured here) and appends one JSON line per run to ``bench-results/synth.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

SIZES = {
    "tiny": {"subjects": 2, "fingers": 1, "impressions": 2, "size": 256},
    "demo": {"subjects": 24, "fingers": 2, "impressions": 4, "size": 256},
    "full": {"subjects": 125, "fingers": 2, "impressions": 4, "size": 512},
}
TARGET_SECONDS = {"full": 60.0}  # issue 16: 1,000 impressions at 512 x 512 within a minute on 2 cores


def run(preset: str, workers: int | None, results: Path) -> list[dict]:
    """Time one serial and one parallel run of ``preset``; append and return their records."""
    from fpload.synth import synthesize

    params = SIZES[preset]
    records = []
    cpus = os.cpu_count() or 1
    for label, count in (("serial", 1), ("parallel", workers or cpus)):
        run_params = dict(params)
        if label == "serial":  # the baseline on a tenth of the subjects: same per-image work
            run_params["subjects"] = max(1, params["subjects"] // 10)
        with tempfile.TemporaryDirectory(prefix="fpload-bench-synth-") as tmp:
            start = time.perf_counter()
            result = synthesize(tmp, workers=count, progress=False, **run_params)
            seconds = time.perf_counter() - start
        records.append(
            {
                "benchmark": "synth",
                "preset": preset,
                "run": label,
                "workers": count,
                "images": result.images,
                "seconds": round(seconds, 3),
                "images_per_second": round(result.images / seconds, 2),
                "cpus": cpus,
                "machine": platform.machine(),
                "python": platform.python_version(),
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
                "target_seconds": TARGET_SECONDS.get(preset) if label == "parallel" else None,
                **run_params,
            }
        )
    base = records[0]["images_per_second"]
    print(f"{'run':<10}{'workers':>8}{'images':>8}{'seconds':>10}{'images/s':>10}{'x serial':>10}")
    for r in records:
        ratio = r["images_per_second"] / base if base else float("nan")
        print(f"{r['run']:<10}{r['workers']:>8}{r['images']:>8}{r['seconds']:>10.2f}{r['images_per_second']:>10.2f}{ratio:>10.2f}")
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, sort_keys=True) + "\n")
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny", help="preset (default: tiny)")
    parser.add_argument("--workers", type=int, default=None, help="processes of the parallel run (default: all CPUs)")
    parser.add_argument("--results", type=Path, default=Path("bench-results/synth.jsonl"), help="JSON-lines file to append to")
    args = parser.parse_args(argv)
    run(args.size, args.workers, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
