"""Synthetic fingerprints with ground truth: the embedded default data of fpload.

A SFinGe-style generator (Cappelli, Maio, Maltoni): per finger a *master* (a pattern class
drawn with population frequencies, cores and deltas, a zero-pole orientation field with a
Vizcaya-Gerhardt correction, a ridge-period map, a fingertip foreground, and ridges grown from
noise by orientation- and frequency-tuned steerable filters, whose minutiae are the ground
truth; creases, scars, pores and the skin's ragged ridge edges), then *impressions* of it (a
tall oval contact placed so the frame usually cuts it, plastic distortion, pressure and moisture
as ridge-level processes) captured by a sensor model: ``optical`` (FTIR, the default),
``capacitive``, ``thermal-swipe`` or ``latent-like``, mixed per impression if asked.

Subject ids are ``<prefix>-s<seed>-<number>`` (``syn-s0-000001``), so runs with different seeds
never share an identity. :func:`realism_report` measures a set (and real images beside it)
against the statistics of real captures.

Example::

    from fpload.synth import synthesize, write_preview

    result = synthesize("data", subjects=100, fingers=2, impressions=4)
    print(result.metadata_path, result.images, result.seconds)   # ingest data/metadata.jsonl
    write_preview("preview.png")
    report = realism_report([load_synthetic("data"), load_folder("real/db1")], out="report")
"""

from fpload.synth._analysis import estimate_orientation, quality_score, ridge_period, similarity
from fpload.synth._config import SynthConfig
from fpload.synth._generate import SynthResult, run_synthesis, synthesize
from fpload.synth._impression import Impression, render_impression
from fpload.synth._master import Master, generate_master
from fpload.synth._orientation import PATTERN_CLASSES
from fpload.synth._preview import write_preview
from fpload.synth._realism import ROW_PROVIDERS, ImageSet, Measurement, load_folder, load_synthetic, realism_report

__all__ = [
    "PATTERN_CLASSES",
    "ROW_PROVIDERS",
    "ImageSet",
    "Impression",
    "Master",
    "Measurement",
    "SynthConfig",
    "SynthResult",
    "estimate_orientation",
    "generate_master",
    "load_folder",
    "load_synthetic",
    "quality_score",
    "realism_report",
    "render_impression",
    "ridge_period",
    "run_synthesis",
    "similarity",
    "synthesize",
    "write_preview",
]
