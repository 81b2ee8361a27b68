"""Sensor models: how an inked skin map becomes the grey levels of one kind of capture device.

The skin side (ridges, pressure, moisture, pores, breaks, creases, contact area) is the same for
every sensor and lives in :mod:`fpload.synth._impression`; a sensor turns ``ink`` (``[0, 1]``,
1: a ridge pressed on the platen) into 8-bit pixels:

- ``syn-optical`` (FTIR prism): the platen is lit by total internal reflection, so the
  background and the valleys saturate white, ridge cores saturate black, with a grey halo where
  the skin almost touches at the rim of the contact area; little blur, no visible noise off the
  finger;
- ``syn-capacitive``: a grey, noisy background, lower contrast, a fixed row/column pattern and
  2 x 2 blocky cells;
- ``syn-thermal-swipe``: a finger swept over a narrow strip sensor and stitched: slices with
  their own offset and gain, seams between them and an uneven sweep speed (the geometry is
  part of the impression's displacement, so the ground truth follows it);
- ``syn-latent-like``: a degraded, latent-style print for robustness training: textured
  background, faint and blurred ridges, smudges, patchy deposit.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from fpload.synth._fields import coarse_noise



def swipe_displacement(
    rng: np.random.Generator, shape: tuple[int, int], mm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stitching geometry of a swipe sensor: ``(dx, dy, strip)`` per pixel.

    Slices 0.3-0.6 mm tall each get a sideways offset (the finger drifts between reads) and the
    sweep speed varies smoothly, stretching and compressing the print along its length.
    """
    height, width = shape
    rows = max(4, int(round(rng.uniform(0.3, 0.6) * mm)))
    strip = np.arange(height) // rows
    drift = np.cumsum(rng.normal(0.0, 0.35, strip[-1] + 1)).astype(np.float32)
    drift -= drift.mean()
    speed = 1.0 + 0.08 * coarse_noise(rng, (height, 8), 4.0 * mm)[:, 0]
    along = np.cumsum(speed - 1.0).astype(np.float32)
    dx = np.broadcast_to(drift[strip][:, None], shape).astype(np.float32)
    dy = np.broadcast_to(along[:, None], shape).astype(np.float32)
    return dx, dy, np.broadcast_to(strip[:, None], shape)


def render_sensor(
    sensor: str,
    rng: np.random.Generator,
    ink: np.ndarray,
    halo: np.ndarray,
    ppi: int,
    strip: np.ndarray | None = None,
) -> np.ndarray:
    """The 8-bit capture of ``ink`` on ``sensor``; ``halo`` is the near-contact rim in ``[0, 1]``."""
    shape = ink.shape
    mm = ppi / 25.4
    scale = ppi / 500.0
    if sensor == "syn-optical":
        white = rng.uniform(258.0, 268.0)  # above 255: the lit platen saturates
        depth = rng.uniform(250.0, 310.0) * (1.0 + 0.12 * coarse_noise(rng, shape, 3.0 * mm))
        image = white - depth * ink - rng.uniform(25.0, 70.0) * halo
        image = gaussian_blur(image, rng.uniform(0.6, 0.9) * scale)
        image += rng.uniform(1.0, 2.5) * rng.standard_normal(shape, dtype=np.float32)
    elif sensor == "syn-capacitive":
        back = rng.uniform(185.0, 215.0)
        ridge = rng.uniform(60.0, 100.0)
        image = back - (back - ridge) * ink
        image = gaussian_blur(image, rng.uniform(0.6, 1.0) * scale)
        h, w = shape
        image = image[: h - h % 2, : w - w % 2].reshape(h // 2, 2, w // 2, 2).mean((1, 3))
        image = np.pad(np.repeat(np.repeat(image, 2, 0), 2, 1), ((0, h % 2), (0, w % 2)), mode="edge")
        image += rng.normal(0.0, 2.5, (1, w)).astype(np.float32) + rng.normal(0.0, 1.5, (h, 1)).astype(np.float32)
        image += rng.uniform(3.0, 5.0) * rng.standard_normal(shape, dtype=np.float32)
        image = 4.0 * np.floor(image / 4.0)
    elif sensor == "syn-thermal-swipe":
        back = rng.uniform(150.0, 185.0)
        ridge = rng.uniform(35.0, 80.0)
        image = back - (back - ridge) * ink
        image = gaussian_blur(image, rng.uniform(0.7, 1.1) * scale)
        if strip is not None:
            count = int(strip[-1, 0]) + 1
            gain = (1.0 + rng.normal(0.0, 0.04, count)).astype(np.float32)[strip[:, 0]][:, None]
            offset = rng.normal(0.0, 5.0, count).astype(np.float32)[strip[:, 0]][:, None]
            image = image * gain + offset
            seam = np.zeros(shape[0], np.float32)
            seam[1:] = (np.diff(strip[:, 0]) > 0) * rng.uniform(6.0, 14.0)
            image += seam[:, None]
        image += rng.uniform(4.0, 7.0) * rng.standard_normal(shape, dtype=np.float32)
    elif sensor == "syn-latent-like":
        back = rng.uniform(150.0, 210.0) + 10.0 * coarse_noise(rng, shape, 4.0 * mm) + 5.0 * coarse_noise(rng, shape, 0.8 * mm)
        smudge = np.clip(coarse_noise(rng, shape, 2.0 * mm) - 1.2, 0.0, 1.0) * rng.uniform(0.3, 0.7)
        depth = rng.uniform(60.0, 110.0)
        image = back - depth * np.maximum(ink, smudge)
        image = gaussian_blur(image, rng.uniform(0.9, 1.4) * scale)
        image += rng.uniform(5.0, 9.0) * rng.standard_normal(shape, dtype=np.float32)
    else:  # pragma: no cover - the config refuses unknown sensors
        raise ValueError(f"unknown sensor {sensor!r}")
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with edge-replicating borders (no wrap-around of the print)."""
    return ndimage.gaussian_filter(image.astype(np.float32, copy=False), sigma, mode="nearest", truncate=3.0)
