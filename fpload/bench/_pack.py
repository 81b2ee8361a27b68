"""The pack benchmark: ``fpload pack`` (PNG transcoding) at 1..cores workers, and on a local Ray
cluster of 2 CPUs (``--engine ray``, when Ray is installed), against webdataset's ``ShardWriter``
writing the same samples in one process, at growing sizes.

Besides throughput it reports each engine's cost per sample at every size (wall µs and CPU ms per
sample, and how far from flat the curve is), a linear fit extrapolated to 10^6 samples (stated as
an extrapolation), and the driver's memory: the growth of its peak RSS during the pack, as bytes per
sample of the plan (the slope between sizes; one size: growth / samples).

Both start from the same catalog selection and do the same work per sample: read the source,
decode it, re-encode it as PNG with the same settings, and write it with a ``json`` and a ``cls``
member into shards of the same size. fpload also hashes every source (it checks the sample id),
writes the ``idx`` member, the DALI index, ``samples.parquet`` and the manifest; the feature cache
is off (not what is measured).
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fpload.bench._common import Window, append_results, check_size, cores, machine_info, run_specs
from fpload.bench._data import pack_config, ridge_catalog, where_first
from fpload.bench._report import fmt_ratio, plot_bars, print_table, ratio, try_plot

BASELINE = "wds-shardwriter"
SHARD_SAMPLES = 1000
PNG_LEVEL = 6
#: CPUs of the local Ray cluster the ``ray`` contender starts (the machine's 2 cores)
RAY_CPUS = 2
EXTRAPOLATE_TO = 1_000_000


@dataclass(frozen=True)
class PackSize:
    counts: tuple[int, ...]
    isolate: bool


PACK_SIZES = {
    "tiny": PackSize((40,), isolate=False),
    "small": PackSize((200, 1000), isolate=True),
    "full": PackSize((1000, 10_000, 100_000), isolate=True),
}


def _warm_ray_worker() -> int:
    """Runs once per Ray worker before the timed window: the encoders imported, as a local pack's
    fork server preloads them."""
    import fpload.features  # noqa: F401
    import fpload.pack._ray  # noqa: F401

    return os.getpid()


def _start_ray(cpus: int) -> Any:
    """A local Ray cluster of ``cpus`` CPUs in this (benchmark worker) process, its workers warm."""
    import ray

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
             logging_level="ERROR")
    warm = ray.remote(_warm_ray_worker)
    ray.get([warm.remote() for _ in range(2 * cpus)])
    return ray


def _rss_bytes() -> int:
    """This process's resident set now (Linux /proc), else its peak so far."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _fpload(spec: dict[str, Any], window: Window, out: Path) -> dict[str, Any]:
    from fpload.catalog import open_catalog
    from fpload.pack import pack_version

    engine = spec.get("engine", "local")
    ray = _start_ray(int(spec["workers"])) if engine == "ray" else None
    try:
        with open_catalog(spec["catalog"], read_only=True) as cat:
            reset = _reset_peak_rss()
            rss0 = _rss_bytes()
            window.start()
            res = pack_version(cat, out=out, name="bench", where=spec["where"], workers=int(spec["workers"]),
                               config=pack_config("png", shard_max_samples=SHARD_SAMPLES), engine=engine)
            window.stop(res.samples)
            growth = _peak_rss_bytes() - rss0
    finally:
        if ray is not None:
            ray.shutdown()
    return {"bytes_written": res.bytes, "shards": len(res.manifest["shards"]),
            "driver_rss_growth_mb": round(growth / 1e6, 2) if reset else None}


def _shardwriter(spec: dict[str, Any], window: Window, out: Path) -> dict[str, Any]:
    import webdataset as wds
    from PIL import Image

    from fpload.catalog import open_catalog

    with open_catalog(spec["catalog"], read_only=True) as cat:
        window.start()
        rows = cat.query(spec["where"]).to_pylist()
    labels: dict[tuple[str, int], int] = {}
    for r in sorted(rows, key=lambda r: (r["subject_id"], r["finger"])):
        labels.setdefault((r["subject_id"], r["finger"]), len(labels))
    out.mkdir(parents=True, exist_ok=True)
    with wds.ShardWriter(str(out / "train-%06d.tar"), maxcount=SHARD_SAMPLES, verbose=0) as sink:
        for r in rows:
            with open(r["uri"], "rb") as fh:
                data = fh.read()
            with Image.open(io.BytesIO(data)) as img:
                gray = img.convert("L")
            buf = io.BytesIO()
            gray.save(buf, format="PNG", compress_level=PNG_LEVEL)
            meta = {k: r[k] for k in ("sample_id", "subject_id", "finger", "impression", "sensor", "ppi",
                                      "width", "height", "quality", "split", "synthetic")}
            meta["label"] = labels[(r["subject_id"], r["finger"])]
            sink.write({"__key__": r["sample_id"], "png": buf.getvalue(),
                        "json": json.dumps(meta, sort_keys=True).encode(), "cls": meta["label"]})
    window.stop(len(rows))
    tars = list(out.glob("*.tar"))
    return {"bytes_written": sum(p.stat().st_size for p in tars), "shards": len(tars)}


def run_pack_contender(spec: dict[str, Any], window: Window) -> dict[str, Any]:
    """Worker entry: one pack run into a temporary folder (removed afterwards)."""
    tmp = Path(tempfile.mkdtemp(prefix="pack-", dir=spec["scratch"]))
    try:
        run = _fpload if spec["contender"] == "fpload-pack" else _shardwriter
        extra = run(spec, window, tmp / "out")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    extra["mb_per_s"] = round(extra["bytes_written"] / window.seconds / 1e6, 2) if window.seconds else None
    return extra


def run_pack_bench(size: str = "small", out: str | Path = "bench-results", *, plot: bool = True,
                   log: Callable[[str], Any] = print, console=None) -> list[dict[str, Any]]:
    """Measure fpload pack at 1..cores workers and ShardWriter at each count of the size preset."""
    check_size(size)
    preset = PACK_SIZES[size]
    out = Path(out)
    machine = machine_info(size)
    catalog = ridge_catalog(out / "cache", max(preset.counts), log=log)
    scratch = out / "cache" / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    specs = []
    for count in preset.counts:
        common = {"kind": "pack", "count": count, "catalog": str(catalog), "where": where_first(count),
                  "scratch": str(scratch), "encoding": "png"}
        specs.append({**common, "contender": BASELINE, "workers": 1})
        for w in range(1, max(2, cores()) + 1):
            specs.append({**common, "contender": "fpload-pack", "engine": "local", "workers": w})
        if _have_ray():
            specs.append({**common, "contender": "fpload-pack", "engine": "ray", "workers": RAY_CPUS})
    timeout = 600 if size != "full" else 3600
    results = run_specs(specs, isolate=preset.isolate, timeout=timeout,
                        progress=lambda s: log(f"pack: {s['contender']} ×{s['workers']} on {s['count']} samples"))
    for r in results:
        base = next((b for b in results if b["contender"] == BASELINE and b["count"] == r["count"]
                     and b.get("samples_per_s")), None)
        r["ratio_vs_baseline"] = ratio(r.get("samples_per_s"), base and base["samples_per_s"])
    rows = [{k: v for k, v in r.items() if k not in ("kind", "catalog", "scratch")} for r in results]
    path = append_results(out, "pack", rows, machine)
    report_pack(results, machine, console=console)
    report_scaling(results, console=console)
    if plot:
        try_plot(plot_pack, results, out / "pack.png", machine, log=log)
        log(f"results appended to {path}; plot {out / 'pack.png'}")
    return results


def _have_ray() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def _label(r: dict[str, Any]) -> str:
    if r["contender"] == BASELINE:
        return BASELINE
    if r.get("engine") == "ray":
        return f"fpload-pack ray ×{r['workers']}"
    return f"fpload-pack ×{r['workers']}"


def scaling(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per contender: wall µs and CPU ms per sample at each size, the spread of the wall cost
    (largest / smallest), the marginal cost (slope between successive sizes) and its spread, a least-squares fit ``seconds = a + b·samples`` extrapolated to
    :data:`EXTRAPOLATE_TO` samples, and the driver's bytes per sample (slope of its RSS growth).

    >>> row = scaling([{"contender": "x", "workers": 1, "count": n, "samples": n, "seconds": 1 + 0.1 * n,
    ...                  "cpu_s": 0.1 * n} for n in (10, 20, 40)])[0]
    >>> row["fit_s_per_sample"], row["marginal_us_per_sample"], row["marginal_spread"]
    (0.1, [100000.0, 100000.0], 1.0)
    """
    out = []
    for label in dict.fromkeys(_label(r) for r in results):
        runs = sorted((r for r in results if _label(r) == label and r.get("seconds") and r.get("samples")),
                      key=lambda r: r["samples"])
        if not runs:
            continue
        wall = [1e6 * r["seconds"] / r["samples"] for r in runs]
        row: dict[str, Any] = {"label": label, "counts": [r["samples"] for r in runs],
                               "wall_us_per_sample": [round(w, 1) for w in wall],
                               "cpu_ms_per_sample": [round(1e3 * r["cpu_s"] / r["samples"], 3) if r.get("cpu_s")
                                                     is not None else None for r in runs],
                               "spread": round(max(wall) / min(wall), 3)}
        # the cost of each further sample: the slope between successive sizes (fixed start-up costs,
        # a worker pool's or a Ray cluster's, cancel out); flat ⇔ the pack scales linearly
        marginal = [1e6 * (b["seconds"] - a["seconds"]) / (b["samples"] - a["samples"])
                    for a, b in zip(runs, runs[1:]) if b["samples"] > a["samples"]]
        if marginal:
            row["marginal_us_per_sample"] = [round(m, 1) for m in marginal]
            if len(marginal) >= 2 and min(marginal) > 0:
                row["marginal_spread"] = round(max(marginal) / min(marginal), 3)
        n = [float(r["samples"]) for r in runs]
        t = [float(r["seconds"]) for r in runs]
        if len(runs) >= 2:
            mn, mt = sum(n) / len(n), sum(t) / len(t)
            b = sum((x - mn) * (y - mt) for x, y in zip(n, t)) / sum((x - mn) ** 2 for x in n)
            a = mt - b * mn
            row["fit_s_per_sample"] = round(b, 9)
            row["fit_fixed_s"] = round(a, 3)
            row["extrapolated_s"] = round(a + b * EXTRAPOLATE_TO, 1)
        growth = [(r["samples"], r["driver_rss_growth_mb"]) for r in runs if r.get("driver_rss_growth_mb") is not None]
        if len(growth) >= 2 and growth[-1][0] > growth[0][0]:
            row["driver_bytes_per_sample"] = round(1e6 * (growth[-1][1] - growth[0][1]) / (growth[-1][0] - growth[0][0]))
        elif growth:
            row["driver_bytes_per_sample"] = round(1e6 * growth[0][1] / growth[0][0])
        out.append(row)
    return out


def report_scaling(results: list[dict[str, Any]], console=None) -> list[dict[str, Any]]:
    """Print :func:`scaling`: cost per sample by size, flat within ±20 %?, 10^6 by extrapolation, driver memory."""
    rows = scaling(results)
    table = [[r["label"], ", ".join(map(str, r["counts"])), ", ".join(map(str, r["wall_us_per_sample"])),
              ", ".join(str(c) for c in r["cpu_ms_per_sample"]), f"{r['spread']:.2f}×",
              ", ".join(map(str, r.get("marginal_us_per_sample", []))) or "–",
              f"{r['marginal_spread']:.2f}×" if "marginal_spread" in r else "–",
              (f"{r['extrapolated_s'] / 3600:.2f} h (extrapolated)" if "extrapolated_s" in r else "–"),
              r.get("driver_bytes_per_sample")]
             for r in rows]
    print_table("fpload bench pack: cost per sample by size", ["contender", "samples", "wall µs/sample",
                "CPU ms/sample", "max/min", "marginal µs/sample", "marginal max/min",
                f"{EXTRAPOLATE_TO:,} samples", "driver B/sample"], table,
                caption=("max/min: largest over smallest wall cost per sample (all within ±20 % of one value "
                         "⇔ max/min ≤ 1.5); marginal: the cost of each further sample, the slope between "
                         "successive sizes (start-up costs cancel out); the 10^6 time is a linear fit of the measured "
                         "sizes, extrapolated, not measured; driver B/sample: growth of the driver's peak RSS "
                         "during the pack per sample (slope between sizes)."), console=console)
    return rows


def report_pack(results: list[dict[str, Any]], machine: dict[str, Any], console=None) -> None:
    rows = [[_label(r), r["count"], r.get("samples_per_s"), r.get("mb_per_s"), r.get("cpu_s_per_1k"),
             r.get("cores_busy"), None if r.get("io_stall") is None else f"{100 * r['io_stall']:.0f} %",
             r.get("peak_pss_mb"), fmt_ratio(r.get("ratio_vs_baseline")), (r.get("error") or "")[:60]]
            for r in results]
    print_table("fpload bench pack", ["contender", "samples", "samples/s", "MB/s out", "CPU s/1k",
                                      "cores busy", "I/O stall", "peak MB", f"× {BASELINE}", "note"], rows,
                caption=(f"{machine['size']}: unique 128×128 ridge PNGs → PNG (level {PNG_LEVEL}) shards of "
                         f"{SHARD_SAMPLES} samples; {machine['cores']} cores ({machine['cpu_model']}); "
                         "fpload-pack ×N = N encode workers; CPU s = process tree incl. workers; cores busy = "
                         "CPU s / wall s; I/O stall = share of the wall time the machine waited on I/O "
                         "(Linux PSI): a high share measured the disk, not the packer."),
                console=console)
    say = console.print if console else print
    for count in sorted({r["count"] for r in results}):
        two = next((r for r in results if r["count"] == count and r["contender"] == "fpload-pack"
                    and r.get("engine", "local") == "local" and r["workers"] == 2 and r.get("ratio_vs_baseline")),
                   None)
        if two:
            x = two["ratio_vs_baseline"]
            say(f"target fpload-pack ×2 ≥ 1.8× {BASELINE} [{count} samples]: {x:.2f}× — "
                f"{'met' if x >= 1.8 else 'MISSED'}")


def plot_pack(results: list[dict[str, Any]], path: Path, machine: dict[str, Any]) -> Path:
    groups = [str(c) for c in sorted({r["count"] for r in results})]
    series = list(dict.fromkeys(_label(r) for r in results))
    values = {(str(r["count"]), _label(r)): r.get("samples_per_s") for r in results}
    notes = {(str(r["count"]), _label(r)): ("error" if r.get("error") else fmt_ratio(r.get("ratio_vs_baseline")))
             for r in results}
    return plot_bars(path, groups=groups, series=series, values=values, notes=notes, log=False,
                     title=(f"pack, {machine['size']}: samples/s by samples packed (× {BASELINE}); "
                            f"{machine['cores']} cores"),
                     ylabel="samples/s")
