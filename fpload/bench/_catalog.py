"""The catalog benchmark, per catalog store (DuckDB file, PostgreSQL): ingest, commit and query speed.

- **ingest** (op ``ingest``): a fresh catalog ingests N unique ridge PNGs through
  :meth:`Catalog.ingest` (every image read, hashed and fully decoded, then the revision committed):
  the image-checking rate, in images/s.
- **commit** (op ``commit``): a fresh catalog takes M rows of generated metadata through the
  commit half of the same ingest path (:meth:`Catalog._ingest_fresh` under the writer lock: the
  duplicate check against the head, the revision digest, the insert of the rows, the revision
  record), without images behind them. This is "ingest of 10^5 metadata rows"; a real ingest adds
  the image checking on top (see ``ingest``).
- **queries** (ops ``query``, ``query-cold``, ``snapshot``): catalogs of 10^3..10^6 generated rows
  (inserted through ``Catalog._commit_revision``, 100,000 rows per revision); each WHERE runs
  through ``Catalog.query``. ``query`` is the median of repeats of a repeated revision (its
  snapshot cached in the process), returning all columns (``latency_ms``) and only the sample ids
  (``ids_latency_ms``: the query engine without copying the rows out); ``query-cold`` is the
  first query of a newly opened catalog with an empty snapshot cache (connect, read the revision,
  build the snapshot, run the query).

PostgreSQL runs on the server of ``--pg-url`` (or ``FPLOAD_BENCH_PG_URL``; its user needs
CREATEDB: every catalog is a new database, dropped at the end), else on a temporary server started
for the run when PostgreSQL's programs are installed (:mod:`fpload.bench._pgserver`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from fpload.config import env_bench_pg_url
from fpload.bench._common import append_results, check_size, machine_info
from fpload.bench._data import ridge_captures_at_least, subset_metadata
from fpload.bench._report import plot_bars, print_table, try_plot
from fpload.errors import UsageError

QUERIES = {
    "consent": "consent",
    "finger+quality": "finger IN (2, 7) AND quality >= 40 AND consent",
    "sensor+impression": "sensor = 'sensor-1' AND impression = 0",
    "json extra": "json_extract_string(extra, '$.site') = 'lab-2'",
    "one subject": "subject_id = 'S000042'",
}
CHUNK = 100_000
#: the catalog stores the benchmark measures, and what ``--backend`` accepts
BACKENDS = ("duckdb", "postgresql")
BACKEND_CHOICES = (*BACKENDS, "both")


@dataclass(frozen=True)
class CatalogSize:
    ingest: int            # real images through Catalog.ingest
    commit: int            # generated metadata rows through the ingest's commit
    rows: tuple[int, ...]  # catalog sizes of the query measurements
    repeats: int


CATALOG_SIZES = {
    "tiny": CatalogSize(40, 1_000, (1_000,), repeats=2),
    "small": CatalogSize(1_000, 10_000, (10_000, 100_000), repeats=5),
    "full": CatalogSize(10_000, 100_000, (10_000, 100_000, 1_000_000), repeats=5),
}


def backends_of(choice: str) -> tuple[str, ...]:
    """The stores a ``--backend`` value means: ``"both"`` is DuckDB then PostgreSQL."""
    if choice not in BACKEND_CHOICES:
        raise UsageError(f"backend {choice!r} is not one of {', '.join(BACKEND_CHOICES)}")
    return BACKENDS if choice == "both" else (choice,)


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


class _Stores:
    """Fresh catalog locations of one backend: DuckDB files under ``cache``, or new databases on a
    PostgreSQL server (dropped on close)."""

    def __init__(self, backend: str, cache: Path, server_url: str | None, password: str | None):
        self.backend, self.cache, self.server_url, self.password = backend, cache, server_url, password
        self._made: list[str] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="fpload-bench-catalog-", dir=cache)

    def fresh(self, label: str) -> str | Path:
        if self.backend == "duckdb":
            return Path(self._tmp.name) / f"{label}.duckdb"
        from fpload.bench._pgserver import create_database

        url = create_database(self.server_url, prefix=f"fpload_bench_{label}", password=self.password)
        self._made.append(url)
        return url

    def rows_catalog(self, rows: int, log) -> str | Path:
        """A catalog of ``rows`` generated rows (a DuckDB file is made once and kept in the cache)."""
        from fpload.catalog import open_catalog

        if self.backend == "duckdb":
            path = self.cache / f"catalog-rows-{rows}.duckdb"
            done = path.with_suffix(".done")
            if path.exists() and done.exists():
                return path
            path.unlink(missing_ok=True)
        else:
            path = self.fresh(f"rows{rows}")
        log(f"inserting {rows} generated rows into {path} ({self.backend})")
        with open_catalog(path) as cat:
            for start in range(0, rows, CHUNK):
                cat._commit_revision("ingest", "benchmark: generated rows",
                                     synthetic_rows(start, min(rows, start + CHUNK)), [])
        if self.backend == "duckdb":
            path.with_suffix(".done").write_text("ok\n")
        return path

    def close(self) -> None:
        from fpload.bench._pgserver import drop_database

        for url in self._made:
            with contextlib.suppress(Exception):   # the server may be gone already
                drop_database(url, password=self.password)
        self._tmp.cleanup()


@contextlib.contextmanager
def _stores(backend: str, cache: Path, pg_url: str | None, log) -> Iterator[_Stores]:
    if backend == "duckdb":
        stores = _Stores(backend, cache, None, None)
        try:
            yield stores
        finally:
            stores.close()
        return
    from fpload.bench import _pgserver
    from fpload.catalog._backend import is_url, safe_url

    url = pg_url or env_bench_pg_url()
    if url is not None:
        if not is_url(url):
            raise UsageError(f"--pg-url {safe_url(url)!r} is not a postgresql:// URL")
        log(f"PostgreSQL: the server of {safe_url(url)} (new databases, dropped at the end)")
        stores = _Stores(backend, cache, url, None)
        try:
            yield stores
        finally:
            stores.close()
        return
    if not _pgserver.available():
        raise UsageError("--backend postgresql needs a server: give --pg-url (or FPLOAD_BENCH_PG_URL), or "
                         "install PostgreSQL (apt-get install postgresql) for a temporary one")
    with _pgserver.temporary_server() as server:
        log(f"PostgreSQL: a temporary server at {server.url()} (fsync off)")
        old = os.environ.get("PGPASSWORD")
        os.environ["PGPASSWORD"] = server.password   # how the catalog's libpq finds it
        stores = _Stores(backend, cache, server.url(), server.password)
        try:
            yield stores
        finally:
            stores.close()
            if old is None:
                os.environ.pop("PGPASSWORD", None)
            else:
                os.environ["PGPASSWORD"] = old


def _median_ms(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times), out


def _commit_rows(location: str | Path, count: int) -> tuple[float, int]:
    """Seconds to commit ``count`` generated metadata rows through the ingest's commit, and the revision."""
    from fpload.catalog import open_catalog

    rows = [{**r, "_row": n} for n, r in enumerate(synthetic_rows(0, count), 1)]
    with open_catalog(location) as cat:
        t0 = time.perf_counter()
        with cat._writing():
            rep = cat._ingest_fresh(Path("bench-metadata.csv"), rows, rows, 0, False, "benchmark: commit")
        seconds = time.perf_counter() - t0
    if rep.added != count:
        raise RuntimeError(f"commit benchmark: {rep.added} rows added, expected {count}")
    return seconds, rep.revision


def _bench_backend(backend: str, preset: CatalogSize, meta: Path, cache: Path, pg_url: str | None,
                   log) -> list[dict[str, Any]]:
    from fpload.catalog import open_catalog
    from fpload.catalog import _derived
    from fpload.catalog._catalog import _snapshot_cache

    results: list[dict[str, Any]] = []
    with _stores(backend, cache, pg_url, log) as stores:
        with open_catalog(stores.fresh("ingest")) as cat:
            t0 = time.perf_counter()
            rep = cat.ingest(meta)
            seconds = time.perf_counter() - t0
        results.append({"backend": backend, "op": "ingest", "rows": rep.added, "seconds": round(seconds, 3),
                        "images_per_s": round(rep.added / seconds, 1), "source": "real 128×128 PNG files"})
        seconds, _ = _commit_rows(stores.fresh("commit"), preset.commit)
        results.append({"backend": backend, "op": "commit", "rows": preset.commit, "seconds": round(seconds, 3),
                        "rows_per_s": round(preset.commit / seconds, 1),
                        "source": "generated metadata rows (Catalog._ingest_fresh)"})
        for rows in preset.rows:
            location = stores.rows_catalog(rows, log)
            _snapshot_cache.clear()
            with open_catalog(location, read_only=True) as cat:
                t0 = time.perf_counter()
                table = cat.query(QUERIES["consent"])
                cold = 1000 * (time.perf_counter() - t0)
                results.append({"backend": backend, "op": "query-cold", "query": "consent", "rows": rows,
                                "latency_ms": round(cold, 2), "matched": table.num_rows,
                                "source": "generated (_commit_revision)"})
                snap_ms, _ = _median_ms(lambda: cat.snapshot(), preset.repeats)
                results.append({"backend": backend, "op": "snapshot", "rows": rows, "latency_ms": round(snap_ms, 2),
                                "source": "generated (_commit_revision)"})
                for name, where in QUERIES.items():
                    _derived.clear()   # the first query of a JSON path extracts it (kept for the repeats)
                    t0 = time.perf_counter()
                    cat.query(where, columns=["sample_id"])
                    first_ms = 1000 * (time.perf_counter() - t0)
                    ms, table = _median_ms(lambda: cat.query(where), preset.repeats)
                    ids_ms, _ = _median_ms(lambda: cat.query(where, columns=["sample_id"]), preset.repeats)
                    results.append({"backend": backend, "op": "query", "query": name, "where": where, "rows": rows,
                                    "latency_ms": round(ms, 2), "ids_latency_ms": round(ids_ms, 2),
                                    "first_ids_latency_ms": round(first_ms, 2),
                                    "matched": table.num_rows, "repeats": preset.repeats,
                                    "source": "generated (_commit_revision)"})
            _snapshot_cache.clear()
    return results


def run_catalog_bench(size: str = "small", out: str | Path = "bench-results", *, plot: bool = True,
                      backend: str = "duckdb", pg_url: str | None = None,
                      log: Callable[[str], Any] = print, console=None) -> list[dict[str, Any]]:
    """Measure ingest, commit and query speed of the size preset per backend; JSON lines, table, plot.

    ``backend`` is ``duckdb``, ``postgresql`` or ``both``; PostgreSQL uses the server of ``pg_url``
    (else ``FPLOAD_BENCH_PG_URL``, else a temporary server).

    >>> run_catalog_bench("tiny", "bench-results", backend="both")   # doctest: +SKIP
    """
    check_size(size)
    chosen = backends_of(backend)
    preset = CATALOG_SIZES[size]
    out = Path(out)
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    machine = machine_info(size)
    meta = subset_metadata(ridge_captures_at_least(cache, preset.ingest, log=log), preset.ingest)
    results: list[dict[str, Any]] = []
    for b in chosen:
        results += _bench_backend(b, preset, meta, cache, pg_url, log)
    path = append_results(out, "catalog", results, machine)
    report_catalog(results, machine, console=console)
    if plot:
        try_plot(plot_catalog, results, out / "catalog.png", machine, log=log)
        log(f"results appended to {path}; plot {out / 'catalog.png'}")
    return results


def report_catalog(results: list[dict[str, Any]], machine: dict[str, Any], console=None) -> None:
    """Print the results as one table (a row per measurement, its backend first)."""
    rows = []
    for r in results:
        if r["op"] == "ingest":
            rows.append([r["backend"], "ingest (images)", r["rows"], f"{r['images_per_s']:.0f} images/s",
                         r["seconds"], None, r["source"]])
        elif r["op"] == "commit":
            rows.append([r["backend"], "commit (metadata)", r["rows"], f"{r['rows_per_s']:.0f} rows/s",
                         r["seconds"], None, r["source"]])
        else:
            name = r.get("query", "snapshot") + (" (cold)" if r["op"] == "query-cold" else "")
            ids = f" (ids {r['ids_latency_ms']:.1f} ms)" if "ids_latency_ms" in r else ""
            if "first_ids_latency_ms" in r:
                ids += f" (first {r['first_ids_latency_ms']:.1f} ms)"
            rows.append([r["backend"], name, r["rows"], f"{r['latency_ms']:.1f} ms{ids}", None, r.get("matched"),
                         r["source"]])
    print_table("fpload bench catalog", ["backend", "operation", "rows", "rate / median latency", "seconds",
                                         "matched", "data"], rows,
                caption=(f"{machine['size']}: query latency = Catalog.query (snapshot at head + sandboxed "
                         "WHERE, all columns; ids = columns=['sample_id']), median of repeats of a cached "
                         "revision; first = the first run of that query text on the revision (a JSON path "
                         "extracted then, kept for the repeats); cold = first query of a newly "
                         f"opened catalog; {machine['cores']} cores ({machine['cpu_model']}). "
                         "No baseline: figures only."),
                console=console)


def plot_catalog(results: list[dict[str, Any]], path: Path, machine: dict[str, Any]) -> Path:
    """Median query latencies, a group per query and a bar per (backend, catalog size)."""
    groups = ["cold", "snapshot", *QUERIES]
    timed = [r for r in results if r["op"] in ("query", "query-cold", "snapshot")]
    series = [f"{b} {c:,}" for b in BACKENDS for c in sorted({r["rows"] for r in timed if r["backend"] == b})]
    values, notes = {}, {}
    for r in timed:
        group = "cold" if r["op"] == "query-cold" else r.get("query", "snapshot")
        key = (group, f"{r['backend']} {r['rows']:,}")
        values[key] = r["latency_ms"]
        notes[key] = f"{r['latency_ms']:.0f} ms" if r["latency_ms"] >= 10 else f"{r['latency_ms']:.1f} ms"
    commits = "; ".join(f"{r['backend']} commit {r['rows']:,} rows {r['seconds']:.1f} s"
                        for r in results if r["op"] == "commit")
    return plot_bars(path, groups=groups, series=series, values=values, notes=notes,
                     title=f"catalog, {machine['size']}: median query latency (ms); {commits}",
                     ylabel="latency ms (log)")
