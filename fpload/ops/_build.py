"""``fpload ops build``: the developer's rebuild of the csrc/ operator plugin in a source checkout.

``pip install .`` / ``pip wheel .`` build the plugin through scikit-build-core and put it inside the
package. In an editable install (``pip install -e .``, what ``make`` does) this explicit step
rebuilds it after an edit in ``csrc/``: it configures ``csrc/`` in ``build/plugin/`` with CMake
against the running interpreter's DALI (``nvidia.dali.sysconfig``), builds, and installs
``libfpload_ops.so`` and ``libfpload_native.so`` (the pack's CPU loops, :mod:`fpload._native`)
with their build record ``fpload_ops.json`` (written by CMake, with a hash of
the sources) into ``fpload/ops/_lib/`` of the checkout, where the loader looks first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fpload.config import env_cuda_architectures
from fpload.errors import PluginError, UsageError
from fpload.ops._plugin import LIB_DIR, LIB_NAME, META_NAME, NATIVE_LIB_NAME, SOURCE_DIR, read_build_record

DEFAULT_BUILD_DIR = SOURCE_DIR.parent / "build" / "plugin"
DEFAULT_ARCHITECTURES = "80-real;90"


def _run(cmd: list[str], cwd: Path, verbose: bool) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=not verbose, text=True, check=False)
    if proc.returncode != 0:
        tail = ((proc.stdout or "") + (proc.stderr or ""))[-4000:] if not verbose else ""
        raise PluginError(f"plugin build step failed ({' '.join(cmd[:3])} ...), exit {proc.returncode}:\n{tail}")


def build_plugin(
    *,
    cuda: bool | None = None,
    architectures: str | None = None,
    build_dir: Path | None = None,
    lib_dir: Path | None = None,
    jobs: int | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Configure, build and install the plugin; returns its build record plus ``seconds``.

    ``cuda``: None builds the CUDA backend when nvcc is found, True requires it, False skips it.
    ``architectures``: CMake CUDA architectures (``FPLOAD_CUDA_ARCHITECTURES``), e.g. "80;90".
    """
    if not (SOURCE_DIR / "CMakeLists.txt").exists():
        raise PluginError(f"the plugin sources are not here ({SOURCE_DIR}); build from a source checkout")
    cmake = shutil.which("cmake")
    if cmake is None:
        raise PluginError("cmake is not on PATH; install CMake >= 3.18 to build the plugin")
    if cuda is True and shutil.which("nvcc") is None:
        raise PluginError("--cuda was asked for but nvcc is not on PATH")
    if architectures is not None and not architectures.strip():
        raise UsageError("--arch must name at least one CUDA architecture, e.g. '80;90'")
    try:
        import nvidia.dali  # noqa: F401
    except ImportError as err:
        raise PluginError(f"DALI is not importable from this interpreter: {err}") from err

    build_dir = Path(build_dir or DEFAULT_BUILD_DIR)
    lib_dir = Path(lib_dir or LIB_DIR)
    build_dir.mkdir(parents=True, exist_ok=True)
    mode = "AUTO" if cuda is None else ("ON" if cuda else "OFF")
    configure = [
        cmake, "-S", str(SOURCE_DIR), "-B", str(build_dir),
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DPython_EXECUTABLE={sys.executable}",  # DALI's flags come from this interpreter's sysconfig
        f"-DFPLOAD_WITH_CUDA={mode}",
        f"-DFPLOAD_CUDA_ARCHITECTURES={architectures or env_cuda_architectures() or DEFAULT_ARCHITECTURES}",
    ]
    nvcc = shutil.which("nvcc")
    if nvcc and mode != "OFF":
        configure.append(f"-DCMAKE_CUDA_COMPILER={nvcc}")
    start = time.perf_counter()
    _run(configure, build_dir, verbose)
    _run([cmake, "--build", str(build_dir), "-j", str(jobs or os.cpu_count() or 2)], build_dir, verbose)
    seconds = time.perf_counter() - start

    record = read_build_record(build_dir)
    if record is None:  # pragma: no cover - CMake writes it at configure time
        raise PluginError(f"the CMake build in {build_dir} wrote no {META_NAME}")
    lib_dir.mkdir(parents=True, exist_ok=True)
    # the libraries first, the record last: a record never vouches for an older library
    for name in (NATIVE_LIB_NAME, LIB_NAME, META_NAME):
        tmp = lib_dir / f".{name}.tmp"
        shutil.copyfile(build_dir / name, tmp)
        os.replace(tmp, lib_dir / name)  # a loaded old copy keeps its inode
    return {**record, "path": str(lib_dir / LIB_NAME), "seconds": round(seconds, 1)}
