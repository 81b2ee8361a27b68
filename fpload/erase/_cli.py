"""``fpload erase``: erase a subject everywhere with a receipt; ``fpload erase verify RECEIPT``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

erase_app = typer.Typer(
    invoke_without_command=True, no_args_is_help=False,
    help="Erase a subject (or samples) from the catalog and every dataset version, with a receipt.\n\n"
         "Example: fpload erase --subject S17 --reason 'consent withdrawn (ticket 4411)' "
         "--catalog catalog.duckdb --root versions --receipt s17-receipt.json\n\n"
         "Then: fpload erase verify s17-receipt.json")


@erase_app.callback()
def erase_command(
    ctx: typer.Context,
    subject: list[str] = typer.Option([], "--subject", "-s", help="Subject id to erase (repeatable): every sample "
                                      "any catalog revision or any version gives it. Example: --subject S17"),
    sample: list[str] = typer.Option([], "--sample", help="Sample id to erase (repeatable). Example: --sample 3f2a..."),
    where: Optional[str] = typer.Option(None, "--where", help="Catalog query (WHERE text, run in the query sandbox "
                                        "at the head) selecting the samples to erase. Example: --where \"sensor = 'old-1'\""),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why (kept forever in the audit trail and the "
                                         "catalog's redaction marker; do not name the subject). Example: --reason 'Art. 17 request 4411'"),
    catalog: Optional[str] = typer.Option(None, "--catalog", help="The catalog: a DuckDB file or a PostgreSQL URL "
                                          "(password from PGPASSWORD or ~/.pgpass). Example: --catalog catalog.duckdb"),
    root: list[str] = typer.Option([], "--root", help="A version root (`fpload pack --out`): a folder or an "
                                    "object-store URL, repeatable; every version under it holding the samples is "
                                    "tombstoned. Example: --root versions (or --root s3://team-data/versions)"),
    delete_sources: bool = typer.Option(False, "--delete-sources", help="Also overwrite and delete the subject's source "
                                        "images (otherwise they are the user's to delete: the receipt lists them)."),
    purge_object_versions: bool = typer.Option(False, "--purge-object-versions", help="On an S3 root with "
                                               "versioning: also delete the noncurrent versions and delete markers "
                                               "of the old versions' objects (needs s3:DeleteObjectVersion; refused "
                                               "under object lock)."),
    break_lock: bool = typer.Option(False, "--break-lock", help="Take over the erasure lock of a root "
                                    "(ROOT/.fpload/locks/erase.json) that another erasure holds: only when that "
                                    "process is known to be dead (the refusal names its host, pid and age). A lock "
                                    "older than FPLOAD_ERASE_LOCK_HOURS (24) is stale and taken over without it. "
                                    "Example: fpload erase --subject S17 ... --break-lock"),
    receipt: Optional[Path] = typer.Option(None, "--receipt", help="Also write the receipt here (it is always written "
                                           "to ROOT/.fpload/receipts/ID.json). Example: --receipt s17.json"),
    as_json: bool = typer.Option(False, "--json", help="Print the receipt as JSON on stdout."),
) -> None:
    """Erase a subject everywhere: catalog rows at every revision (a redaction marker stays), a
    successor for every version holding it (the old one tombstoned, its files holding the subject
    overwritten and deleted), optionally the source images; writes a receipt. Rerun the same command
    after a crash to complete it."""
    if ctx.invoked_subcommand is not None:
        return
    from fpload.erase import erase_subject
    from fpload.errors import UsageError

    if catalog is None:
        raise UsageError("--catalog is required (the catalog file, e.g. --catalog catalog.duckdb)")
    if reason is None:
        raise UsageError("--reason is required: say why (e.g. --reason 'consent withdrawn, ticket 4411')")
    r = erase_subject(catalog, list(root), reason=reason, subjects=list(subject), samples=list(sample), where=where,
                      delete_sources=delete_sources, receipt=receipt, purge_object_versions=purge_object_versions,
                      break_lock=break_lock)
    if as_json:
        typer.echo(json.dumps(r, indent=2, sort_keys=True))
        return
    typer.echo(f"erasure {r['erasure_id']}: {len(r['samples'])} sample(s); catalog revision "
               f"{r['catalog_result']['revision']} ({r['catalog_result']['rows_deleted']} row(s) deleted)")
    for v in r["versions"]:
        typer.echo(f"  {v['name']}/{v['version_id']} tombstoned -> successor {v['successor']} "
                   f"({v['shards_rewritten']} shard(s) rewritten, {v['shards_reused']} reused)")
    left = [s for s in r["sources"]["listed"] if s not in r["sources"]["deleted"]]
    if left:
        typer.echo(f"  {len(left)} source image(s) kept (yours to delete; listed in the receipt)")
    from fpload.versions._store import is_remote, join

    first = r["roots"][0]
    where = join(first, ".fpload", "receipts", r["erasure_id"] + ".json") if is_remote(first) \
        else Path(first) / ".fpload" / "receipts" / (r["erasure_id"] + ".json")
    typer.echo(f"receipt: {where}")
    if any(v.get("bucket_versioning") and v.get("noncurrent_versions_deleted") is None for v in r["versions"]):
        typer.echo("  WARNING: the bucket keeps earlier object versions (S3 versioning is on): the erased samples' "
                   "objects are still there as noncurrent versions; delete them with the store's tools "
                   "(--purge-object-versions does it during an erasure)", err=True)
    elif any("deletion" in v for v in r["versions"]):
        typer.echo("  note: on an object store only the current objects are deleted; a bucket with versioning, "
                   "replication or backups keeps earlier copies (see the receipt's 'deletion')")


@erase_app.command("verify")
def verify_command(
    receipt: str = typer.Argument(..., help="The receipt JSON: a file or a URL. Example: "
                                  "versions/.fpload/receipts/ID.json "
                                  "(or s3://team-data/versions/.fpload/receipts/ID.json)"),
    catalog: Optional[str] = typer.Option(None, "--catalog", help="Catalog to scan: a DuckDB file or a PostgreSQL "
                                          "URL (default: the receipt's)."),
    root: list[str] = typer.Option([], "--root", help="Roots to scan, repeatable (default: the receipt's)."),
    as_json: bool = typer.Option(False, "--json", help="Print {ok, problems} as JSON on stdout."),
) -> None:
    """Re-scan the catalog and every file under the roots for any trace of the receipt's samples
    (row, sample id, image bytes); exit 0 only when none is left, 1 naming each trace.

    Example: fpload erase verify versions/.fpload/receipts/20250101T120000-1a2b3c4d.json
    """
    from fpload.erase import verify_receipt
    from fpload.errors import UsageError

    from fpload.erase._receipt import _read_receipt
    from fpload.versions._store import is_remote

    if not is_remote(receipt) and not Path(receipt).is_file():
        raise UsageError(f"receipt {receipt} is not a file")
    try:
        json.loads(_read_receipt(receipt))
    except FileNotFoundError:
        raise UsageError(f"receipt {receipt} does not exist") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise UsageError(f"receipt {receipt} is not JSON ({err})") from None
    problems = verify_receipt(receipt, catalog=catalog, roots=list(root) or None)
    if as_json:
        typer.echo(json.dumps({"ok": not problems, "problems": problems}, indent=2))
    elif problems:
        for p in problems:
            typer.echo(f"trace: {p}", err=True)
    else:
        typer.echo("no trace left")
    if problems:
        raise typer.Exit(1)
