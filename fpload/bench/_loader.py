"""The loader benchmark: every contender × storage encoding, each contender in its own process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fpload.bench._common import append_results, check_size, cores, machine_info, run_specs
from fpload.bench._contenders import CONTENDERS
from fpload.bench._data import LOADER_ENCODINGS, loader_versions
from fpload.bench._report import fmt_ratio, plot_bars, print_table, ratio, try_plot

BASELINE = "wds-torch"


@dataclass(frozen=True)
class LoaderSize:
    subjects: int
    fingers: int
    impressions: int
    image: int
    batch: int
    samples: int      # timed samples per contender (after one warm-up batch)
    isolate: bool     # one process per contender (False: one process for all; start-up dominates)


LOADER_SIZES = {
    "tiny": LoaderSize(2, 2, 2, 128, batch=4, samples=16, isolate=False),
    "small": LoaderSize(16, 2, 4, 512, batch=32, samples=1024, isolate=True),
    "full": LoaderSize(128, 2, 4, 512, batch=64, samples=4096, isolate=True),
}


def _gpu() -> bool:
    from fpload.load import gpu_available

    return gpu_available()


def run_loader_bench(size: str = "small", out: str | Path = "bench-results", *,
                     encodings: tuple[str, ...] = LOADER_ENCODINGS, contenders: tuple[str, ...] = CONTENDERS,
                     profile: bool = False, plot: bool = True, log: Callable[[str], Any] = print,
                     console=None) -> list[dict[str, Any]]:
    """Measure each contender on each encoding; append JSON lines, print the table, draw the plot.

    Returns one dict per contender × encoding (``skipped`` or ``error`` where it did not run).
    """
    check_size(size)
    preset = LOADER_SIZES[size]
    out = Path(out)
    machine = machine_info(size)
    versions = loader_versions(out / "cache", subjects=preset.subjects, fingers=preset.fingers,
                               impressions=preset.impressions, image=preset.image, shards=4 * cores(), log=log)
    gpu = _gpu()
    specs, skipped = [], []
    order = sorted(contenders, key=lambda c: c != BASELINE) if not preset.isolate else list(contenders)
    for enc in encodings:
        for name in order:
            row = {"kind": "loader", "contender": name, "encoding": enc, "version": str(versions[enc]),
                   "batch": preset.batch, "samples": preset.samples, "image": preset.image,
                   "device": "gpu" if name == "fpload-gpu" else "cpu", "workers": cores()}
            if name == "fpload-gpu" and not gpu:
                skipped.append({**row, "skipped": "no GPU"})
            else:
                specs.append(row)
    # in one process (tiny), run every DataLoader contender before DALI starts its threads: they fork
    if not preset.isolate:
        specs.sort(key=lambda s: s["contender"] != BASELINE)
    results = run_specs(specs, isolate=preset.isolate, timeout=600,
                        progress=lambda s: log(f"loader: {s['contender']} on {s['encoding']}"))
    results += skipped
    _add_ratios(results)
    rows = [{k: v for k, v in r.items() if k not in ("kind", "version")} for r in results]
    path = append_results(out, "loader", rows, machine)
    report_loader(results, preset, machine, console=console)
    if plot:
        try_plot(plot_loader, results, out / "loader.png", machine, log=log)
        log(f"results appended to {path}; plot {out / 'loader.png'}")
    if profile:
        from fpload.bench._profile import profile_loader

        profile_loader(versions, preset, out, log=log, console=console)
    return results


def _by(results: list[dict[str, Any]], contender: str, enc: str) -> dict[str, Any] | None:
    for r in results:
        if r["contender"] == contender and r["encoding"] == enc and r.get("samples_per_s"):
            return r
    return None


def _add_ratios(results: list[dict[str, Any]]) -> None:
    for r in results:
        base, floor = _by(results, BASELINE, r["encoding"]), _by(results, "io-floor", r["encoding"])
        sps = r.get("samples_per_s")
        r["ratio_vs_baseline"] = ratio(sps, base and base["samples_per_s"])
        r["ratio_vs_floor"] = ratio(sps, floor and floor["samples_per_s"])


def report_loader(results: list[dict[str, Any]], preset: LoaderSize, machine: dict[str, Any], console=None) -> None:
    rows = []
    for r in results:
        note = r.get("skipped") or r.get("error") or ""
        rows.append([r["contender"], r["encoding"], r.get("samples_per_s"), r.get("mb_per_s"),
                     r.get("cpu_s_per_1k"), r.get("cores_busy"), r.get("peak_pss_mb"), r.get("gpu_mem_mb"),
                     fmt_ratio(r.get("ratio_vs_baseline")), fmt_ratio(r.get("ratio_vs_floor")), note[:60]])
    caption = (f"{machine['size']}: {preset.image}×{preset.image} synthetic fingerprints, batch {preset.batch}, "
               f"{preset.samples} timed samples after a warm-up batch; {machine['cores']} cores "
               f"({machine['cpu_model']}); CPU s = process tree incl. workers (cores busy = CPU s / wall s); "
               f"peak MB = PSS of the tree; "
               f"× = samples/s ratio to {BASELINE} / io-floor on the same encoding in this run."
               + ("" if preset.isolate else " Tiny: all contenders in one process (CPU/memory not separable)."))
    print_table("fpload bench loader", ["contender", "encoding", "samples/s", "MB/s", "CPU s/1k",
                                        "cores busy", "peak MB", "GPU MB", f"× {BASELINE}", "× io-floor", "note"], rows,
                caption=caption, console=console)
    for line in loader_targets(results):
        (console.print if console else print)(line)


def loader_targets(results: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, met or missed, per encoding."""
    lines = []
    for enc in sorted({r["encoding"] for r in results}):
        fp = _by(results, "fpload-cpu", enc)
        for other, want in ((BASELINE, 5.0), ("dali-stock", 5.0)):
            o = _by(results, other, enc)
            if fp and o:
                x = fp["samples_per_s"] / o["samples_per_s"]
                lines.append(f"target fpload-cpu ≥ {want:g}× {other} [{enc}]: {x:.2f}× — "
                             f"{'met' if x >= want else 'MISSED'}")
    glob, buf = _by(results, "fpload-noaug", "raw"), _by(results, "fpload-noaug-buffer", "raw")
    if glob and buf:
        x = glob["samples_per_s"] / buf["samples_per_s"]
        lines.append(f"target shuffle global ≥ 0.9× buffer [raw]: {x:.2f}× — {'met' if x >= 0.9 else 'MISSED'}")
    floor = _by(results, "io-floor", "raw")
    for name in ("fpload-noaug", "fpload-noaug-u8"):
        noaug = _by(results, name, "raw")
        if noaug and floor:
            x = noaug["samples_per_s"] / floor["samples_per_s"]
            lines.append(f"target {name} ≥ 70% of io-floor [raw]: {100 * x:.0f}% — "
                         f"{'met' if x >= 0.7 else 'MISSED'}")
    return lines


def plot_loader(results: list[dict[str, Any]], path: Path, machine: dict[str, Any]) -> Path:
    encs = [e for e in LOADER_ENCODINGS if any(r["encoding"] == e for r in results)]
    names = [c for c in CONTENDERS if any(r["contender"] == c for r in results)]
    values, notes = {}, {}
    for r in results:
        key = (r["encoding"], r["contender"])
        values[key] = r.get("samples_per_s")
        notes[key] = ("skipped: no GPU" if r.get("skipped") else "error" if r.get("error")
                      else fmt_ratio(r.get("ratio_vs_baseline")))
    return plot_bars(path, groups=encs, series=names, values=values, notes=notes,
                     title=(f"loader, {machine['size']}: samples/s as torch tensors (× {BASELINE}); "
                            f"{machine['cores']} cores, {machine['cpu_model']}"),
                     ylabel="samples/s (log)")
