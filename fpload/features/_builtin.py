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

from fpload import _native

BACKGROUND = 255


class ImageAnalysis:
    """Intermediate results of one 8-bit image, computed lazily once and shared by the built-ins.

    Sums that feed comparisons (block pixel sums, the gradient structure tensor) are integer
    sums, exact, so they equal the float64 sums of the float32 images they stand for bit for bit.
    Where the native library is in use (:mod:`fpload._native`) one C++ pass makes them all; the
    NumPy code below makes the same integers without it.
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

    @cached_property
    def _moments(self) -> np.ndarray | None:
        """int64 ``[5, hb, wb]`` block sums of px, px², gx², gy², gx·gy (8 × Sobel) from the native
        library in one pass, or None without it (then the NumPy code computes each)."""
        if _native.lib() is None:
            return None
        return _native.block_moments(self.image, self.block)

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
        if self._moments is not None:
            s1, s2 = self._moments[0].astype(np.float64), self._moments[1].astype(np.float64)
        else:
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
            if "tensor" not in self._memo and self._moments is not None:
                self._memo["tensor"] = tuple(t.astype(np.float64) / 64 for t in self._moments[2:])
            if "tensor" not in self._memo:
                gx, gy = (self._to_canvas(g) for g in self._int_gradients)
                acc = np.int32 if self.block ** 2 * 1020 ** 2 < 2 ** 31 else np.int64
                gx32 = gx.astype(np.int32)
                # (8·g)² products summed exactly in integers, then / 64: the float64 sums of g² exactly
                parts = [self._block_sum_int(gx32 * gx32, acc), self._block_sum_int(np.square(gy, dtype=np.int32), acc),
                         self._block_sum_int(gx32 * gy, acc)]
                self._memo["tensor"] = tuple(t.astype(np.float64) / 64 for t in parts)
            self._memo[key] = tuple(_box_sum(np.stack(self._memo["tensor"]), smooth))
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
    """Sum over a (2r+1)² neighbourhood of the last two axes, zeros outside (2-D prefix sums, no
    Python loop over pixels)."""
    if r <= 0:
        return a
    h, w = a.shape[-2:]
    p = np.zeros((*a.shape[:-2], h + 2 * r + 1, w + 2 * r + 1), a.dtype)
    p[..., r + 1:r + 1 + h, r + 1:r + 1 + w] = a
    s = p.cumsum(-2).cumsum(-1)
    k = 2 * r + 1
    return s[..., k:, k:] - s[..., :-k, k:] - s[..., k:, :-k] + s[..., :-k, :-k]


@lru_cache(maxsize=8)
def _spectrum_band(win: int, min_period: float, max_period: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hann taper, flat indices of the rfft2 bins in the period band, and their radii (cycles/px)."""
    taper = np.hanning(win + 2)[1:-1].astype(np.float32)
    fy = np.fft.fftfreq(win)[:, None]
    fx = np.fft.rfftfreq(win)[None, :]
    radius = np.hypot(fy, fx).ravel()
    idx = np.flatnonzero((radius >= 1.0 / max_period) & (radius <= 1.0 / min_period))
    return np.outer(taper, taper), idx.astype(np.int64), radius[idx]


def _freq_windows(image: np.ndarray, top: np.ndarray, left: np.ndarray, taper: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The FFT input of the windows at (``top``, ``left``) — ``(px - mean) * taper`` on the image's
    pixels, 0 elsewhere, ``mean = float32(S) / float32(max(N, 1))`` — and each window's exact
    ``S = Σ px``, ``Σ px²`` and pixel count ``N`` (int64 ``[n, 3]``). The NumPy twin of
    :func:`fpload._native.freq_windows` (same float32 operations, so the same bits)."""
    if _native.lib() is not None:
        return _native.freq_windows(image, top, left, taper)
    win = taper.shape[0]
    h, w = image.shape
    top, left = np.asarray(top, np.int64), np.asarray(left, np.int64)
    if h % win == 0 and w % win == 0 and not (top % win).any() and not (left % win).any() and top.min() >= 0 \
            and left.min() >= 0:  # windows that tile the image: views, no gathering, every pixel valid
        px = image.reshape(h // win, win, w // win, win).transpose(0, 2, 1, 3)[top // win, left // win]
        ok = None
    else:
        padded = np.zeros((h + 2 * win, w + 2 * win), np.uint8)
        padded[win:win + h, win:win + w] = image
        valid = np.zeros(padded.shape, bool)
        valid[win:win + h, win:win + w] = True
        # window k's rows and columns in the padded frame (each within it: |top| < win past the edge)
        rows = (top + win)[:, None, None] + np.arange(win)[None, :, None]
        cols = (left + win)[:, None, None] + np.arange(win)[None, None, :]
        px, ok = padded[rows, cols], valid[rows, cols]
    wide = px.astype(np.int64)
    count = np.full(len(top), win * win, np.int64) if ok is None else ok.sum(axis=(1, 2))
    sums = np.stack([wide.sum(axis=(1, 2)), (wide * wide).sum(axis=(1, 2)), count], axis=1)
    mean = sums[:, 0].astype(np.float32) / np.maximum(count, 1).astype(np.float32)
    x = (px.astype(np.float32) - mean[:, None, None]) * taper
    if ok is not None:
        x = np.where(ok, x, np.float32(0))
    return x.astype(np.float32, copy=False), sums


def _band_stats(spec: np.ndarray, idx: np.ndarray, radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per spectrum (complex64 ``[n, ...]``), over its bins ``idx`` of the period band: power
    ``p = re² + im²`` (float32), weights ``q = p`` where ``p >= 0.5 · max p`` else 0, and in float64
    summed in bin order (cumsum: sequential) the ``total = Σ q`` and ``moment = Σ q · radius``.
    The NumPy twin of :func:`fpload._native.band_stats`."""
    if _native.lib() is not None:
        return _native.band_stats(spec, idx, radius)
    bins = spec.reshape(spec.shape[0], -1)[:, idx]
    if bins.shape[1] == 0:
        return np.zeros(spec.shape[0]), np.zeros(spec.shape[0])
    power = bins.real * bins.real + bins.imag * bins.imag
    peak = power.max(axis=1, keepdims=True)
    q = np.where(power >= np.float32(0.5) * peak, power, np.float32(0)).astype(np.float64)
    return np.cumsum(q, axis=1)[:, -1], np.cumsum(q * radius, axis=1)[:, -1]


def _frequency(an: ImageAnalysis, window: int, min_period: float, max_period: float,
               step: int = 1) -> np.ndarray:
    """Ridge frequency per block from the spectrum of a ``window``-pixel square around each group
    of ``step × step`` blocks (the frequency map is smooth, so ``step`` 2 costs a quarter of the
    FFTs for the same map), assigned to every block of the group that is inside the image.

    Per window: its image pixels less their mean, Hann-tapered, one batched real FFT (scipy.fft:
    pocketfft in single precision) for all windows; the value is the centroid of the radius over
    the band's bins whose power is at least half the peak's; 0 where the window's variance
    ``Σ (px - mean)²`` (exact, from integer sums) is at most ``1e-3 · window²``.
    """
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
    taper, idx, radius = _spectrum_band(win, float(min_period), float(max_period))
    gy, gx = np.nonzero(sel)
    x, sums = _freq_windows(an.image, gy * g - lo, gx * g - lo, taper)
    total, moment = _band_stats(scipy.fft.rfft2(x, overwrite_x=True), idx, radius)
    s1, s2, count = sums[:, 0], sums[:, 1], sums[:, 2]
    # N · Σ (px - mean)² = N · Σ px² - (Σ px)², an exact integer
    varied = (count * s2 - s1 * s1).astype(np.float64) > 1e-3 * win * win * count.astype(np.float64)
    good = (total > 0) & varied
    groups = np.zeros((gh, gw), np.float64)
    groups[sel] = np.where(good, moment / np.where(total > 0, total, 1), 0)
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
        if _native.lib() is not None:
            cells = _native.cell_sums(image, ry, rx)
        else:
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
    Builtin("frequency", 4, _ext_frequency, {"window": 32, "min_period": 3.0, "max_period": 25.0, "step": 2},
            {"frequency": Output("float16", "block", (), 0)}),
    Builtin("foreground", 1, _ext_foreground, {"min_std": 12.0},
            {"foreground": Output("bool", "block", (), False)}),
    Builtin("quality", 1, _ext_quality, {"smooth": 1, "min_std": 12.0, "min_area": 0.4, "contrast_ref": 40.0},
            {"quality": Output("float32", "sample", (), 0)}),
    Builtin("thumbnail", 1, _ext_thumbnail, {"size": 64},
            {"thumbnail": Output("uint8", "sample", (), BACKGROUND)}),
]}
