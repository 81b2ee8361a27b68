"""FeaturesConfig: which extractors a pack runs and how the feature cache is stored.

It is the ``features:`` key of a pack config (:class:`fpload.pack.PackConfig`), so every field
enters the version id. Example (YAML)::

    features:
      enabled: true
      block: 16                 # block size of the block features, pixels
      codec: zstd               # zstd | blosc
      level: 5                  # compression level
      extractors:
        - orientation           # a built-in, by name, with its default params
        - {name: frequency, params: {min_period: 4}}
        - {name: embedding, function: "mypkg.features:embed", version: 2, params: {dim: 64}}
        - {name: pyfing.orientation, params: {method: deep}}   # extra fpload[pyfing]
        - pyfing.minutiae                                      # LEADER: minutiae [N, 128, 4]

An extractor given only by ``name`` is a built-in or, failing that, an entry point of the group
``fpload.extractors``; ``function: "module:function"`` names any importable function.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from fpload._frozen import FrozenConfig

#: the extractors a pack runs when the config names none
DEFAULT_EXTRACTORS = ("orientation", "frequency", "foreground", "quality", "thumbnail")

#: a letter then letters, digits or '_'; dotted parts name a family (``pyfing.orientation``)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class ExtractorSpec(FrozenConfig):
    """One extractor: a name, where its function lives, its version and its parameters.

    - ``name``: a built-in (``orientation``, ``frequency``, ``foreground``, ``quality``,
      ``thumbnail``), a pyfing extractor (``pyfing.segmentation``, ``pyfing.orientation``,
      ``pyfing.frequency``, ``pyfing.minutiae``; extra ``fpload[pyfing]``, see
      :mod:`fpload.features._pyfing`), an entry point of the group ``fpload.extractors``, or the label of a
      ``function``.
    - ``function``: ``module:function`` of a custom extractor; it takes the 8-bit image (a 2-D
      numpy array) and the params as keywords, and returns a dict of fixed-shape arrays.
    - ``version``: the extractor's version; null takes the built-in's (or the function's
      ``fpload_version`` attribute, else 1). Bump it whenever its output changes, so caches of
      the old version are not reused.
    - ``params``: keyword arguments; built-ins fill in their defaults.
    """

    name: str
    function: str | None = None
    version: int | None = Field(None, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _NAME.match(v) or v == "sample_id":
            raise ValueError(f"extractor name {v!r} must be a letter then letters, digits or '_', "
                             "optionally in dotted parts like 'pyfing.orientation' (and not 'sample_id')")
        return v

    @field_validator("function")
    @classmethod
    def _check_function(cls, v: str | None) -> str | None:
        if v is not None and not _FUNCTION.match(v):
            raise ValueError(f"function {v!r} must look like 'package.module:function'")
        return v


class FeaturesConfig(FrozenConfig):
    """The feature cache of a pack (``features.zarr`` in the version).

    - ``enabled``: write a feature cache (true by default: every version gets one).
    - ``extractors``: names or :class:`ExtractorSpec` mappings, run in this order.
    - ``block``: block size in pixels of the block features (orientation, frequency,
      foreground); their arrays are ``[N, ..., GH, GW]`` with ``GH × GW`` the version's largest
      image rounded up to whole blocks.
    - ``codec`` / ``level``: Zarr compression, ``zstd`` (default) or ``blosc`` (zstd inside,
      byte shuffle), and its level.
    """

    enabled: bool = True
    extractors: tuple[ExtractorSpec, ...] = Field(
        default_factory=lambda: tuple(ExtractorSpec(name=n) for n in DEFAULT_EXTRACTORS))
    block: int = Field(16, ge=4, le=256)
    codec: Literal["zstd", "blosc"] = "zstd"
    level: int = Field(5, ge=1, le=19)

    @field_validator("extractors", mode="before")
    @classmethod
    def _names_to_specs(cls, v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return tuple({"name": x} if isinstance(x, str) else x for x in v)
        return v

    @model_validator(mode="after")
    def _check_unique(self) -> "FeaturesConfig":
        if self.enabled and not self.extractors:
            raise ValueError("no extractors: list at least one, or set enabled: false")
        seen: set[str] = set()
        for spec in self.extractors:
            if spec.name in seen:
                raise ValueError(f"extractor {spec.name!r} is listed twice")
            seen.add(spec.name)
        if self.codec == "blosc" and self.level > 9:
            raise ValueError(f"blosc levels are 1–9, got {self.level}")
        return self
