"""``fpload versions find`` and ``fpload audit``: who is in which version, and which runs read them.

Registered by :mod:`fpload.cli`; user errors raise :mod:`fpload.errors` exceptions, which the CLI
prints in one line (exit 1 data, 2 usage).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from fpload._cli_common import CatalogOpt, out, print_json
from fpload.errors import UsageError

audit_app = typer.Typer(
    help="The audit trail of a version root: which versions and training runs saw a subject "
         "(fpload audit --subject S --root ROOT), and `fpload audit verify`.",
    invoke_without_command=True)

_ROOT_HELP = "Version root: the --out folder of `fpload pack` (holds NAME/ID/ and .fpload/)."
_SUBJECT = typer.Option(None, "--subject", "-s", help="A subject id, e.g. S042.")
_SAMPLE = typer.Option(None, "--sample", help="A sample id (the content hash in the catalog).")
_WHERE = typer.Option(None, "--where", help="SQL WHERE expression run on the catalog (at its latest "
                      "revision, or --rev) in the query sandbox; the sample ids it selects are searched.")
_REV = typer.Option(None, "--rev", "-r", help="Catalog revision --where reads (default: the latest).")
_JSON = typer.Option(False, "--json", help="Print machine-readable JSON to stdout.")


def _selection(subject: str | None, sample: str | None, where: str | None, catalog: str,
               rev: int | None) -> dict[str, Any]:
    """The keyword arguments of find_versions/audit_subject for the options given (exactly one)."""
    given = [name for name, value in (("--subject", subject), ("--sample", sample), ("--where", where))
             if value is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of --subject S, --sample ID or --where EXPR"
                         + (f" (got {', '.join(given)})" if given else ""))
    if subject is not None:
        return {"subject": subject}
    if sample is not None:
        return {"sample": sample}
    from fpload.catalog import open_catalog, select_ids

    if "://" not in catalog and not Path(catalog).is_file():  # a usage error, before any search
        raise UsageError(f"--where needs a catalog: {catalog} does not exist (give --catalog FILE or URL)")
    with open_catalog(catalog, create=False, read_only=True) as cat:
        snapshot = cat.snapshot(rev)
    return {"sample_ids": select_ids(snapshot, where)}


def _versions_table(hits: list[dict[str, Any]]):
    from rich.table import Table

    t = Table("name", "version_id", "state", "samples", "splits", "successor")
    for h in hits:
        t.add_row(h["name"] or "?", h["version_id"], h["state"], str(h["samples"]),
                  " ".join(f"{k}:{n}" for k, n in sorted(h["splits"].items())), h["successor"] or "")
    return t


def versions_find(
    root: Path = typer.Option(..., "--root", "-R", help=_ROOT_HELP),
    subject: Optional[str] = _SUBJECT,
    sample: Optional[str] = _SAMPLE,
    where: Optional[str] = _WHERE,
    catalog: str = CatalogOpt,
    rev: Optional[int] = _REV,
    as_json: bool = _JSON,
) -> None:
    """List every version holding a subject, a sample, or the samples a query selects.

    Each with its state: live, erased (a tombstone replaced its manifest) or missing (folder gone).

    Searches the lineage index ROOT/.fpload/lineage/*.parquet written when each version was
    published (versions published without it, after a crash, are indexed first). Exits 0 also when
    nothing is found (an empty list).

    Examples:
      fpload versions find --root versions --subject S042
      fpload versions find --root versions --where "sensor = 'old-optical'" -c catalog.duckdb --json
    """
    from fpload.audit._lineage import find_versions

    hits = find_versions(root, **_selection(subject, sample, where, catalog, rev))
    if as_json:
        print_json(hits)
        return
    if not hits:
        out.print("no version holds it")
        return
    out.print(_versions_table(hits))


@audit_app.callback()
def audit(
    ctx: typer.Context,
    root: Optional[Path] = typer.Option(None, "--root", "-R", help=_ROOT_HELP),
    subject: Optional[str] = _SUBJECT,
    sample: Optional[str] = _SAMPLE,
    where: Optional[str] = _WHERE,
    catalog: str = CatalogOpt,
    rev: Optional[int] = _REV,
    as_json: bool = _JSON,
) -> None:
    """Which versions hold a subject (live or erased), and which training runs read them.

    Joins the lineage index with the `read` records the Loader appends to ROOT/.fpload/audit.jsonl:
    a run saw the subject when it read a split of a version holding the subject in that split. Runs
    are listed with run name, tags, hosts, users, times, ranks and epochs; loaders that had
    record_reads=False on such a split are listed as unrecorded. Also indexes versions a crash left
    without lineage. `fpload audit verify` checks the log's hash chain and the lineage files.

    Examples:
      fpload audit --root versions --subject S042
      fpload audit verify --root versions
    """
    if ctx.invoked_subcommand is not None:
        return
    if root is None:
        raise UsageError("give --root ROOT (the --out folder of `fpload pack`) and --subject S, "
                         "--sample ID or --where EXPR; or a verb: verify")
    from fpload.audit._reads import audit_subject

    answer = audit_subject(root, **_selection(subject, sample, where, catalog, rev))
    if as_json:
        print_json(answer)
        return
    if not answer["versions"]:
        out.print("no version holds it")
        return
    out.print(_versions_table(answer["versions"]))
    if not answer["runs"]:
        out.print("no recorded training run read it")
    for run in answer["runs"]:
        names = ", ".join(run["run_names"]) or "(no run name)"
        tags = " ".join(f"{k}={v}" if v else k for k, v in run["tags"].items())
        reads = ", ".join(f"{r['name']}/{r['version_id'][:8]}:{r['split']} rank {r['rank']}/{r['world_size']} "
                          f"epoch {r['epoch']}" for r in run["reads"])
        out.print(f"run {run['run']}  {names}  {tags}\n  {', '.join(run['users'])}@{', '.join(run['hosts'])}  "
                  f"{run['first']} .. {run['last']}\n  {reads}", markup=False, highlight=False)
    for r in answer["unrecorded"]:
        out.print(f"unrecorded reads (record_reads=False): {r['name']}/{r['version_id'][:8]}:{r['split']} "
                  f"by {r['user']}@{r['host']} at {r['time']}", markup=False, highlight=False)


@audit_app.command("verify")
def audit_verify(
    root: Path = typer.Option(..., "--root", "-R", help=_ROOT_HELP),
    as_json: bool = _JSON,
) -> None:
    """Check a root's audit trail: the records' hash chain and the lineage files.

    Every record's hash, its link to the one before and the head anchor (an edited, deleted,
    inserted or reordered record is named), and every lineage file against the sha256 its record
    names. Exits 1 listing each problem, 0 when all is well.

    Example: fpload audit verify --root versions
    """
    from fpload.audit._lineage import audit_log, lineage_problems

    if not root.is_dir():
        from fpload.errors import VersionNotFoundError

        raise VersionNotFoundError(f"no such version root: {root}")
    log = audit_log(root)
    problems = log.verify() + lineage_problems(root)
    head = log.head() if not problems else None
    if as_json:
        print_json({"root": str(root), "log": str(log.path), "ok": not problems, "problems": problems,
                     "head": head})
    elif problems:
        for p in problems:
            print(f"BAD {p}", file=sys.stderr)
    else:
        print(f"ok: {log.path} holds {head['count']} records, chain intact (head {head['hash'][:16]}); "
              "lineage files match their records")
    if problems:
        raise typer.Exit(1)
