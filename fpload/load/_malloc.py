"""Host allocator tuning for CPU pipelines (glibc only).

DALI's CPU operators allocate their output batches anew each iteration (a 32-sample batch of
512×512 float32 images is 32 MiB). glibc serves allocations above its mmap threshold (at most
32 MiB by default, adapted at run time) with fresh ``mmap``s, so every batch pays page faults and
the kernel zeroing its pages, and gives them back on ``free``: measured here, that cost a CPU
pipeline 35–60 % of its throughput. Raising the threshold keeps such buffers in the heap, where
the next iteration reuses them. It is process-wide, so it is applied once, explicitly, by the
Loader (``LoaderConfig.tune_host_malloc``, or ``FPLOAD_TUNE_MALLOC=0`` to keep glibc's defaults).
"""

from __future__ import annotations

import ctypes
import platform
import threading

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 512 << 20   # buffers up to 512 MiB come from the heap, not from mmap
_TRIM_THRESHOLD = 1 << 30     # give memory back to the system only above 1 GiB of free heap top

_lock = threading.Lock()
_applied: bool | None = None


def tune_host_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True when they are in effect.

    A no-op (False) on other C libraries.
    """
    global _applied
    with _lock:
        if _applied is None:
            _applied = False
            if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
                try:
                    libc = ctypes.CDLL("libc.so.6")
                    _applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
                                    and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
                except (OSError, AttributeError):
                    _applied = False
        return _applied
