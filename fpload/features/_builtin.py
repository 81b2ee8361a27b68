"""The built-in extractors: vectorised numpy over whole blocks (no per-pixel Python loops).

All block features are computed on the image padded top-left-aligned with background (255) to
whole blocks, ``hb × wb = ceil(h / block) × ceil(w / block)``. They depend on the image's own
pixels only (gradients use edge-replicated padding and are zeroed outside the image; block
sums and neighbourhood smoothing stop at the image's block extent), so a sample gives the same
block values in any version: the packer embeds them top-left into the version's grid ``GH × GW``
and fills the other blocks with background values (orientation 0, frequency 0, foreground false).

Conventions:

- **orientation** ``float16 [2, hb, wb]``: ``(cos 2θ, sin 2θ)`` of the *ridge* direction θ,
  the angle from the +x (column) axis towards +y (row, downwards), θ in [0, π); from the
  smoothed gradient structure tensor; ``(0, 0)`` where the block holds no gradient at all.
- **frequency** ``float16 [hb, wb]``: ridge frequency in cycles per pixel (1 / ridge period),
  the spectral peak of a Hann-windowed ``window × window`` patch centred on the block,
  restricted to periods ``min_period``–``max_period``; 0 where undefined.
- **foreground** ``bool [hb, wb]``: blocks whose image pixels have a standard deviation of at
  least ``min_std`` grey levels (padding blocks are never foreground).
- **quality** ``float32 []``: an NFIQ-*inspired* proxy in 0–100 — the product of the mean
  orientation coherence over foreground blocks, the foreground area (as a fraction of
  ``min_area`` of the image, capped at 1) and the contrast (median foreground block standard
  deviation over ``contrast_ref``, capped at 1). It is **not NFIQ 2** and not comparable with it;
  use it to rank and filter samples of one collection.
- **thumbnail** ``uint8 [size, size]``: the image area-averaged to fit ``size × size`` with its
  aspect ratio kept, top-left aligned, background 255.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Callable

import numpy as np
# imported here, not on first use: the pack's fork server preloads fpload.features, so its workers
# start with scipy.fft loaded instead of each paying the import (~0.3–0.5 s) on its first sample
import scipy.fft

BACKGROUND = 255


class ImageAnalysis:
    """Intermediate results of one 8-bit image, computed lazily once and shared by the built-ins.

    Sums that feed comparisons (block pixel sums, the gradient structure tensor) are integer
    sums, exact, so they equal the float64 sums of the float32 images they stand for bit for bit.
    """

    def __init__(self, image: np.ndarray, block: int):
        if image.ndim != 2:
            raise ValueError(f"expected a 2-D 8-bit image, got shape {image.shape}")
        self.image = image
        self.block = block
        self.h, self.w = image.shape
        self.hb, self.wb = -(-self.h // block), -(-self.w // block)
        self._memo: dict[Any, Any] = {}

    @property
    def exact(self) -> bool:
        """Whether the image is whole blocks (no padding)."""
        return self.h == self.hb * self.block and self.w == self.wb * self.block

    def _to_canvas(self, a: np.ndarray) -> np.ndarray:
        """``a`` (image-sized) zero-padded bottom-right to the block canvas."""
        if self.exact:
            return a
        return np.pad(a, ((0, self.hb * self.block - self.h), (0, self.wb * self.block - self.w)))

    @cached_property
    def valid(self) -> np.ndarray:
        """Canvas-sized mask of the image's pixels."""
        v = np.zeros((self.hb * self.block, self.wb * self.block), bool)
        v[:self.h, :self.w] = True
        return v

    @cached_property
    def canvas(self) -> np.ndarray:
        """The image as float32 on the block canvas, padding with background."""
        c = np.full((self.hb * self.block, self.wb * self.block), BACKGROUND, np.float32)
        c[:self.h, :self.w] = self.image
        return c

    @cached_property
    def gradients(self) -> tuple[np.ndarray, np.ndarray]:
        """Sobel gradients (x, y) on the canvas; edge-replicated outside the image, zero on padding."""
        gx, gy = self._int_gradients
        return self._to_canvas(gx).astype(np.float32) / 8, self._to_canvas(gy).astype(np.float32) / 8

    @cached_property
    def _int_gradients(self) -> tuple[np.ndarray, np.ndarray]:
        """8 × the Sobel gradients on the image (int16: |value| ≤ 1020), edge-replicated at its border."""
        h, w = self.h, self.w
        p = np.empty((h + 2, w + 2), np.int16)  # edge-replicated by hand: np.pad's overhead is not small here
        p[1:-1, 1:-1] = self.image
        p[0, 1:-1], p[-1, 1:-1] = self.image[0], self.image[-1]
        p[:, 0], p[:, -1] = p[:, 1], p[:, -2]
        sx = p[:, 2:] - p[:, :-2]
        gx = sx[:-2] + sx[2:]
        gx += 2 * sx[1:-1]
        sy = p[2:, :] - p[:-2, :]
        gy = sy[:, :-2] + sy[:, 2:]
        gy += 2 * sy[:, 1:-1]
        return gx, gy

    def block_sum(self, a: np.ndarray) -> np.ndarray:
        """Per-block sums of a canvas-sized array (float64)."""
        b = self.block
        return a.reshape(self.hb, b, self.wb, b).sum(axis=(1, 3), dtype=np.float64)

    def _block_sum_int(self, a: np.ndarray, dtype: Any) -> np.ndarray:
        """Exact per-block sums of a canvas-sized integer array: the rows of each block row first
        (whole contiguous rows added), then the columns of the small result."""
        b = self.block
        rows = a.reshape(self.hb, b, self.wb * b).sum(axis=1, dtype=dtype)
        return rows.reshape(self.hb, self.wb, b).sum(axis=2, dtype=dtype)

    @cached_property
    def block_stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per block: image pixel count, mean and standard deviation (over image pixels only)."""
        b = self.block
        rows = np.minimum(b, self.h - b * np.arange(self.hb))
        cols = np.minimum(b, self.w - b * np.arange(self.wb))
        n = np.outer(rows, cols).astype(np.float64)
        px = self._to_canvas(self.image)
        acc = np.int32 if b * b * 255 * 255 < 2 ** 31 else np.int64
        s1 = self._block_sum_int(px, acc).astype(np.float64)
        sq = px.astype(np.uint16)
        sq *= sq  # 255² fits in uint16
        s2 = self._block_sum_int(sq, acc).astype(np.float64)
        safe = np.maximum(n, 1)
        mean = s1 / safe
        std = np.sqrt(np.maximum(s2 / safe - mean * mean, 0))
        return n, mean, std

    def tensor(self, smooth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Block sums of gx², gy², gx·gy over a (2·smooth+1)² block neighbourhood (zero outside)."""
        key = ("tensor", smooth)
        if key not in self._memo:
            if "tensor" not in self._memo:
                gx, gy = (self._to_canvas(g) for g in self._int_gradients)
                acc = np.int32 if self.block ** 2 * 1020 ** 2 < 2 ** 31 else np.int64
                gx32 = gx.astype(np.int32)
                # (8·g)² products summed exactly in integers, then / 64: the float64 sums of g² exactly
                parts = [self._block_sum_int(gx32 * gx32, acc), self._block_sum_int(np.square(gy, dtype=np.int32), acc),
                         self._block_sum_int(gx32 * gy, acc)]
                self._memo["tensor"] = tuple(t.astype(np.float64) / 64 for t in parts)
            self._memo[key] = tuple(_box_sum(t, smooth) for t in self._memo["tensor"])
        return self._memo[key]

    def orientation(self, smooth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cos 2θ, sin 2θ, coherence) per block of the ridge direction θ."""
        key = ("orientation", smooth)
        if key not in self._memo:
            gxx, gyy, gxy = self.tensor(smooth)
            a, c = gxx - gyy, 2 * gxy
            mag = np.hypot(a, c)
            energy = gxx + gyy
            ok = mag > 1e-9 * np.maximum(energy, 1e-30)
            safe = np.where(ok, mag, 1)
            # gradient direction φ has (cos 2φ, sin 2φ) = (a, c) / mag; ridges run at φ + 90°
            cos2 = np.where(ok, -a / safe, 0)
            sin2 = np.where(ok, -c / safe, 0)
            coherence = np.where(energy > 0, mag / np.where(energy > 0, energy, 1), 0)
            self._memo[key] = (cos2, sin2, coherence)
        return self._memo[key]

    def foreground(self, min_std: float) -> np.ndarray:
        n, _, std = self.block_stats
        return (n > 0) & (std >= min_std)


def _box_sum(a: np.ndarray, r: int) -> np.ndarray:
    """Sum over a (2r+1)² neighbourhood with zeros outside (2-D prefix sums, no Python loop over pixels)."""
    if r <= 0:
        return a
    p = np.pad(a, ((r + 1, r), (r + 1, r)))
    s = p.cumsum(0).cumsum(1)
    k = 2 * r + 1
    return s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]


@lru_cache(maxsize=8)
def _spectrum_band(win: int, min_period: float, max_period: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hann taper, flat indices of the rfft2 bins in the period band, and their radii (cycles/px)."""
    taper = np.hanning(win + 2)[1:-1].astype(np.float32)
    fy = np.fft.fftfreq(win)[:, None]
    fx = np.fft.rfftfreq(win)[None, :]
    radius = np.hypot(fy, fx).ravel()
    idx = np.flatnonzero((radius >= 1.0 / max_period) & (radius <= 1.0 / min_period))
    return np.outer(taper, taper), idx, radius[idx]


def _band_power(x: np.ndarray, win: int, min_period: float, max_period: float) -> tuple[np.ndarray, np.ndarray]:
    """Spectral power of the period band's bins for each ``win × win`` window of ``x``, and their radii.

    One batched real FFT over all windows (scipy.fft: pocketfft in single precision; numpy's
    FFT loops over the rows of a batch and is an order of magnitude slower on small windows).
    """
    taper, idx, radius = _spectrum_band(win, min_period, max_period)
    spec = scipy.fft.rfft2(x * taper, overwrite_x=True).reshape(*x.shape[:-2], -1)[..., idx]
    return spec.real ** 2 + spec.imag ** 2, radius


def _windows(a: np.ndarray, win: int, g: int) -> np.ndarray:
    """The ``win × win`` windows of ``a`` at a stride of ``g`` (``[rows, cols, win, win]``); a
    reshape, not a copy, when they tile ``a`` without overlap."""
    if win == g:
        gh, gw = a.shape[0] // g, a.shape[1] // g
        return a.reshape(gh, g, gw, g).transpose(0, 2, 1, 3)
    return np.lib.stride_tricks.sliding_window_view(a, (win, win))[::g, ::g]


def _frequency(an: ImageAnalysis, window: int, min_period: float, max_period: float,
               step: int = 1) -> np.ndarray:
    """Ridge frequency per block from the spectrum of a ``window``-pixel square around each group
    of ``step × step`` blocks (the frequency map is smooth, so ``step`` 2 costs a quarter of the
    FFTs for the same map), assigned to every block of the group that is inside the image."""
    b = an.block
    g = b * max(1, int(step))
    win = max(int(window), g)
    gh, gw = -(-an.hb * b // g), -(-an.wb * b // g)
    lo = (win - g) // 2
    k = g // b
    n_px, _, std = an.block_stats
    textured = (n_px > 0) & (std > 1e-3)  # blocks with some contrast of their own: no value on flat paper
    # only windows whose group holds a textured block are transformed: the others' blocks are all 0
    sel = np.pad(textured, ((0, gh * k - an.hb), (0, gw * k - an.wb))).reshape(gh, k, gw, k).any(axis=(1, 3))
    if not sel.any():
        return np.zeros((an.hb, an.wb), np.float16)
    if an.h == gh * g and an.w == gw * g and lo == 0 and win == g:  # windows tile the image: all valid
        # window sums in exact integers, whole rows first (a reduction over the window axes is slower)
        sums = an.image.reshape(gh, g, -1).sum(axis=1, dtype=np.int32).reshape(gh, gw, g).sum(axis=2)
        mean = sums[sel].astype(np.float32) / np.float32(win * win)
        x = _windows(an.image, win, g)[sel] - mean[:, None, None]
    else:
        pad = ((lo, gh * g - an.h + win - g - lo), (lo, gw * g - an.w + win - g - lo))
        # the image's pixels in float32, zero elsewhere, and the mask of them
        patches = _windows(np.pad(an.image.astype(np.float32), pad), win, g)[sel]
        v = np.zeros((gh * g + win - g, gw * g + win - g), np.float32)
        v[lo:lo + an.h, lo:lo + an.w] = 1
        patches_v = _windows(v, win, g)[sel]
        n = patches_v.sum(axis=(-2, -1))
        # float32 sums of 8-bit values over a window are exact (< 2^24)
        mean = patches.sum(axis=(-2, -1)) / np.maximum(n, 1)
        x = patches - mean[:, None, None] * patches_v
    power, radius = _band_power(x, win, float(min_period), float(max_period))
    peak = power.max(axis=-1, keepdims=True)
    # centroid of the radius over the bins near the peak (sub-bin accuracy)
    w = np.where(power >= 0.5 * peak, power, 0)
    total = w.sum(axis=-1)
    energy = np.einsum("...ij,...ij->...", x, x)
    good = (total > 0) & (energy > 1e-3 * win * win)
    groups = np.zeros((gh, gw), np.float64)
    groups[sel] = np.where(good, (w @ radius) / np.where(total > 0, total, 1), 0)
    freq = np.repeat(np.repeat(groups, k, 0), k, 1)[:an.hb, :an.wb]
    return np.where(textured, freq, 0).astype(np.float16)


def _area_rows(image: np.ndarray, m: int) -> np.ndarray:
    """:func:`_area_resize` of an 8-bit image along axis 0, from exact integer prefix sums taken
    only at the ``m + 1`` cell edges (the float64 running sums of integers are those integers)."""
    n = image.shape[0]
    edges = np.arange(m + 1) * (n / m)
    k = np.minimum(np.floor(edges).astype(np.int64), n - 1)
    if np.any(np.diff(k) <= 0):  # upscaling (or n == m): edges share rows
        return _area_resize(image.astype(np.float64), m, 0)
    if n % m == 0:  # whole rows per cell (512 → 64): every edge is a row, each cell's integral its exact sum
        return image.reshape(m, n // m, -1).sum(axis=1, dtype=np.int64) * (m / n)
    seg = np.add.reduceat(image, k, axis=0, dtype=np.int64)  # rows k[i] .. k[i+1]-1 (the last: to the end)
    cum = np.zeros((m + 1, image.shape[1]), np.int64)  # cum[i] = sum of rows < k[i]
    cum[1:] = np.cumsum(np.ascontiguousarray(seg[:-1].T), axis=1).T  # along rows of the transpose: fast
    frac = (edges - k)[:, None]
    integral = cum.astype(np.float64) + frac * image[k].astype(np.float64)
    return (integral[1:] - integral[:-1]) * (m / n)


def _area_resize(a: np.ndarray, m: int, axis: int) -> np.ndarray:
    """Area-average ``a`` to ``m`` cells along ``axis`` (exact box integration over prefix sums;
    sequential float64 sums, so the result is the same on every machine)."""
    n = a.shape[axis]
    a = np.moveaxis(a, axis, 0)
    cum = np.concatenate([np.zeros((1, *a.shape[1:])), a.cumsum(axis=0, dtype=np.float64)])
    edges = np.arange(m + 1) * (n / m)
    k = np.minimum(np.floor(edges).astype(np.int64), n - 1)
    frac = (edges - k)[:, None] if a.ndim > 1 else edges - k
    integral = cum[k] + frac * a[k]
    return np.moveaxis((integral[1:] - integral[:-1]) * (m / n), 0, axis)


def thumbnail_of(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape
    scale = size / max(h, w)
    th, tw = max(1, min(size, round(h * scale))), max(1, min(size, round(w * scale)))
    ry, rx = h // th, w // tw
    if h == th * ry and w == tw * rx and not ry & (ry - 1) and not rx & (rx - 1):
        # whole power-of-two cells (512 → 64): every partial sum of the two passes below is exact
        # (integers over powers of two), so one integer sum per cell gives the same values
        cells = image.reshape(th, ry, w).sum(axis=1, dtype=np.int64).reshape(th, tw, rx).sum(axis=2)
        small = cells * (1.0 / (ry * rx))
    else:
        small = _area_resize(_area_rows(image, th), tw, 1)
    out = np.full((size, size), BACKGROUND, np.uint8)
    out[:th, :tw] = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    return out


# -- the extractor functions: (analysis, **params) -> {array name: per-sample array} ---------------

def _ext_orientation(an: ImageAnalysis, smooth: int) -> dict[str, np.ndarray]:
    cos2, sin2, _ = an.orientation(int(smooth))
    return {"orientation": np.stack([cos2, sin2]).astype(np.float16)}


def _ext_frequency(an: ImageAnalysis, window: int, min_period: float, max_period: float,
                   step: int = 1) -> dict[str, np.ndarray]:
    return {"frequency": _frequency(an, int(window), float(min_period), float(max_period), int(step))}


def _ext_foreground(an: ImageAnalysis, min_std: float) -> dict[str, np.ndarray]:
    return {"foreground": an.foreground(float(min_std))}


def _ext_quality(an: ImageAnalysis, smooth: int, min_std: float, min_area: float,
                 contrast_ref: float) -> dict[str, np.ndarray]:
    fg = an.foreground(float(min_std))
    if not fg.any():
        return {"quality": np.float32(0.0)}
    _, _, coherence = an.orientation(int(smooth))
    n, _, std = an.block_stats
    coh = float(coherence[fg].mean())
    area = min(1.0, float(fg.sum()) / max(1.0, float((n > 0).sum())) / float(min_area))
    contrast = min(1.0, float(np.median(std[fg])) / float(contrast_ref))
    return {"quality": np.float32(round(100.0 * coh * area * contrast, 4))}


def _ext_thumbnail(an: ImageAnalysis, size: int) -> dict[str, np.ndarray]:
    return {"thumbnail": thumbnail_of(an.image, int(size))}


@dataclass(frozen=True)
class Output:
    """One array a built-in writes: ``layout`` ``block`` (last two axes are blocks) or ``sample``."""

    dtype: str
    layout: str
    shape: tuple[int, ...]  # for block outputs, the axes before the two block axes
    fill: Any


@dataclass(frozen=True)
class Builtin:
    name: str
    version: int
    fn: Callable[..., dict[str, np.ndarray]]
    defaults: dict[str, Any]
    outputs: dict[str, Output]

    def output_shape(self, array: str, params: dict[str, Any], grid: tuple[int, int]) -> tuple[int, ...]:
        out = self.outputs[array]
        if out.layout == "block":
            return (*out.shape, *grid)
        if self.name == "thumbnail":
            return (int(params["size"]), int(params["size"]))
        return out.shape


BUILTINS: dict[str, Builtin] = {b.name: b for b in [
    Builtin("orientation", 1, _ext_orientation, {"smooth": 1},
            {"orientation": Output("float16", "block", (2,), 0)}),
    Builtin("frequency", 3, _ext_frequency, {"window": 32, "min_period": 3.0, "max_period": 25.0, "step": 2},
            {"frequency": Output("float16", "block", (), 0)}),
    Builtin("foreground", 1, _ext_foreground, {"min_std": 12.0},
            {"foreground": Output("bool", "block", (), False)}),
    Builtin("quality", 1, _ext_quality, {"smooth": 1, "min_std": 12.0, "min_area": 0.4, "contrast_ref": 40.0},
            {"quality": Output("float32", "sample", (), 0)}),
    Builtin("thumbnail", 1, _ext_thumbnail, {"size": 64},
            {"thumbnail": Output("uint8", "sample", (), BACKGROUND)}),
]}
