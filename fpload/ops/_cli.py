"""``fpload ops``: build the operator plugin and report on it."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

ops_app = typer.Typer(name="ops", help="Build and inspect the fpload DALI operator plugin (csrc/).",
                      no_args_is_help=True, add_completion=False)


@ops_app.command("build")
def build_command(
    cuda: Optional[bool] = typer.Option(  # noqa: UP007 - typer needs Optional
        None, "--cuda/--no-cuda", help="Require / skip the CUDA backend (default: build it when nvcc is found)."
    ),
    arch: Optional[str] = typer.Option(  # noqa: UP007
        None, "--arch", help='CUDA architectures (FPLOAD_CUDA_ARCHITECTURES), e.g. "80;90". Default "80-real;90".'
    ),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Parallel compile jobs."),  # noqa: UP007
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the CMake and compiler output."),
    as_json: bool = typer.Option(False, "--json", help="Print the build record as JSON."),
) -> None:
    """Compile csrc/ against the installed DALI and install it into fpload/ops/_lib/."""
    from fpload.ops._build import build_plugin

    print("fpload: building the operator plugin (CMake) ...", file=sys.stderr)
    result = build_plugin(cuda=cuda, architectures=arch, jobs=jobs, verbose=verbose)
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        gpu = f"CUDA {result['cuda_version']} ({result['cuda_architectures']})" if result["gpu_backend"] else "none"
        print(f"built {result['path']} for DALI {result['dali_version']} in {result['seconds']} s; GPU backend: {gpu}")


@ops_app.command("info")
def info_command(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Where the plugin is, what it was built for, and whether its GPU backend is present."""
    from fpload.ops._plugin import plugin_info

    info = plugin_info()
    if as_json:
        print(json.dumps(info, sort_keys=True))
        return
    for key in ("path", "exists", "dali_version", "installed_dali_version", "cuda_version",
                "cuda_architectures", "gpu_backend", "loaded", "error"):
        if key in info:
            print(f"{key:24} {info[key]}")
