"""``fpload doctor``: what this machine offers fpload (versions, GPU, operator plugin, and whether the
pack's C++ loops of ``libfpload_native.so`` are in use)."""

from __future__ import annotations

import platform
import shutil
import subprocess
from typing import Any

import fpload
from fpload.ops import plugin_info


def collect() -> dict[str, Any]:
    """A dict of facts for ``fpload doctor``; never raises for a missing piece, it reports it."""
    info: dict[str, Any] = {"fpload": fpload.__version__, "python": platform.python_version()}
    try:
        import nvidia.dali as dali

        info["dali"] = dali.__version__
    except ImportError as e:  # pragma: no cover
        info["dali"] = f"missing ({e})"
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.version.cuda or "none (CPU build)"
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none visible"
    except ImportError as e:  # pragma: no cover
        info["torch"] = f"missing ({e})"
    nvcc = shutil.which("nvcc")
    if nvcc:
        try:
            line = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=20).stdout
            info["nvcc"] = line.strip().splitlines()[-1]
        except (OSError, subprocess.SubprocessError):  # pragma: no cover
            info["nvcc"] = nvcc
    else:
        info["nvcc"] = "not found (the plugin builds CPU-only)"
    try:
        plugin = plugin_info()
    except Exception as e:  # report, never crash the doctor
        info["plugin"] = f"error: {e}"
    else:
        info["plugin"] = plugin
        info["plugin_status"] = _plugin_status(plugin)
    try:
        from fpload import _native

        native = _native.status()
        info["native_loops"] = ("in use" if native["enabled"] else "off, NumPy computes the same values slower: "
                                + native["reason"]) + (f" ({native['path']})" if native["path"] else "")
    except Exception as e:  # report, never crash the doctor
        info["native_loops"] = f"error: {e}"
    info["loader_device"] = "cpu" if str(info.get("gpu", "none")).startswith("none") else "gpu"
    return info


def _plugin_status(plugin: dict[str, Any]) -> str:
    """One line: which backends the plugin has, and whether it can be used as it is."""
    if plugin.get("error"):
        return f"unusable: {plugin['error']}"
    if not plugin.get("exists"):
        return "not built: run `fpload ops build` (or reinstall fpload)"
    if plugin.get("stale"):
        return "stale: csrc/ changed since the build; run `fpload ops build`"
    if plugin.get("gpu_backend"):
        backends = f"CPU + CUDA {plugin.get('cuda_version')} (architectures {plugin.get('cuda_architectures')})"
    else:
        backends = "CPU only (built without nvcc: GPU pipelines refuse to run)"
    return f"ok, {backends}"
