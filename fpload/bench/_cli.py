"""``fpload bench``: fpload against the tools users would otherwise pick, side by side."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from fpload.bench._common import SIZE_NAMES

bench_app = typer.Typer(name="bench", no_args_is_help=True, add_completion=False,
                        help="Benchmarks against the alternatives, same data, same machine, same run: "
                             "JSON lines, a table of ratios and a PNG plot in --out.")

_SIZE_HELP = f"Preset: {' | '.join(SIZE_NAMES)} (tiny runs in seconds and only proves the benchmark works)."


def _size(size: str) -> str:
    if size not in SIZE_NAMES:
        raise typer.BadParameter(f"{size!r} is not one of {', '.join(SIZE_NAMES)}", param_hint="--size")
    return size


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@bench_app.command("loader")
def loader_command(
    size: str = typer.Option("small", "--size", help=_SIZE_HELP),
    out: Path = typer.Option(Path("bench-results"), "--out", help="Results folder (JSON lines, plot, data cache)."),
    encoding: Optional[list[str]] = typer.Option(  # noqa: UP007 - typer needs Optional
        None, "--encoding", help="Only these storage encodings (repeatable): png, jpeg, raw, raw-lz4."),
    profile: bool = typer.Option(False, "--profile", help="Then show what bounds fpload CPU: a stage breakdown "
                                                          "and py-spy (or cProfile) top frames."),
) -> None:
    """Samples/s, MB/s, CPU s/1k and peak memory: fpload vs webdataset+DataLoader, DALI stock, I/O floor.

    fpload runs on CPU, and on GPU too when torch sees one; every contender does the same
    augmentation and delivers N×1×H×W float32 torch tensors.

    Example: fpload bench loader --size small --out bench-results
    """
    from fpload.bench._data import LOADER_ENCODINGS
    from fpload.bench._loader import run_loader_bench

    encs = tuple(encoding) if encoding else LOADER_ENCODINGS
    bad = [e for e in encs if e not in LOADER_ENCODINGS]
    if bad:
        raise typer.BadParameter(f"{bad[0]!r} is not one of {', '.join(LOADER_ENCODINGS)}", param_hint="--encoding")
    run_loader_bench(_size(size), out, encodings=encs, profile=profile, log=_log)


@bench_app.command("pack")
def pack_command(
    size: str = typer.Option("small", "--size", help=_SIZE_HELP),
    out: Path = typer.Option(Path("bench-results"), "--out", help="Results folder (JSON lines, plot, data cache)."),
) -> None:
    """fpload pack (PNG transcoding) at 1..cores workers and on Ray (2 CPUs) against webdataset's ShardWriter;
    cost per sample by size and the driver's bytes per sample.

    Example: fpload bench pack --size full
    """
    from fpload.bench._pack import run_pack_bench

    run_pack_bench(_size(size), out, log=_log)


@bench_app.command("catalog")
def catalog_command(
    size: str = typer.Option("small", "--size", help=_SIZE_HELP),
    out: Path = typer.Option(Path("bench-results"), "--out", help="Results folder (JSON lines, plot, data cache)."),
    backend: str = typer.Option("duckdb", "--backend",
                                help="Catalog store to measure: duckdb | postgresql | both."),
    pg_url: Optional[str] = typer.Option(  # noqa: UP007 - typer needs Optional
        None, "--pg-url", help="PostgreSQL server for --backend postgresql/both, e.g. "
                               "postgresql://bench@db.internal/postgres (its user needs CREATEDB; password "
                               "from PGPASSWORD or ~/.pgpass). Default: FPLOAD_BENCH_PG_URL, else a "
                               "temporary server when PostgreSQL is installed."),
) -> None:
    """Catalog speed per store: image ingest (images/s), commit of metadata rows, query latency
    (cached revision and cold) at growing row counts.

    Example: fpload bench catalog --size full --backend both
    """
    from fpload.bench._catalog import BACKEND_CHOICES, run_catalog_bench

    if backend not in BACKEND_CHOICES:
        raise typer.BadParameter(f"{backend!r} is not one of {', '.join(BACKEND_CHOICES)}", param_hint="--backend")
    run_catalog_bench(_size(size), out, backend=backend, pg_url=pg_url, log=_log)
