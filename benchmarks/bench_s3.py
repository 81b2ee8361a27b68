"""A version on a local S3-compatible server (moto) read through the shard cache, against local disk.

    python benchmarks/bench_s3.py [--subjects 60] [--size 256] [--epochs 3] [--batch 32] [--tiny]

Packs one version twice from the same catalog, to a folder and to ``s3://bench/versions`` on a
ThreadedMotoServer on 127.0.0.1, then times CPU loader epochs (raw encoding, no augmentation):

- ``local``: the version on local disk, warm page cache (epochs after the first);
- ``s3 cold``: the first epoch with an empty shard cache (fetch + verify + read);
- ``s3 warm``: the following epochs, shards in the cache.

Prints samples/s and the warm/local ratio (the issue asks ≥ 0.8) and appends a JSON line to
bench-results/bench_s3.jsonl. No speed assertions: the tests run it at --tiny. moto is an
in-process Python server, so the cold figure is a lower bound of what real S3 gives.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def _epoch(path: str, batch: int) -> tuple[int, float]:
    from fpload.load import Loader

    loader = Loader(path, split="train", batch_size=batch, device="cpu", seed=0, augment=False, num_threads=2)
    t = time.perf_counter()
    n = sum(len(b[1]) for b in loader)
    return n, time.perf_counter() - t


def _epochs(path: str, batch: int, epochs: int) -> list[tuple[int, float]]:
    from fpload.load import Loader

    loader = Loader(path, split="train", batch_size=batch, device="cpu", seed=0, augment=False, num_threads=2)
    out = []
    for _ in range(epochs):
        t = time.perf_counter()
        n = sum(len(b[1]) for b in loader)
        out.append((n, time.perf_counter() - t))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subjects", type=int, default=60)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tiny", action="store_true", help="a few samples, to check the script runs")
    args = ap.parse_args()
    if args.tiny:
        args.subjects, args.size, args.epochs, args.batch = 4, 64, 2, 4

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                                             "FSSPEC_S3_ENDPOINT_URL", "FPLOAD_CACHE_DIR")}
    tmp = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      FSSPEC_S3_ENDPOINT_URL=f"http://{host}:{port}", FPLOAD_CACHE_DIR=str(tmp / "cache"))
    try:
        from fpload.catalog import open_catalog
        from fpload.pack import PackConfig, pack_version
        from fpload.testing import make_captures
        from fpload.versions._store import filesystem

        meta = make_captures(tmp / "captures", subjects=args.subjects, fingers=2, impressions=2,
                             size=(args.size, args.size), seed=0)
        cat = open_catalog(tmp / "cat.duckdb")
        cat.ingest(meta)
        cfg = PackConfig(encoding="raw", shard_max_samples=64, features={"enabled": False})
        fs, _ = filesystem("s3://bench")
        fs.mkdir("bench")
        local = pack_version(cat, out=tmp / "versions", name="b", where="consent", config=cfg)
        t = time.perf_counter()
        remote = pack_version(cat, out="s3://bench/versions", name="b", where="consent", config=cfg)
        upload_s = time.perf_counter() - t
        cat.close()
        _epoch(str(local.path), args.batch)  # warm the page cache
        loc = _epochs(str(local.path), args.batch, args.epochs + 1)[1:]  # the first holds the pipeline build
        rem = _epochs(remote.path, args.batch, args.epochs + 1)  # so does the cold one, as a real first epoch
        rate = (lambda xs: sum(n for n, _ in xs) / sum(s for _, s in xs))
        row = {"samples": loc[0][0], "image": args.size, "MB": round(local.bytes / 1e6, 1),
               "pack_to_s3_s": round(upload_s, 2), "local_sps": round(rate(loc)),
               "s3_cold_sps": round(rate(rem[:1])), "s3_warm_sps": round(rate(rem[1:])),
               "warm_over_local": round(rate(rem[1:]) / rate(loc), 2), "host": platform.node(), "tiny": args.tiny}
        print(f"{row['samples']} samples of {args.size}² raw ({row['MB']} MB), batch {args.batch}")
        print(f"  local disk      {row['local_sps']:>8} samples/s")
        print(f"  s3 cold epoch   {row['s3_cold_sps']:>8} samples/s  (fetch + verify into the shard cache)")
        print(f"  s3 warm epochs  {row['s3_warm_sps']:>8} samples/s  ({row['warm_over_local']}× local)")
        out = Path("bench-results")
        out.mkdir(exist_ok=True)
        with open(out / "bench_s3.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


if __name__ == "__main__":
    main()
