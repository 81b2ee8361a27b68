"""Explicit, once-only loading of the fpload DALI operator plugin (``libfpload_ops.so``).

Nothing happens at import. :func:`load_plugin` checks the build record next to the library
(``fpload_ops.json``) against the installed DALI and, in a source checkout, against the hash of
``csrc/`` (a plugin older than its sources is refused), loads the library into DALI once, and
checks the build facts baked into the library itself. :func:`plugin_info` reports without loading.

Where the plugin is: ``FPLOAD_PLUGIN`` if set; else ``fpload/ops/_lib/`` of the package (where a
wheel has it, and where ``fpload ops build`` puts it in a checkout); else the ``_lib/`` folder of
another entry of ``fpload.ops.__path__`` (where an editable install's build put it).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import sys
import threading
from pathlib import Path
from typing import Any

from fpload.config import env_plugin_path
from fpload.errors import PluginError

LIB_DIR = Path(__file__).resolve().parent / "_lib"
LIB_NAME = "libfpload_ops.so"
#: the plain-C library of the pack's CPU loops, built and installed beside the plugin (fpload._native)
NATIVE_LIB_NAME = "libfpload_native.so"
META_NAME = "fpload_ops.json"
META_SCHEMA_VERSION = 2
#: csrc/ of a source checkout (absent in an installed wheel)
SOURCE_DIR = Path(__file__).resolve().parents[2] / "csrc"
_SOURCE_SUFFIXES = (".h", ".cc", ".cu", ".cuh")

_lock = threading.Lock()
_loaded: dict[str, Any] | None = None


def _candidate_dirs() -> list[Path]:
    dirs = [LIB_DIR]
    for entry in getattr(sys.modules.get(__package__ or ""), "__path__", []):
        d = Path(entry).resolve() / "_lib"
        if d not in dirs:
            dirs.append(d)
    return dirs


def plugin_path() -> Path:
    """The plugin to load: ``FPLOAD_PLUGIN`` if set, else the first ``_lib/libfpload_ops.so`` found
    in the package (see the module docstring); the package's own when none exists.
    """
    override = env_plugin_path()
    if override:
        return Path(override)
    for d in _candidate_dirs():
        if (d / LIB_NAME).exists():
            return d / LIB_NAME
    return LIB_DIR / LIB_NAME


def in_checkout() -> bool:
    """Whether fpload runs from a source checkout (its ``csrc/`` beside the package)."""
    return (SOURCE_DIR / "CMakeLists.txt").is_file()


def sources_digest(source_dir: Path | None = None) -> str:
    """sha256 over ``"relpath\\n<sha256 of file>\\n"`` of the plugin's sources, sorted by path
    (``csrc/`` without ``tests/``): the same value CMake writes into the build record.
    """
    source_dir = source_dir or SOURCE_DIR
    files = sorted(
        p.relative_to(source_dir).as_posix()
        for p in source_dir.rglob("*")
        if p.is_file() and (p.suffix in _SOURCE_SUFFIXES or p.name == "CMakeLists.txt")
        and p.relative_to(source_dir).parts[0] != "tests"
    )
    text = "".join(f"{rel}\n{hashlib.sha256((source_dir / rel).read_bytes()).hexdigest()}\n" for rel in files)
    return hashlib.sha256(text.encode()).hexdigest()


def _installed_dali_version() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    for dist in ("nvidia-dali-cuda130", "nvidia-dali-cuda120", "nvidia-dali-cuda110", "nvidia-dali"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    try:
        import nvidia.dali as dali

        return str(dali.__version__)
    except ImportError:
        return None


def _major_minor(v: str) -> tuple[str, ...]:
    return tuple(v.split(".")[:2])


def read_build_record(lib_dir: Path | None = None) -> dict[str, Any] | None:
    """The build record next to the plugin, or None when there is none."""
    meta = (lib_dir or plugin_path().parent) / META_NAME
    try:
        record = json.loads(meta.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise PluginError(f"cannot read the plugin build record {meta}: {err}; run `fpload ops build`") from err
    if record.get("schema_version") != META_SCHEMA_VERSION:
        raise PluginError(
            f"plugin build record {meta} has schema_version {record.get('schema_version')!r}, "
            f"expected {META_SCHEMA_VERSION}; run `fpload ops build`"
        )
    return record


def plugin_info() -> dict[str, Any]:
    """What ``fpload doctor`` reports: path, DALI and CUDA versions built for, GPU backend, loaded."""
    path = plugin_path()
    try:
        record = read_build_record() if path.exists() else None
        error = None
    except PluginError as err:
        record, error = None, str(err)
    info: dict[str, Any] = {
        "path": str(path),
        "exists": path.exists(),
        "dali_version": record.get("dali_version") if record else None,
        "installed_dali_version": _installed_dali_version(),
        "cuda_version": record.get("cuda_version") if record else None,
        "cuda_architectures": record.get("cuda_architectures") if record else None,
        "gpu_backend": bool(record.get("gpu_backend")) if record else False,
        "sources_sha256": record.get("sources_sha256") if record else None,
        "stale": _is_stale(record) if record else None,
        "loaded": _loaded is not None,
    }
    if error:
        info["error"] = error
    return info


def _is_stale(record: dict[str, Any]) -> bool | None:
    """In a checkout: whether csrc/ changed since the plugin was built; None outside one."""
    if not in_checkout():
        return None
    return record.get("sources_sha256") != sources_digest()


def _check_compatible(path: Path, record: dict[str, Any] | None) -> None:
    if not path.exists():
        raise PluginError(f"the fpload operator plugin is not built ({path} is missing); run `fpload ops build`")
    if record is None:
        raise PluginError(f"the plugin at {path} has no build record {META_NAME}; run `fpload ops build`")
    installed = _installed_dali_version()
    built = str(record.get("dali_version"))
    if installed is None:
        raise PluginError("DALI is not installed; the fpload operator plugin needs nvidia-dali")
    if _major_minor(built) != _major_minor(installed):
        raise PluginError(
            f"the fpload operator plugin at {path} was built for DALI {built}, but DALI {installed} is "
            "installed; rebuild it with `fpload ops build`"
        )
    if _is_stale(record):
        raise PluginError(
            f"the fpload operator plugin at {path} is older than its sources in {SOURCE_DIR} (they changed "
            "since it was built); rebuild it with `fpload ops build` (or `make`)"
        )


def _baked_info(path: Path) -> dict[str, str]:
    lib = ctypes.CDLL(str(path))
    fn = lib.fpload_ops_build_info
    fn.restype = ctypes.c_char_p
    text = fn().decode()
    return dict(part.split("=", 1) for part in text.split(";"))


def load_plugin() -> dict[str, Any]:
    """Load the plugin into DALI once (later calls return at once); returns :func:`plugin_info`.

    Raises PluginError when the library is missing, built for another DALI major.minor, or its
    baked-in build facts contradict its build record.
    """
    global _loaded
    with _lock:
        if _loaded is not None:
            return dict(_loaded)
        path = plugin_path()
        record = read_build_record() if path.exists() else None
        _check_compatible(path, record)
        assert record is not None  # for the type checker; _check_compatible refused None
        from nvidia.dali import plugin_manager

        try:
            plugin_manager.load_library(str(path))
        except Exception as err:  # DALI raises RuntimeError with the dlopen message
            raise PluginError(f"DALI could not load the fpload operator plugin {path}: {err}") from err
        baked = _baked_info(path)
        if _major_minor(baked.get("dali", "")) != _major_minor(str(record["dali_version"])) or (
            baked.get("gpu") == "1"
        ) != bool(record.get("gpu_backend")):
            raise PluginError(
                f"the plugin {path} reports {baked} but its build record says {record}; run `fpload ops build`"
            )
        _loaded = {**record, "path": str(path)}
        info = plugin_info()
    return info


def require_gpu_backend() -> None:
    """Refuse (PluginError) when the loaded plugin has no CUDA backend; never fall back to CPU."""
    info = load_plugin()
    if not info["gpu_backend"]:
        raise PluginError(
            f"the fpload operator plugin at {info['path']} was built without its CUDA backend (no nvcc at "
            "build time), so it cannot run in a GPU pipeline; rebuild it with `fpload ops build --cuda` "
            "on a machine with nvcc, or use device='cpu'"
        )
