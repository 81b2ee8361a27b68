"""``fpload versions``: list, show, verify, diff, check, gc (``find`` comes from :mod:`fpload.audit`).

Added to ``fpload`` by :mod:`fpload.cli`; user errors raise :mod:`fpload.errors` exceptions, which
the CLI prints in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from fpload._cli_common import JsonOpt, err, out, print_json

versions_app = typer.Typer(help="Published dataset versions: list, show, verify, find, diff, check, gc.",
                           no_args_is_help=True)


def versions_diff(
    a: str = typer.Argument(..., help="The older version: ROOT/NAME/ID, an id prefix, or ROOT/NAME (latest); "
                            "ROOT may be a URL such as s3://bucket/versions."),
    b: str = typer.Argument(..., help="The newer version, given the same way."),
    samples: bool = typer.Option(False, "--samples", help="Also list every changed sample (with --json: "
                                 "under 'samples')."),
    limit: int = typer.Option(20, "--limit", "-n", min=0, help="Subjects (and samples) to show in the "
                              "table (0: all); --json always holds all."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON to stdout."),
) -> None:
    """Samples added, removed, moved between splits and relabelled from version A to B, per split and subject.

    Samples are matched by sample_id (the hash of their bytes). Exits 0 whether or not they differ.

    Example: fpload versions diff versions/thumbs/6aac s3://team-data/versions/thumbs --json
    """
    from fpload.versions._diff import diff_versions

    d = diff_versions(a, b, samples=samples)
    if as_json:
        print_json(d.to_dict())
        return
    t = d.totals
    out.print(f"[bold]{d.a}[/] ({t['a']} samples) → [bold]{d.b}[/] ({t['b']} samples): "
               f"{t['added']} added, {t['removed']} removed, {t['moved']} moved, {t['relabelled']} relabelled, "
               f"{t['kept']} in both")
    st = Table("split", "A", "B", "added", "removed", "moved in", "moved out", "relabelled", title="per split",
               title_justify="left")
    for r in d.by_split:
        st.add_row(r["split"], *(str(r[k]) for k in ("a", "b", "added", "removed", "moved_in", "moved_out",
                                                     "relabelled")))
    out.print(st)
    shown = d.by_subject if limit == 0 else d.by_subject[:limit]
    if shown:
        su = Table("subject", "splits in A", "splits in B", "added", "removed", "moved", "relabelled",
                   title=f"subjects with changes ({len(d.by_subject)})", title_justify="left")
        for r in shown:
            su.add_row(r["subject_id"], ",".join(r["splits_a"]), ",".join(r["splits_b"]),
                       *(str(r[k]) for k in ("added", "removed", "moved", "relabelled")))
        out.print(su)
        if len(shown) < len(d.by_subject):
            err.print(f"(showing {len(shown)} of {len(d.by_subject)} subjects; --limit 0 shows all)")
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
        out.print(sa)


def versions_check(
    version: str = typer.Argument(..., help="ROOT/NAME/ID, an id prefix, or ROOT/NAME (latest); ROOT may be a "
                                  "URL such as s3://bucket/versions."),
    threshold: int = typer.Option(16, "--threshold", min=0, max=63, help="Hamming distance (bits of the "
                                  "256-bit perceptual hash of each thumbnail) at or under which two images "
                                  "of different splits count as the same capture."),
    limit: int = typer.Option(20, "--limit", "-n", min=0, help="Findings of each kind to show (0: all); "
                              "--json always holds all."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON to stdout."),
) -> None:
    """Check a version for identity leakage: a subject or a sample in two splits, or the same image
    (near-duplicate thumbnails, e.g. re-encoded under another subject id) in two splits.

    Exits 1 listing the offending subjects, samples and pairs; 0 when none. Near-duplicates are
    found from features.zarr/thumbnail; a version without thumbnails gets the other checks only,
    and the report says so.

    Example: fpload versions check versions/thumbs --json
    """
    from fpload.versions._check import check_version

    r = check_version(version, threshold=threshold)
    if as_json:
        print_json(r.to_dict())
    else:
        def cut(items: list) -> list:
            return items if limit == 0 else items[:limit]

        if r.note:
            err.print(f"[yellow]note:[/] {r.note}")
        if r.ok:
            out.print(f"[green]ok[/]  {r.version}: {r.samples} samples, no subject, sample or image in two splits"
                       + ("" if r.images_checked else " (images not checked)"))
        else:
            out.print(f"[red]LEAK[/] {r.version}: {len(r.subjects_in_several_splits)} subject(s), "
                       f"{len(r.samples_in_several_splits)} sample(s) and {len(r.near_duplicates)} image pair(s) "
                       "in two splits")
        for s in cut(r.subjects_in_several_splits):
            out.print(f"  subject {s['subject_id']} in splits {', '.join(s['splits'])} ({s['samples']} samples)")
        for s in cut(r.samples_in_several_splits):
            out.print(f"  sample {s['sample_id']} in splits {', '.join(s['splits'])}")
        for p in cut(r.near_duplicates):
            a, b = p["a"], p["b"]
            out.print(f"  same image (distance {p['distance']}): {a['sample_id']} (subject {a['subject_id']}, "
                       f"{a['split']}) ~ {b['sample_id']} (subject {b['subject_id']}, {b['split']})")
    if not r.ok:
        raise typer.Exit(1)


def versions_gc(
    root: str = typer.Argument(..., help="Versions root or ROOT/NAME: a folder or a URL such as s3://bucket/versions."),
    delete: bool = typer.Option(False, "--delete", help="Remove the leftovers (default: only list them)."),
    older_than: Optional[float] = typer.Option(None, "--older-than", min=0, help="Hours since a leftover's newest "
                                               "object was written before it counts as abandoned (default: "
                                               "FPLOAD_GC_AGE_HOURS or 24)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON to stdout."),
) -> None:
    """List (or with --delete remove) leftovers of crashed packs: objects under a version prefix
    with no manifest that matches its id, or a local root's stale .tmp-* folders.

    Published versions are never touched. Dry run unless --delete.

    Example: fpload versions gc s3://team-data/versions --older-than 48 --delete
    """
    from fpload.versions._gc import collect_garbage

    found = collect_garbage(root, delete=delete, min_age_s=None if older_than is None else older_than * 3600)
    if as_json:
        print_json([f.to_dict() for f in found])
        return
    verb = "removed" if delete else "would remove"
    for f in found:
        out.print(f"{verb} {f.prefix}: {f.objects} objects, {f.bytes / 1e6:.1f} MB, "
                   f"last written {f.age_s / 3600:.1f} h ago", markup=False, highlight=False)
    err.print(f"{len(found)} leftover(s)" + ("" if delete or not found else "; run again with --delete to remove them"))


@versions_app.command("list")
def versions_list(root: str = typer.Argument(..., help="Versions root, or ROOT/NAME (a folder or a URL such "
                                             "as s3://bucket/versions)."),
                  as_json: bool = JsonOpt) -> None:
    """List published versions under a root, oldest first; versions an erasure tombstoned there
    are named on stderr with their successor (`fpload erase`).

    Example: fpload versions list versions    (or: fpload versions list s3://team-data/versions)
    """
    from fpload.versions import describe, list_versions

    vs = [describe(v) for v in list_versions(root)]
    if as_json:
        print_json(vs)
        return
    t = Table("name", "version_id", "created_at", "samples", "splits", "encoding", "MB")
    for v in vs:
        t.add_row(v["name"], v["version_id"], (v["created_at"] or "")[:19], str(v["samples"]),
                  " ".join(f"{k}:{n}" for k, n in v["counts"].items()), v["encoding"], f"{v['bytes'] / 1e6:.1f}")
    out.print(t)
    from fpload.versions._remote import list_tombstones

    for s in list_tombstones(root):  # versions an erasure tombstoned there (not listed above)
        err.print(f"erased: {s['url']} (erasure {s.get('erasure_id')}) -> successor "
                  f"{s.get('successor_url') or s.get('successor') or 'none'}", markup=False, highlight=False,
                  soft_wrap=True)


@versions_app.command("show")
def versions_show(path: str = typer.Argument(..., help="ROOT/NAME/ID, an id prefix, or ROOT/NAME (latest); "
                                             "ROOT may be a URL such as s3://bucket/versions."),
                  as_json: bool = JsonOpt) -> None:
    """Show a version's manifest summary: query, catalog revision, counts, shards.

    Example: fpload versions show versions/index-fingers
    """
    from fpload.versions import describe, open_version

    d = describe(open_version(path))
    if as_json:
        print_json(d)
        return
    for k, v in d.items():
        out.print(f"[bold]{k:<11}[/] {v}")


@versions_app.command("verify")
def versions_verify(paths: list[str] = typer.Argument(..., help="Versions, names or roots to verify (folders "
                                                      "or URLs such as s3://bucket/versions)."),
                    as_json: bool = JsonOpt) -> None:
    """Recompute every shard's hash and check counts against the manifest.

    Exits 1 naming each bad shard if anything differs.

    Example: fpload versions verify versions/index-fingers/6aacc5fa80a92057
    """
    from fpload.versions import list_versions

    report = []
    for p in paths:
        for v in list_versions(p):
            report.append({"version": f"{v.name}/{v.id}", "path": getattr(v, "url", None) or str(v.path),
                           "problems": v.check("sha256")})
    bad = [r for r in report if r["problems"]]
    if as_json:
        print_json(report)
    else:
        for r in report:
            if r["problems"]:
                err.print(f"[red]BAD[/] {r['version']}")
                for p in r["problems"]:
                    err.print(f"    {p}")
            else:
                out.print(f"[green]ok[/]  {r['version']}")
    if bad:
        raise typer.Exit(1)


@versions_app.command("export")
def versions_export(
    version: str = typer.Argument(..., help="ROOT/NAME/ID, an id prefix, or ROOT/NAME (latest)."),
    fmt: str = typer.Option("an2", "--format", help="Export format: an2 (ANSI/NIST-ITL transactions, one per "
                            "subject; needs the optional extra 'nist')."),
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the transactions into (created)."),
    split: Optional[str] = typer.Option(None, "--split", help="Export only this split (default: all)."),
    as_json: bool = JsonOpt,
) -> None:
    """Write a version as ANSI/NIST-ITL transactions (Type-14 finger images), one per subject.

    Example: fpload versions export versions/thumbs --format an2 --split test --out exported/
    """
    from fpload.errors import UsageError
    from fpload.versions._export import export_an2

    if fmt != "an2":
        raise UsageError(f"--format {fmt!r}: the export formats are: an2")
    rep = export_an2(version, out_dir, split=split)
    if as_json:
        print_json(rep)
    else:
        out.print(f"wrote {rep['samples']} samples of {rep['files']} subjects to {rep['out']}", markup=False,
                  highlight=False)


versions_app.command("diff")(versions_diff)
versions_app.command("check")(versions_check)
versions_app.command("gc")(versions_gc)
