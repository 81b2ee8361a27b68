"""The ``fpload`` command line: ``fpload --help`` lists the verbs, ``fpload VERB --help`` teaches each.

User errors print one line to stderr and exit non-zero (1: bad data, 2: bad usage), never a
traceback; set ``FPLOAD_DEBUG=1`` to see the traceback too. Progress and logs go to stderr;
``--json`` output goes to stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from fpload.config import bundled_configs, configs_root, env_debug, env_workers, resolve_config
from fpload.errors import FploadError, UsageError

app = typer.Typer(
    name="fpload",
    help="Manage and load fingerprint-recognition training data: catalog → versioned shards → GPU loader.\n\n"
         "Start with `fpload demo`, which walks the whole path on synthetic fingerprints.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
catalog_app = typer.Typer(help="The catalog: ingest captures, query them with SQL, see revisions.",
                          no_args_is_help=True)
versions_app = typer.Typer(help="Published dataset versions: list, show, verify.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(versions_app, name="versions")

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


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _filter_path(value: str | None) -> Path | None:
    """A ``--filter`` value as a file: a path, or a bundled filter's name."""
    return resolve_config(value, "filters") if value else None


def _open(path: str | Path, create: bool = False, read_only: bool = False):
    """Open a catalog; readers open it read-only, so they share it with other readers."""
    from fpload.catalog import open_catalog

    return open_catalog(path, create=create, read_only=read_only)


def _show_version(value: bool) -> None:
    if value:
        import fpload

        out.print(f"fpload {fpload.__version__}", markup=False, highlight=False)
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                       help="Print fpload's version and exit, e.g. `fpload --version`.")) -> None:
    """Options that come before the verb."""


# ----------------------------------------------------------------------------------------------
# catalog
# ----------------------------------------------------------------------------------------------

@catalog_app.command("ingest")
def catalog_ingest(
    metadata: Path = typer.Argument(..., help="CSV, Parquet or JSONL file, one row per image."),
    catalog: str = CatalogOpt,
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
    as_json: bool = JsonOpt,
) -> None:
    """Add the images a metadata file names; creates the catalog if needed.

    Required columns: file, subject_id, finger (0–10), impression, sensor, ppi, consent. Optional:
    quality, split, synthetic, captured_at, consent_scope (purposes separated by ';', e.g.
    training;evaluation), consent_until (a date); any other column is kept in `extra`. Every row and
    image is checked before anything is written. Re-ingesting the same bytes adds nothing; with
    changed metadata it fails naming the sample and field, unless --update is given.

    Example: fpload catalog ingest captures/metadata.csv --catalog cat.duckdb --update
    """
    from fpload.catalog._image import ImageLimits

    limits = ImageLimits(max_bytes=int(max_image_mb * (1 << 20)), max_pixels=max_image_pixels)
    with _open(catalog, create=True) as cat:
        rep = cat.ingest(metadata, images_root=images, workers=workers, progress=not as_json,
                         message=message, update=update, allow_outside=allow_outside, limits=limits)
    if as_json:
        _print_json(rep.__dict__)
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
    with _open(catalog, read_only=True) as cat:
        table = cat.query(where, filter=_filter_path(filter_file), revision=rev, columns=cols,
                          timeout=query_timeout, memory_limit=query_memory)
        revision = cat.revision(rev).rev
    if count:
        _print_json({"count": table.num_rows, "revision": revision}) if as_json else out.print(table.num_rows)
        return
    rows = table.to_pylist()
    shown = rows if limit == 0 else rows[:limit]
    if as_json:
        _print_json({"revision": revision, "count": len(rows), "rows": shown})
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
    with _open(catalog, read_only=True) as cat:
        s = cat.stats(rev)
    if as_json:
        _print_json(s)
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
    with _open(catalog, read_only=True) as cat:
        revs = [r.to_dict() for r in cat.revisions()]
    if as_json:
        _print_json(revs)
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
    with _open(catalog) as cat:
        rev, n = cat.update(where, changes, message=message, timeout=query_timeout, memory_limit=query_memory)
    out.print(f"revision {rev}: changed {n} samples" if rev
              else "nothing changed: every matching sample already holds these values")


# ----------------------------------------------------------------------------------------------
# pack
# ----------------------------------------------------------------------------------------------

@app.command("pack")
def pack(
    where: Optional[str] = typer.Option(None, "--where", help="SQL WHERE expression selecting samples."),
    filter_file: Optional[str] = typer.Option(None, "--filter", "-f", help="YAML filter: a file, or a bundled "
                                              "filter's name (`fpload configs`), e.g. consented."),
    catalog: str = CatalogOpt,
    config: Optional[str] = typer.Option(None, "--config", help="Pack config: a YAML file, or a bundled "
                                         "config's name (`fpload configs`), e.g. demo, raw-lz4."),
    out_root: str = typer.Option(..., "--out", "-o", help="Root of versions (ROOT/NAME/ID): a folder, or an "
                                 "fsspec URL such as s3://bucket/versions (manifest.json written last)."),
    name: str = typer.Option(..., "--name", "-n", help="Version name, e.g. 'index-fingers'."),
    rev: Optional[int] = RevOpt,
    parent: Optional[str] = typer.Option(None, "--parent", help="Version this one derives from: 'latest' (of "
                                         "NAME), an id or id prefix under ROOT/NAME, or a path. Recorded in the "
                                         "manifest; its feature cache is reused for unchanged samples."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1,
                                          help="Encoding processes (default: FPLOAD_WORKERS or the core count)."),
    query_timeout: Optional[float] = QueryTimeoutOpt,
    query_memory: Optional[str] = QueryMemoryOpt,
    purpose: Optional[str] = typer.Option(None, "--purpose", help="What the version is for, e.g. training "
                                          "(overrides the config's purpose): samples whose consent_scope "
                                          "lacks it count as without consent."),
    consent_date: Optional[str] = typer.Option(None, "--consent-date", help="Date consent is judged at "
                                               "against consent_until, e.g. 2026-12-31 (default: today, UTC); "
                                               "recorded in the manifest."),
    as_json: bool = JsonOpt,
) -> None:
    """Freeze a catalog query into an immutable, content-addressed dataset version.

    Writes ROOT/NAME/VERSION_ID/ with shards/*.tar (WebDataset), shards/*.idx (DALI index),
    samples.parquet and manifest.json (last). The same query, catalog revision and config give the
    same id and byte-identical files; packing it again changes nothing.

    Example: fpload pack --where "finger IN (2,7) AND consent" --config raw-lz4 \\
             --out versions --name index-fingers --purpose training
    """
    from fpload.pack import PackConfig, pack_version

    if where is None and filter_file is None:
        raise UsageError("give --where EXPR and/or --filter FILE (use --where consent to take every "
                         "consented sample)")
    cfg = PackConfig.from_yaml(resolve_config(config, "pack")) if config else PackConfig()
    if purpose is not None:
        cfg = PackConfig.from_dict({**cfg.to_dict(), "purpose": purpose}, source="--purpose")
    with _open(catalog, read_only=True) as cat:
        res = pack_version(cat, out=out_root, name=name, where=where, filter=_filter_path(filter_file), config=cfg,
                           revision=rev, parent=parent, workers=workers or env_workers(), progress=not as_json,
                           query_timeout=query_timeout, query_memory_limit=query_memory,
                           consent_date=consent_date)
    if as_json:
        _print_json({"path": str(res.path), "version_id": res.version_id, "created": res.created,
                     "samples": res.samples, "counts": res.counts, "bytes": res.bytes,
                     "features_computed": res.features_computed, "features_reused": res.features_reused})
        return
    verb = "published" if res.created else "already published (nothing changed)"
    out.print(f"{verb}: {res.path}\n  {res.samples} samples "
              f"({', '.join(f'{k} {v}' for k, v in res.counts.items())}), {res.bytes / 1e6:.1f} MB"
              + (f"\n  features: {res.features_computed} computed, {res.features_reused} reused from the parent"
                 if res.features_computed or res.features_reused else ""))


# ----------------------------------------------------------------------------------------------
# versions
# ----------------------------------------------------------------------------------------------

@versions_app.command("list")
def versions_list(root: str = typer.Argument(..., help="Versions root, or ROOT/NAME (a folder or a URL such "
                                             "as s3://bucket/versions)."),
                  as_json: bool = JsonOpt) -> None:
    """List published versions under a root, oldest first.

    Example: fpload versions list versions    (or: fpload versions list s3://team-data/versions)
    """
    from fpload.versions import describe, list_versions

    vs = [describe(v) for v in list_versions(root)]
    if as_json:
        _print_json(vs)
        return
    t = Table("name", "version_id", "created_at", "samples", "splits", "encoding", "MB")
    for v in vs:
        t.add_row(v["name"], v["version_id"], (v["created_at"] or "")[:19], str(v["samples"]),
                  " ".join(f"{k}:{n}" for k, n in v["counts"].items()), v["encoding"], f"{v['bytes'] / 1e6:.1f}")
    out.print(t)


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
        _print_json(d)
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
        _print_json(report)
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


# ----------------------------------------------------------------------------------------------
# demo, doctor
# ----------------------------------------------------------------------------------------------

@app.command("demo")
def demo(
    out_dir: Path = typer.Option(Path("fpload-demo"), "--out", "-o", help="Folder for everything the demo writes."),
    subjects: int = typer.Option(24, "--subjects", min=2, help="Synthetic subjects."),
    steps: int = typer.Option(30, "--steps", min=1, help="Training steps of the small CNN."),
    device: str = typer.Option("auto", "--device", help="gpu, cpu or auto."),
) -> None:
    """Walk the whole path on synthetic fingerprints: synthesise → ingest → pack → verify → train.

    Prints where everything was written and the samples/s the loader delivered.

    Example: fpload demo --out /tmp/fpload-demo
    """
    from fpload.demo import run_demo

    run_demo(out_dir, subjects=subjects, steps=steps, device=device, console=out)


@app.command("preview")
def preview(
    version: Path = typer.Argument(..., help="ROOT/NAME/ID, an id prefix, or ROOT/NAME (latest)."),
    out_png: Path = typer.Option(Path("preview.png"), "--out", "-o", help="PNG to write."),
    split: str = typer.Option("train", "--split", help="Split to show."),
    samples: int = typer.Option(6, "--samples", "-n", min=1, help="Rows: samples shown."),
    draws: int = typer.Option(3, "--draws", min=1, help="Augmentations per sample (epochs 0, 1, ...)."),
    config: str = typer.Option("train", "--config", help="Loader config: a YAML file or a bundled config's name "
                                "(`fpload configs`)."),
    device: str = typer.Option("cpu", "--device", help="gpu or cpu."),
    seed: int = typer.Option(0, "--seed", help="Augmentation seed."),
) -> None:
    """Draw samples before and after augmentation, to check what the network will see.

    Example: fpload preview fpload-demo/versions/demo --out grid.png --config train-stock
    """
    from fpload.load import LoaderConfig
    from fpload.load._preview import preview_grid

    cfg = LoaderConfig.from_yaml(resolve_config(config, "loader"))
    path = preview_grid(version, out_png, split=split, samples=samples, draws=draws, config=cfg,
                        device=device, seed=seed)
    out.print(f"wrote {path}")


@app.command("configs")
def configs(
    kind: Optional[str] = typer.Argument(None, help="pack, loader or filters (default: all)."),
    show: Optional[str] = typer.Option(None, "--show", help="Print one config's YAML, e.g. --show demo."),
) -> None:
    """List the configs shipped with fpload; any of them is a valid --config (or --filter) value.

    Example: fpload configs pack            # names usable as `fpload pack --config NAME`
             fpload configs pack --show demo > my-pack.yaml   # start your own from one
    """
    kinds = [kind] if kind else ["pack", "loader", "filters"]
    if show is not None:
        if kind is None:
            raise UsageError("--show needs a kind: fpload configs pack --show demo")
        sys.stdout.write(resolve_config(show, kind).read_text())  # type: ignore[arg-type]
        return
    for k in kinds:
        names = bundled_configs(k)  # type: ignore[arg-type]
        out.print(f"[bold]{k}[/bold] ({configs_root() / k}): {', '.join(names)}")


@app.command("doctor")
def doctor(as_json: bool = JsonOpt) -> None:
    """Report versions of Python, DALI, torch and CUDA, the GPU, and the operator plugin.

    Example: fpload doctor
    """
    from fpload.doctor import collect

    info = collect()
    if as_json:
        _print_json(info)
        return
    for k, v in info.items():
        if isinstance(v, dict):
            out.print(f"[bold]{k}[/]")
            for kk, vv in v.items():
                out.print(f"  {kk:<22} {vv}")
        else:
            out.print(f"[bold]{k:<14}[/] {v}")


def _register_stage_commands() -> None:
    """Attach the verbs whose modules live in their own stage packages.

    Imported plainly: a broken import fails loudly here instead of silently removing a verb.
    """
    from fpload.audit._cli import audit_app, versions_find
    from fpload.bench._cli import bench_app
    from fpload.catalog._cli import catalog_diff, catalog_migrate
    from fpload.erase._cli import erase_app
    from fpload.features._cli import features_app
    from fpload.ops._cli import ops_app
    from fpload.synth._cli import synth_command
    from fpload.versions._cli import versions_check, versions_diff, versions_gc

    app.command("synth")(synth_command)
    app.add_typer(ops_app, name="ops")
    app.add_typer(bench_app, name="bench")
    app.add_typer(features_app, name="features")
    app.add_typer(erase_app, name="erase")
    app.add_typer(audit_app, name="audit")
    catalog_app.command("diff")(catalog_diff)
    catalog_app.command("migrate")(catalog_migrate)
    versions_app.command("diff")(versions_diff)
    versions_app.command("check")(versions_check)
    versions_app.command("find")(versions_find)
    versions_app.command("gc")(versions_gc)


_register_stage_commands()

# typer (>= 0.29) bundles its own copy of click and no longer depends on the standalone one, so
# usage errors are caught through typer's public names: ``typer.BadParameter`` derives from the
# click UsageError and ClickException classes that typer raises, bundled or not.
_CLICK_BASES = {c.__name__: c for c in typer.BadParameter.__mro__}
_ClickUsageError: type[Exception] = _CLICK_BASES["UsageError"]
_ClickException: type[Exception] = _CLICK_BASES["ClickException"]


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fpload`` console script: runs a verb and returns its exit code.

    Every error a user can cause prints one line ``fpload: error: ...`` to stderr: exit 2 for bad
    usage (unknown option, missing argument, bad value), 1 for bad data. ``FPLOAD_DEBUG=1`` re-raises
    fpload's errors to show their traceback.

    >>> main(["--version"])   # doctest: +SKIP
    fpload 0.1.0
    0
    """
    try:
        rc = app(args=argv, prog_name="fpload", standalone_mode=False)  # typer.Exit(code) comes back as code
    except FploadError as e:
        if env_debug():
            raise
        print(f"fpload: error: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("fpload: aborted", file=sys.stderr)
        return 130
    except _ClickUsageError as e:
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError" and ctx is not None:
            # a group given no verb: its help is the answer, but it is still a usage error
            text = e.format_message()  # the help; with rich, typer printed it already and this is ""
            if text:
                print(text, file=sys.stderr)
            return e.exit_code
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print(f"fpload: error: {_one_line(e.format_message())}{hint}", file=sys.stderr)
        return e.exit_code
    except _ClickException as e:
        print(f"fpload: error: {_one_line(e.format_message())}", file=sys.stderr)
        return e.exit_code
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
