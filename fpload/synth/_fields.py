"""Smooth random fields and the fingertip foreground: the shared ground floor of the generator.

Everything here is vectorised numpy on ``(height, width)`` float32 arrays, indexed ``[y, x]``
with ``y`` pointing down. Random fields are drawn from a caller's ``numpy.random.Generator`` so
that every value derives from the (seed, subject, finger) seed sequence.
"""

from __future__ import annotations

import numpy as np


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """A zero-mean, unit-variance Gaussian random field with correlation length ``scale`` pixels.

    White noise low-passed by a Gaussian in the Fourier domain (FFT, so periodic at the borders;
    callers use scales well below the image size).
    """
    height, width = shape
    white = rng.standard_normal(shape).astype(np.float32)
    fy = np.fft.fftfreq(height).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(width).astype(np.float32)[None, :]
    sigma_f = 1.0 / (2.0 * np.pi * max(scale, 1e-3))
    gain = np.exp(-(fx * fx + fy * fy) / (2.0 * sigma_f * sigma_f))
    field = np.fft.irfft2(np.fft.rfft2(white) * gain, s=shape).astype(np.float32)
    field -= field.mean()
    std = float(field.std())
    return field / std if std > 0 else field


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur by FFT (periodic borders), ``sigma`` in pixels; returns float32."""
    if sigma <= 0:
        return image.astype(np.float32, copy=False)
    height, width = image.shape
    fy = np.fft.fftfreq(height).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(width).astype(np.float32)[None, :]
    gain = np.exp(-2.0 * (np.pi * sigma) ** 2 * (fx * fx + fy * fy))
    return np.fft.irfft2(np.fft.rfft2(image) * gain, s=image.shape).astype(np.float32)


def pixel_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Float32 ``(x, y)`` coordinate grids of a ``(height, width)`` image."""
    height, width = shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return x, y


def fingertip_mask(
    shape: tuple[int, int],
    center: tuple[float, float],
    half_width: float,
    top: float,
    bottom: float,
    softness: float = 3.0,
) -> np.ndarray:
    """A soft fingertip foreground in ``[0, 1]``: an ellipse on top, a squarer superellipse below.

    ``center`` is ``(x, y)``; ``top`` and ``bottom`` are the vertical semi-axes above and below it
    (the SFinGe fingertip: rounded tip, flatter flanks toward the first crease). The edge ramps
    over about ``softness`` pixels.
    """
    x, y = pixel_grid(shape)
    dx = (x - center[0]) / half_width
    dy = y - center[1]
    upper = np.sqrt(dx * dx + (dy / top) ** 2)
    lower = (np.abs(dx) ** 3 + np.abs(dy / bottom) ** 3) ** (1.0 / 3.0)
    radius = np.where(dy < 0, upper, lower)
    edge = (1.0 - radius) * min(half_width, top, bottom) / softness
    return np.clip(edge + 0.5, 0.0, 1.0).astype(np.float32)


def bilinear_sample(image: np.ndarray, qx: np.ndarray, qy: np.ndarray, fill: float) -> np.ndarray:
    """``image`` read at float pixel positions ``(qx, qy)``, bilinearly; ``fill`` outside it."""
    return bilinear_sampler(image.shape, qx, qy)(image, fill)


def bilinear_sampler(shape: tuple[int, ...], qx: np.ndarray, qy: np.ndarray):  # noqa: ANN201 - a closure
    """Precompute bilinear reads at ``(qx, qy)`` for images of ``shape``: ``read(image, fill)``."""
    height, width = shape[0], shape[1]
    x0 = np.floor(qx)
    y0 = np.floor(qy)
    fx = (qx - x0).astype(np.float32)
    fy = (qy - y0).astype(np.float32)
    inside = (x0 >= 0) & (y0 >= 0) & (x0 < width - 1) & (y0 < height - 1)
    idx = np.clip(y0, 0, height - 2).astype(np.intp) * width + np.clip(x0, 0, width - 2).astype(np.intp)
    w00 = (1 - fx) * (1 - fy)
    w01 = fx * (1 - fy)
    w10 = (1 - fx) * fy
    w11 = fx * fy

    def read(image: np.ndarray, fill: float) -> np.ndarray:
        flat = image.ravel()
        out = flat[idx] * w00 + flat[idx + 1] * w01 + flat[idx + width] * w10 + flat[idx + width + 1] * w11
        return np.where(inside, out, np.float32(fill)).astype(np.float32, copy=False)

    return read


def _upsample_axis(field: np.ndarray, n_out: int, step: float, axis: int) -> np.ndarray:
    """Linear interpolation along ``axis`` from samples ``step`` apart (offset one) to ``n_out``."""
    pos = np.arange(n_out, dtype=np.float64) / step + 1.0
    i0 = np.clip(np.floor(pos).astype(np.intp), 0, field.shape[axis] - 2)
    frac = (pos - i0).astype(np.float32)
    lo, hi = np.take(field, i0, axis=axis), np.take(field, i0 + 1, axis=axis)
    frac = frac[:, None] if axis == 0 else frac[None, :]
    return lo + (hi - lo) * frac


def coarse_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Like :func:`smooth_noise` for large ``scale``, but drawn on a coarse grid and upsampled.

    About as smooth and far cheaper: the coarse grid has a sample every ``scale / 3`` pixels,
    upsampled bilinearly one axis at a time.
    """
    step = max(1.0, scale / 3.0)
    height, width = shape
    small = (max(int(np.ceil(height / step)) + 3, 8), max(int(np.ceil(width / step)) + 3, 8))
    field = smooth_noise(rng, small, scale / step)
    rows = _upsample_axis(field, height, step, 0)
    return _upsample_axis(rows, width, step, 1).astype(np.float32, copy=False)
