"""Feature caches: extraction speed, pack cost, and what reuse from a parent version saves.

    python benchmarks/bench_features.py [--size 512] [--samples 400] [--new 4] [--workers 2] [--repeats 3]
                                        [--data ridges|synth] [--tiny]

1. extraction samples/s of each built-in extractor and of all together, on ``size``² ridge
   images, one process (the packer runs this in each encode worker);
2. packing ``samples`` passthrough PNGs with and without features (same run, same data,
   ``repeats`` interleaved rounds, medians), and the issue-14 target: with ≥ 0.5× the throughput
   of without (and the same for a pack that transcodes to PNG, which decodes every image anyway). *Cold*: into a fresh versions root, every feature computed; the floor of that
   ratio on passthrough (every image decoded, only the cheapest extractor run: PNG decoding is
   a cost extraction cannot remove). *Warm*: into a root where an earlier version of another,
   overlapping query already holds the features (all of the samples, or half of them), which
   the pack copies after checking that version's hash (fpload.features._reuse);
3. ingest with ``--features default`` (extraction on the pixels ingest decodes anyway) against
   plain ingest of the same captures, and the pack that follows (it copies those features);
4. reuse: ingest ``new`` more captures (~1 %) and repack with ``parent="latest"``: computed vs
   reused counts, and the time against a fresh pack of the same selection.

Each pack row also gives its I/O stall: the median share of its wall time in which the machine
waited on I/O (Linux PSI). A baseline slowed by the disk makes every ratio look better than it is:
quote ratios from runs where the stall is low.

Prints a table (ratios against the baseline of the same run) and appends JSON lines to
bench-results/bench_features.jsonl. No speed assertions anywhere: the tests run it at --tiny.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def bench_extraction(size: int, n: int, repeats: int) -> list[dict]:
    from fpload.features import BUILTINS, FeaturesConfig, resolve_extractors, run_extractors
    from fpload.testing import ridge_image

    rng = np.random.default_rng(0)
    images = [ridge_image(rng, (size, size)) for _ in range(n)]
    rows = []
    for name in [*BUILTINS, "all"]:
        cfg = FeaturesConfig() if name == "all" else FeaturesConfig(extractors=[name])
        job = resolve_extractors(cfg)
        run_extractors(images[0], job)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for img in images:
                run_extractors(img, job)
            best = min(best, time.perf_counter() - t0)
        rows.append({"bench": "extract", "extractor": name, "size": size,
                     "samples_per_s": n / best, "ms_per_sample": 1e3 * best / n})
    return rows


def _catalog(root: Path, samples: int, size: int, data: str = "ridges"):
    """A catalog of ``samples`` captures: ``ridges`` (ridge patterns filling the frame, the worst
    case for the frequency FFT) or ``synth`` (fpload's synthetic fingertips, with the background
    around the contact area real captures have)."""
    from fpload.catalog import open_catalog
    from fpload.testing import make_captures

    if data == "synth":
        from fpload.synth import synthesize

        meta = synthesize(root / "caps", subjects=max(1, samples // 8), fingers=2, impressions=4, size=size,
                          seed=1, progress=False).metadata_path
    else:
        meta = make_captures(root / "caps", subjects=max(1, samples // 4), fingers=2, impressions=2,
                             size=(size, size), seed=1)
    cat = open_catalog(root / "cat.duckdb")
    cat.ingest(meta, workers=2)
    return cat


def bench_pack_and_reuse(root: Path, samples: int, new: int, size: int, workers: int,
                         repeats: int = 1, data: str = "ridges") -> list[dict]:
    from fpload.pack import PackConfig
    from fpload.features import FeaturesConfig
    from fpload.pack import pack_version
    from fpload.testing import make_captures

    cat = _catalog(root, samples, size, data)
    rows = []
    cfg = PackConfig(shard_max_samples=100)

    from fpload.bench._common import io_stall_seconds

    stall: dict[str, list[float]] = {}

    def timed(what: str = "", **kw):
        t0, io0 = time.perf_counter(), io_stall_seconds()
        res = pack_version(cat, where="consent", workers=workers, **kw)
        t = time.perf_counter() - t0
        io1 = io_stall_seconds()
        if what and io0 is not None and io1 is not None:  # the share of the pack's wall time stalled on I/O
            stall.setdefault(what, []).append((io1 - io0) / t)
        return res, t

    def cpu_timed(**kw):  # one worker runs in this process: its CPU seconds are the whole pack's
        c0 = time.process_time()
        res = pack_version(cat, where="consent", workers=1, **kw)
        return res, time.process_time() - c0

    # without features, with them, and with the cheapest extractor (the floor of any feature cache
    # on passthrough: every image is decoded) interleaved, each into a fresh folder (a repeated
    # pack of the same version would be found, not made); medians over ``repeats``. Wall seconds
    # at ``workers`` are what a user sees, but another load on the machine skews them; the CPU
    # seconds of the same packs in one process are what that load cannot skew much.
    arms = {"passthrough, no features": PackConfig(shard_max_samples=100, features=FeaturesConfig(enabled=False)),
            "passthrough + features": cfg,
            "passthrough + decode, foreground": PackConfig(
                shard_max_samples=100, features=FeaturesConfig(extractors=["foreground"])),
            "warm: + features, all found": cfg, "warm: + features, half found": cfg,
            # a pack that re-encodes every image (encoding: png) decodes it anyway: there the
            # features cost only their extraction
            "png transcode, no features": PackConfig(encoding="png", shard_max_samples=100,
                                                     features=FeaturesConfig(enabled=False)),
            "png transcode + features": PackConfig(encoding="png", shard_max_samples=100)}
    # the earlier versions of the warm arms: another query (another split seed and name), packed
    # once into a root each warm pack starts from (a copy, so every repeat starts equally warm)
    earlier = PackConfig(shard_max_samples=100, split_seed=7)
    for label, where in (("all", "consent"), ("half", "consent AND finger = 1")):
        pack_version(cat, where=where, out=root / f"warm-{label}", name="earlier", config=earlier, workers=workers)
    wall: dict[str, list[float]] = {k: [] for k in arms}
    cpu: dict[str, list[float]] = {k: [] for k in arms}
    first = None
    found: dict[str, int] = {}

    def arm_root(what: str, tag: str) -> Path:
        if not what.startswith("warm"):
            return root / tag  # cold: a fresh root
        dest = root / tag
        shutil.copytree(root / f"warm-{what.rsplit(',', 1)[1].split()[0]}", dest)
        return dest

    for r in range(repeats):
        for i, (what, config) in enumerate(arms.items()):
            out = root / "v" if (r, i) == (repeats - 1, 1) else arm_root(what, f"p{i}-{r}")
            res, t = timed(what, out=out, name="fp", config=config)
            wall[what].append(t)
            found[what] = res.features_found
            first = res if (r, i) == (repeats - 1, 1) else first
            cpu[what].append(cpu_timed(out=arm_root(what, f"c{i}-{r}"), name="fp", config=config)[1])
    assert first is not None
    n0 = first.samples
    for what in arms:
        base = "png transcode, no features" if what.startswith("png") else "passthrough, no features"
        base_wall, base_cpu = (float(np.median(d[base])) for d in (wall, cpu))
        t, c = float(np.median(wall[what])), float(np.median(cpu[what]))
        rows.append({"bench": "pack", "what": what, "samples": n0, "workers": workers, "seconds": t, "samples_per_s": n0 / t,
                     "throughput_ratio": base_wall / t, "features_found": found[what], "seconds_each": wall[what], "repeats": repeats,
                     "io_stall": float(np.median(stall[what])) if stall.get(what) else None,
                     "cpu_ms_per_sample": 1e3 * c / n0, "cpu_ratio": base_cpu / c, "cpu_seconds_each": cpu[what]})
    extra = make_captures(root / "more", subjects=1, fingers=1, impressions=new, size=(size, size), seed=2)
    cat.ingest(extra)
    second, t_reuse = timed(out=root / "v", name="fp", config=cfg, parent="latest")
    fresh, t_fresh = timed(out=root / "fresh", name="fp", config=cfg)
    n = second.samples
    rows.append({"bench": "reuse", "what": "repack, fresh (no parent)", "samples": n, "seconds": t_fresh,
                 "computed": fresh.features_computed, "reused": fresh.features_reused})
    rows.append({"bench": "reuse", "what": f"repack, parent=latest (+{n - n0} new)", "samples": n,
                 "seconds": t_reuse, "computed": second.features_computed, "reused": second.features_reused,
                 "computed_fraction": second.features_computed / n, "saved_seconds": t_fresh - t_reuse})
    cat.close()
    return rows


def bench_ingest(root: Path, samples: int, size: int, workers: int) -> list[dict]:
    from fpload.catalog import open_catalog
    from fpload.features import FeaturesConfig
    from fpload.pack import PackConfig, pack_version
    from fpload.testing import make_captures

    meta = make_captures(root / "icaps", subjects=max(1, samples // 4), fingers=2, impressions=2,
                         size=(size, size), seed=3)
    rows, seconds = [], {}
    for what, feats in (("ingest", None), ("ingest --features default", FeaturesConfig())):
        cat = open_catalog(root / f"i-{len(seconds)}.duckdb")
        t0 = time.perf_counter()
        cat.ingest(meta, workers=workers, features=feats)
        seconds[what] = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = pack_version(cat, where="consent", out=root / f"iv-{len(seconds)}", name="fp", workers=workers,
                           config=PackConfig(shard_max_samples=100))
        t_pack = time.perf_counter() - t0
        t0 = time.perf_counter()
        pack_version(cat, where="consent", out=root / f"ivn-{len(seconds)}", name="fp", workers=workers,
                     config=PackConfig(shard_max_samples=100, features=FeaturesConfig(enabled=False)))
        t_plain = time.perf_counter() - t0
        cat.close()
        rows.append({"bench": "ingest", "what": what, "samples": res.samples, "seconds": seconds[what],
                     "samples_per_s": res.samples / seconds[what], "pack_seconds": t_pack,
                     "pack_found": res.features_found, "pack_ratio": t_plain / t_pack})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--samples", type=int, default=400, help="captures in the first pack")
    ap.add_argument("--new", type=int, default=4, help="captures added before the repack (~1 %%)")
    ap.add_argument("--extract-samples", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved pack pairs (with/without features); medians")
    ap.add_argument("--data", choices=["ridges", "synth"], default="ridges",
                    help="captures of the pack benchmark: ridges filling the frame, or synthetic fingertips")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes, for the test suite")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    args = ap.parse_args()
    if args.tiny:
        args.size, args.samples, args.new, args.extract_samples, args.workers, args.repeats = 64, 16, 1, 4, 1, 1
    rows = bench_extraction(args.size, args.extract_samples, 1 if args.tiny else 3)
    tmp = Path(tempfile.mkdtemp(prefix="bench-features-"))
    try:
        rows += bench_pack_and_reuse(tmp, args.samples, args.new, args.size, args.workers, args.repeats, args.data)
        rows += bench_ingest(tmp, args.samples, args.size, args.workers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    machine = {"machine": platform.machine(), "python": platform.python_version(), "tiny": args.tiny, "data": args.data,
               "workers": args.workers}
    if not args.tiny:
        args.out.mkdir(parents=True, exist_ok=True)
        with open(args.out / "bench_features.jsonl", "a") as fh:
            for r in rows:
                fh.write(json.dumps({**r, **machine}, sort_keys=True) + "\n")
    print(f"extraction at {args.size}×{args.size}, one process:")
    everything = next(r for r in rows if r.get("extractor") == "all")
    for r in (r for r in rows if r["bench"] == "extract"):
        print(f"  {r['extractor']:<12} {r['samples_per_s']:8.1f} samples/s  {r['ms_per_sample']:7.2f} ms/sample  "
              f"({r['ms_per_sample'] / everything['ms_per_sample']:.2f}× of all)")
    base = next(r for r in rows if r["bench"] == "pack")
    print(f"pack of {base['samples']} PNG images ({args.data}), {args.workers} worker(s), median of {args.repeats}; "
          "CPU of the same pack in one process; cold = fresh root, warm = an earlier version holds features; "
          "ratios against the same encoding without features:")
    for r in (r for r in rows if r["bench"] == "pack"):
        print(f"  {r['what']:<32} {r['seconds']:7.2f} s  {r['samples_per_s']:7.1f} samples/s  "
              f"({r['throughput_ratio']:.2f}× throughput)   CPU {r['cpu_ms_per_sample']:6.2f} ms/sample "
              f"({r['cpu_ratio']:.2f}× throughput)" + (f"  found {r['features_found']}" if r["features_found"] else "")
              + (f"  I/O stall {100 * r['io_stall']:.0f} %" if r.get("io_stall") is not None else ""))
    feat = next(r for r in rows if r.get("what") == "passthrough + features")
    warm = next(r for r in rows if r.get("what") == "warm: + features, all found")
    floor = next(r for r in rows if r.get("what") == "passthrough + decode, foreground")
    print(f"  target: pack with features ≥ 0.5× the throughput without: cold {feat['throughput_ratio']:.2f}× wall, "
          f"{feat['cpu_ratio']:.2f}× CPU: {'met' if feat['throughput_ratio'] >= 0.5 else 'MISSED'} "
          f"(decoding alone allows {floor['throughput_ratio']:.2f}× wall, {floor['cpu_ratio']:.2f}× CPU); "
          f"warm {warm['throughput_ratio']:.2f}× wall, {warm['cpu_ratio']:.2f}× CPU: "
          f"{'met' if warm['throughput_ratio'] >= 0.5 else 'MISSED'}")
    png = next(r for r in rows if r.get("what") == "png transcode + features")
    print(f"  a pack that transcodes to PNG, with features against without: {png['throughput_ratio']:.2f}× wall, "
          f"{png['cpu_ratio']:.2f}× CPU: {'met' if png['throughput_ratio'] >= 0.5 else 'MISSED'}")
    plain = next(r for r in rows if r["bench"] == "ingest")
    print("ingest, then a pack with features (ratio: pack without features / this pack, same catalog):")
    for r in (r for r in rows if r["bench"] == "ingest"):
        print(f"  {r['what']:<32} {r['seconds']:7.2f} s  {r['samples_per_s']:7.1f} samples/s  "
              f"({r['seconds'] / plain['seconds']:.2f}× time of plain ingest); pack {r['pack_seconds']:.2f} s, "
              f"found {r['pack_found']}, {r['pack_ratio']:.2f}× throughput of pack without features")
    fresh = next(r for r in rows if r["bench"] == "reuse")
    print("reuse:")
    for r in (r for r in rows if r["bench"] == "reuse"):
        print(f"  {r['what']:<32} {r['seconds']:7.2f} s  computed {r['computed']:5d}  reused {r['reused']:5d}  "
              f"({r['seconds'] / fresh['seconds']:.2f}× time of fresh)")


if __name__ == "__main__":
    main()
