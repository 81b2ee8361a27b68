"""Thread pools kept per process: a pool made before a fork has no threads in the child (work
submitted there would wait forever), so each process, after a fork too, gets its own.

Example::

    pool = thread_pool("fpload-read", 8)
    data = list(pool.map(read, paths))
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_POOLS: dict[tuple[str, int], tuple[int, ThreadPoolExecutor]] = {}
_LOCK = threading.Lock()


def thread_pool(name: str, workers: int) -> ThreadPoolExecutor:
    """This process's pool ``name`` of ``workers`` threads, made on first use (after a fork: again)."""
    key = (name, workers)
    with _LOCK:
        held = _POOLS.get(key)
        if held is None or held[0] != os.getpid():
            held = _POOLS[key] = (os.getpid(), ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name))
        return held[1]
