"""The catalog benchmark: ingest rate from real image files, and query latency at growing row counts.

Ingest: a fresh catalog ingests N unique ridge PNGs (every image read, hashed and fully decoded,
as ``fpload catalog ingest`` does). Queries: catalogs of 10^4.. rows, where the rows beyond the
real ingested ones are generated metadata inserted through the catalog's own revision code
(``Catalog._commit_revision``, 100,000 rows per revision); each WHERE expression runs through
``Catalog.query`` (snapshot at the head revision, then the sandboxed query), median of repeats.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fpload.bench._common import append_results, check_size, machine_info
from fpload.bench._data import ridge_captures_at_least, subset_metadata
from fpload.bench._report import plot_bars, print_table, try_plot

QUERIES = {
    "consent": "consent",
    "finger+quality": "finger IN (2, 7) AND quality >= 40 AND consent",
    "sensor+impression": "sensor = 'sensor-1' AND impression = 0",
    "json extra": "json_extract_string(extra, '$.site') = 'lab-2'",
    "one subject": "subject_id = 'S000042'",
}
CHUNK = 100_000


@dataclass(frozen=True)
class CatalogSize:
    ingest: int
    rows: tuple[int, ...]
    repeats: int


CATALOG_SIZES = {
    "tiny": CatalogSize(40, (1_000,), repeats=2),
    "small": CatalogSize(1_000, (10_000, 100_000), repeats=5),
    "full": CatalogSize(10_000, (10_000, 100_000, 1_000_000), repeats=5),
}


def synthetic_rows(start: int, stop: int) -> list[dict[str, Any]]:
    """Catalog rows of generated metadata (no image behind them), varied like real captures."""
    rows = []
    for i in range(start, stop):
        subject = i // 10
        rows.append({
            "sample_id": hashlib.sha256(f"fpload-bench-synthetic-{i}".encode()).hexdigest()[:32],
            "uri": f"synthetic://bench/{i}.png", "subject_id": f"S{subject:06d}", "finger": i % 10 + 1,
            "impression": (i // 3) % 4, "sensor": f"sensor-{subject % 3}", "ppi": 500, "width": 512,
            "height": 512, "format": "png", "quality": float((i * 37) % 100), "split": None,
            "consent": subject % 17 != 0, "synthetic": True, "captured_at": None,
            "extra": json.dumps({"site": f"lab-{i % 4}"}, sort_keys=True)})
    return rows


def _query_catalog(cache: Path, rows: int, log) -> Path:
    """A catalog of ``rows`` generated rows (made once, reused)."""
    from fpload.catalog import open_catalog

    path = cache / f"catalog-rows-{rows}.duckdb"
    done = path.with_suffix(".done")
    if path.exists() and done.exists():
        return path
    path.unlink(missing_ok=True)
    log(f"inserting {rows} generated rows into {path} (once)")
    with open_catalog(path) as cat:
        for start in range(0, rows, CHUNK):
            cat._commit_revision("ingest", "benchmark: generated rows", synthetic_rows(start, min(rows, start + CHUNK)), [])
    done.write_text("ok\n")
    return path


def _median_ms(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times), out


def run_catalog_bench(size: str = "small", out: str | Path = "bench-results", *, plot: bool = True,
                      log: Callable[[str], Any] = print, console=None) -> list[dict[str, Any]]:
    """Measure the ingest rate and query latencies of the size preset; JSON lines, table, plot."""
    from fpload.catalog import open_catalog

    check_size(size)
    preset = CATALOG_SIZES[size]
    out = Path(out)
    cache = out / "cache"
    machine = machine_info(size)
    results: list[dict[str, Any]] = []
    meta = subset_metadata(ridge_captures_at_least(cache, preset.ingest, log=log), preset.ingest)
    with tempfile.TemporaryDirectory(prefix="fpload-bench-ingest-", dir=cache) as tmp:
        with open_catalog(Path(tmp) / "cat.duckdb") as cat:
            t0 = time.perf_counter()
            rep = cat.ingest(meta)
            seconds = time.perf_counter() - t0
    results.append({"op": "ingest", "rows": rep.added, "seconds": round(seconds, 3),
                    "images_per_s": round(rep.added / seconds, 1), "source": "real 128×128 PNG files"})
    for rows in preset.rows:
        path = _query_catalog(cache, rows, log)
        with open_catalog(path, read_only=True) as cat:
            snap_ms, _ = _median_ms(lambda: cat.snapshot(), preset.repeats)
            results.append({"op": "snapshot", "rows": rows, "latency_ms": round(snap_ms, 2),
                            "source": "generated (_commit_revision)"})
            for name, where in QUERIES.items():
                ms, table = _median_ms(lambda: cat.query(where), preset.repeats)
                results.append({"op": "query", "query": name, "where": where, "rows": rows,
                                "latency_ms": round(ms, 2), "matched": table.num_rows, "repeats": preset.repeats,
                                "source": "generated (_commit_revision)"})
    path = append_results(out, "catalog", results, machine)
    report_catalog(results, machine, console=console)
    if plot:
        try_plot(plot_catalog, results, out / "catalog.png", machine, log=log)
        log(f"results appended to {path}; plot {out / 'catalog.png'}")
    return results


def report_catalog(results: list[dict[str, Any]], machine: dict[str, Any], console=None) -> None:
    rows = []
    for r in results:
        if r["op"] == "ingest":
            rows.append(["ingest", r["rows"], f"{r['images_per_s']:.0f} images/s", r["seconds"], None, r["source"]])
        else:
            rows.append([r.get("query", "snapshot"), r["rows"], f"{r['latency_ms']:.1f} ms", None,
                         r.get("matched"), r["source"]])
    print_table("fpload bench catalog", ["operation", "rows", "rate / median latency", "seconds", "matched",
                                         "data"], rows,
                caption=(f"{machine['size']}: query latency = Catalog.query (snapshot at head + sandboxed "
                         f"WHERE), median of repeats; {machine['cores']} cores ({machine['cpu_model']}). "
                         "No baseline: figures only."),
                console=console)


def plot_catalog(results: list[dict[str, Any]], path: Path, machine: dict[str, Any]) -> Path:
    groups = [n for n in ["snapshot", *QUERIES]]
    counts = sorted({r["rows"] for r in results if r["op"] != "ingest"})
    series = [f"{c:,} rows" for c in counts]
    values, notes = {}, {}
    for r in results:
        if r["op"] == "ingest":
            continue
        key = (r.get("query", "snapshot"), f"{r['rows']:,} rows")
        values[key] = r["latency_ms"]
        notes[key] = f"{r['latency_ms']:.0f} ms" if r["latency_ms"] >= 10 else f"{r['latency_ms']:.1f} ms"
    ingest = next(r for r in results if r["op"] == "ingest")
    return plot_bars(path, groups=groups, series=series, values=values, notes=notes,
                     title=(f"catalog, {machine['size']}: median query latency (ms); ingest "
                            f"{ingest['images_per_s']:.0f} images/s at {ingest['rows']:,} images"),
                     ylabel="latency ms (log)")
