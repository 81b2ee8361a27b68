"""The feature estimators against synthetic ground truth: the validation table of the README.

    python benchmarks/validate_features.py [--masters 8] [--size 320] [--impressions 2] [--no-deep]

On clean prints of ``masters`` synthetic masters (their whole canvas, fingertip and background) (fpload.synth knows their true orientation,
ridge period and fingertip mask) it scores, per 16-pixel block, the built-in extractors and
pyfing's classical (GMFS, GBFOE, XSFFE) and deep (SUFS, SNFOE, SNFFE) estimators:

- mean angular error of orientation (degrees) on blocks wholly inside the fingertip;
- mean relative error of ridge frequency on those blocks;
- IoU of the foreground blocks against the truth's (blocks at least half inside the mask);
- "cover": the share of those blocks the estimator gave a value for.

On ``impressions`` impressions of each master (placement, distortion, pressure, noise; their
ground-truth minutiae are mapped through the impression's transform) it reports LEADER's
minutiae recovery: the share of ground-truth minutiae matched one-to-one within 8 px and 20°.

Prints a Markdown table and appends JSON lines to bench-results/validate_features.jsonl.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np


def _sets(deep: bool) -> dict[str, list]:
    sets = {"built-in": ["orientation", "frequency", "foreground"],
            "pyfing classical (GBFOE, XSFFE, GMFS)": [
                {"name": f"pyfing.{s}", "params": {"method": "classical"}}
                for s in ("orientation", "frequency", "segmentation")]}
    if deep:
        sets["pyfing deep (SNFOE, SNFFE, SUFS)"] = [
            {"name": f"pyfing.{s}", "params": {"method": "deep"}} for s in ("orientation", "frequency", "segmentation")]
    return sets


def validate_fields(masters: int, size: int, deep: bool, seed: int = 7) -> list[dict]:
    from fpload.features import FeaturesConfig, resolve_extractors, run_extractors
    from fpload.features._validate import block_errors, master_print, truth_blocks
    from fpload.synth import SynthConfig, generate_master

    cfg = SynthConfig(subjects=masters, size=size, seed=seed)
    prints = [master_print(generate_master(cfg, s, 1), seed=s) for s in range(1, masters + 1)]
    rows = []
    for label, extractors in _sets(deep).items():
        job = resolve_extractors(FeaturesConfig(extractors=extractors))
        run_extractors(prints[0][0], job)  # warm-up: model loading is not timed
        scores, seconds = [], 0.0
        for image, truth in prints:
            t0 = time.perf_counter()
            nested = run_extractors(image, job)
            seconds += time.perf_counter() - t0
            f = {k: v for arrays in nested.values() for k, v in arrays.items()}
            tb = truth_blocks(truth["theta"], truth["period"], truth["mask"], job.block)
            get = (lambda *names: next((f[n] for n in names if n in f), None))
            scores.append(block_errors(tb, orientation=get("orientation", "pyfing_orientation"),
                                       frequency=get("frequency", "pyfing_frequency"),
                                       foreground=get("foreground", "pyfing_foreground")))
        mean = {k: float(np.nanmean([s[k] for s in scores])) for k in scores[0]}
        rows.append({"bench": "fields", "estimator": label, "masters": masters, "size": size,
                     "ms_per_image": 1e3 * seconds / len(prints), **mean})
    return rows


def validate_minutiae(masters: int, impressions: int, size: int, seed: int = 7) -> dict:
    from fpload.features._validate import pyfing_recovery
    from fpload.synth import SynthConfig, generate_master, render_impression

    cfg = SynthConfig(subjects=masters, size=size, seed=seed)
    imps = [render_impression(generate_master(cfg, s, 1), k, cfg)
            for s in range(1, masters + 1) for k in range(impressions)]
    t0 = time.perf_counter()
    res = pyfing_recovery([i.image for i in imps], [i.minutiae for i in imps])
    return {"bench": "minutiae", "size": size, "seconds": time.perf_counter() - t0, **res}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--masters", type=int, default=8)
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--impressions", type=int, default=2)
    ap.add_argument("--no-deep", action="store_true", help="skip the deep (Keras) estimators")
    ap.add_argument("--tiny", action="store_true", help="2 masters at 256², no deep fields, for the tests")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    args = ap.parse_args()
    if args.tiny:
        args.masters, args.size, args.impressions, args.no_deep = 2, 256, 1, True
    rows = validate_fields(args.masters, args.size, not args.no_deep)
    rows.append(validate_minutiae(args.masters, args.impressions, args.size))
    if not args.tiny:
        args.out.mkdir(parents=True, exist_ok=True)
        with open(args.out / "validate_features.jsonl", "a") as fh:
            for r in rows:
                fh.write(json.dumps({**r, "machine": platform.machine()}, sort_keys=True) + "\n")
    print(f"{args.masters} synthetic masters at {args.size}², 16-px blocks (error: lower is better)\n")
    print("| estimator | orientation error (°) | frequency rel. error | foreground IoU | ms/image (CPU) |")
    print("| --- | --- | --- | --- | --- |")
    for r in (r for r in rows if r["bench"] == "fields"):
        print(f"| {r['estimator']} | {r['orientation_deg']:.1f} (cover {r['orientation_cover']:.0%}) | "
              f"{r['frequency_rel']:.3f} (cover {r['frequency_cover']:.0%}) | {r['foreground_iou']:.2f} | "
              f"{r['ms_per_image']:.0f} |")
    m = rows[-1]
    print(f"\nLEADER on {m['images']} impressions: recovered {m['matched']} of {m['truth']} ground-truth minutiae "
          f"({m['recovery']:.0%}) within {m['max_distance_px']:g} px / {m['max_angle_deg']:g}°; precision "
          f"{m['precision']:.0%} of {m['detected']} detected; type agreement {m['type_agreement']:.0%}")


if __name__ == "__main__":
    main()
