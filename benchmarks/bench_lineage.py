"""The lineage index: `versions find` and `fpload audit` over synthetic lineage files.

    python benchmarks/bench_lineage.py [--size tiny|small|full|heavy] [--out bench-results]

Writes a version root of synthetic lineage (no images are packed): ``versions`` lineage files
``ROOT/.fpload/lineage/<id>.parquet`` of ``per_version`` samples each, drawn from a pool of
``pool`` samples of 10 samples per subject, through the same writer the packer uses, with a
publish record per version and ``reads`` read records in the audit log. Then times, best of 5
after one cold call:

- ``find --subject`` (fpload), against a pyarrow.dataset scan of the same files (the baseline);
- ``find --sample`` and ``find`` of 1,000 sample ids (what ``--where`` hands over);
- ``audit --subject`` (lineage joined with the read records).

Presets: tiny (2,000 samples, 5 versions), small (10^5, 100), full (10^6 samples across 100
versions: the issue's target of ≤ 1 s), heavy (100 versions of 10^5 samples each from a pool of
10^6: 10^7 lineage rows). Appends JSON lines to OUT/lineage.jsonl and prints a table of ratios
to the baseline. No speed assertions anywhere: the test suite runs it at tiny.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = {  # pool, versions, per_version, reads
    "tiny": (2_000, 5, 1_000, 20),
    "small": (100_000, 100, 1_000, 1_000),
    "full": (1_000_000, 100, 10_000, 2_000),
    "heavy": (1_000_000, 100, 100_000, 2_000),
}


def make_root(root: Path, pool: int, versions: int, per_version: int, reads: int, seed: int = 0) -> dict:
    """A version root of synthetic lineage; returns a few subjects and samples to look up."""
    import pyarrow as pa

    from fpload.audit import audit_log, lineage_path
    from fpload.audit._lineage import lineage_table, write_lineage_file

    rng = np.random.default_rng(seed)
    sample_ids = np.array([f"{x:032x}" for x in rng.integers(0, 2**63, size=pool, dtype=np.int64)], dtype=object)
    subject_ids = np.array([f"S{i // 10:07d}" for i in range(pool)], dtype=object)
    splits = np.array(["train", "val", "test"], dtype=object)[rng.integers(0, 3, size=pool)]
    log = audit_log(root)
    vids = []
    for v in range(versions):
        vid = f"{v:016x}"
        if per_version * versions <= pool:  # disjoint: every sample in one version
            take = np.arange(v * per_version, (v + 1) * per_version)
        else:
            take = np.sort(rng.choice(pool, size=per_version, replace=False))
        samples = pa.table({"sample_id": pa.array(sample_ids[take], pa.string()),
                            "subject_id": pa.array(subject_ids[take], pa.string()),
                            "split": pa.array(splits[take], pa.string())})
        path = lineage_path(root, vid)
        sha = write_lineage_file(path, lineage_table(samples), version_id=vid, name=f"set{v % 10}")
        folder = root / f"set{v % 10}" / vid
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "manifest.json").write_text("{}\n")  # a live version, as far as find looks
        log.append("publish", {"version_id": vid, "name": f"set{v % 10}",
                               "lineage": {"file": path.relative_to(root).as_posix(), "sha256": sha,
                                           "rows": per_version}})
        vids.append(vid)
    for i in range(reads):
        log.append("read", {"version_id": vids[i % versions], "name": f"set{i % versions % 10}",
                            "split": "train", "run_id": f"{i // 4:032x}", "job": None, "recorded": True,
                            "run_name": f"run-{i // 4}", "tags": {}, "rank": i % 4, "world_size": 4,
                            "epoch": 0})
    probe = rng.integers(0, min(pool, per_version * versions), size=5)
    return {"subjects": [str(subject_ids[i]) for i in probe], "samples": [str(sample_ids[i]) for i in probe],
            "ids": [str(s) for s in sample_ids[rng.integers(0, min(pool, per_version * versions), size=1000)]]}


def _timed(fn, repeats: int = 5) -> tuple[float, float, object]:
    t0 = time.perf_counter()
    result = fn()
    cold = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return cold, best, result


def run(size: str, out: Path, log=print) -> list[dict]:
    import pyarrow.dataset as ds

    from fpload.audit import audit_subject, find_versions, lineage_path, subject_ref

    pool, versions, per_version, reads = SIZES[size]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fpload-bench-lineage-") as tmp:
        root = Path(tmp) / "versions"
        t0 = time.perf_counter()
        probe = make_root(root, pool, versions, per_version, reads)
        log(f"wrote {versions} lineage files of {per_version} samples in {time.perf_counter() - t0:.1f} s")
        files = [str(lineage_path(root, f"{v:016x}")) for v in range(versions)]
        subject = probe["subjects"][0]

        def baseline():
            table = ds.dataset(files, format="parquet").to_table(
                filter=ds.field("subject_ref") == subject_ref(subject))
            return table.num_rows

        cases = [
            ("pyarrow-scan", "subject", baseline),
            ("fpload-find", "subject", lambda: find_versions(root, subject=subject)),
            ("fpload-find", "sample", lambda: find_versions(root, sample=probe["samples"][0])),
            ("fpload-find", "1000 ids", lambda: find_versions(root, sample_ids=probe["ids"])),
            ("fpload-audit", "subject", lambda: audit_subject(root, subject=subject)),
        ]
        base = None
        for contender, query, fn in cases:
            cold, best, result = _timed(fn)
            if contender == "pyarrow-scan":
                base = best
            hits = result if isinstance(result, int) else len(result.get("versions", [])) if isinstance(result, dict) else len(result)
            rows.append({"bench": "lineage", "size": size, "contender": contender, "query": query,
                         "pool": pool, "versions": versions, "rows": versions * per_version, "reads": reads,
                         "cold_s": cold, "best_s": best, "hits": hits,
                         "ratio_vs_baseline": best / base if base else None,
                         "cores": os.cpu_count(), "python": platform.python_version()})
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "lineage.jsonl", "a") as fh:
        for r in rows:
            fh.write(json.dumps(r, sort_keys=True) + "\n")
    print(f"fpload bench lineage ({size}: {versions} versions, {versions * per_version:,} lineage rows, "
          f"{reads:,} read records)")
    print(f"{'contender':<14} {'query':<10} {'cold s':>8} {'best s':>8} {'× baseline':>11} {'hits':>6}")
    for r in rows:
        print(f"{r['contender']:<14} {r['query']:<10} {r['cold_s']:>8.3f} {r['best_s']:>8.3f} "
              f"{r['ratio_vs_baseline']:>11.2f} {r['hits']:>6}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small", help="preset (default: small)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="results folder")
    args = parser.parse_args(argv)
    run(args.size, args.out, log=lambda m: print(m, file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
