"""The augmentation config: one frozen pydantic sub-model per operator, plus the output format.

Defaults give a sensible fingerprint training augmentation; :meth:`AugmentOps.identity` gives
identity output. YAML in ``configs/loader/`` is parsed with :meth:`AugmentOps.from_dict`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from fpload._frozen import FrozenConfig

Range = tuple[float, float]


class _Frozen(FrozenConfig):

    def _check_ranges(self, *names: str, lower: float | None = None, strict: bool = False) -> None:
        for name in names:
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"`{name}` must have lo <= hi, got [{lo}, {hi}]")
            if lower is not None and (lo <= lower if strict else lo < lower):
                raise ValueError(f"`{name}` must be {'>' if strict else '>='} {lower}, got [{lo}, {hi}]")


class WarpOps(_Frozen):
    """``fn.fpload_warp``: rotation, scale, translation and skin distortion in one pass."""

    enabled: bool = True
    angle: Range = (-15.0, 15.0)
    scale: Range = (0.9, 1.1)
    translate: Range = Field(default=(12.0, 12.0), description="max |shift| [x, y] in pixels")
    distortion: float = Field(default=6.0, ge=0.0, description="max node displacement, pixels")
    grid: int = Field(default=4, ge=2, le=8)
    interp: Literal["linear", "nearest"] = "linear"
    fill: float = Field(default=255.0, ge=0.0, le=255.0)
    size: tuple[int, int] | None = Field(default=None, description="output [height, width]")
    center_mode: Literal["image", "foreground"] = "foreground"
    fg_threshold: int = Field(default=200, ge=0, le=256)

    @model_validator(mode="after")
    def _valid(self) -> WarpOps:
        self._check_ranges("angle")
        self._check_ranges("scale", lower=0.0, strict=True)
        if min(self.translate) < 0:
            raise ValueError(f"`translate` magnitudes must be >= 0, got {self.translate}")
        if self.size is not None and min(self.size) <= 0:
            raise ValueError(f"`size` must be positive [height, width], got {self.size}")
        return self

    def op_kwargs(self) -> dict[str, Any]:
        kw = self.model_dump(exclude={"enabled", "size"})
        kw = {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}
        if self.size is not None:
            kw["size"] = list(self.size)
        return kw


class OcclusionOps(_Frozen):
    """``fn.fpload_occlusion``: partial prints (contact ellipse, sensor window, erasing, blobs)."""

    enabled: bool = True
    fill: int = Field(default=255, ge=0, le=255)
    contact_prob: float = Field(default=0.5, ge=0.0, le=1.0)
    contact_axes: Range = (0.6, 1.0)
    contact_jitter: float = Field(default=0.1, ge=0.0)
    window_prob: float = Field(default=0.2, ge=0.0, le=1.0)
    window_size: Range = (0.6, 0.95)
    erase_max: int = Field(default=1, ge=0, le=4)
    erase_area: Range = (0.02, 0.06)
    blob_max: int = Field(default=2, ge=0, le=4)
    blob_radius: Range = (0.03, 0.08)

    @model_validator(mode="after")
    def _valid(self) -> OcclusionOps:
        self._check_ranges("contact_axes", "window_size", lower=0.0, strict=True)
        self._check_ranges("erase_area", "blob_radius", lower=0.0)
        return self

    def op_kwargs(self) -> dict[str, Any]:
        kw = self.model_dump(exclude={"enabled"})
        return {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}


class PhotometricOps(_Frozen):
    """``fn.fpload_photometric``: tone, noise, blur, dry/wet, inversion in one pass."""

    enabled: bool = True
    contrast: Range = (0.75, 1.3)
    brightness: Range = Field(default=(-0.08, 0.08), description="fraction of full scale")
    gamma: Range = (0.8, 1.25)
    noise_std: Range = Field(default=(0.0, 8.0), description="grey levels")
    blur_prob: float = Field(default=0.2, ge=0.0, le=1.0)
    blur_strength: Range = (0.3, 1.0)
    dry_prob: float = Field(default=0.15, ge=0.0, le=1.0)
    wet_prob: float = Field(default=0.15, ge=0.0, le=1.0)
    invert_prob: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _valid(self) -> PhotometricOps:
        self._check_ranges("contrast", "noise_std", lower=0.0)
        self._check_ranges("gamma", lower=0.0, strict=True)
        self._check_ranges("brightness", lower=-1.0)
        self._check_ranges("blur_strength", lower=0.0)
        if self.brightness[1] > 1.0 or self.blur_strength[1] > 1.0:
            raise ValueError("`brightness` must lie in [-1, 1] and `blur_strength` in [0, 1]")
        if self.dry_prob + self.wet_prob > 1.0:
            raise ValueError(f"`dry_prob` + `wet_prob` must be <= 1, got {self.dry_prob + self.wet_prob}")
        return self

    def op_kwargs(self) -> dict[str, Any]:
        kw = self.model_dump(exclude={"enabled"})
        return {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}


class OutputOps(_Frozen):
    """Output format of the chain: uint8 grey levels, or float32/float16 as (v - mean) / std."""

    dtype: Literal["uint8", "float32", "float16"] = "float32"
    mean: float = Field(default=127.5, description="grey levels")
    std: float = Field(default=127.5, gt=0.0, description="grey levels")


class AugmentOps(_Frozen):
    """The whole augmentation chain: warp → occlusion → photometric, then the output format."""

    warp: WarpOps = WarpOps()
    occlusion: OcclusionOps = OcclusionOps()
    photometric: PhotometricOps = PhotometricOps()
    output: OutputOps = OutputOps()

    @classmethod
    def identity(cls) -> AugmentOps:
        """Every operator off and uint8 output: the chain returns its input unchanged."""
        return cls(
            warp=WarpOps(enabled=False), occlusion=OcclusionOps(enabled=False),
            photometric=PhotometricOps(enabled=False), output=OutputOps(dtype="uint8", mean=0.0, std=1.0),
        )
