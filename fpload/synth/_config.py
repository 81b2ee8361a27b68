"""The settings of a synthesis run: one frozen, validated config object.

Every bad value raises :class:`fpload.errors.UsageError` (or :class:`~fpload.errors.ConfigError`
from :meth:`SynthConfig.from_dict`) naming the argument, the value and what is allowed.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from fpload.errors import ConfigError, UsageError

FORMATS: dict[str, str] = {"png": ".png", "jp2": ".jp2", "wsq": ".wsq"}
MIN_SIZE = 128
MAX_SIZE = 4096
PPI_RANGE = (250, 1000)
PERIOD_LIMITS = (5.0, 20.0)  # allowed ridge periods, pixels at 500 ppi
MAX_FINGERS = 10
SENSOR_NAMES = ("syn-optical", "syn-capacitive", "syn-thermal-swipe", "syn-latent-like")
FORMAT_VERSION = 2  # of the metadata written; bump when its keys change meaning (2: namespaced subject ids)
SUBJECT_PREFIX = "syn"
_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,30}[A-Za-z0-9])?")


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`fpload.synth.synthesize` generates.

    Subjects are numbered ``1..subjects``; their ``subject_id`` carries the ``subject_prefix``
    and a namespace derived from the seed, ``"<prefix>-s<seed>-<number>"`` (``"syn-s0-000001"``
    ...), so runs with different seeds or prefixes never share an identity. Fingers carry
    the ANSI/NIST finger position codes ``1..fingers`` (1 right thumb ... 5 right little,
    6 left thumb ... 10 left little), impressions ``0..impressions-1``. ``ridge_period`` is the
    (min, max) ridge period in pixels at 500 ppi, scaled with ``ppi``. Each impression uses one
    of ``sensors`` (``optical``, ``capacitive``, ``thermal-swipe``, ``latent-like``; stored as
    ``syn-optical`` ...), drawn per impression with ``sensor_weights`` (default: equal).

    Example: ``SynthConfig(subjects=10, sensors=("optical", "capacitive"), sensor_weights=(3, 1))``
    """

    subjects: int
    fingers: int = 2
    impressions: int = 4
    seed: int = 0
    size: int = 512
    ppi: int = 500
    fmt: str = "png"
    workers: int | None = None
    ridge_period: tuple[float, float] = (7.5, 11.5)
    sensors: tuple[str, ...] = ("syn-optical",)
    sensor_weights: tuple[float, ...] | None = None
    subject_prefix: str = SUBJECT_PREFIX

    def __post_init__(self) -> None:
        _check_int("subjects", self.subjects, 1, None)
        _check_int("fingers", self.fingers, 1, MAX_FINGERS)
        _check_int("impressions", self.impressions, 1, None)
        _check_int("seed", self.seed, 0, None)
        _check_int("size", self.size, MIN_SIZE, MAX_SIZE)
        _check_int("ppi", self.ppi, *PPI_RANGE)
        if self.workers is not None:
            _check_int("workers", self.workers, 1, None)
        if self.fmt not in FORMATS:
            raise UsageError(f"format: unknown image format {self.fmt!r}; allowed: {', '.join(FORMATS)}")
        period = tuple(self.ridge_period)
        if (
            len(period) != 2
            or not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in period)
            or not PERIOD_LIMITS[0] <= period[0] <= period[1] <= PERIOD_LIMITS[1]
        ):
            raise UsageError(
                f"ridge_period: {self.ridge_period!r} is not a (min, max) pair with "
                f"{PERIOD_LIMITS[0]} <= min <= max <= {PERIOD_LIMITS[1]} (pixels at 500 ppi)"
            )
        object.__setattr__(self, "ridge_period", (float(period[0]), float(period[1])))
        sensors = (self.sensors,) if isinstance(self.sensors, str) else tuple(self.sensors)
        named = tuple(s if isinstance(s, str) and s.startswith("syn-") else f"syn-{s}" for s in sensors)
        if not sensors or any(s not in SENSOR_NAMES for s in named) or len(set(named)) != len(named):
            raise UsageError(
                f"sensors: {list(sensors)!r} must be a non-empty list of distinct names from: "
                f"{', '.join(n[4:] for n in SENSOR_NAMES)} (allowed: with or without 'syn-')"
            )
        object.__setattr__(self, "sensors", named)
        if self.sensor_weights is not None:
            weights = tuple(self.sensor_weights)
            if (
                len(weights) != len(named)
                or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in weights)
                or not sum(weights) > 0
            ):
                raise UsageError(
                    f"sensor_weights: {list(weights)!r} must be {len(named)} non-negative numbers (one per sensor, "
                    "not all zero); allowed: e.g. [3, 1]"
                )
            object.__setattr__(self, "sensor_weights", tuple(float(w) for w in weights))
        if not isinstance(self.subject_prefix, str) or not _PREFIX_PATTERN.fullmatch(self.subject_prefix):
            raise UsageError(
                f"subject_prefix: {self.subject_prefix!r} is not allowed; allowed: 1-32 letters, digits, "
                "'.', '_' or '-', starting and ending with a letter or digit"
            )

    def draw_sensor(self, rng: Any) -> str:
        """One sensor for an impression, drawn from ``rng`` with ``sensor_weights``."""
        if len(self.sensors) == 1:
            return self.sensors[0]
        if self.sensor_weights is None:
            return self.sensors[int(rng.integers(len(self.sensors)))]
        total = sum(self.sensor_weights)
        return self.sensors[int(rng.choice(len(self.sensors), p=[w / total for w in self.sensor_weights]))]

    def subject_id(self, subject: int) -> str:
        """The catalog ``subject_id`` of subject number ``subject``: ``"syn-s0-000012"``.

        ``<prefix>-s<seed>-<number>``: the two last fields have a fixed form, so distinct
        (prefix, seed, number) triples never give the same id.
        """
        return f"{self.subject_prefix}-s{self.seed}-{subject:06d}"

    @property
    def worker_count(self) -> int:
        """``workers``, or the machine's CPU count when it is ``None``."""
        return self.workers if self.workers is not None else max(1, os.cpu_count() or 1)

    @property
    def finger_codes(self) -> tuple[int, ...]:
        """The ANSI/NIST finger position codes generated: ``1..fingers``."""
        return tuple(range(1, self.fingers + 1))

    def period_range_px(self) -> tuple[float, float]:
        """``ridge_period`` in output pixels (scaled from 500 ppi to ``ppi``)."""
        scale = self.ppi / 500.0
        return self.ridge_period[0] * scale, self.ridge_period[1] * scale

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples as lists)."""
        out = asdict(self)
        out["ridge_period"] = list(self.ridge_period)
        out["sensors"] = list(self.sensors)
        if self.sensor_weights is not None:
            out["sensor_weights"] = list(self.sensor_weights)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthConfig:
        """Build from a mapping (e.g. parsed YAML); unknown keys raise :class:`ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError(f"synth config: expected a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"synth config: unknown key(s) {unknown}; allowed: {sorted(known)}")
        values = dict(data)
        for key in ("ridge_period", "sensors", "sensor_weights"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except UsageError as err:
            raise ConfigError(f"synth config: {err}") from err
        except TypeError as err:  # a required key is missing
            raise ConfigError(f"synth config: {err}") from err


def _check_int(name: str, value: object, low: int, high: int | None) -> None:
    """Raise a :class:`UsageError` unless ``value`` is an int in ``[low, high]``."""
    allowed = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name}: {value!r} is not an integer; allowed: {allowed}")
    if value < low or (high is not None and value > high):
        raise UsageError(f"{name}: {value} is out of range; allowed: {allowed}")
