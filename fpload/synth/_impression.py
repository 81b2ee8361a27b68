"""Impressions: one capture of a master on a synthetic sensor.

Each impression places and rotates the finger on the platen (low, so the frame usually cuts the
base of the print, as in real captures), limits it to a tall oval contact area that widens with
pressure, distorts the skin non-linearly (Cappelli's plastic-distortion idea: no distortion in
the close-contact core, growing smoothly toward the rim), and inks the ridges as skin does:
pressure and moisture set the ridge width, which also varies along each ridge; dry skin breaks
ridges, wet skin merges them and fills the pores; the finger's creases, scars and pores (from
the master) cut the ridges. A sensor model (:mod:`fpload.synth._sensors`) turns that into pixels.

Ground truth (minutiae, singular points) is mapped from the master through the same
transformation, so it stays exact in impression pixels; minutiae within the occluded band of a
crease or scar are left out by the master, and each impression lists those bands (``occluded``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fpload.synth._config import SynthConfig
from fpload.synth._fields import bilinear_sample, bilinear_sampler, coarse_noise, pixel_grid
from fpload.synth._master import Master, Minutia, finger_rng
from fpload.synth._sensors import render_sensor, swipe_displacement

@dataclass(frozen=True, eq=False)
class Impression:
    """One rendered capture: 8-bit grayscale ``image`` plus its ground truth and parameters."""

    image: np.ndarray
    index: int
    sensor: str
    minutiae: tuple[Minutia, ...]
    singular_points: tuple[tuple[float, float, str], ...]
    params: dict[str, float] = field(default_factory=dict)
    occluded: tuple[tuple[str, float, tuple[tuple[float, float], ...]], ...] = ()


def render_impression(master: Master, index: int, config: SynthConfig) -> Impression:
    """Impression ``index`` of ``master`` at ``config.size`` pixels and ``config.ppi``."""
    rng = finger_rng(config.seed, master.subject, master.finger, 1, index)
    size = config.size
    shape = (size, size)
    mm = config.ppi / 25.4
    sensor = config.draw_sensor(rng)
    latent = sensor == "syn-latent-like"

    # rigid placement: the finger lands low on the platen, so the frame cuts the print's base
    alpha = float(np.clip(rng.normal(0.0, np.deg2rad(7.0)), -np.deg2rad(20.0), np.deg2rad(20.0)))
    # python floats throughout: numpy keeps the float32 image arrays in float32 (half the traffic)
    shift = (float(np.clip(rng.normal(0.0, 1.5), -3.5, 3.5) * mm), float(rng.uniform(1.0, 4.5) * mm))
    cos_a, sin_a = float(np.cos(alpha)), float(np.sin(alpha))
    ci = (size - 1) / 2.0
    cm = (master.canvas - 1) / 2.0

    def rigid(qx: np.ndarray, qy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ux, uy = qx - cm, qy - cm
        return ci + shift[0] + cos_a * ux - sin_a * uy, ci + shift[1] + sin_a * ux + cos_a * uy

    # contact area: a tall oval around the (displaced) fingertip, wider under more pressure
    pressure = float(rng.uniform(0.0, 0.6) if latent else rng.uniform(0.0, 1.0))
    fcx, fcy, half_width, top, bottom = master.fingertip
    ccx, ccy = rigid(fcx, fcy)
    ccx, ccy = float(ccx + rng.normal(0.0, 0.5) * mm), float(ccy + rng.normal(0.0, 0.5) * mm)
    spread = (0.65 + 0.25 * rng.random()) if latent else (0.8 + 0.15 * pressure + 0.05 * rng.random())
    axis_x = float(half_width * spread)
    axis_top, axis_bottom = float(top * spread * rng.uniform(0.95, 1.05)), float(bottom * rng.uniform(0.95, 1.15))
    x, y = pixel_grid(shape)
    ex, ey = x - ccx, y - ccy
    rx = (cos_a * ex + sin_a * ey) / axis_x
    ry = -sin_a * ex + cos_a * ey
    ry = ry / np.where(ry < 0, axis_top, axis_bottom)
    radius = np.sqrt(rx * rx + ry * ry)
    contact = np.clip((1.0 - radius) * 8.0, 0.0, 1.0)
    halo = np.exp(-(((radius - 1.06) * axis_x / (0.5 * mm)) ** 2)) * (radius > 0.9)

    # plastic distortion: zero in the close-contact core, growing toward the rim
    amplitude = float(rng.uniform(0.15, 0.5) * mm)
    ramp = np.clip((radius - 0.35) / 0.65, 0.0, 1.5)
    ramp = ramp * ramp * (3.0 - 2.0 * np.minimum(ramp, 1.0))
    dist_x = amplitude * ramp * coarse_noise(rng, shape, 6.0 * mm)
    dist_y = amplitude * ramp * coarse_noise(rng, shape, 6.0 * mm)
    strip = None
    if sensor == "syn-thermal-swipe":  # stitched slices: part of the geometry, so the truth follows
        sx, sy, strip = swipe_displacement(rng, shape, mm)
        dist_x, dist_y = dist_x + sx, dist_y + sy

    ux, uy = x - ci - shift[0], y - ci - shift[1]
    qx = cm + cos_a * ux + sin_a * uy + dist_x
    qy = cm - sin_a * ux + cos_a * uy + dist_y
    read = bilinear_sampler(master.ridges.shape, qx, qy)
    ridges = read(master.relief, -1.0)  # ridges with this skin's ragged edges
    finger = read(master.open_mask, 0.0)  # the fingertip less its creases and scars
    skin = finger * contact
    if latent:  # a patchy deposit: only parts of the contact leave a trace
        skin = skin * np.clip((coarse_noise(rng, shape, 3.0 * mm) + 1.6) * 1.5, 0.0, 1.0)

    # skin at the moment of capture: pressure and moisture set the ridge width, which varies
    # along each ridge; dry skin breaks ridges, wet skin merges them and fills the pores
    moisture = float(np.clip(rng.normal(0.0, 0.22), -0.5, 0.5))
    dryness, wetness = max(0.0, -moisture), max(0.0, moisture)
    bias = 0.3 * (pressure - 0.5) + moisture - 0.8 * np.clip(1.0 - contact * 1.2, 0, 1)
    bias = bias + 0.15 * coarse_noise(rng, shape, 2.5 * mm) + 0.12 * coarse_noise(rng, shape, 0.6 * mm)
    if wetness > 0:
        bias = bias + wetness * 1.2 * np.clip(coarse_noise(rng, shape, 1.5 * mm) - 0.3, 0.0, 2.0)
    ink = np.clip((ridges + bias) / 0.45 + 0.5, 0.0, 1.0)
    breaks = coarse_noise(rng, shape, 0.4 * mm)
    ink *= np.clip((breaks + 2.6 - 3.0 * dryness) * 2.0, 0.0, 1.0)
    # pores and the fine grain of the contact inside each ridge; wet skin fills them partly
    ink *= 1.0 - (1.0 - 0.5 * wetness) * read(master.grain, 0.0)
    ink *= skin
    pixels = render_sensor(sensor, rng, ink, halo * finger, config.ppi, strip)

    # ground truth, mapped master -> impression (fixed point through the distortion)
    def forward(px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tx, ty = px.astype(np.float32), py.astype(np.float32)
        ox, oy = rigid(tx, ty)
        for _ in range(5):
            dx = bilinear_sample(dist_x, np.clip(ox, 0, size - 1), np.clip(oy, 0, size - 1), 0.0)
            dy = bilinear_sample(dist_y, np.clip(ox, 0, size - 1), np.clip(oy, 0, size - 1), 0.0)
            ox, oy = rigid(tx - dx, ty - dy)
        return ox, oy

    def visible(ox: np.ndarray, oy: np.ndarray) -> np.ndarray:
        inside = (ox >= 0) & (oy >= 0) & (ox <= size - 1) & (oy <= size - 1)
        cx, cy = np.clip(ox, 0, size - 1), np.clip(oy, 0, size - 1)
        firm = bilinear_sample(skin, cx, cy, 0.0) > 0.9  # where the rim does not fade the ridges
        return inside & firm

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
    occluded = []
    period = float(master.period.mean())
    for mark in master.marks:  # the band around each crease or scar, where no truth is claimed
        ox, oy = forward(*(np.array(c, np.float32) for c in zip(*mark.points)))
        if np.any((ox >= 0) & (oy >= 0) & (ox <= size - 1) & (oy <= size - 1)):
            occluded.append((mark.kind, mark.band(period), tuple(zip(ox.tolist(), oy.tolist()))))
    params = {
        "rotation_deg": float(np.rad2deg(alpha)),
        "shift_x_px": float(shift[0]),
        "shift_y_px": float(shift[1]),
        "moisture": moisture,
        "pressure": pressure,
        "distortion_px": float(amplitude),
    }
    return Impression(pixels, index, sensor, tuple(minutiae), tuple(points), params, tuple(occluded))
