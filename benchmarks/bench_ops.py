"""Samples/s of each fpload operator's CPU backend and of the fused chain, against the same
augmentation written in NumPy (fpload.ops._reference; plus OpenCV when cv2 is importable),
on the same batch in the same run.

    python benchmarks/bench_ops.py [--size 512] [--batch 64] [--iters 5] [--threads 2] [--repeats 3]
                                   [--ops warp,chain,...] [--no-baselines] [--tiny]

Rows: each operator with the default AugmentOps, the default chain ("chain"), and the loader
benchmark's configuration ("bench-chain": warp without distortion + contrast/brightness/noise,
no occlusion). "ms/thread" is the cost of one sample on one thread (threads / samples/s).

Prints a table of ratios against the NumPy baseline and appends JSON lines to
bench-results/bench_ops.jsonl. No speed assertions anywhere: tests only run it at --tiny size.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fpload.ops import AugmentOps
from fpload.ops import _reference as ref

CFG = AugmentOps()
KW = {
    "warp": CFG.warp.op_kwargs(),
    "occlusion": CFG.occlusion.op_kwargs(),
    "photometric": CFG.photometric.op_kwargs(),
}
# "bench-chain": the loader benchmark's configuration -- rotation, scale and translation in one
# warp (no distortion), no occlusion, contrast/brightness and Gaussian noise (sigma 4) only,
# float32 output normalised by (v - 127.5) / 127.5.
BENCH_CFG = AugmentOps(
    warp=CFG.warp.model_copy(update={"angle": (-15.0, 15.0), "scale": (0.95, 1.05), "translate": (16.0, 16.0),
                                     "distortion": 0.0}),
    occlusion=CFG.occlusion.model_copy(update={"enabled": False}),
    photometric=CFG.photometric.model_copy(update={"gamma": (1.0, 1.0), "noise_std": (4.0, 4.0), "blur_prob": 0.0,
                                                   "dry_prob": 0.0, "wet_prob": 0.0, "invert_prob": 0.0}),
)
KINDS = ("warp", "occlusion", "photometric", "chain", "bench-chain")


def make_batch(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    out = []
    for _ in range(n):
        ridges = 128 + 100 * np.sin((x * 0.77 + y * 0.64) * 0.6 + rng.uniform(0, 6))
        blob = ((x - size / 2) ** 2 + (y - size / 2) ** 2) < (0.4 * size) ** 2
        out.append(np.clip(np.where(blob, ridges, 235) + rng.normal(0, 10, (size, size)), 0, 255).astype(np.uint8)[:, :, None])
    return out


def dali_runner(kind: str, images: list[np.ndarray], threads: int) -> Callable[[], None]:
    from nvidia.dali import fn, pipeline_def

    from fpload.ops import augment, load_plugin

    load_plugin()
    n = len(images)
    idx = [np.array(i, np.int64) for i in range(n)]
    ep = [np.array(0, np.int64)] * n

    @pipeline_def(batch_size=n, num_threads=threads, device_id=None, prefetch_queue_depth=1)
    def pipe():  # noqa: ANN202
        x = fn.external_source(source=lambda: images, layout="HWC", batch=True)
        i = fn.external_source(source=lambda: idx, batch=True)
        e = fn.external_source(source=lambda: ep, batch=True)
        if kind in ("chain", "bench-chain"):
            cfg = CFG if kind == "chain" else BENCH_CFG
            return augment(x, sample_idx=i, epoch=e, config=cfg, seed=0, device="cpu")
        return getattr(fn, f"fpload_{kind}")(x, sample_idx=i, epoch=e, aug_seed=0, **KW[kind])

    p = pipe()
    p.build()
    return lambda: p.run()


def numpy_runner(kind: str, images: list[np.ndarray]) -> Callable[[], None]:
    idx = list(range(len(images)))
    fns = {"warp": ref.warp, "occlusion": ref.occlusion, "photometric": ref.photometric}
    if kind in ("chain", "bench-chain"):
        cfg = CFG if kind == "chain" else BENCH_CFG

        def chain() -> None:
            x = ref.warp(images, idx, **cfg.warp.op_kwargs())
            if cfg.occlusion.enabled:
                x = ref.occlusion(x, idx, **cfg.occlusion.op_kwargs())
            ref.photometric(x, idx, **cfg.photometric.op_kwargs(), dtype="float32", mean=127.5, std=127.5)
        return chain
    return lambda: fns[kind](images, idx, **KW[kind])


def opencv_runner(kind: str, images: list[np.ndarray]) -> Callable[[], None] | None:
    """A comparable augmentation with OpenCV primitives (only where cv2 is importable)."""
    try:
        import cv2
    except ImportError:
        return None
    rng = np.random.default_rng(0)

    def warp(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-15, 15)), float(rng.uniform(0.9, 1.1)))
        grid = rng.uniform(-6, 6, (2, 4, 4)).astype(np.float32)
        dx, dy = (cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC) for g in grid)
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        img = cv2.remap(img, xs + dx, ys + dy, cv2.INTER_LINEAR, borderValue=255)
        return cv2.warpAffine(img, m, (w, h), borderValue=255)

    def occlusion(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        mask = np.zeros((h, w), np.uint8)
        cv2.ellipse(mask, (w // 2, h // 2), (int(w * 0.4), int(h * 0.45)), float(rng.uniform(-30, 30)), 0, 360, 255, -1)
        return np.where(mask > 0, img, 255).astype(np.uint8)

    def photometric(img: np.ndarray) -> np.ndarray:
        img = cv2.erode(img, np.ones((3, 3), np.uint8)) if rng.uniform() < 0.15 else img
        lut = (np.clip((np.arange(256) / 255 - 0.5) * rng.uniform(0.75, 1.3) + 0.5, 0, 1) ** rng.uniform(0.8, 1.25) * 255)
        t = cv2.LUT(img, lut.astype(np.float32)) + rng.normal(0, 4, img.shape).astype(np.float32)
        return ((np.clip(t, 0, 255) - 127.5) / 127.5).astype(np.float32)

    if kind == "bench-chain":
        return None  # no OpenCV twin of the benchmark configuration
    steps = {"warp": [warp], "occlusion": [occlusion], "photometric": [photometric], "chain": [warp, occlusion, photometric]}[kind]

    def run() -> None:
        for img in images:
            x = img[:, :, 0]
            for step in steps:
                x = step(x)

    return run


def measure(fn: Callable[[], None], n: int, iters: int, repeats: int = 1) -> float:
    """Samples/s: the best of ``repeats`` timings of ``iters`` calls (the machine may be shared)."""
    fn()  # warm-up
    best = 0.0
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        for _ in range(iters):
            fn()
        best = max(best, n * iters / (time.perf_counter() - start))
    return best


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="report the best of this many timings (shared machines)")
    ap.add_argument("--ops", default=",".join(KINDS), help=f"comma-separated subset of {','.join(KINDS)}")
    ap.add_argument("--no-baselines", action="store_true", help="time fpload only (skip NumPy and OpenCV)")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long run that only checks the script works")
    ap.add_argument("--out", type=Path, default=Path("bench-results/bench_ops.jsonl"))
    args = ap.parse_args(argv)
    if args.tiny:
        args.size, args.batch, args.iters, args.repeats = 32, 4, 1, 1
    kinds = [k.strip() for k in args.ops.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        ap.error(f"unknown --ops {unknown}; choose from {KINDS}")
    images = make_batch(args.batch, args.size)
    rows = []
    for kind in kinds:
        fp = measure(dali_runner(kind, images, args.threads), args.batch, args.iters, args.repeats)
        npy = cvs = None
        if not args.no_baselines:
            npy = measure(numpy_runner(kind, images), args.batch, max(1, args.iters // 2))
            cv = opencv_runner(kind, images)
            cvs = measure(cv, args.batch, max(1, args.iters // 2)) if cv else None
        rows.append({
            "bench": "ops_cpu", "op": kind, "size": args.size, "batch": args.batch, "threads": args.threads,
            "fpload_cpu_sps": round(fp, 1), "numpy_sps": round(npy, 1) if npy else None,
            "ms_per_sample_per_thread": round(1000.0 * args.threads / fp, 3), "repeats": args.repeats,
            "opencv_sps": round(cvs, 1) if cvs else None, "machine": platform.node(), "time": time.time(),
        })
    if not args.tiny:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as fh:
            for row in rows:
                fh.write(json.dumps(row, sort_keys=True) + "\n")
    print(f"{'op':12} {'fpload CPU':>12} {'ms/thread':>10} {'NumPy':>10} {'OpenCV':>10} {'vs NumPy':>9}   samples/s, "
          f"{args.size}x{args.size} uint8, batch {args.batch}, {args.threads} threads, best of {args.repeats}")
    for r in rows:
        npy = f"{r['numpy_sps']:10.1f}" if r["numpy_sps"] else f"{'n/a':>10}"
        cv = f"{r['opencv_sps']:10.1f}" if r["opencv_sps"] else f"{'n/a':>10}"
        ratio = f"{r['fpload_cpu_sps'] / r['numpy_sps']:8.1f}x" if r["numpy_sps"] else f"{'n/a':>9}"
        print(f"{r['op']:12} {r['fpload_cpu_sps']:12.1f} {r['ms_per_sample_per_thread']:10.3f} {npy} {cv} {ratio}")
    return rows


if __name__ == "__main__":
    main()
