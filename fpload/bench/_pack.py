"""The pack benchmark: ``fpload pack`` (PNG transcoding) at 1..cores workers against
webdataset's ``ShardWriter`` writing the same samples in one process, at growing sizes.

Both start from the same catalog selection and do the same work per sample: read the source,
decode it, re-encode it as PNG with the same settings, and write it with a ``json`` and a ``cls``
member into shards of the same size. fpload also hashes every source (it checks the sample id),
writes the ``idx`` member, the DALI index, ``samples.parquet`` and the manifest; the feature cache
is off (not what is measured).
"""

from __future__ import annotations

import io
import json
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


@dataclass(frozen=True)
class PackSize:
    counts: tuple[int, ...]
    isolate: bool


PACK_SIZES = {
    "tiny": PackSize((40,), isolate=False),
    "small": PackSize((200, 1000), isolate=True),
    "full": PackSize((1000, 10_000, 100_000), isolate=True),
}


def _fpload(spec: dict[str, Any], window: Window, out: Path) -> dict[str, Any]:
    from fpload.catalog import open_catalog
    from fpload.pack import pack_version

    with open_catalog(spec["catalog"], read_only=True) as cat:
        window.start()
        res = pack_version(cat, out=out, name="bench", where=spec["where"], workers=int(spec["workers"]),
                           config=pack_config("png", shard_max_samples=SHARD_SAMPLES))
        window.stop(res.samples)
    return {"bytes_written": res.bytes, "shards": len(res.manifest["shards"])}


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
        for w in range(1, cores() + 1):
            specs.append({**common, "contender": "fpload-pack", "workers": w})
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
    if plot:
        try_plot(plot_pack, results, out / "pack.png", machine, log=log)
        log(f"results appended to {path}; plot {out / 'pack.png'}")
    return results


def _label(r: dict[str, Any]) -> str:
    return BASELINE if r["contender"] == BASELINE else f"fpload-pack ×{r['workers']}"


def report_pack(results: list[dict[str, Any]], machine: dict[str, Any], console=None) -> None:
    rows = [[_label(r), r["count"], r.get("samples_per_s"), r.get("mb_per_s"), r.get("cpu_s_per_1k"),
             r.get("cores_busy"), r.get("peak_pss_mb"), fmt_ratio(r.get("ratio_vs_baseline")), (r.get("error") or "")[:60]]
            for r in results]
    print_table("fpload bench pack", ["contender", "samples", "samples/s", "MB/s out", "CPU s/1k",
                                      "cores busy", "peak MB", f"× {BASELINE}", "note"], rows,
                caption=(f"{machine['size']}: unique 128×128 ridge PNGs → PNG (level {PNG_LEVEL}) shards of "
                         f"{SHARD_SAMPLES} samples; {machine['cores']} cores ({machine['cpu_model']}); "
                         "fpload-pack ×N = N encode workers; CPU s = process tree incl. workers; cores busy = "
                         "CPU s / wall s."),
                console=console)
    say = console.print if console else print
    for count in sorted({r["count"] for r in results}):
        two = next((r for r in results if r["count"] == count and r["contender"] == "fpload-pack"
                    and r["workers"] == 2 and r.get("ratio_vs_baseline")), None)
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
