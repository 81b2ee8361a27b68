"""The ``fpload`` command line: ``fpload --help`` lists the verbs, ``fpload VERB --help`` teaches each.

User errors print one line to stderr and exit non-zero (1: bad data, 2: bad usage), never a
traceback; set ``FPLOAD_DEBUG=1`` to see the traceback too. Progress and logs go to stderr;
``--json`` output goes to stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from fpload._cli_common import AddressOpt, EngineOpt, stdout_to_stderr
from fpload._cli_common import (CatalogOpt, JsonOpt, QueryMemoryOpt, QueryTimeoutOpt, RevOpt, filter_path,
                                open_cli_catalog, out, print_json)
from fpload.catalog._cli import catalog_app
from fpload.config import bundled_configs, configs_root, env_debug, env_engine, env_workers, resolve_config
from fpload.errors import FploadError, UsageError
from fpload.versions._cli import versions_app

app = typer.Typer(
    name="fpload",
    help="Manage and load fingerprint-recognition training data: catalog → versioned shards → GPU loader.\n\n"
         "Start with `fpload demo`, which walks the whole path on synthetic fingerprints.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(catalog_app, name="catalog")
app.add_typer(versions_app, name="versions")

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
    engine: Optional[str] = EngineOpt,
    address: Optional[str] = AddressOpt,
    reuse: bool = typer.Option(True, "--reuse/--no-reuse", help="Copy the features of samples any version "
                               "under --out already holds (same image bytes, same extractor; its cache's "
                               "hash is checked) instead of computing them; --no-reuse computes all that "
                               "--parent does not give. Same files and id either way."),
    as_json: bool = JsonOpt,
) -> None:
    """Freeze a catalog query into an immutable, content-addressed dataset version.

    Writes ROOT/NAME/VERSION_ID/ with shards/*.tar (WebDataset), shards/*.idx (DALI index),
    samples.parquet and manifest.json (last). The same query, catalog revision and config give the
    same id and byte-identical files; packing it again changes nothing.

    Example: fpload pack --where "finger IN (2,7) AND consent" --config raw-lz4 \\
             --out versions --name index-fingers --purpose training
             fpload pack --where consent --out /shared/versions --name all --engine ray --address auto
    """
    from fpload.pack import PackConfig, pack_version

    if where is None and filter_file is None:
        raise UsageError("give --where EXPR and/or --filter FILE (use --where consent to take every "
                         "consented sample)")
    cfg = PackConfig.from_yaml(resolve_config(config, "pack")) if config else PackConfig()
    if purpose is not None:
        cfg = PackConfig.from_dict({**cfg.to_dict(), "purpose": purpose}, source="--purpose")
    with open_cli_catalog(catalog, read_only=True) as cat, stdout_to_stderr(as_json):
        res = pack_version(cat, out=out_root, name=name, where=where, filter=filter_path(filter_file), config=cfg,
                           revision=rev, parent=parent, workers=workers or env_workers(), progress=not as_json,
                           query_timeout=query_timeout, query_memory_limit=query_memory,
                           consent_date=consent_date, engine=engine or env_engine(), address=address,
                           reuse=reuse)
    if as_json:
        print_json({"path": str(res.path), "version_id": res.version_id, "created": res.created,
                     "samples": res.samples, "counts": res.counts, "bytes": res.bytes,
                     "features_computed": res.features_computed, "features_reused": res.features_reused,
                     "features_found": res.features_found})
        return
    verb = "published" if res.created else "already published (nothing changed)"
    out.print(f"{verb}: {res.path}\n  {res.samples} samples "
              f"({', '.join(f'{k} {v}' for k, v in res.counts.items())}), {res.bytes / 1e6:.1f} MB"
              + (f"\n  features: {res.features_computed} computed, {res.features_reused} reused from the parent, "
                 f"{res.features_found} found in other versions"
                 if res.features_computed or res.features_reused or res.features_found else ""))


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
    version: str = typer.Argument(..., help="ROOT/NAME/ID, an id prefix, or ROOT/NAME (latest); ROOT may be a "
                                  "URL such as s3://bucket/versions."),
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
    """Report versions of Python, DALI, torch and CUDA, the GPU, the operator plugin, and whether the
    pack's C++ loops (PNG decoding, feature sums: libfpload_native.so) are in use.

    Example: fpload doctor
    """
    from fpload.doctor import collect

    info = collect()
    if as_json:
        print_json(info)
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
    from fpload.erase._cli import erase_app
    from fpload.features._cli import features_app
    from fpload.ops._cli import ops_app
    from fpload.synth._cli import synth_command

    app.command("synth")(synth_command)
    app.add_typer(ops_app, name="ops")
    app.add_typer(bench_app, name="bench")
    app.add_typer(features_app, name="features")
    app.add_typer(erase_app, name="erase")
    app.add_typer(audit_app, name="audit")
    versions_app.command("find")(versions_find)


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
