"""The pack config: how ``fpload pack`` turns a selection into a version (``configs/pack/*.yaml``).

Example::

    >>> from fpload.pack import PackConfig
    >>> PackConfig.from_dict({"encoding": "png", "shard_max_samples": 500}).to_dict()["encoding"]
    'png'
    >>> PackConfig.from_dict({"encodng": "png"})
    Traceback (most recent call last):
    ...
    fpload.errors.ConfigError: pack config: key 'encodng': unknown key (allowed: allow_subject_overlap, ...
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from fpload._frozen import FrozenConfig
from fpload.catalog._schema import PURPOSE_NAME, SPLIT_NAME
from fpload.features._config import FeaturesConfig


Encoding = Literal["passthrough", "png", "jpeg", "raw", "raw-lz4"]
LabelKind = Literal["subject_finger", "subject", "finger"]


class PackConfig(FrozenConfig):
    """How ``fpload pack`` turns a selection into a version. Every field enters the version id.

    - ``encoding``: ``passthrough`` keeps the source bytes; ``png``/``jpeg`` transcode; ``raw`` stores
      8-bit pixels that DALI reshapes without a codec; ``raw-lz4`` LZ4-compresses them (inflated on
      the GPU).
    - shards are cut at ``shard_max_samples`` samples or ``shard_max_mb`` megabytes, whichever
      comes first (either may be null, not both).
    - ``splits``: fractions of subjects per split for samples whose catalog ``split`` is unset;
      the assignment hashes ``(split_seed, subject_id)`` so no subject lands in two splits.
    - ``label``: the integer class written to ``cls``: one per finger of a subject
      (``subject_finger``, the identity for recognition), per subject, or the finger code.
    - ``resample_to_ppi``: resample every sample of another resolution to this one at pack time
      (e.g. 500: networks expect one scale), with Pillow's Lanczos filter, to
      ``round(width × resample_to_ppi / ppi)`` pixels wide (height alike); the json member keeps
      ``source_ppi``, and a passthrough version stores such samples as PNG (counted in the
      manifest's ``transcoded``). None (default): no resampling, and absent from the version id's
      settings, so versions packed before the setting existed keep their ids.
    - ``purpose``: what the version is for (e.g. ``training``); a sample whose ``consent_scope``
      is set and lacks it counts as without consent (see ``allow_without_consent``). None: no
      purpose check. Consent past its ``consent_until`` counts as withdrawn either way.
    """

    encoding: Encoding = "passthrough"
    jpeg_quality: int = Field(95, ge=1, le=100)
    png_compress_level: int = Field(6, ge=0, le=9)
    shard_max_samples: int | None = Field(1000, ge=1)
    shard_max_mb: float | None = Field(256.0, gt=0)
    splits: dict[str, float] = Field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    split_seed: int = 0
    label: LabelKind = "subject_finger"
    allow_without_consent: bool = False
    allow_subject_overlap: bool = False
    purpose: str | None = None
    resample_to_ppi: int | None = Field(None, ge=50, le=10000)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)

    @field_validator("splits")
    @classmethod
    def _check_splits(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("at least one split is needed")
        for name, frac in v.items():
            if not SPLIT_NAME.fullmatch(name):  # the catalog's rule (ASCII letters, digits, '_')
                raise ValueError(f"split name {name!r} must be letters, digits or '_'")
            if frac < 0:
                raise ValueError(f"split {name!r} has a negative fraction {frac}")
        total = sum(v.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, they sum to {total:g}")
        return v

    @field_validator("purpose")
    @classmethod
    def _check_purpose(cls, v: str | None) -> str | None:
        if v is not None and not PURPOSE_NAME.fullmatch(v):
            raise ValueError(f"purpose {v!r} must be 1-64 letters, digits, '_' or '-' (e.g. training)")
        return v

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the inverse of :meth:`from_dict`); ``resample_to_ppi`` only when set."""
        out = super().to_dict()
        if out.get("resample_to_ppi") is None:
            out.pop("resample_to_ppi", None)
        return out

    @model_validator(mode="after")
    def _check_shard_limits(self) -> "PackConfig":
        if self.shard_max_samples is None and self.shard_max_mb is None:
            raise ValueError("set shard_max_samples, shard_max_mb or both")
        return self
