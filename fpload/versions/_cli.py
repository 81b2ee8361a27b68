"""``fpload versions diff|check``: compare two versions; check one for identity leakage across splits.

Registered on ``fpload versions`` by :mod:`fpload.cli`; user errors raise :mod:`fpload.errors`
exceptions, which the CLI prints in one line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

_out = Console()
_err = Console(stderr=True)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def versions_diff(
    a: Path = typer.Argument(..., help="The older version: ROOT/NAME/ID, an id prefix, or ROOT/NAME (latest)."),
    b: Path = typer.Argument(..., help="The newer version, given the same way."),
    samples: bool = typer.Option(False, "--samples", help="Also list every changed sample (with --json: "
                                 "under 'samples')."),
    limit: int = typer.Option(20, "--limit", "-n", min=0, help="Subjects (and samples) to show in the "
                              "table (0: all); --json always holds all."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON to stdout."),
) -> None:
    """Samples added, removed, moved between splits and relabelled from version A to B, per split and subject.

    Samples are matched by sample_id (the hash of their bytes). Exits 0 whether or not they differ.

    Example: fpload versions diff versions/thumbs/6aac versions/thumbs/91f0 --json
    """
    from fpload.versions._diff import diff_versions

    d = diff_versions(a, b, samples=samples)
    if as_json:
        _print_json(d.to_dict())
        return
    t = d.totals
    _out.print(f"[bold]{d.a}[/] ({t['a']} samples) → [bold]{d.b}[/] ({t['b']} samples): "
               f"{t['added']} added, {t['removed']} removed, {t['moved']} moved, {t['relabelled']} relabelled, "
               f"{t['kept']} in both")
    st = Table("split", "A", "B", "added", "removed", "moved in", "moved out", "relabelled", title="per split",
               title_justify="left")
    for r in d.by_split:
        st.add_row(r["split"], *(str(r[k]) for k in ("a", "b", "added", "removed", "moved_in", "moved_out",
                                                     "relabelled")))
    _out.print(st)
    shown = d.by_subject if limit == 0 else d.by_subject[:limit]
    if shown:
        su = Table("subject", "splits in A", "splits in B", "added", "removed", "moved", "relabelled",
                   title=f"subjects with changes ({len(d.by_subject)})", title_justify="left")
        for r in shown:
            su.add_row(r["subject_id"], ",".join(r["splits_a"]), ",".join(r["splits_b"]),
                       *(str(r[k]) for k in ("added", "removed", "moved", "relabelled")))
        _out.print(su)
        if len(shown) < len(d.by_subject):
            _err.print(f"(showing {len(shown)} of {len(d.by_subject)} subjects; --limit 0 shows all)")
    if d.samples:
        rows = d.samples if limit == 0 else d.samples[:limit]
        sa = Table("sample_id", "change", "split", "label", title=f"changed samples ({len(d.samples)})",
                   title_justify="left")
        for r in rows:
            kind = r["change"] if r["change"] != "kept" else " ".join(
                k for k in ("moved", "relabelled") if r[k])
            split = r["split_a"] if r["split_a"] == r["split_b"] else f"{r['split_a'] or '-'} → {r['split_b'] or '-'}"
            label = r["label_a"] if r["label_a"] == r["label_b"] else f"{r['label_a'] or '-'} → {r['label_b'] or '-'}"
            sa.add_row(r["sample_id"], kind, split, label)
        _out.print(sa)
