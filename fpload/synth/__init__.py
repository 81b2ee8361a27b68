"""Synthetic fingerprints with ground truth: the embedded default data of fpload.

A SFinGe-style generator (Cappelli, Maio, Maltoni): per finger a *master* (a pattern class
drawn with population frequencies, cores and deltas, a zero-pole orientation field with a
Vizcaya-Gerhardt correction, a ridge-period map, a fingertip foreground, and ridges grown from
noise by orientation- and frequency-tuned steerable filters, whose minutiae are the ground
truth), then *impressions* of it (placement, plastic distortion, pressure and moisture, partial
contact, sensor noise).

Example::

    from fpload.synth import synthesize, write_preview

    result = synthesize("data", subjects=100, fingers=2, impressions=4)
    print(result.metadata_path, result.images, result.seconds)   # ingest data/metadata.jsonl
    write_preview("preview.png")
"""

from fpload.synth._analysis import estimate_orientation, quality_score, ridge_period, similarity
from fpload.synth._config import SynthConfig
from fpload.synth._generate import SynthResult, run_synthesis, synthesize
from fpload.synth._impression import Impression, render_impression
from fpload.synth._master import Master, generate_master
from fpload.synth._orientation import PATTERN_CLASSES
from fpload.synth._preview import write_preview

__all__ = [
    "PATTERN_CLASSES",
    "Impression",
    "Master",
    "SynthConfig",
    "SynthResult",
    "estimate_orientation",
    "generate_master",
    "quality_score",
    "render_impression",
    "ridge_period",
    "run_synthesis",
    "similarity",
    "synthesize",
    "write_preview",
]
