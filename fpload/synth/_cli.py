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
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar on stderr.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Generate realistic synthetic fingerprints with ground truth (minutiae, class, quality)."""
    from fpload.synth._generate import synthesize
    from fpload.synth._preview import write_preview

    if records is not None:
        from fpload.synth._records import RECORD_KINDS

        if records not in RECORD_KINDS:
            raise UsageError(f"--records: unknown kind {records!r}; allowed: {', '.join(RECORD_KINDS)}")
    if preview is not None and preview.suffix.lower() != ".png":
        raise UsageError(f"--preview: {str(preview)!r} must name a .png file")
    result = synthesize(out, subjects=subjects, fingers=fingers, impressions=impressions, seed=seed,
                        size=size, ppi=ppi, fmt=fmt, workers=workers, progress=progress)
    summary = result.to_dict()
    if records is not None:
        from fpload.synth._records import write_records

        summary["records"] = [str(p) for p in write_records(result.out, records)]
    if preview is not None:
        summary["preview"] = str(write_preview(preview, result.config))
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
