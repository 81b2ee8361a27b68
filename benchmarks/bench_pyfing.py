"""Pack throughput with each extractor set: none, the built-ins, pyfing classical, pyfing deep, LEADER.

    python benchmarks/bench_pyfing.py [--size 320] [--samples 24] [--deep-samples 8] [--workers 2] [--tiny]
        [--batch 1 8] [--sets "pyfing.orientation deep: SUFS, SNFOE"]

Synthesises ``samples`` fingerprints (fpload.synth) of ``size``², ingests them and packs them
(passthrough PNG, ``workers`` encode processes) once per extractor set, each into a fresh folder;
deep sets pack only the first ``deep-samples`` (they are slow on a CPU). Each set first packs one
other sample ("start": importing Keras/torch/pyfing and loading the models, which a pack with
``workers`` 1 does once in this process, and every pack with more workers pays in each worker),
then the measured pack. Reports samples/s and ms/sample and appends JSON lines to
bench-results/bench_pyfing.jsonl. Keras uses a GPU when torch sees one. ``--batch`` packs each
set once per given ``batch_size`` of its deep pyfing extractors (images per forward pass, at most
the encode chunk of 16; default: ``auto``, 16 on a GPU and 1 on a CPU).
No speed assertions anywhere: the tests run it at --tiny.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

SETS = {
    "none (features off)": None,
    "built-ins (default 5)": "default",
    "pyfing classical: GMFS, GBFOE, XSFFE": [{"name": f"pyfing.{s}", "params": {"method": "classical"}}
                                            for s in ("segmentation", "orientation", "frequency")],
    "pyfing.orientation deep: SUFS, SNFOE": [{"name": "pyfing.orientation", "params": {"method": "deep"}}],
    "pyfing deep: SUFS, SNFOE, SNFFE": [{"name": f"pyfing.{s}", "params": {"method": "deep"}}
                                       for s in ("segmentation", "orientation", "frequency")],
    "pyfing.minutiae (LEADER)": ["pyfing.minutiae"],
    "built-ins + classical + LEADER": ["orientation", "frequency", "foreground", "quality", "thumbnail",
                                       *[{"name": f"pyfing.{s}", "params": {"method": "classical"}}
                                         for s in ("segmentation", "orientation", "frequency")], "pyfing.minutiae"],
}
DEEP = {"pyfing.orientation deep: SUFS, SNFOE", "pyfing deep: SUFS, SNFOE, SNFFE", "pyfing.minutiae (LEADER)", "built-ins + classical + LEADER"}


def _with_batch(spec: list, batch: int | str) -> list:
    """The extractor specs with ``batch_size`` set on every pyfing extractor."""
    out = []
    for e in spec:
        e = {"name": e} if isinstance(e, str) else e
        if e["name"].startswith("pyfing."):
            e = {**e, "params": {**e.get("params", {}), "batch_size": batch}}
        out.append(e)
    return out


def run(root: Path, size: int, samples: int, deep_samples: int, workers: int, sets: list[str],
        batches: list[int | str] = ("auto",)) -> list[dict]:
    from fpload.catalog import open_catalog
    from fpload.features import FeaturesConfig
    from fpload.pack import PackConfig, pack_version
    from fpload.synth import synthesize

    syn = synthesize(root / "synth", subjects=samples, fingers=1, impressions=1, size=size, progress=False)
    cat = open_catalog(root / "cat.duckdb")
    cat.ingest(syn.metadata_path)
    ids = sorted({json.loads(line)["subject_id"] for line in syn.metadata_path.read_text().splitlines() if line.strip()})
    rows = []
    runs = [(label, b) for label in sets for b in (batches if label in DEEP else ["auto"])]
    for k, (label, batch) in enumerate(runs):
        spec = SETS[label]
        if spec is None:
            features = FeaturesConfig(enabled=False)
        elif spec == "default":
            features = FeaturesConfig()
        else:
            features = FeaturesConfig(extractors=_with_batch(spec, batch))
        n = deep_samples if label in DEEP else samples
        timings = {}
        for what, m in (("start", 1), ("pack", n)):  # a 1-sample pack first: imports, model loading
            chosen = ids[-1:] if what == "start" else ids[:m]
            where = "consent AND subject_id IN (" + ", ".join(f"'{s}'" for s in chosen) + ")"
            t0 = time.perf_counter()
            res = pack_version(cat, out=root / f"{what}{k}", name="b", where=where, workers=workers,
                               config=PackConfig(shard_max_samples=64, features=features))
            timings[what] = (time.perf_counter() - t0, res.samples)
        t, count = timings["pack"]
        rows.append({"bench": "pack", "set": label, "batch_size": batch, "samples": count, "size": size, "workers": workers,
                     "start_seconds": timings["start"][0], "seconds": t, "samples_per_s": count / t,
                     "ms_per_sample": 1e3 * t / count})
    cat.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--deep-samples", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sets", nargs="*", default=list(SETS), help="extractor sets to run (labels above)")
    ap.add_argument("--batch", nargs="*", default=["auto"],
                    help="batch_size values of the deep pyfing extractors to compare (integers or auto)")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes, classical sets only, for the tests")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    args = ap.parse_args()
    if args.tiny:
        args.size, args.samples, args.deep_samples, args.workers = 256, 2, 1, 1
        args.sets = [s for s in args.sets if s not in DEEP]
    tmp = Path(tempfile.mkdtemp(prefix="bench-pyfing-"))
    try:
        batches = [b if b == "auto" else int(b) for b in args.batch]
        rows = run(tmp, args.size, args.samples, args.deep_samples, args.workers, args.sets, batches)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    import torch

    machine = {"machine": platform.machine(), "python": platform.python_version(), "tiny": args.tiny,
               "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    if not args.tiny:
        args.out.mkdir(parents=True, exist_ok=True)
        with open(args.out / "bench_pyfing.jsonl", "a") as fh:
            for r in rows:
                fh.write(json.dumps({**r, **machine}, sort_keys=True) + "\n")
    print(f"pack of synthetic {args.size}² PNGs, {args.workers} worker(s), {machine['gpu'] or 'CPU only'}:")
    print("| extractor set | batch_size | samples | samples/s | ms/sample | start (1-sample pack), s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['set']} | {r['batch_size']} | {r['samples']} | {r['samples_per_s']:.2f} | {r['ms_per_sample']:.0f} | "
              f"{r['start_seconds']:.1f} |")


if __name__ == "__main__":
    main()
