"""Ridge growth: orientation- and frequency-tuned Gabor-like filtering from noise (SFinGe style).

A random start image is filtered repeatedly, each pixel by the band-pass filter tuned to its own
ridge orientation and frequency, and saturated; after a few rounds the image settles into
continuous ridges that follow the orientation field at the requested period, with ridge
endings and bifurcations wherever the field demands more or fewer ridges.

Space-varying filtering without per-pixel loops: the filters are *steerable*. Their Fourier
response is ``R(rho) * cos(phi - theta_n) ** (2n)`` (``theta_n`` the ridge normal), whose angular
part is a short sum of harmonics ``exp(2im phi)``. So each round costs one forward FFT and
``bins * (n + 1)`` inverse FFTs, and every pixel mixes those responses with weights from its own
orientation (angular harmonics) and frequency (hat weights over a few radial bins). The growth
runs on a grid subsampled so that a ridge period is about 5 samples, and the result is upsampled
in the Fourier domain (exact for the band-limited response).
"""

from __future__ import annotations

from math import comb

import numpy as np

from fpload.synth._fields import gaussian_blur

ANGULAR_ORDER = 6  # cos^12: half-width at half maximum about 19 degrees
GROWTH_PERIOD = 5.0  # target ridge period on the growth grid, in samples


def growth_factor(mean_period: float) -> int:
    """Subsampling factor of the growth grid for a mean ridge period in output pixels."""
    return max(1, int(round(mean_period / GROWTH_PERIOD)))


def grow_ridges(
    rng: np.random.Generator,
    theta: np.ndarray,
    period: np.ndarray,
    iterations: int = 10,
) -> np.ndarray:
    """A ridge field in ``[-1, 1]`` (ridges positive) following ``theta`` at ``period`` pixels.

    ``theta`` and ``period`` are full-resolution maps; the result has the same shape.
    """
    shape = theta.shape
    factor = growth_factor(float(period.mean()))
    th = theta[::factor, ::factor]
    freq = factor / period[::factor, ::factor]
    grid = th.shape
    fy = np.fft.fftfreq(grid[0]).astype(np.float32)[:, None]
    fx = np.fft.fftfreq(grid[1]).astype(np.float32)[None, :]
    rho = np.sqrt(fx * fx + fy * fy)
    phi = np.arctan2(fy, fx)

    f_lo, f_hi = float(freq.min()), float(freq.max())
    bins = np.array([f_lo, f_hi]) if f_hi - f_lo > 0.01 else np.array([0.5 * (f_lo + f_hi)])
    sigma_rho = max(0.12 * float(bins.mean()), 0.5 * float(np.ptp(bins)) if bins.size > 1 else 0.0)
    if bins.size > 1:
        w_hi = ((freq - f_lo) / (f_hi - f_lo)).astype(np.float32)
        bin_weights = [1.0 - w_hi, w_hi]
    else:
        bin_weights = [np.ones(grid, np.float32)]

    normal = th + np.float32(np.pi / 2)
    n = ANGULAR_ORDER
    coeff = [comb(2 * n, n) / 4.0**n] + [2.0 * comb(2 * n, n - m) / 4.0**n for m in range(1, n + 1)]
    harmonics = _powers(np.exp(2j * phi).astype(np.complex64), n)
    steer = [p * np.float32(c) for p, c in zip(_powers(np.exp(-2j * normal).astype(np.complex64), n), coeff)]
    radial = [np.exp(-((rho - f) ** 2) / (2.0 * sigma_rho**2)).astype(np.float32) for f in bins]
    # per-pixel weights of every (bin, harmonic) response, and the matching filters
    filters = [r * h for r in radial for h in harmonics]
    weights = [bw * s for bw in bin_weights for s in steer]

    parts = [(np.ascontiguousarray(w.real), np.ascontiguousarray(w.imag)) for w in weights]

    def respond(image: np.ndarray) -> np.ndarray:
        spectrum = np.fft.fft2(image)
        out = np.zeros(grid, np.float32)
        for filt, (w_re, w_im) in zip(filters, parts):
            z = np.fft.ifft2(spectrum * filt)
            out += z.real * w_re - z.imag * w_im
        return out

    image = rng.standard_normal(grid).astype(np.float32)
    for _ in range(iterations):
        response = respond(image)
        scale = 2.0 / (float(np.sqrt(np.mean(response * response))) + 1e-12)
        image = np.clip(response * scale, -1.0, 1.0)
    response = respond(image)
    full = _fourier_upsample(response, factor)[: shape[0], : shape[1]]
    local = np.sqrt(gaussian_blur(full * full, float(period.mean())) + 1e-12)
    return np.tanh(1.5 * full / local).astype(np.float32)


def _powers(base: np.ndarray, n: int) -> list[np.ndarray]:
    """``[base**0, base**1, ..., base**n]`` by repeated multiplication (complex64)."""
    out = [np.ones(base.shape, np.complex64), base]
    for _ in range(2, n + 1):
        out.append(out[-1] * base)
    return out[: n + 1]


def _fourier_upsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Band-limited upsampling by zero-padding the spectrum (``factor`` 1 returns a copy)."""
    if factor == 1:
        return image.astype(np.float32, copy=True)
    h, w = image.shape
    spec = np.fft.rfft2(image)
    big = np.zeros((h * factor, w * factor // 2 + 1), np.complex64)
    hh = h // 2
    big[:hh, : spec.shape[1]] = spec[:hh]
    big[-(h - hh) :, : spec.shape[1]] = spec[hh:]
    return (np.fft.irfft2(big, s=(h * factor, w * factor)) * factor * factor).astype(np.float32)
