"""One benchmark worker process: ``python -m fpload.bench._worker SPEC.json RESULT.json``.

SPEC.json is a list of contender specs (dicts with a ``kind``: ``loader``, ``pack`` or
``stages``); each runs in turn, and RESULT.json receives one result dict per spec: the spec, the
timed window (samples, seconds, samples/s, CPU seconds of the process tree), the peak memory, or
an ``error``. Running each contender in a fresh process makes its CPU and memory its own.
"""

from __future__ import annotations

import gc
import json
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

from fpload.bench._common import Monitor, Window, stop_forkserver


def _run_one(spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec["kind"]
    if kind == "loader":
        from fpload.bench._contenders import run_loader_contender as run
    elif kind == "pack":
        from fpload.bench._pack import run_pack_contender as run
    elif kind == "stages":
        from fpload.bench._profile import run_stages as run
    else:
        raise ValueError(f"unknown benchmark kind {kind!r}")
    monitor = Monitor(gpu=spec.get("device") == "gpu").start()
    window = Window()
    try:
        extra = run(spec, window) or {}
    finally:
        gc.collect()
        stop_forkserver()
        memory = monitor.stop()
    return {**spec, **window.to_dict(), **memory, **extra}


def main(argv: list[str]) -> int:
    spec_path, result_path = Path(argv[0]), Path(argv[1])
    specs = json.loads(spec_path.read_text())
    results = []
    with warnings.catch_warnings():
        # webdataset leaves its tar streams to the garbage collector; we collect explicitly
        warnings.simplefilter("ignore", ResourceWarning)
        for spec in specs:
            try:
                results.append(_run_one(spec))
            except Exception as err:  # noqa: BLE001 - reported as the contender's result
                traceback.print_exc()
                results.append({**spec, "error": f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"})
    result_path.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
