"""``fpload catalog``: ingest, query, stats, revisions, update, diff, migrate.

Added to ``fpload`` by :mod:`fpload.cli`; user errors raise :mod:`fpload.errors` exceptions, which
the CLI prints in one line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from fpload.config import env_engine, resolve_config
from fpload.errors import UsageError
from fpload._cli_common import AddressOpt, EngineOpt, stdout_to_stderr
from fpload._cli_common import (CatalogOpt, JsonOpt, QueryMemoryOpt, QueryTimeoutOpt, RevOpt, err, filter_path,
                                open_cli_catalog, out, print_json)

catalog_app = typer.Typer(help="The catalog: ingest captures, query them with SQL, see revisions.",
                          no_args_is_help=True)


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
    out.print(f"revision {d.from_rev} → {d.to_rev}: {t['added']} added, {t['removed']} removed, "
               f"{t['changed']} changed" + (f" ({fields})" if fields else ""))
    rt = Table("rev", "op", "added", "removed", "changed", "fields", "message", title="per revision",
               title_justify="left")
    for r in d.revisions:
        rt.add_row(str(r["rev"]), r["op"], str(r["added"]), str(r["removed"]), str(r["changed"]),
                   ", ".join(f"{k} {v}" for k, v in r["fields"].items()), r["message"] or "")
    out.print(rt)
    if d.samples:
        rows = d.samples if limit == 0 else d.samples[:limit]
        st = Table("sample_id", "change", "fields", title=f"samples ({len(d.samples)})", title_justify="left")
        for r in rows:
            st.add_row(r["sample_id"], r["change"], ", ".join(r["fields"]))
        out.print(st)
        if len(rows) < len(d.samples):
            err.print(f"(showing {len(rows)} of {len(d.samples)}; --limit 0 shows all)")


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
    out.print(f"copied {rep['revisions']} revisions ({rep['rows']} rows, {rep['redactions']} erasures); "
               f"head {rep['head']} digest {rep['digest'][:12]}", markup=False, highlight=False)


@catalog_app.command("ingest")
def catalog_ingest(
    sources: list[Path] = typer.Argument(..., help="A CSV, Parquet or JSONL metadata file (one row per image); "
                                         "or biometric records: ANSI/NIST-ITL transactions (.an2 .eft .nist "
                                         ".an1 .int .ebts), ISO/IEC 19794-4 records (.fir .iso) and folders of them."),
    catalog: str = CatalogOpt,
    subject_field: str = typer.Option("1.009", "--subject-field", help="Records: the Type-1 or Type-2 field "
                                      "holding the subject id (default 1.009, the transaction control number; "
                                      "e.g. 2.015 for an EBTS state id). ISO records: the file name."),
    metadata_file: Optional[Path] = typer.Option(None, "--metadata", help="Records: a CSV/Parquet/JSONL file "
                                                 "joined on subject_id that sets consent, consent_scope, "
                                                 "consent_until, split, synthetic, sensor or quality per subject; "
                                                 "other columns go to extra."),
    consent: bool = typer.Option(False, "--consent/--no-consent", help="Records: the consent of subjects "
                                 "--metadata does not set (records carry none; default: no consent)."),
    keep_field: list[str] = typer.Option([], "--keep-field", help="Records: also keep this Type-1/Type-2 field "
                                         "in extra.fields (repeatable, e.g. --keep-field 2.018); others are "
                                         "not copied."),
    images: Optional[Path] = typer.Option(None, "--images", help="Folder the rows' `file` paths are "
                                          "relative to (default: the metadata file's folder)."),
    workers: int = typer.Option(4, "--workers", "-w", min=1, help="Threads reading and decoding images."),
    message: Optional[str] = typer.Option(None, "--message", "-m", help="Note stored with the revision."),
    update: bool = typer.Option(False, "--update", help="Apply changed metadata (consent, split, quality, "
                                "...) of already catalogued images as a new revision, instead of failing."),
    allow_outside: bool = typer.Option(False, "--allow-outside", help="Also read images outside the "
                                       "metadata file's folder (or --images), absolute paths, symlinks "
                                       "leading out and remote URIs."),
    max_image_mb: float = typer.Option(64.0, "--max-image-mb", min=0.001, help="Largest image file read, "
                                       "in MiB."),
    max_image_pixels: int = typer.Option(64_000_000, "--max-image-pixels", min=1, help="Largest image "
                                         "accepted, in pixels (width × height): refuses decompression bombs."),
    engine: Optional[str] = EngineOpt,
    address: Optional[str] = AddressOpt,
    features: Optional[str] = typer.Option(None, "--features", help="Also compute feature caches while "
                                           "checking the images: 'default' (the default extractors) or a "
                                           "pack config naming them (a YAML file or bundled name); kept in "
                                           "CATALOG.features/ for later packs to copy, e.g. --features default."),
    as_json: bool = JsonOpt,
) -> None:
    """Add the images a metadata file names, or the finger images of biometric records; creates the catalog if needed.

    Required columns: file, subject_id, finger (0–10), impression, sensor, ppi, consent. Optional:
    quality, split, synthetic, captured_at, consent_scope (purposes separated by ';', e.g.
    training;evaluation), consent_until (a date); any other column is kept in `extra`. Every row and
    image is checked before anything is written. Re-ingesting the same bytes adds nothing; with
    changed metadata it fails naming the sample and field, unless --update is given.

    Records (ANSI/NIST-ITL Type-14 and Type-4, ISO/IEC 19794-4) need the optional extra 'nist';
    each single-finger image becomes a sample whose uri is FILE#type14/N (N: the record's position in
    the transaction); slaps, palms and other records are skipped and counted. See the README's
    "Biometric records" for the field mapping.

    Example: fpload catalog ingest captures/metadata.csv --catalog cat.duckdb --update
             fpload catalog ingest /shared/captures/metadata.csv --engine ray --address auto
             fpload catalog ingest scans/ --subject-field 2.015 --metadata consent.csv --catalog cat.duckdb
    """
    from fpload.catalog._image import ImageLimits

    limits = ImageLimits(max_bytes=int(max_image_mb * (1 << 20)), max_pixels=max_image_pixels)
    metadata_suffixes = (".csv", ".parquet", ".jsonl", ".ndjson", ".json")
    as_records = len(sources) > 1 or sources[0].is_dir() or sources[0].suffix.lower() not in metadata_suffixes
    fcfg = None
    if features is not None:
        if as_records:
            raise UsageError("--features: feature caches are computed at ingest for metadata files only; "
                             "records' features are computed when they are packed")
        from fpload.features import FeaturesConfig
        from fpload.pack import PackConfig

        fcfg = FeaturesConfig() if features == "default" else \
            PackConfig.from_yaml(resolve_config(features, "pack")).features
    with open_cli_catalog(catalog, create=True) as cat:
        if as_records:
            if (engine or env_engine()) != "local":
                raise UsageError("--engine: biometric records are ingested locally only; "
                                 "use --engine local (or leave it out) with record files")
            rep = cat.ingest_records(list(sources), subject_field=subject_field, metadata=metadata_file,
                                     consent=consent, keep_fields=tuple(keep_field), workers=workers,
                                     message=message, update=update, limits=limits)
        else:
            with stdout_to_stderr(as_json):   # Ray prints task-retry notices on stdout
                rep = cat.ingest(sources[0], images_root=images, workers=workers, progress=not as_json,
                                 message=message, update=update, allow_outside=allow_outside, limits=limits,
                                 engine=engine or env_engine(), address=address, features=fcfg)
    if rep.skipped:
        err.print("skipped (not one finger): " + ", ".join(f"{n} × {k}" for k, n in sorted(rep.skipped.items())),
                  markup=False, highlight=False)
    if as_json:
        print_json({k: v for k, v in rep.__dict__.items() if k != "skipped" or v is not None})
    elif rep.revision is None:
        out.print(f"nothing new: {rep.rows} rows, all already in {cat.path} ({rep.duplicates} duplicates)")
    else:
        out.print(f"revision {rep.revision}: added {rep.added} samples to {cat.path}"
                  + (f", changed {rep.changed}" if rep.changed else "")
                  + f" ({rep.duplicates} duplicates skipped)")


@catalog_app.command("query")
def catalog_query(
    where: Optional[str] = typer.Argument(None, help="SQL WHERE expression, e.g. \"finger IN (2,7) AND consent\"."),
    catalog: str = CatalogOpt,
    filter_file: Optional[str] = typer.Option(None, "--filter", "-f", help="YAML filter: a file, or a bundled "
                                              "filter's name (`fpload configs`), e.g. consented."),
    rev: Optional[int] = RevOpt,
    columns: str = typer.Option("sample_id,subject_id,finger,impression,sensor,quality,split,consent",
                                "--columns", help="Comma-separated columns to show ('*' for all)."),
    limit: int = typer.Option(20, "--limit", "-n", help="Rows to show (0: all)."),
    count: bool = typer.Option(False, "--count", help="Print only the number of matching samples."),
    query_timeout: Optional[float] = QueryTimeoutOpt,
    query_memory: Optional[str] = QueryMemoryOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Select samples with a read-only SQL WHERE expression, as of any revision.

    Columns: sample_id uri subject_id finger impression sensor ppi width height format quality split
    consent consent_scope consent_until synthetic captured_at extra. JSON fields:
    json_extract_string(extra, '$.site'); purposes: list_contains(consent_scope, 'training').
    A query is one condition: comparisons, AND/OR/NOT, IN, BETWEEN, LIKE, CASE, casts and the
    scalar functions of fpload.catalog.QUERY_FUNCTIONS; no subqueries, statements or comments.

    Example: fpload catalog query "finger IN (2,7) AND quality >= 40 AND consent" --rev 3
    """
    from fpload.catalog import SAMPLE_COLUMNS

    cols = list(SAMPLE_COLUMNS) if columns.strip() == "*" else [c.strip() for c in columns.split(",") if c.strip()]
    with open_cli_catalog(catalog, read_only=True) as cat:
        table = cat.query(where, filter=filter_path(filter_file), revision=rev, columns=cols,
                          timeout=query_timeout, memory_limit=query_memory)
        revision = cat.revision(rev).rev
    if count:
        print_json({"count": table.num_rows, "revision": revision}) if as_json else out.print(table.num_rows)
        return
    rows = table.to_pylist()
    shown = rows if limit == 0 else rows[:limit]
    if as_json:
        print_json({"revision": revision, "count": len(rows), "rows": shown})
        return
    t = Table(*cols, title=f"{len(rows)} samples at revision {revision}", title_justify="left")
    for r in shown:
        t.add_row(*("" if r[c] is None else str(r[c]) for c in cols))
    out.print(t)
    if len(shown) < len(rows):
        err.print(f"(showing {len(shown)} of {len(rows)}; --limit 0 shows all)")


@catalog_app.command("stats")
def catalog_stats(catalog: str = CatalogOpt, rev: Optional[int] = RevOpt, as_json: bool = JsonOpt) -> None:
    """Counts per finger, sensor, split, consent and format, as of a revision.

    Example: fpload catalog stats --catalog cat.duckdb --rev 2
    """
    with open_cli_catalog(catalog, read_only=True) as cat:
        s = cat.stats(rev)
    if as_json:
        print_json(s)
        return
    q = s["quality"]
    out.print(f"[bold]{cat.path}[/] revision {s['revision']}: {s['samples']} samples, {s['subjects']} subjects"
              + (f", quality {q['min']:.0f}–{q['max']:.0f} (mean {q['mean']:.1f})" if q["mean"] is not None else ""))
    for key in ("finger", "sensor", "split", "consent", "synthetic", "format"):
        out.print(f"  {key:<10}" + "  ".join(f"{k}: {v}" for k, v in s[key].items()))


@catalog_app.command("revisions")
def catalog_revisions(catalog: str = CatalogOpt, as_json: bool = JsonOpt) -> None:
    """List the catalog's revisions: what each ingest or change did.

    Example: fpload catalog revisions --catalog cat.duckdb
    """
    with open_cli_catalog(catalog, read_only=True) as cat:
        revs = [r.to_dict() for r in cat.revisions()]
    if as_json:
        print_json(revs)
        return
    t = Table("rev", "created_at", "op", "added", "changed", "samples", "message")
    for r in revs:
        t.add_row(str(r["rev"]), r["created_at"][:19], r["op"], str(r["added"]), str(r["changed"]),
                  str(r["samples"]), r["message"] or "")
    out.print(t)


@catalog_app.command("update")
def catalog_update(
    where: str = typer.Argument(..., help="SQL WHERE expression selecting the samples to change."),
    set_: list[str] = typer.Option(..., "--set", help="field=value; repeatable. Fields: consent, split, "
                                   "quality, sensor, subject_id, finger, impression, consent_scope (purposes "
                                   "separated by ';', e.g. training;evaluation), consent_until (a date); "
                                   "value null clears a field."),
    catalog: str = CatalogOpt,
    message: Optional[str] = typer.Option(None, "--message", "-m", help="Note stored with the revision."),
    query_timeout: Optional[float] = QueryTimeoutOpt,
    query_memory: Optional[str] = QueryMemoryOpt,
) -> None:
    """Change metadata of matching samples in a new revision (old values stay readable).

    The query selects sample ids at the latest revision; a query that matches no sample is an
    error (exit 1), so a mistyped withdrawal does not pass silently.

    Example (a subject withdraws consent):
      fpload catalog update "subject_id = 'S017'" --set consent=false -m "withdrawn 2026-11-02"
    """
    changes: dict[str, Any] = {}
    for item in set_:
        if "=" not in item:
            raise UsageError(f"--set {item!r}: expected field=value")
        k, v = item.split("=", 1)
        changes[k.strip()] = None if v.strip().lower() in ("null", "none", "") else v.strip()
    with open_cli_catalog(catalog) as cat:
        rev, n = cat.update(where, changes, message=message, timeout=query_timeout, memory_limit=query_memory)
    out.print(f"revision {rev}: changed {n} samples" if rev
              else "nothing changed: every matching sample already holds these values")


catalog_app.command("diff")(catalog_diff)
catalog_app.command("migrate")(catalog_migrate)
