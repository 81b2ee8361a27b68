"""Impressions: one capture of a master on a synthetic sensor.

Each impression displaces and rotates the finger on the platen, distorts the skin non-linearly
(Cappelli's plastic-distortion idea: no distortion in the close-contact core of the contact
area, growing smoothly toward its rim), presses it with a random pressure and moisture (thicker
merged ridges and blotches when wet or pressed hard, thin broken ridges when dry), limits it to
a partial elliptical contact area, and adds the sensor's background, blur and noise.

Ground truth (minutiae, singular points) is mapped from the master through the same
transformation, so it stays exact in impression pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fpload.synth._config import SynthConfig
from fpload.synth._fields import bilinear_sample, bilinear_sampler, coarse_noise, gaussian_blur, pixel_grid, smooth_noise
from fpload.synth._master import Master, Minutia, finger_rng

# background level, ridge level, noise sigma (grey levels), blur sigma (pixels at 500 ppi)
SENSOR_PROFILES: dict[str, dict[str, tuple[float, float]]] = {
    "syn-optical": {"background": (228, 248), "ridge": (15, 60), "noise": (2.0, 5.0), "blur": (0.6, 0.9)},
    "syn-capacitive": {"background": (205, 232), "ridge": (35, 85), "noise": (4.0, 8.0), "blur": (0.4, 0.7)},
}


@dataclass(frozen=True, eq=False)
class Impression:
    """One rendered capture: 8-bit grayscale ``image`` plus its ground truth and parameters."""

    image: np.ndarray
    index: int
    sensor: str
    minutiae: tuple[Minutia, ...]
    singular_points: tuple[tuple[float, float, str], ...]
    params: dict[str, float] = field(default_factory=dict)


def render_impression(master: Master, index: int, config: SynthConfig) -> Impression:
    """Impression ``index`` of ``master`` at ``config.size`` pixels and ``config.ppi``."""
    rng = finger_rng(config.seed, master.subject, master.finger, 1, index)
    size = config.size
    shape = (size, size)
    mm = config.ppi / 25.4
    sensor = config.sensors[int(rng.integers(len(config.sensors)))]
    profile = {k: float(rng.uniform(*v)) for k, v in SENSOR_PROFILES[sensor].items()}

    # rigid placement on the platen
    alpha = float(np.clip(rng.normal(0.0, np.deg2rad(7.0)), -np.deg2rad(20.0), np.deg2rad(20.0)))
    shift = np.clip(rng.normal(0.0, 1.0 * mm, 2), -2.0 * mm, 2.0 * mm)
    cos_a, sin_a = np.cos(alpha), np.sin(alpha)
    ci = (size - 1) / 2.0
    cm = (master.canvas - 1) / 2.0

    def rigid(qx: np.ndarray, qy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ux, uy = qx - cm, qy - cm
        return ci + shift[0] + cos_a * ux - sin_a * uy, ci + shift[1] + sin_a * ux + cos_a * uy

    # partial elliptical contact around the (displaced) fingertip centre
    fcx, fcy, half_width, top, bottom = master.fingertip
    ccx, ccy = rigid(np.float32(fcx), np.float32(fcy))
    ccx, ccy = ccx + rng.normal(0.0, 1.2) * mm, ccy + rng.normal(0.0, 1.2) * mm
    axis_x = half_width * rng.uniform(0.85, 1.15)
    axis_y = 0.5 * (top + bottom) * rng.uniform(0.8, 1.1)
    x, y = pixel_grid(shape)
    ex, ey = x - ccx, y - ccy
    rx = (cos_a * ex + sin_a * ey) / axis_x
    ry = (-sin_a * ex + cos_a * ey) / axis_y
    radius = np.sqrt(rx * rx + ry * ry)
    contact = np.clip((1.0 - radius) * 6.0, 0.0, 1.0)

    # plastic distortion: zero in the close-contact core, growing toward the rim
    amplitude = rng.uniform(0.15, 0.5) * mm
    ramp = np.clip((radius - 0.35) / 0.65, 0.0, 1.5)
    ramp = ramp * ramp * (3.0 - 2.0 * np.minimum(ramp, 1.0))
    dist_x = amplitude * ramp * coarse_noise(rng, shape, 6.0 * mm)
    dist_y = amplitude * ramp * coarse_noise(rng, shape, 6.0 * mm)

    ux, uy = x - ci - shift[0], y - ci - shift[1]
    qx = cm + cos_a * ux + sin_a * uy + dist_x
    qy = cm - sin_a * ux + cos_a * uy + dist_y
    read = bilinear_sampler(master.ridges.shape, qx, qy)
    ridges = read(master.ridges, -1.0)
    finger = read(master.mask, 0.0)
    skin = finger * contact

    # pressure and moisture: >0 wet / heavy (thick ridges, blotches), <0 dry / light (breaks)
    moisture = float(np.clip(rng.normal(0.0, 0.25), -0.5, 0.5))
    bias = moisture + 0.18 * coarse_noise(rng, shape, 3.0 * mm) - 0.8 * np.clip(1.0 - contact * 1.2, 0, 1)
    ink = np.clip((ridges + bias) / 0.7 + 0.5, 0.0, 1.0)
    dryness = max(0.0, -moisture) + 0.1
    pores = smooth_noise(rng, shape, 0.06 * mm)
    ink *= np.clip((pores + 3.2 - 3.0 * dryness) * 2.0, 0.0, 1.0)
    breaks = coarse_noise(rng, shape, 0.5 * mm)
    ink *= np.clip((breaks + 3.2 - 2.5 * dryness) * 1.5, 0.0, 1.0)
    wetness = max(0.0, moisture)
    blotch = np.clip((coarse_noise(rng, shape, 1.2 * mm) - 2.6 + 3.5 * wetness) * 1.5, 0.0, 0.9)
    ink = np.maximum(ink, blotch) * skin

    background = profile["background"] + 5.0 * coarse_noise(rng, shape, 8.0 * mm)
    image = background - (profile["background"] - profile["ridge"]) * ink
    image = gaussian_blur(image, profile["blur"] * config.ppi / 500.0)
    image += profile["noise"] * rng.standard_normal(shape, dtype=np.float32)
    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)

    # ground truth, mapped master -> impression (fixed point through the distortion)
    def forward(px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tx, ty = px.astype(np.float32), py.astype(np.float32)
        ox, oy = rigid(tx, ty)
        for _ in range(4):
            dx = bilinear_sample(dist_x, np.clip(ox, 0, size - 1), np.clip(oy, 0, size - 1), 0.0)
            dy = bilinear_sample(dist_y, np.clip(ox, 0, size - 1), np.clip(oy, 0, size - 1), 0.0)
            ox, oy = rigid(tx - dx, ty - dy)
        return ox, oy

    def visible(ox: np.ndarray, oy: np.ndarray) -> np.ndarray:
        inside = (ox >= 0) & (oy >= 0) & (ox <= size - 1) & (oy <= size - 1)
        cx, cy = np.clip(ox, 0, size - 1), np.clip(oy, 0, size - 1)
        firm = bilinear_sample(contact, cx, cy, 0.0) > 0.9  # where the rim does not fade the ridges
        return inside & firm & (bilinear_sample(finger, cx, cy, 0.0) > 0.5)

    minutiae: list[Minutia] = []
    if master.minutiae:
        mx = np.array([m[0] for m in master.minutiae], np.float32)
        my = np.array([m[1] for m in master.minutiae], np.float32)
        ox, oy = forward(mx, my)
        keep = visible(ox, oy)
        for (_, _, angle, kind), px, py, k in zip(master.minutiae, ox, oy, keep):
            if k:
                turned = float((angle + alpha + np.pi) % (2 * np.pi) - np.pi)
                minutiae.append((float(px), float(py), turned, kind))
    points: list[tuple[float, float, str]] = []
    if master.singular_points:
        sx = np.array([p.x for p in master.singular_points], np.float32)
        sy = np.array([p.y for p in master.singular_points], np.float32)
        ox, oy = forward(sx, sy)
        keep = visible(ox, oy)
        points = [(float(px), float(py), p.kind) for p, px, py, k in zip(master.singular_points, ox, oy, keep) if k]
    params = {
        "rotation_deg": float(np.rad2deg(alpha)),
        "shift_x_px": float(shift[0]),
        "shift_y_px": float(shift[1]),
        "moisture": moisture,
        "distortion_px": float(amplitude),
    }
    return Impression(pixels, index, sensor, tuple(minutiae), tuple(points), params)
