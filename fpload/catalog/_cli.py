"""``fpload catalog diff``: rows added, removed and changed between two catalog revisions.

Registered on ``fpload catalog`` by :mod:`fpload.cli`; user errors raise :mod:`fpload.errors`
exceptions, which the CLI prints in one line.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

_out = Console()
_err = Console(stderr=True)


def catalog_diff(
    from_rev: int = typer.Option(..., "--from", min=0, help="The older revision (see `fpload catalog revisions`)."),
    to_rev: Optional[int] = typer.Option(None, "--to", min=0, help="The newer revision (default: the latest)."),
    catalog: str = typer.Option("catalog.duckdb", "--catalog", "-c",
                                help="Catalog: a DuckDB file or a postgresql://user@host:port/db URL."),
    samples: bool = typer.Option(False, "--samples", help="Also list every added, removed or changed sample "
                                 "with its changed fields."),
    limit: int = typer.Option(20, "--limit", "-n", min=0, help="Samples to show in the table (0: all); "
                              "--json always holds all."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON to stdout."),
) -> None:
    """Rows added, removed and changed (which fields) from one catalog revision to another, and per revision.

    Example: fpload catalog diff --from 1 --to 3 --catalog cat.duckdb --json
    """
    from fpload.catalog import open_catalog
    from fpload.catalog._diff import diff_catalog

    with open_catalog(catalog, create=False, read_only=True) as cat:
        d = diff_catalog(cat, from_rev, to_rev, samples=samples)
    if as_json:
        sys.stdout.write(json.dumps(d.to_dict(), indent=2, sort_keys=True, default=str) + "\n")
        return
    t = d.totals
    fields = ", ".join(f"{k} {v}" for k, v in d.fields.items())
    _out.print(f"revision {d.from_rev} → {d.to_rev}: {t['added']} added, {t['removed']} removed, "
               f"{t['changed']} changed" + (f" ({fields})" if fields else ""))
    rt = Table("rev", "op", "added", "removed", "changed", "fields", "message", title="per revision",
               title_justify="left")
    for r in d.revisions:
        rt.add_row(str(r["rev"]), r["op"], str(r["added"]), str(r["removed"]), str(r["changed"]),
                   ", ".join(f"{k} {v}" for k, v in r["fields"].items()), r["message"] or "")
    _out.print(rt)
    if d.samples:
        rows = d.samples if limit == 0 else d.samples[:limit]
        st = Table("sample_id", "change", "fields", title=f"samples ({len(d.samples)})", title_justify="left")
        for r in rows:
            st.add_row(r["sample_id"], r["change"], ", ".join(r["fields"]))
        _out.print(st)
        if len(rows) < len(d.samples):
            _err.print(f"(showing {len(rows)} of {len(d.samples)}; --limit 0 shows all)")


def catalog_migrate(
    src: str = typer.Argument(..., help="The catalog to copy: a DuckDB file or a postgresql:// URL."),
    dst: str = typer.Argument(..., help="Where to copy it: a new DuckDB file, or a PostgreSQL database "
                              "without a catalog (postgresql://user@host:port/db; password from PGPASSWORD "
                              "or ~/.pgpass)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON to stdout."),
) -> None:
    """Copy a catalog with all its revisions, rows and erasure records to another store, then check
    every revision's digest on the copy.

    Example: fpload catalog migrate catalog.duckdb postgresql://fp@db.internal:5432/fingerprints
    """
    from fpload.catalog._migrate import migrate_catalog

    rep = migrate_catalog(src, dst)
    if as_json:
        sys.stdout.write(json.dumps(rep, indent=2, sort_keys=True) + "\n")
        return
    _out.print(f"copied {rep['revisions']} revisions ({rep['rows']} rows, {rep['redactions']} erasures); "
               f"head {rep['head']} digest {rep['digest'][:12]}", markup=False, highlight=False)
