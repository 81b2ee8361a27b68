"""``--profile``: what bounds a contender, as evidence.

1. Stage breakdown (always): DALI CPU pipelines cut after each stage of the fpload path (read →
   decode → crop → fpload_warp → fpload_photometric) and of the stock path (→ warp_affine →
   brightness_contrast → noise.gaussian), plus the webdataset contender's per-image steps timed
   in one Python thread. Each stage's added wall and CPU milliseconds per sample show where the
   time goes.
2. A sampling profile of the fpload CPU contender's main thread: py-spy (``--native --idle``) when
   it is installed, else cProfile; the top frames of the iteration loop are printed (how much of
   it waits for DALI's worker threads, how much is conversion to torch).
"""

from __future__ import annotations

import io
import pstats
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fpload.bench._common import Window, cores, run_in_subprocess, tree_cpu_seconds
from fpload.bench._report import print_table

FPLOAD_STAGES = ("read", "decode", "crop", "fpload_warp", "fpload_photometric")
STOCK_STAGES = ("read", "decode", "crop", "warp_affine", "brightness_contrast", "noise.gaussian")
NOAUG_STAGES = ("read", "decode", "crop", "crop_mirror_normalize")


def _stage_pipeline(version: Path, stages: tuple[str, ...], batch: int, threads: int):
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def

    from fpload.bench._contenders import fpload_ops, stock_ops
    from fpload.load import LoaderConfig
    from fpload.load._pipeline import _augment_stock, _inflate_lz4_cpu, decode_int_member, reader_exts
    from fpload.versions import open_version

    v = open_version(version)
    enc = v.encoding
    raw = enc in ("raw", "raw-lz4")
    exts = reader_exts(enc)
    dtypes = [types.UINT8] + ([types.INT32] if raw else []) + [types.UINT8, types.UINT8]
    cfg = LoaderConfig()
    h = int(np.max(v.samples.column("height").to_numpy()))
    w = int(np.max(v.samples.column("width").to_numpy()))
    ops = fpload_ops()
    if any(s.startswith("fpload") for s in stages):
        from fpload.ops import load_plugin

        load_plugin()

    @pipeline_def(batch_size=batch, num_threads=threads, device_id=None, prefetch_queue_depth=cfg.prefetch,
                  exec_dynamic=True)
    def pipe():
        outs = fn.readers.webdataset(
            paths=[str(p) for p in v.shard_paths("train")], index_paths=[str(p) for p in v.index_paths("train")],
            ext=exts, dtypes=dtypes, missing_component_behavior="error", random_shuffle=True,
            initial_fill=cfg.shuffle_buffer, pad_last_batch=True, prefetch_queue_depth=1)
        x, idx = outs[0], outs[-1]
        if "decode" in stages:
            if enc == "raw":
                x = fn.reshape(x, shape=outs[1], layout="HWC")
            elif enc == "raw-lz4":
                x = fn.reshape(fn.python_function(x, outs[1], function=_inflate_lz4_cpu, num_outputs=1), layout="HWC")
            else:
                x = fn.decoders.image(x, device="cpu", output_type=types.GRAY)
        if "crop" in stages:
            x = fn.crop(x, crop=[h, w], out_of_bounds_policy="pad", fill_values=255.0)
        common = {"sample_idx": decode_int_member(idx),
                  "epoch": fn.external_source(source=lambda: [np.array(0, np.int64)] * batch, batch=True),
                  "aug_seed": 0}
        if "fpload_warp" in stages:
            x = fn.fpload_warp(x, **common, **ops.warp.op_kwargs())
        if "fpload_photometric" in stages:
            x = fn.fpload_photometric(x, **common, **ops.photometric.op_kwargs(), dtype=types.FLOAT,
                                      mean=127.5, std=127.5)
        stock = stock_ops()
        if "warp_affine" in stages:
            only = stock.model_copy(update={"brightness": (1.0, 1.0), "contrast": (1.0, 1.0), "noise_std": 0.0})
            x = _augment_stock(x, only, (h, w), 255)
        if "brightness_contrast" in stages:
            x = fn.brightness_contrast(x, brightness=fn.random.uniform(range=list(stock.brightness)),
                                       contrast=fn.random.uniform(range=list(stock.contrast)), contrast_center=128.0)
        if "noise.gaussian" in stages:
            x = fn.noise.gaussian(x, stddev=stock.noise_std)
        if "crop_mirror_normalize" in stages:
            x = fn.crop_mirror_normalize(x, dtype=types.FLOAT, output_layout="CHW", mean=[127.5], std=[127.5])
        return x

    p = pipe()
    p.build()
    return p


def _time(step: Callable[[], int], samples: int) -> tuple[float, float, int]:
    step()  # warm-up
    c0, t0, n = tree_cpu_seconds(), time.perf_counter(), 0
    while n < samples:
        n += step()
    return time.perf_counter() - t0, tree_cpu_seconds() - c0, n


def _time_pipeline(pipe, samples: int) -> tuple[float, float, int]:
    return _time(lambda: len(pipe.run()[0]), samples)


def _wds_steps(version: Path, samples: int) -> list[dict[str, Any]]:
    """The webdataset contender's per-image steps, one Python thread, no DataLoader."""
    import tarfile

    from fpload.bench._contenders import _collate, _decode_pil, affine_pil, photometric_numpy
    from fpload.versions import open_version

    v = open_version(version)
    members: dict[str, dict[str, bytes]] = {}
    for shard in v.shard_paths("train"):
        with tarfile.open(shard) as tf:
            for m in tf.getmembers():
                key, ext = m.name.split(".", 1)
                members.setdefault(key, {})[ext] = tf.extractfile(m).read()
    items = list(members.values())
    rng = np.random.default_rng(0)
    n = min(samples, 4 * len(items))
    picks = [items[i % len(items)] for i in range(n)]
    out = []
    _collate([(np.zeros((1, 2, 2), np.float32), 0, 0)])  # import torch outside the timing
    t0 = time.perf_counter()
    imgs = [_decode_pil(s) for s in picks]
    for im in imgs:
        im.load()
    t1 = time.perf_counter()
    warped = [affine_pil(im, rng) for im in imgs]
    t2 = time.perf_counter()
    arrays = [photometric_numpy(np.asarray(im), rng) for im in warped]
    t3 = time.perf_counter()
    _collate([(a, 0, 0) for a in arrays])
    t4 = time.perf_counter()
    for name, a, b in (("PIL decode", t0, t1), ("PIL affine", t1, t2), ("NumPy photometric", t2, t3),
                       ("collate to torch", t3, t4)):
        out.append({"path": "wds-torch (1 thread)", "stage": name, "ms_per_sample": 1000 * (b - a) / n,
                    "cpu_ms_per_sample": 1000 * (b - a) / n})
    return out


def run_stages(spec: dict[str, Any], window: Window) -> dict[str, Any]:
    """Worker entry: the stage breakdown of one version (see the module doc)."""
    version, batch, samples = Path(spec["version"]), int(spec["batch"]), int(spec["samples"])
    threads = max(1, min(8, cores()))
    rows = []
    shared = (0.0, 0.0)  # wall and CPU ms per sample of read → decode → crop
    for path, stages in (("fpload CPU", FPLOAD_STAGES), ("DALI stock CPU", STOCK_STAGES),
                         ("no augmentation", NOAUG_STAGES)):
        prev_wall = prev_cpu = 0.0
        for k in range(1, len(stages) + 1):
            if path != "fpload CPU" and k <= 3:
                continue  # read/decode/crop are shared with the fpload path
            wall, cpu, n = _time_pipeline(_stage_pipeline(version, stages[:k], batch, threads), samples)
            wall_ms, cpu_ms = 1000 * wall / n, 1000 * cpu / n
            if path != "fpload CPU" and k == 4:
                prev_wall, prev_cpu = shared
            rows.append({"path": path, "stage": f"+ {stages[k - 1]}" if k > 1 else stages[0],
                         "samples_per_s": n / wall, "ms_per_sample": wall_ms - prev_wall,
                         "cpu_ms_per_sample": cpu_ms - prev_cpu})
            prev_wall, prev_cpu = wall_ms, cpu_ms
            if k == 3 and path == "fpload CPU":
                shared = (wall_ms, cpu_ms)
    rows += _wds_steps(version, min(samples, 128))
    window.start()
    window.stop(0)
    return {"stages": rows, "threads": threads}


def _pyspy_wrap(out_file: Path) -> Callable[[list[str]], list[str]]:
    exe = shutil.which("py-spy")

    def wrap(cmd: list[str]) -> list[str]:
        return [exe, "record", "--native", "--idle", "-r", "100", "-f", "raw", "-o",
                str(out_file), "--", *cmd]

    return wrap


def top_frames_collapsed(path: Path, top: int = 15, within: str = "run_loader_contender",
                         exclude: tuple[str, ...] = ("_find_and_load", "Loader.__init__", "_build", "build_pipeline")
                         ) -> tuple[list[tuple[str, int]], list[tuple[str, int]], int]:
    """Leaf (self) and inclusive frame counts of a py-spy ``raw`` (collapsed stacks) file, over the
    stacks that pass through ``within`` and none of ``exclude`` (start-up, imports, pipeline build)."""
    leaf: Counter = Counter()
    incl: Counter = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f.split(" (")[0] for f in stack.split(";")]
        if within not in frames or any(f in exclude for f in frames):
            continue
        n = int(count)
        total += n
        leaf[frames[-1]] += n
        below = frames[frames.index(within) + 1:]
        for f in set(below):
            incl[f] += n
    return leaf.most_common(top), incl.most_common(top), total


def profile_loader(versions: dict[str, Path], preset, out: Path, *, log=print, console=None) -> list[dict]:
    """Print the stage breakdown (raw and png) and the top frames of the fpload CPU contender."""
    rows: list[dict[str, Any]] = []
    for enc in ("raw", "png"):
        if enc not in versions:
            continue
        log(f"profile: stage breakdown on {enc}")
        res = run_in_subprocess([{"kind": "stages", "version": str(versions[enc]), "batch": preset.batch,
                                  "samples": preset.samples, "encoding": enc}], timeout=900)[0]
        if res.get("error"):
            log(f"profile: stages on {enc} failed: {res['error']}")
            continue
        rows += [{**r, "encoding": enc} for r in res["stages"]]
    print_table("where the time goes (added per sample by each stage)",
                ["path", "stage", "encoding", "samples/s", "wall ms", "CPU ms"],
                [[r["path"], r["stage"], r["encoding"], r.get("samples_per_s"), r["ms_per_sample"],
                  r["cpu_ms_per_sample"]] for r in rows],
                caption="DALI rows: cumulative pipelines, each row the increase over the previous one "
                        "(wall ms with all threads; CPU ms summed over threads); wds-torch rows: one thread.",
                console=console)
    spec = {"kind": "loader", "contender": "fpload-cpu", "encoding": "raw", "version": str(versions["raw"]),
            "batch": preset.batch, "samples": 4 * preset.samples, "device": "cpu"}
    out.mkdir(parents=True, exist_ok=True)
    say = console.print if console else print
    if shutil.which("py-spy"):
        prof = out / "profile-fpload-cpu.txt"
        log(f"profile: py-spy on fpload-cpu [raw] → {prof}")
        run_in_subprocess([spec], timeout=900, wrap=_pyspy_wrap(prof))
        if prof.exists():
            leaf, incl, total = top_frames_collapsed(prof)
            say(f"py-spy --native --idle, main thread, {total} samples in the iteration loop (start-up and "
                "pipeline build left out; DALI's worker threads are native and not sampled); top self frames:")
            for name, n in leaf:
                say(f"  {100 * n / max(1, total):5.1f}%  {name}")
            say("top inclusive frames:")
            for name, n in incl:
                say(f"  {100 * n / max(1, total):5.1f}%  {name}")
    else:
        prof = out / "profile-fpload-cpu.pstats"
        log(f"profile: py-spy not installed (pip install py-spy); cProfile of the main thread → {prof}")
        run_in_subprocess([spec], timeout=900, wrap=lambda cmd: [cmd[0], "-m", "cProfile", "-o", str(prof), *cmd[1:]])
        if prof.exists():
            buf = io.StringIO()
            pstats.Stats(str(prof), stream=buf).sort_stats("tottime").print_stats(15)
            say(buf.getvalue())
    return rows
