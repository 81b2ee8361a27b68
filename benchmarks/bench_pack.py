"""The pack benchmark (see benchmarks/README.md): `python benchmarks/bench_pack.py --size tiny|small|full`.

A thin script over :func:`fpload.bench.run_pack_bench`, the same as `fpload bench pack`: appends JSON
lines to OUT/pack.jsonl, prints a table of ratios to the baseline measured in the same run (local
engine at 1..cores workers, and Ray with 2 CPUs when `fpload[ray]` is installed), a table of the
cost per sample by size (with 10^6 samples extrapolated from a linear fit, labelled so) and the
driver's bytes per sample, and draws OUT/pack.png. No speed assertions anywhere; the test suite runs
it at the tiny size only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from fpload.bench import SIZE_NAMES, run_pack_bench

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZE_NAMES, default="small", help="preset (default: small)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="results folder")
    args = parser.parse_args(argv)
    run_pack_bench(args.size, args.out, log=lambda m: print(m, file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
