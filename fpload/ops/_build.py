"""Build the csrc/ operator plugin with CMake against the DALI of the running interpreter.

``pip install`` does not compile anything (build isolation would pull a second DALI); this
explicit step does: ``fpload ops build`` or ``python -m fpload.ops build``. It configures
``csrc/`` in ``build/plugin/`` with ``nvidia.dali.sysconfig``'s include dir, lib dir and compile
flags (``-D_GLIBCXX_USE_CXX11_ABI``), builds, and installs ``libfpload_ops.so`` with its build
record ``fpload_ops.json`` into ``fpload/ops/_lib/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from fpload.errors import PluginError, UsageError
from fpload.ops._plugin import LIB_DIR, LIB_NAME, META_NAME, META_SCHEMA_VERSION

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIR = REPO_ROOT / "csrc"
DEFAULT_BUILD_DIR = REPO_ROOT / "build" / "plugin"
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
        import nvidia.dali as dali
        import nvidia.dali.sysconfig as sysconfig
    except ImportError as err:
        raise PluginError(f"DALI is not importable from this interpreter: {err}") from err

    build_dir = Path(build_dir or DEFAULT_BUILD_DIR)
    lib_dir = Path(lib_dir or LIB_DIR)
    build_dir.mkdir(parents=True, exist_ok=True)
    flags = " ".join(f for f in sysconfig.get_compile_flags() if not f.startswith("-I"))
    mode = "AUTO" if cuda is None else ("ON" if cuda else "OFF")
    configure = [
        cmake, "-S", str(SOURCE_DIR), "-B", str(build_dir),
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DDALI_INCLUDE_DIR={sysconfig.get_include_dir()}",
        f"-DDALI_LIB_DIR={sysconfig.get_lib_dir()}",
        f"-DDALI_COMPILE_FLAGS={flags}",
        f"-DFPLOAD_DALI_VERSION={dali.__version__}",
        f"-DFPLOAD_WITH_CUDA={mode}",
        f"-DFPLOAD_CUDA_ARCHITECTURES={architectures or DEFAULT_ARCHITECTURES}",
    ]
    nvcc = shutil.which("nvcc")
    if nvcc and mode != "OFF":
        configure.append(f"-DCMAKE_CUDA_COMPILER={nvcc}")
    start = time.perf_counter()
    _run(configure, build_dir, verbose)
    _run([cmake, "--build", str(build_dir), "-j", str(jobs or os.cpu_count() or 2)], build_dir, verbose)
    seconds = time.perf_counter() - start

    facts = json.loads((build_dir / "fpload_ops_build.json").read_text())
    record = {
        "schema_version": META_SCHEMA_VERSION,
        "dali_version": str(dali.__version__),
        "cuda_version": facts.get("cuda_version") or None,
        "cuda_architectures": facts.get("cuda_architectures") if facts.get("gpu_backend") else None,
        "gpu_backend": bool(facts.get("gpu_backend")),
        "cxx11_abi": "-D_GLIBCXX_USE_CXX11_ABI=1" in flags,
    }
    lib_dir.mkdir(parents=True, exist_ok=True)
    tmp_lib, tmp_meta = lib_dir / f".{LIB_NAME}.tmp", lib_dir / f".{META_NAME}.tmp"
    shutil.copyfile(build_dir / LIB_NAME, tmp_lib)
    tmp_meta.write_text(json.dumps(record, sort_keys=True, indent=2) + "\n")
    os.replace(tmp_lib, lib_dir / LIB_NAME)  # a loaded old copy keeps its inode
    os.replace(tmp_meta, lib_dir / META_NAME)
    return {**record, "path": str(lib_dir / LIB_NAME), "seconds": round(seconds, 1)}
