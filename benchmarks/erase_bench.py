"""Erasure of one subject from a version of many tiny samples: shards rewritten and time.

    PYTHONPATH=. python benchmarks/erase_bench.py --subjects 2500 --out /tmp/erase-bench   # 10^4 samples

Prints one JSON line: samples, shards, shards rewritten, seconds for the erasure and for verify.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from fpload.catalog import open_catalog
from fpload.erase import erase_subject, verify_receipt
from fpload.pack import PackConfig, pack_version
from fpload.testing import make_captures


def run(subjects: int, out: Path, shard: int = 256, workers: int = 2) -> dict:
    """Build ``subjects × 2 × 2`` 8×8 captures, pack them, erase one subject; the measurements."""
    shutil.rmtree(out, ignore_errors=True)
    meta = make_captures(out / "caps", subjects=subjects, fingers=2, impressions=2, size=(8, 8))
    cat = open_catalog(out / "cat.duckdb")
    cat.ingest(meta, workers=workers)
    cfg = PackConfig.from_dict({"encoding": "raw", "shard_max_samples": shard, "features": {"enabled": False}})
    res = pack_version(cat, out=out / "versions", name="tiny", config=cfg, workers=workers)
    cat.close()
    shards = len(res.manifest["shards"])  # before the erasure tombstones it
    t = time.perf_counter()
    r = erase_subject(out / "cat.duckdb", [out / "versions"], subjects=[f"S{subjects // 2:03d}"], reason="bench")
    erase_s = time.perf_counter() - t
    t = time.perf_counter()
    problems = verify_receipt(out / "versions" / ".fpload" / "receipts" / f"{r['erasure_id']}.json")
    verify_s = time.perf_counter() - t
    v = r["versions"][0]
    return {"samples": res.samples, "shards": shards, "shards_rewritten": v["shards_rewritten"],
            "shards_reused": v["shards_reused"], "erase_s": round(erase_s, 3), "verify_s": round(verify_s, 3),
            "verify_ok": not problems}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=2500)
    ap.add_argument("--out", type=Path, default=Path("/tmp/erase-bench"))
    a = ap.parse_args()
    print(json.dumps(run(a.subjects, a.out)))
