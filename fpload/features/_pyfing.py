"""Extractors backed by pyfing, the field's reference algorithms (optional extra ``fpload[pyfing]``).

pyfing (MIT, R. Cappelli's group, University of Bologna) ships classical (NumPy/OpenCV) and deep
(Keras) estimators with their trained weights inside the wheel. fpload names four of them in a
pack config's ``features:`` key::

    features:
      extractors:
        - foreground                                   # the built-ins stay as they are
        - {name: pyfing.segmentation, params: {method: classical}}   # GMFS (deep: SUFS)
        - {name: pyfing.orientation, params: {method: deep}}         # SNFOE (classical: GBFOE)
        - pyfing.frequency                                           # XSFFE (deep: SNFFE)
        - {name: pyfing.minutiae, params: {max_minutiae: 128}}       # LEADER (classical: SBMEX)

Arrays (``N`` samples, ``GH × GW`` the version's block grid, as the built-ins):

- ``pyfing_foreground`` ``bool [N, GH, GW]``: blocks of which at least ``coverage`` of the
  image pixels are inside pyfing's segmentation mask.
- ``pyfing_orientation`` ``float16 [N, 2, GH, GW]``: ``(cos 2θ, sin 2θ)`` of the ridge direction
  in fpload's convention (θ from +x towards +y, the row axis pointing down: pyfing's angles are
  counter-clockwise and are mirrored), the normalised block mean of the pixels inside the mask;
  ``(0, 0)`` on blocks without mask pixels.
- ``pyfing_frequency`` ``float16 [N, GH, GW]``: ridge frequency in cycles per pixel, 1 / the
  block mean of pyfing's ridge period over mask pixels whose period is plausible (2–40 px at
  500 dpi); 0 where it has none.
- ``minutiae`` ``float32 [N, K, 4]``: ``(x, y, angle, type)`` per minutia, ``K`` =
  ``max_minutiae`` (128 by default), the ``minutiae_count`` first rows used and sorted by
  pyfing's quality (the most reliable first; when more are found, the lowest-quality ones are
  dropped); rows past the count are zeros. ``x, y`` are pixels of the stored (unaugmented) image,
  ``angle`` radians ``atan2(dy, dx)`` with y down, ``type`` 1 = ridge ending, 2 = bifurcation
  (0 = padding). The angle follows fpload.synth's ground truth (checked against it): an ending
  points along its ridge, a bifurcation into the fork between its branches.
- ``minutiae_count`` ``int32 [N]`` and ``minutiae_quality`` ``float16 [N, K]`` (0 on padding).

Methods run the same pyfing chain as its own pipeline: segmentation → orientation (inside the
mask) → frequency (inside the mask, with that orientation); ``classical`` is GMFS → GBFOE →
XSFFE, ``deep`` SUFS → SNFOE → SNFFE; the classical minutiae chain adds GBFEN enhancement and
SBMEX. Results of one image are shared between the extractors of one sample. ``options`` sets an
algorithm's parameters by its pyfing name (``options: {XSFFE: {step: 8}}``). The resolved params
record every parameter of every pyfing algorithm the extractor runs, and the versions of pyfing
(and of Keras and its backend, for deep methods), so a cache is reused from a ``--parent`` only
when all of them are equal.

Keras is imported with ``KERAS_BACKEND=torch`` unless the environment names another backend;
deep methods run under ``torch.no_grad()``, on the GPU when torch sees one (Keras' torch backend
places them on ``cuda``), else on the CPU. Nothing here is imported until an extractor runs.

``batch_size`` (any pyfing extractor; used by the deep methods): images per forward pass, at
most the pack's encode chunk (16 samples); ``auto`` (the default) is 16 when torch sees a CUDA
device and 1 on a CPU, where batching measured no faster. Batches hold images of one network
input shape and each image gets exactly the input a one-at-a-time run builds, so the batch does
not change the outputs (see :mod:`fpload.features._pyfing_batch`): ``batch_size`` is not part of
the params recorded with the arrays, nor of the reuse identity. The device is recorded nowhere
either: a GPU's convolutions may round differently from a CPU's, in the last float32 bits (float16
arrays rarely see it; SUFS and LEADER thresholds can, for a value that close to them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from fpload.errors import ConfigError
from fpload.features._builtin import Builtin, ImageAnalysis, Output

#: ridge periods (pixels at 500 dpi) outside which a pyfing period is taken as undefined (SNFFE
#: returns any real number near the mask's rim, negative ones too)
PERIOD_RANGE = (2.0, 40.0)
#: the minutiae rows kept per sample when the config does not say
DEFAULT_MAX_MINUTIAE = 128
ENDING, BIFURCATION = 1, 2

#: pyfing algorithm classes (name -> (algorithm, parameters)), by step and method
_CHAINS: dict[str, dict[str, tuple[str, ...]]] = {
    "segmentation": {"classical": ("GMFS",), "deep": ("SUFS",)},
    "orientation": {"classical": ("GMFS", "GBFOE"), "deep": ("SUFS", "SNFOE")},
    "frequency": {"classical": ("GMFS", "GBFOE", "XSFFE"), "deep": ("SUFS", "SNFOE", "SNFFE")},
    "minutiae": {"classical": ("GMFS", "GBFOE", "XSFFE", "GBFEN", "SBMEX"), "deep": ("LEADER",)},
}
_CLASSES = {"GMFS": "Gmfs", "SUFS": "Sufs", "GBFOE": "Gbfoe", "SNFOE": "Snfoe", "XSFFE": "Xsffe",
            "SNFFE": "Snffe", "GBFEN": "Gbfen", "SNFEN": "Snfen", "LEADER": "Leader", "SBMEX": "Sbmex"}
_DEEP = {"SUFS", "SNFOE", "SNFFE", "SNFEN", "LEADER"}


def import_pyfing() -> Any:
    """Import pyfing (and Keras, with the torch backend unless ``KERAS_BACKEND`` says otherwise).

    Raises :class:`ConfigError` naming the extra to install when it is missing.
    """
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import pyfing
    except ImportError as err:
        raise ConfigError(f"features: the pyfing extractors need the optional extra: "
                          f"pip install 'fpload[pyfing]' ({err})") from None
    _one_thread_in_workers()
    return pyfing


@lru_cache(maxsize=1)
def _one_thread_in_workers() -> None:
    """In a worker process (the pack's encode workers run one per core) torch and OpenCV use one
    thread each, as torch's own DataLoader workers do, instead of one per core in every worker."""
    import multiprocessing

    if multiprocessing.parent_process() is None:
        return
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def library_versions(deep: bool) -> dict[str, str]:
    """The versions a pyfing extractor's output depends on (recorded in its params)."""
    pyfing = import_pyfing()
    out = {"pyfing": str(pyfing.__version__)}
    if deep:
        import keras

        out["keras"] = str(keras.__version__)
        out["keras_backend"] = str(keras.backend.backend())
        if out["keras_backend"] == "torch":
            import torch

            out["torch"] = str(torch.__version__).split("+")[0]
    return out


def _parameters_class(alg: str) -> Any:
    return getattr(import_pyfing(), _CLASSES[alg] + "Parameters")


@lru_cache(maxsize=None)
def _default_parameters(alg: str) -> dict[str, Any]:
    params = _parameters_class(alg)()
    return json.loads(json.dumps({k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(params).items()}))


@lru_cache(maxsize=16)
def _algorithm(alg: str, params_json: str) -> Any:
    """One pyfing algorithm instance per process and parameter set (deep ones load their weights once)."""
    pyfing = import_pyfing()
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in json.loads(params_json).items()}
    algorithm = getattr(pyfing, _CLASSES[alg])(_parameters_class(alg)(**kw))
    if alg in _DEEP:
        algorithm.model = HostOutput(algorithm.model)
    return algorithm


class HostOutput:
    """A Keras model whose outputs come back through host memory: pyfing calls ``.numpy()`` on
    them, which a torch tensor on a CUDA device refuses (it is copied to the host first)."""

    def __init__(self, model: Any):
        self.model = model

    def __call__(self, x: Any, training: bool = False) -> "_Host":
        out = self.model(x, training=training)
        if hasattr(out, "detach"):  # a torch tensor, maybe on a GPU
            return _Host(out.detach().cpu().numpy())
        return _Host(np.asarray(out))


@dataclass(frozen=True)
class _Host:
    array: np.ndarray

    def numpy(self) -> np.ndarray:
        return self.array


def _no_grad():
    import keras

    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    import contextlib

    return contextlib.nullcontext()


# -- resolution ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PyfingExtractor(Builtin):
    """A pyfing extractor: a :class:`Builtin` whose params are resolved against pyfing itself."""

    step: str = ""

    def output_shape(self, array: str, params: dict[str, Any], grid: tuple[int, int]) -> tuple[int, ...]:
        out = self.outputs[array]
        if out.layout == "block":
            return (*out.shape, *grid)
        k = int(params["max_minutiae"])
        return {"minutiae": (k, 4), "minutiae_quality": (k,)}.get(array, out.shape)

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """Full params: the user's, the defaults, every pyfing parameter and the library versions."""
        params = dict(params)
        batch = params.pop("batch_size", "auto")
        if batch != "auto" and (not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 1024):
            raise ConfigError(f"features: extractor {self.name!r}: batch_size {batch!r} must be 'auto' or an "
                              "integer in 1..1024")
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ConfigError(f"features: extractor {self.name!r}: unknown param {unknown[0]!r} "
                              f"(allowed: {', '.join(sorted([*self.defaults, 'batch_size']))})")
        out = {**self.defaults, **params}
        method = out["method"]
        chains = _CHAINS[self.step]
        if method not in chains:
            raise ConfigError(f"features: extractor {self.name!r}: method {method!r} is not one of "
                              f"{', '.join(chains)}")
        if not isinstance(out["dpi"], int) or isinstance(out["dpi"], bool) or not 100 <= out["dpi"] <= 2000:
            raise ConfigError(f"features: extractor {self.name!r}: dpi {out['dpi']!r} must be an integer "
                              "in 100..2000")
        if self.step == "minutiae":
            k = out["max_minutiae"]
            if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 4096:
                raise ConfigError(f"features: extractor {self.name!r}: max_minutiae {k!r} must be an "
                                  "integer in 1..4096")
        if self.step == "segmentation":
            c = out["coverage"]
            if not isinstance(c, (int, float)) or isinstance(c, bool) or not 0 < c <= 1:
                raise ConfigError(f"features: extractor {self.name!r}: coverage {c!r} must be in (0, 1]")
        options = out.pop("options")
        algs = chains[method]
        if "SBMEX" in algs:
            import cv2

            if not hasattr(cv2, "ximgproc"):
                raise ConfigError(f"features: extractor {self.name!r}: method 'classical' (SBMEX) needs "
                                  "OpenCV's contrib modules (opencv-contrib-python-headless instead of "
                                  "opencv-python-headless); or use method: deep (LEADER)")
        if "XSFFE" in algs and out["dpi"] != 500:
            raise ConfigError(f"features: extractor {self.name!r}: method 'classical' (XSFFE) supports "
                              f"only dpi 500, got {out['dpi']}; use method: deep")
        if not isinstance(options, dict):
            raise ConfigError(f"features: extractor {self.name!r}: options must map a pyfing algorithm "
                              f"({', '.join(algs)}) to its parameters, got {options!r}")
        resolved = {}
        for alg in algs:
            defaults = _default_parameters(alg)
            given = options.get(alg, {})
            if not isinstance(given, dict):
                raise ConfigError(f"features: extractor {self.name!r}: options.{alg} must be a mapping")
            bad = sorted(set(given) - set(defaults))
            if bad:
                raise ConfigError(f"features: extractor {self.name!r}: {alg} has no parameter {bad[0]!r} "
                                  f"(allowed: {', '.join(sorted(defaults))})")
            if "image_dpi" in given:
                raise ConfigError(f"features: extractor {self.name!r}: set the image resolution with the "
                                  f"extractor's dpi param, not options.{alg}.image_dpi")
            resolved[alg] = {**defaults, **given}
            if "image_dpi" in defaults:
                resolved[alg]["image_dpi"] = out["dpi"]
        extra = sorted(set(options) - set(algs))
        if extra:
            raise ConfigError(f"features: extractor {self.name!r} with method {method!r} runs "
                              f"{', '.join(algs)}, not {extra[0]!r}")
        out["algorithms"] = resolved
        out["library"] = library_versions(any(a in _DEEP for a in algs))
        out["batch_size"] = batch  # taken out again by resolve_extractors: not part of the identity
        return out


# -- the chain on one image ---------------------------------------------------------------------

def _call(algorithm: Any, alg: str, image: np.ndarray, dpi: int, *inputs: Any) -> Any:
    """One pyfing ``run`` of algorithm ``alg`` (its own pre- and post-processing around the model)."""
    if alg in ("GMFS", "SUFS"):
        return algorithm.run(image)
    if alg in ("GBFOE", "SNFOE"):
        return algorithm.run(image, inputs[0], dpi)[0]
    if alg in ("XSFFE", "SNFFE"):
        return algorithm.run(image, inputs[0], inputs[1], dpi)
    if alg in ("GBFEN", "SNFEN"):
        return algorithm.run(image, *inputs, dpi)
    if alg == "SBMEX":
        return algorithm.run(inputs[0], inputs[1], dpi)
    return algorithm.run(image, dpi)  # LEADER


def _memo_key(alg: str, params: dict[str, Any], dpi: int) -> tuple:
    return ("pyfing", alg, json.dumps(params[alg], sort_keys=True), dpi)


def _run(an: ImageAnalysis, alg: str, params: dict[str, Any], dpi: int, *inputs: Any) -> Any:
    """pyfing algorithm ``alg`` on the analysis' image (memoised per image; a batched pass,
    :mod:`fpload.features._pyfing_batch`, may have filled the memo already)."""
    key = _memo_key(alg, params, dpi)
    if key not in an._memo:
        algorithm = _algorithm(alg, key[2])
        with _no_grad():
            an._memo[key] = _call(algorithm, alg, an.image, dpi, *inputs)
    return an._memo[key]


def _chain(an: ImageAnalysis, params: dict[str, Any], upto: str) -> dict[str, Any]:
    """Run a method's chain up to step ``upto``: mask, orientation (pyfing's angles), period."""
    algs = params["algorithms"]
    names = _CHAINS["frequency"][params["method"]]  # segmentation, orientation, frequency
    dpi = int(params["dpi"])
    out: dict[str, Any] = {"mask": _run(an, names[0], algs, dpi)}
    if upto == "segmentation":
        return out
    if not out["mask"].any():  # no foreground: nothing to estimate (pyfing fails on an empty mask)
        return {**out, "orientation": None, "period": None}
    out["orientation"] = _run(an, names[1], algs, dpi, out["mask"])
    if upto == "orientation":
        return out
    out["period"] = _run(an, names[2], algs, dpi, out["mask"], out["orientation"])
    return out


def _block_sums(an: ImageAnalysis, a: np.ndarray) -> np.ndarray:
    """Per-block float64 sums of an image-sized array (padding adds nothing)."""
    return an.block_sum(an._to_canvas(np.asarray(a, np.float64)))


def _ext_segmentation(an: ImageAnalysis, method: str, dpi: int, coverage: float, algorithms: dict,
                      library: dict) -> dict[str, np.ndarray]:
    mask = _chain(an, {"algorithms": algorithms, "dpi": dpi, "method": method}, "segmentation")["mask"] > 0
    n = an.block_stats[0]
    inside = _block_sums(an, mask)
    return {"pyfing_foreground": (n > 0) & (inside >= float(coverage) * np.maximum(n, 1))}


def _ext_orientation(an: ImageAnalysis, method: str, dpi: int, algorithms: dict,
                     library: dict) -> dict[str, np.ndarray]:
    res = _chain(an, {"algorithms": algorithms, "dpi": dpi, "method": method}, "orientation")
    if res["orientation"] is None:
        return {"pyfing_orientation": np.zeros((2, an.hb, an.wb), np.float16)}
    mask = res["mask"] > 0
    theta = -np.asarray(res["orientation"], np.float64)  # counter-clockwise (y up) -> fpload's (y down)
    c = _block_sums(an, np.where(mask, np.cos(2 * theta), 0))
    s = _block_sums(an, np.where(mask, np.sin(2 * theta), 0))
    norm = np.hypot(c, s)
    ok = norm > 1e-9
    safe = np.where(ok, norm, 1)
    return {"pyfing_orientation": np.stack([np.where(ok, c / safe, 0), np.where(ok, s / safe, 0)]).astype(np.float16)}


def _ext_frequency(an: ImageAnalysis, method: str, dpi: int, algorithms: dict,
                   library: dict) -> dict[str, np.ndarray]:
    res = _chain(an, {"algorithms": algorithms, "dpi": dpi, "method": method}, "frequency")
    if res["period"] is None:
        return {"pyfing_frequency": np.zeros((an.hb, an.wb), np.float16)}
    period = np.asarray(res["period"], np.float64)
    lo, hi = PERIOD_RANGE[0] * dpi / 500, PERIOD_RANGE[1] * dpi / 500
    good = (res["mask"] > 0) & np.isfinite(period) & (period >= lo) & (period <= hi)
    total = _block_sums(an, np.where(good, period, 0))
    count = _block_sums(an, good)
    freq = np.where(count > 0, count / np.where(total > 0, total, 1), 0)
    return {"pyfing_frequency": freq.astype(np.float16)}


def detect_minutiae(an: ImageAnalysis, method: str, dpi: int, algorithms: dict) -> list[tuple[float, float, float, int, float]]:
    """Minutiae ``(x, y, angle, type, quality)`` in fpload's convention (see the module docstring)."""
    names = _CHAINS["minutiae"][method]
    if method == "deep":
        found = _run(an, "LEADER", algorithms, dpi)
    else:
        res = _chain(an, {"algorithms": algorithms, "dpi": dpi, "method": method}, "frequency")
        if res["period"] is None:
            return []
        enhanced = _run(an, names[3], algorithms, dpi, res["mask"], res["orientation"], res["period"])
        found = _run(an, "SBMEX", algorithms, dpi, enhanced, res["mask"])
    out = []
    for m in found:
        angle = float(np.angle(np.exp(-1j * float(m.direction))))  # mirror y: atan2 with y down
        out.append((float(m.x), float(m.y), angle, ENDING if m.type == "E" else BIFURCATION, float(m.quality)))
    return out


def pack_minutiae(found: list[tuple[float, float, float, int, float]], k: int) -> dict[str, np.ndarray]:
    """The padded arrays of one sample: the ``k`` best by quality, best first (stable order)."""
    order = sorted(range(len(found)), key=lambda i: (-found[i][4], found[i][1], found[i][0]))[:k]
    rows = np.zeros((k, 4), np.float32)
    quality = np.zeros(k, np.float16)
    for j, i in enumerate(order):
        x, y, a, t, q = found[i]
        rows[j] = (x, y, a, t)
        quality[j] = q
    return {"minutiae": rows, "minutiae_count": np.int32(len(order)), "minutiae_quality": quality}


def _ext_minutiae(an: ImageAnalysis, method: str, dpi: int, max_minutiae: int, algorithms: dict,
                  library: dict) -> dict[str, np.ndarray]:
    return pack_minutiae(detect_minutiae(an, method, int(dpi), algorithms), int(max_minutiae))


_BASE = {"method": "classical", "dpi": 500, "options": {}}
#: the pyfing extractors by name (resolved against the installed pyfing when a config names them)
PYFING_EXTRACTORS: dict[str, PyfingExtractor] = {e.name: e for e in [
    PyfingExtractor("pyfing.segmentation", 1, _ext_segmentation, {**_BASE, "coverage": 0.5},
                    {"pyfing_foreground": Output("bool", "block", (), False)}, step="segmentation"),
    PyfingExtractor("pyfing.orientation", 1, _ext_orientation, dict(_BASE),
                    {"pyfing_orientation": Output("float16", "block", (2,), 0)}, step="orientation"),
    PyfingExtractor("pyfing.frequency", 1, _ext_frequency, dict(_BASE),
                    {"pyfing_frequency": Output("float16", "block", (), 0)}, step="frequency"),
    PyfingExtractor("pyfing.minutiae", 1, _ext_minutiae,
                    {**_BASE, "method": "deep", "max_minutiae": DEFAULT_MAX_MINUTIAE},
                    {"minutiae": Output("float32", "sample", (), 0),
                     "minutiae_count": Output("int32", "sample", (), 0),
                     "minutiae_quality": Output("float16", "sample", (), 0)}, step="minutiae"),
]}

#: dimension names of the pyfing arrays in the Zarr cache
DIMS = {"pyfing_foreground": ("sample", "block_y", "block_x"),
        "pyfing_orientation": ("sample", "cos_sin", "block_y", "block_x"),
        "pyfing_frequency": ("sample", "block_y", "block_x"),
        "minutiae": ("sample", "minutia", "x_y_angle_type"), "minutiae_count": ("sample",),
        "minutiae_quality": ("sample", "minutia")}
