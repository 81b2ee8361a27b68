"""The catalog benchmark (see benchmarks/README.md): `python benchmarks/bench_catalog.py --size tiny|small|full [--backend duckdb|postgresql|both]`.

A thin script over :func:`fpload.bench.run_catalog_bench`, the same as `fpload bench catalog`: appends JSON
lines to OUT/catalog.jsonl, prints a table of ratios to the baseline measured in the same run, and draws
OUT/catalog.png. No speed assertions anywhere; the test suite runs it at the tiny size only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from fpload.bench import SIZE_NAMES, run_catalog_bench

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZE_NAMES, default="small", help="preset (default: small)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="results folder")
    parser.add_argument("--backend", choices=("duckdb", "postgresql", "both"), default="duckdb",
                        help="catalog store (default: duckdb)")
    parser.add_argument("--pg-url", default=None,
                        help="PostgreSQL server (default: FPLOAD_BENCH_PG_URL, else a temporary one)")
    args = parser.parse_args(argv)
    run_catalog_bench(args.size, args.out, backend=args.backend, pg_url=args.pg_url,
                      log=lambda m: print(m, file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
