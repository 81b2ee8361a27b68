"""What every ``fpload`` verb module shares: the consoles, common options and small helpers.

A ground-floor module of the CLI: the stage verb modules (``fpload/*/_cli.py``) and
:mod:`fpload.cli` import it; it imports no stage.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import typer
from rich.console import Console

from fpload.config import resolve_config

out = Console()
err = Console(stderr=True)

CatalogOpt = typer.Option("catalog.duckdb", "--catalog", "-c",
                          help="Catalog: a DuckDB file, or a PostgreSQL URL postgresql://user@host:port/db "
                               "(password from PGPASSWORD or ~/.pgpass). Readers share it; a writer waits for "
                               "another up to FPLOAD_CATALOG_TIMEOUT seconds (default 60).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON to stdout.")
RevOpt = typer.Option(None, "--rev", "-r", help="Catalog revision to read (default: the latest).")
QueryTimeoutOpt = typer.Option(None, "--query-timeout", min=0.001, help="Seconds a query may run before it is "
                               "stopped (default: FPLOAD_QUERY_TIMEOUT or 30).")
QueryMemoryOpt = typer.Option(None, "--query-memory", help="Memory a query may use, e.g. 2GB or 512MB "
                              "(default: FPLOAD_QUERY_MEMORY or 2GB).")

EngineOpt = typer.Option(None, "--engine", help="Where the work runs: local (processes of this machine) or ray "
                         "(tasks on a Ray cluster, `pip install fpload[ray]`); default FPLOAD_ENGINE or local. "
                         "Same result either way, e.g. --engine ray --address auto.")
AddressOpt = typer.Option(None, "--address", help="Ray cluster with --engine ray: auto (one started here by "
                          "`ray start --head`), HOST:PORT (a head's address), ray://HOST:10001, or unset for RAY_ADDRESS or a new local "
                          "instance.")


def print_json(obj: Any) -> None:
    """Machine-readable output of ``--json``: indented, sorted keys, to stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def stdout_to_stderr(active: bool = True) -> Iterator[None]:
    """Send what the work prints on stdout to stderr while ``active`` (``--json``), so stdout holds
    the JSON only: Ray's driver prints task-retry notices on stdout from a thread of its own.

    Example::

        with stdout_to_stderr(as_json):
            res = pack_version(...)
        print_json(...)
    """
    if not active:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def filter_path(value: str | None) -> Path | None:
    """A ``--filter`` value as a file: a path, or a bundled filter's name."""
    return resolve_config(value, "filters") if value else None


def open_cli_catalog(path: str | Path, create: bool = False, read_only: bool = False):
    """Open a catalog; readers open it read-only, so they share it with other readers."""
    from fpload.catalog import open_catalog

    return open_catalog(path, create=create, read_only=read_only)
