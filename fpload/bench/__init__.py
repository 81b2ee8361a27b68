"""Benchmarks of fpload against the tools users would otherwise pick, side by side.

Example::

    from fpload.bench import run_loader_bench
    rows = run_loader_bench("small", out="bench-results")   # table printed, JSON lines appended

``fpload bench loader|pack|catalog [--size tiny|small|full]`` and ``benchmarks/bench_*.py`` run
the same functions.
"""

from fpload.bench._catalog import run_catalog_bench
from fpload.bench._common import SIZE_NAMES, machine_info
from fpload.bench._loader import LOADER_SIZES, run_loader_bench
from fpload.bench._pack import run_pack_bench

__all__ = ["run_loader_bench", "run_pack_bench", "run_catalog_bench", "machine_info", "SIZE_NAMES",
           "LOADER_SIZES"]
