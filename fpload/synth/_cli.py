"""``fpload synth``: generate a synthetic fingerprint data set (registered by ``fpload.cli``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from fpload.errors import UsageError


def synth_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write images/ and metadata.jsonl into.")],
    subjects: Annotated[int, typer.Option("--subjects", help="Number of synthetic subjects (>= 1).")] = 10,
    fingers: Annotated[int, typer.Option("--fingers", help="Fingers per subject, position codes 1..F (1-10).")] = 2,
    impressions: Annotated[int, typer.Option("--impressions", help="Captures per finger (>= 1).")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice (>= 0).")] = 0,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels (128-4096).")] = 512,
    ppi: Annotated[int, typer.Option("--ppi", help="Resolution in pixels per inch (250-1000).")] = 500,
    fmt: Annotated[str, typer.Option("--format", help="Image format: png, jp2 (lossless JPEG 2000) or wsq "
                                     "(FBI WSQ, lossy, as real captures are; needs the optional extra 'nist').")] = "png",
    records: Annotated[Optional[str], typer.Option("--records", help="Also write the images as biometric records "  # noqa: UP007
                                                   "under OUT/records/, one file per subject: an2 (ANSI/NIST-ITL "
                                                   "Type-14) or iso (ISO/IEC 19794-4); needs the optional extra 'nist'.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Processes (default: all CPUs).")] = None,  # noqa: UP007 - typer needs Optional
    preview: Annotated[
        Optional[Path],  # noqa: UP007
        typer.Option("--preview", help="Also write a contact sheet PNG (masters and impressions, minutiae marked)."),
    ] = None,
    sensor: Annotated[
        Optional[list[str]],  # noqa: UP007
        typer.Option("--sensor", help="Sensor model, repeatable for a per-impression mix, NAME or NAME:WEIGHT: "
                     "optical (default), capacitive, thermal-swipe, latent-like; e.g. --sensor optical:3 --sensor capacitive:1."),
    ] = None,
    subject_prefix: Annotated[
        str, typer.Option("--subject-prefix", help="First field of every subject id: PREFIX-s<seed>-000001.")
    ] = "syn",
    report: Annotated[
        Optional[Path],  # noqa: UP007
        typer.Option("--report", help="Also write a realism report (realism.md/.json, samples.png) into this folder "
                     "and print its table (first 200 images of each set), e.g. --report report."),
    ] = None,
    compare: Annotated[
        Optional[Path],  # noqa: UP007
        typer.Option("--compare", help="With --report: a folder of real images measured side by side, e.g. --compare fvc/db1."),
    ] = None,
    minutiae: Annotated[
        int,
        typer.Option("--minutiae", min=0, help="With --report: also run pyfing's LEADER minutiae detector on the "
                     "first N images of each set: minutiae per mm² for every set, and the share of the ground-truth "
                     "minutiae it recovers for the synthetic one (needs the optional extra 'pyfing'; about 0.5 s "
                     "per image on one CPU core), e.g. --minutiae 12. Default 0: off."),
    ] = 0,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar on stderr.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Generate realistic synthetic fingerprints with ground truth (minutiae, class, quality).

    Example: fpload synth --subjects 20 --out data --report report --compare fvc/db1
             fpload synth --subjects 4 --out data --report report --minutiae 12
    """
    from fpload.synth._generate import synthesize
    from fpload.synth._preview import write_preview

    if records is not None:
        from fpload.synth._records import RECORD_KINDS

        if records not in RECORD_KINDS:
            raise UsageError(f"--records: unknown kind {records!r}; allowed: {', '.join(RECORD_KINDS)}")
    if preview is not None and preview.suffix.lower() != ".png":
        raise UsageError(f"--preview: {str(preview)!r} must name a .png file")
    if compare is not None and report is None:
        raise UsageError(f"--compare: {str(compare)!r} needs --report DIR to write the comparison into")
    if minutiae and report is None:
        raise UsageError(f"--minutiae {minutiae}: needs --report DIR to write the minutiae rows into")
    providers = None
    if minutiae:  # check the extra before anything is written
        from fpload.synth._minutiae_rows import minutiae_provider
        from fpload.synth._realism import ROW_PROVIDERS

        providers = [*ROW_PROVIDERS, minutiae_provider(minutiae, ppi=ppi)]
    real = None
    if compare is not None:  # read (and refuse) the real images before writing anything
        from fpload.synth._realism import load_folder

        real = load_folder(compare)
    sensors, weights = _sensor_mix(sensor or ["optical"])
    result = synthesize(out, subjects=subjects, fingers=fingers, impressions=impressions, seed=seed,
                        size=size, ppi=ppi, fmt=fmt, workers=workers, progress=progress,
                        subject_prefix=subject_prefix, sensors=sensors, sensor_weights=weights)
    summary = result.to_dict()
    if records is not None:
        from fpload.synth._records import write_records

        summary["records"] = [str(p) for p in write_records(result.out, records)]
    if preview is not None:
        summary["preview"] = str(write_preview(preview, result.config))
    table = None
    if report is not None:
        from fpload.synth._realism import load_synthetic, realism_report

        sets = [load_synthetic(result.out)] + ([real] if real is not None else [])
        done = realism_report(sets, report, providers=providers)
        summary["report"], table = done.to_dict(), done.markdown
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        typer.echo(
            f"wrote {result.images} images of {result.fingers} fingers to {result.out} in {result.seconds:.1f} s "
            f"({result.images_per_second:.1f} images/s); metadata: {result.metadata_path}",
            err=True,
        )
        if preview is not None:
            typer.echo(f"preview: {summary['preview']}", err=True)
        if table is not None:
            typer.echo(table)


def _sensor_mix(values: list[str]) -> tuple[tuple[str, ...], tuple[float, ...] | None]:
    """``["optical:3", "capacitive:1"]`` -> names and weights (``None`` when no weight is given)."""
    names, weights = [], []
    for value in values:
        name, _, weight = value.partition(":")
        try:
            weights.append(float(weight) if weight else 1.0)
        except ValueError:
            raise UsageError(f"--sensor: weight {weight!r} of {value!r} is not a number; allowed: NAME or NAME:WEIGHT") from None
        names.append(name)
    return tuple(names), (tuple(weights) if any(":" in v for v in values) else None)
