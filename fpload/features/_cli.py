"""``fpload features``: look at a version's feature cache, and write scalar features to a catalog.

Registered by :mod:`fpload.cli`; user errors raise :mod:`fpload.errors` exceptions, which the CLI
prints in one line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

features_app = typer.Typer(help="Feature caches (features.zarr) of dataset versions: show, import.",
                           no_args_is_help=True)


def _stats(values) -> dict[str, float]:  # noqa: ANN001
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    return {"min": float(v.min()), "p10": float(np.percentile(v, 10)), "median": float(np.median(v)),
            "mean": float(v.mean()), "p90": float(np.percentile(v, 90)), "max": float(v.max())}


@features_app.command("show")
def features_show(
    version: str = typer.Argument(..., help="A version: ROOT/NAME/ID, an id prefix ROOT/NAME/6aac, or "
                                  "ROOT/NAME (its latest); ROOT may be a URL such as s3://bucket/versions."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw the quality histogram and a few "
                                        "orientation fields over thumbnails into this PNG."),
    verify: bool = typer.Option(False, "--verify", help="Also recompute the cache's sha256."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON to stdout."),
) -> None:
    """Summarise a version's feature cache: arrays, shapes, dtypes, chunks, codec, extractors, quality.

    Example: fpload features show versions/index-fingers --plot features.png
    """
    from rich.console import Console
    from rich.table import Table

    from fpload.features._cache import open_features

    cache = open_features(version, verify=verify)
    summary = cache.summary()
    if "quality" in cache:
        summary["quality"] = _stats(cache.load("quality"))
    if plot is not None:
        from fpload.features._plot import plot_features

        summary["plot"] = str(plot_features(cache, plot))
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        return
    out = Console()
    codec = summary["codec"]
    out.print(f"[bold]{summary['version']}[/] features: {summary['samples']} samples, block {cache.block} px, "
              f"grid {cache.grid[0]}×{cache.grid[1]} blocks, {codec['name']} level {codec['level']}, "
              f"{summary['bytes'] / 1e6:.2f} MB; computed {cache.computed}, reused {cache.reused}")
    t = Table("array", "shape", "dtype", "chunks", "extractor")
    for name in cache.names:
        s = cache.spec(name)
        t.add_row(name, "×".join(map(str, s.shape)), s.dtype, "×".join(map(str, s.chunks)),
                  f"{s.extractor} v{s.version}" + ("" if s.function.startswith("builtin:") else f" ({s.function})"))
    out.print(t)
    out.print("params:")
    seen = set()
    for name in cache.names:
        s = cache.spec(name)
        if s.extractor not in seen:
            seen.add(s.extractor)
            params = " ".join(f"{k}={v}" for k, v in sorted(s.params.items())) or "(none)"
            out.print(f"  {s.extractor} v{s.version}: {params}", soft_wrap=True)
    if "quality" in summary:
        q = summary["quality"]
        out.print("quality (NFIQ-inspired proxy, not NFIQ 2): "
                  + "  ".join(f"{k} {q[k]:.1f}" for k in ("min", "p10", "median", "mean", "p90", "max")))
    if plot is not None:
        out.print(f"plot: {summary['plot']}")


@features_app.command("import")
def features_import(
    version: str = typer.Argument(..., help="The version whose feature to import: ROOT/NAME (its latest) or "
                                  "ROOT/NAME/ID; ROOT may be a URL such as s3://bucket/versions."),
    catalog: str = typer.Option(..., "--catalog", "-c", help="Catalog to write into: a DuckDB file or a "
                                "postgresql://user@host:port/db URL."),
    feature: str = typer.Option("quality", "--feature", help="A scalar feature of the cache."),
    column: str = typer.Option("quality", "--column", help="The catalog column to set (an updatable one)."),
    message: Optional[str] = typer.Option(None, "--message", "-m", help="Note stored with the revision "
                                          "(the extractor and its version are always added)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON to stdout."),
) -> None:
    """Write a scalar feature (e.g. quality) of every sample into a catalog column, as one revision.

    The revision message records the version and the extractor's name, version and params, so a
    later pack selecting on the column stays reproducible.

    Example: fpload features import versions/all --catalog cat.duckdb --feature quality --column quality
    """
    from fpload.catalog import open_catalog
    from fpload.features._import import import_to_catalog

    with open_catalog(catalog, create=False) as cat:
        rep = import_to_catalog(version, cat, feature=feature, column=column, message=message)
        where = cat.path  # never the URL as typed: it may hold a password
    if as_json:
        sys.stdout.write(json.dumps(rep.to_dict(), indent=2, sort_keys=True) + "\n")
    elif rep.revision is None:
        typer.echo(f"nothing changed: {column} already holds {feature} for all {rep.samples} samples")
    else:
        typer.echo(f"revision {rep.revision}: set {column} from feature {feature} on {rep.changed} of "
                   f"{rep.samples} samples in {where}")
