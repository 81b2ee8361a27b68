"""``fpload doctor``: what this machine offers fpload (versions, GPU, operator plugin)."""

from __future__ import annotations

import platform
import shutil
import subprocess
from typing import Any

import fpload


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
        from fpload.ops import plugin_info
    except ImportError:
        info["plugin"] = "not available in this fpload"
    else:
        try:
            info["plugin"] = plugin_info()
        except Exception as e:  # report, never crash the doctor
            info["plugin"] = f"error: {e}"
    info["loader_device"] = "cpu" if str(info.get("gpu", "none")).startswith("none") else "gpu"
    return info
