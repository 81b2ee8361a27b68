"""Shared plumbing of the benchmarks: machine facts, JSON lines, per-contender subprocesses,
and the process-tree monitor that measures a contender's CPU seconds and memory."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fpload.errors import UsageError

SIZE_NAMES = ("tiny", "small", "full")
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def check_size(size: str) -> str:
    if size not in SIZE_NAMES:
        raise UsageError(f"size {size!r} is not one of {', '.join(SIZE_NAMES)}")
    return size


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or platform.machine()


def machine_info(size: str) -> dict[str, Any]:
    """What every result line carries: the machine, the library versions and the size preset."""
    import fpload

    info: dict[str, Any] = {"cores": cores(), "cpu_model": _cpu_model(), "python": platform.python_version(),
                            "fpload": fpload.__version__, "size": size, "host": platform.node()}
    for mod, key in (("nvidia.dali", "dali"), ("torch", "torch"), ("webdataset", "webdataset")):
        try:
            info[key] = __import__(mod, fromlist=["__version__"]).__version__
        except Exception:  # noqa: BLE001 - a missing library is reported as missing
            info[key] = None
    try:
        import torch

        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001
        info["gpu"] = None
    return info


def append_results(out_dir: Path, kind: str, rows: list[dict[str, Any]], machine: dict[str, Any]) -> Path:
    """Append one JSON line per measurement (sorted keys) to ``out_dir/<kind>.jsonl``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{kind}.jsonl"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    with path.open("a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({"bench": kind, "time": stamp, **machine, **row}, sort_keys=True) + "\n")
    return path


# -------------------------------------------------------------------------------------------
# process-tree accounting (Linux /proc)
# -------------------------------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            f = _stat_fields(int(name))
            if f is not None:
                children.setdefault(int(f[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def tree_cpu_seconds(root: int | None = None) -> float:
    """User + system seconds of ``root`` and its live descendants, each with its reaped children.

    Time of a process that exits moves into its parent's children times, so the sum stays
    monotonic as workers come and go: the difference of two readings is the CPU of the window.
    """
    total = 0
    for pid in _descendants(root or os.getpid()):
        f = _stat_fields(pid)
        if f is not None:
            total += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    return total / _TICK


def _pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    f = _stat_fields(pid)
    return int(f[21]) * _PAGE if f is not None else 0  # rss pages


class Monitor:
    """Samples the proportional memory (PSS) of this process tree, and GPU memory in use, until stopped.

    PSS counts pages shared by forked workers once, so the peak is the contender's real footprint.
    """

    def __init__(self, interval: float = 0.5, gpu: bool = False):
        self.interval = interval
        self.peak_pss = 0
        self.gpu = gpu
        self.gpu_base = 0
        self.peak_gpu = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fpload-bench-monitor", daemon=True)

    def _gpu_used(self) -> int:
        import torch

        free, total = torch.cuda.mem_get_info()
        return total - free

    def start(self) -> "Monitor":
        if self.gpu:
            self.gpu_base = self._gpu_used()
        self._thread.start()
        return self

    def sample(self) -> None:
        self.peak_pss = max(self.peak_pss, sum(_pss_bytes(p) for p in _descendants(os.getpid())))
        if self.gpu:
            self.peak_gpu = max(self.peak_gpu, self._gpu_used())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, Any]:
        self.sample()
        self._stop.set()
        self._thread.join()
        out = {"peak_pss_mb": round(self.peak_pss / 1e6, 1),
               "maxrss_self_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, 1),
               "maxrss_children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3, 1)}
        if self.gpu:
            out["gpu_mem_mb"] = round(max(0, self.peak_gpu - self.gpu_base) / 1e6, 1)
        return out


def io_stall_seconds() -> float | None:
    """Seconds, since boot, in which some task of the machine waited on I/O (Linux pressure stall
    information, ``/proc/pressure/io``); None where the kernel does not report it."""
    try:
        with open("/proc/pressure/io") as fh:
            for line in fh:
                if line.startswith("some "):
                    return int(line.rsplit("total=", 1)[1]) / 1e6
    except (OSError, ValueError, IndexError):
        pass
    return None


class Window:
    """The timed part of a contender's run: wall seconds, the tree's CPU seconds, and the share of
    the wall time in which the machine was stalled on I/O (``io_stall``: a run with a high share
    measured the disk, not the contender)."""

    def __init__(self) -> None:
        self.t0 = self.c0 = 0.0
        self.seconds = self.cpu = 0.0
        self.samples = 0
        self.io0: float | None = None
        self.io: float | None = None

    def start(self) -> None:
        self.c0 = tree_cpu_seconds()
        self.io0 = io_stall_seconds()
        self.t0 = time.perf_counter()

    def stop(self, samples: int) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.cpu = tree_cpu_seconds() - self.c0
        io1 = io_stall_seconds()
        self.io = io1 - self.io0 if io1 is not None and self.io0 is not None else None
        self.samples = samples

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "seconds": round(self.seconds, 4),
                "samples_per_s": round(self.samples / self.seconds, 2) if self.seconds > 0 else None,
                "cpu_s": round(self.cpu, 3),
                "cores_busy": round(self.cpu / self.seconds, 2) if self.seconds > 0 else None,
                "cpu_s_per_1k": round(1000 * self.cpu / self.samples, 3) if self.samples else None,
                "io_stall": round(self.io / self.seconds, 3) if self.io is not None and self.seconds > 0 else None}


def stop_forkserver() -> None:
    """Stop (and reap) multiprocessing's fork server, so its workers' CPU reaches our children times."""
    try:
        from multiprocessing import forkserver

        stop = getattr(forkserver._forkserver, "_stop", None)
        if stop is not None:
            stop()
    except Exception:  # noqa: BLE001 - accounting only
        pass


# -------------------------------------------------------------------------------------------
# running contenders in subprocesses
# -------------------------------------------------------------------------------------------

def run_in_subprocess(specs: list[dict[str, Any]], *, timeout: float, wrap=None,
                      quiet: bool = True) -> list[dict[str, Any]]:
    """Run ``specs`` in one fresh ``python -m fpload.bench._worker`` process, in order; return their results.

    Each result also gets ``process_cpu_s`` and ``process_wall_s``: the worker process's whole
    life (imports and start-up included) from this side's children times. ``wrap`` rewrites the
    command list (to run it under a profiler). A worker that fails gives results with an ``error``.
    """
    with tempfile.TemporaryDirectory(prefix="fpload-bench-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(json.dumps(specs))
        cmd = [sys.executable, "-m", "fpload.bench._worker", str(spec_path), str(result_path)]
        if wrap is not None:
            cmd = wrap(cmd)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        env = {**os.environ, "PYTHONWARNINGS": "ignore::ResourceWarning"}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return [{**s, "error": f"timed out after {timeout:.0f} s"} for s in specs]
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if not result_path.exists():
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-8:]
            return [{**s, "error": f"worker exited {proc.returncode}: " + " | ".join(tail)} for s in specs]
        results = json.loads(result_path.read_text())
        if not quiet and proc.stderr:
            sys.stderr.write(proc.stderr)
    for r in results:
        if len(specs) == 1:
            r["process_cpu_s"], r["process_wall_s"] = round(cpu, 2), round(wall, 2)
    return results


def run_specs(specs: list[dict[str, Any]], *, isolate: bool, timeout: float,
              progress=None) -> list[dict[str, Any]]:
    """Each spec in its own subprocess (``isolate``), or all in one (tiny sizes: start-up dominates)."""
    if not isolate:
        return run_in_subprocess(specs, timeout=timeout * max(1, len(specs)))
    out = []
    for spec in specs:
        if progress is not None:
            progress(spec)
        out.extend(run_in_subprocess([spec], timeout=timeout))
    return out
