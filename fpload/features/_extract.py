"""Resolve extractor specs (built-in, ``module:function``, entry point) and run them on one image.

Resolution happens once in the main process (:func:`resolve_extractors`); what it returns is a
plain, picklable :class:`FeatureJob` that worker processes run by importing functions by name.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any, Callable

import numpy as np

from fpload.errors import ConfigError, DataError
from fpload.features._builtin import BUILTINS, ImageAnalysis
from fpload.features._config import FeaturesConfig
from fpload.features._pyfing import PYFING_EXTRACTORS

#: entry point group of custom extractors
ENTRY_POINT_GROUP = "fpload.extractors"


@dataclass(frozen=True)
class Extractor:
    """A resolved extractor: what it is, where its function lives, its version and full params.

    ``ref`` is ``builtin:NAME`` (the built-ins and the pyfing extractors, whose outputs fpload
    knows) or ``module:function``; ``params`` include every default.
    """

    name: str
    ref: str
    version: int
    params: dict[str, Any] = field(hash=False)
    #: images per forward pass of a deep pyfing extractor (``None``: auto, see
    #: :func:`fpload.features._pyfing_batch.effective_batch`); not part of the identity: the
    #: batch does not change the outputs (see :mod:`fpload.features._pyfing_batch`)
    batch_size: int | None = field(default=None, compare=False)

    @property
    def builtin(self) -> bool:
        return self.ref.startswith("builtin:")

    def identity(self) -> str:
        """What must be equal for a cached output to be reused: name, version and params."""
        return json.dumps([self.name, self.version, self.params], sort_keys=True)

    def label(self) -> str:
        return f"{self.name} v{self.version}"


@dataclass(frozen=True)
class FeatureJob:
    """Everything a worker needs to compute a sample's features (picklable)."""

    extractors: tuple[Extractor, ...]
    block: int


def _entry_point(name: str):
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep
    return None


def _check_params(spec_name: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(json.dumps(params, sort_keys=True))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"features: extractor {spec_name!r}: params must be plain JSON values ({err})") from None


def resolve_extractors(cfg: FeaturesConfig) -> FeatureJob:
    """Resolve a config's extractors, importing custom functions to check that they exist."""
    out = []
    for spec in cfg.extractors:
        if spec.function is None and spec.name in PYFING_EXTRACTORS:
            p = PYFING_EXTRACTORS[spec.name]
            if spec.version is not None and spec.version != p.version:
                raise ConfigError(f"features: extractor {spec.name!r} is version {p.version}, "
                                  f"the config asks for version {spec.version}")
            params = _check_params(spec.name, p.resolve(_check_params(spec.name, dict(spec.params))))
            batch = params.pop("batch_size")
            out.append(Extractor(spec.name, f"builtin:{spec.name}", p.version, params,
                                 None if batch == "auto" else batch))
            continue
        if spec.function is None and spec.name in BUILTINS:
            b = BUILTINS[spec.name]
            unknown = sorted(set(spec.params) - set(b.defaults))
            if unknown:
                raise ConfigError(f"features: extractor {spec.name!r}: unknown param {unknown[0]!r} "
                                  f"(allowed: {', '.join(sorted(b.defaults))})")
            if spec.version is not None and spec.version != b.version:
                raise ConfigError(f"features: built-in extractor {spec.name!r} is version {b.version}, "
                                  f"the config asks for version {spec.version}")
            params = _check_params(spec.name, {**b.defaults, **spec.params})
            out.append(Extractor(spec.name, f"builtin:{spec.name}", b.version, params))
            continue
        ref = spec.function
        if ref is None:
            ep = _entry_point(spec.name)
            if ep is None:
                raise ConfigError(
                    f"features: unknown extractor {spec.name!r} (built-ins: {', '.join([*BUILTINS, *PYFING_EXTRACTORS])}; "
                    f"or give function: 'module:function', or register an entry point in group "
                    f"{ENTRY_POINT_GROUP!r})")
            ref = ep.value.replace(" ", "")
        fn = load_function(ref, spec.name)
        version = spec.version if spec.version is not None else int(getattr(fn, "fpload_version", 1))
        out.append(Extractor(spec.name, ref, version, _check_params(spec.name, dict(spec.params))))
    return FeatureJob(extractors=tuple(out), block=cfg.block)


@lru_cache(maxsize=64)
def load_function(ref: str, name: str = "?") -> Callable[..., Any]:
    """Import ``module:function`` (cached per process)."""
    module, _, attr = ref.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"features: extractor {name!r}: cannot load {ref!r} ({err})") from None
    if not callable(obj):
        raise ConfigError(f"features: extractor {name!r}: {ref!r} is not callable")
    return obj


def _analysis(image: np.ndarray, block: int, sample_id: str) -> ImageAnalysis:
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 2:
        raise DataError(f"sample {sample_id}: features need a 2-D 8-bit gray image, got shape {image.shape}")
    return ImageAnalysis(image, block)


def batches_deep(job: FeatureJob) -> bool:
    """Whether the job has a deep pyfing extractor that runs more than one image per forward pass
    (its ``batch_size``, or ``auto`` on a GPU); :func:`run_extractors_many` is worth it only then.

    >>> batches_deep(resolve_extractors(FeaturesConfig()))
    False
    """
    deep = [e for e in job.extractors
            if e.builtin and e.name in PYFING_EXTRACTORS and e.params.get("method") == "deep"]
    if not deep:
        return False
    from fpload.features._pyfing_batch import effective_batch

    return any(effective_batch(e.batch_size) > 1 for e in deep)


def run_extractors_many(items: list[tuple[np.ndarray, FeatureJob, frozenset[str] | None, str]]
                        ) -> list[dict[str, dict[str, np.ndarray]]]:
    """:func:`run_extractors` on many ``(image, job, only, sample_id)``, in order, with the deep
    pyfing extractors run ``batch_size`` images per forward pass (images of one network input
    shape together); the outputs are those of one image at a time (see
    :mod:`fpload.features._pyfing_batch`).

    Example::

        >>> import numpy as np
        >>> from fpload.features import FeaturesConfig, resolve_extractors
        >>> job = resolve_extractors(FeaturesConfig(extractors=["foreground"]))
        >>> out = run_extractors_many([(np.zeros((32, 32), np.uint8), job, None, "a")] * 2)
        >>> [sorted(o["foreground"]) for o in out]
        [['foreground'], ['foreground']]
    """
    analyses: list[ImageAnalysis | None] = []
    for image, job, only, sid in items:
        try:
            analyses.append(_analysis(image, job.block, sid))
        except DataError:  # raised in order by run_extractors below
            analyses.append(None)
    deep = {}
    for (image, job, only, sid), an in zip(items, analyses):
        for ext in job.extractors:
            if (an is not None and ext.builtin and ext.name in PYFING_EXTRACTORS
                    and ext.params.get("method") == "deep" and (only is None or ext.name in only)):
                deep.setdefault(ext.identity(), (ext, []))[1].append(an)
    if deep:
        from fpload.features._pyfing_batch import effective_batch, prefill

        for ext, group in deep.values():
            size = effective_batch(ext.batch_size)
            if size > 1 and len(group) > 1:
                prefill(group, ext.params, PYFING_EXTRACTORS[ext.name].step, size)
    return [run_extractors(image, job, only, sid, analysis=an)
            for (image, job, only, sid), an in zip(items, analyses)]


def run_extractors(image: np.ndarray, job: FeatureJob, only: frozenset[str] | None = None,
                   sample_id: str = "?", analysis: ImageAnalysis | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Run the job's extractors (or those named in ``only``) on one 8-bit 2-D image.

    Returns ``{extractor: {array name: per-sample array}}``; block arrays cover the image's own
    blocks (``ceil(h / block) × ceil(w / block)``), to be embedded into the version's grid.
    ``analysis``: the image's analysis when the caller made it (its memo may hold results).
    """
    if analysis is None:
        analysis = _analysis(image, job.block, sample_id)
    image = analysis.image
    out: dict[str, dict[str, np.ndarray]] = {}
    for ext in job.extractors:
        if only is not None and ext.name not in only:
            continue
        if ext.builtin and ext.name in BUILTINS:
            out[ext.name] = BUILTINS[ext.name].fn(analysis, **ext.params)
            continue
        if ext.builtin:
            try:
                out[ext.name] = PYFING_EXTRACTORS[ext.name].fn(analysis, **ext.params)
            except ConfigError:
                raise
            except Exception as err:  # pyfing's failure on this image, named with the sample
                raise DataError(f"sample {sample_id}: extractor {ext.label()} failed on an image of "
                                f"shape {image.shape}: {type(err).__name__}: {err}") from err
            continue
        fn = load_function(ext.ref, ext.name)
        try:
            result = fn(image, **ext.params)
        except Exception as err:  # a custom extractor's failure, named with the sample
            raise DataError(f"sample {sample_id}: extractor {ext.label()} ({ext.ref}) failed: "
                            f"{type(err).__name__}: {err}") from err
        if not isinstance(result, dict) or not result:
            raise ConfigError(f"extractor {ext.label()} ({ext.ref}) must return a non-empty dict of "
                              f"arrays, got {type(result).__name__} for sample {sample_id}")
        arrays = {}
        for key, value in result.items():
            if not isinstance(key, str) or not key.isidentifier() or key == "sample_id":
                raise ConfigError(f"extractor {ext.label()}: array name {key!r} is not an identifier "
                                  "(or is the reserved 'sample_id')")
            arr = np.asarray(value)
            if arr.dtype.kind not in "biuf":
                raise ConfigError(f"extractor {ext.label()}: array {key!r} of sample {sample_id} has "
                                  f"dtype {arr.dtype}; only bool, integer and float arrays are stored")
            arrays[key] = arr
        out[ext.name] = arrays
    return out


def extract_features(image: np.ndarray, config: FeaturesConfig | None = None) -> dict[str, np.ndarray]:
    """The features of one 8-bit grayscale image, as a pack computes them.

    Block arrays cover the image's own blocks; the cache holds them top-left in its grid.

    Example::

        >>> import numpy as np
        >>> from fpload.features import extract_features
        >>> f = extract_features(np.full((40, 50), 255, np.uint8))
        >>> f["orientation"].shape, f["foreground"].any(), f["thumbnail"].shape
        ((2, 3, 4), np.False_, (64, 64))
    """
    nested = run_extractors(image, resolve_extractors(config or FeaturesConfig()))
    return {name: arr for arrays in nested.values() for name, arr in arrays.items()}
