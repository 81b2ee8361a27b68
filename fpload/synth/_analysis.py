"""Measurements on fingerprint images: orientation field, quality proxy, ridge period, similarity.

These are the yardsticks the generator is tested with and the quality it reports:

- :func:`estimate_orientation`: the classical gradient-tensor estimate per ``block`` x ``block``
  block (smoothed over 3 x 3 blocks), with its coherence and a foreground mask;
- :func:`quality_score`: 100 x the mean orientation coherence of the foreground blocks, scaled
  down when the foreground covers less than 20 % of the image (a clarity-and-area proxy in the
  spirit of NFIQ's orientation-certainty feature, not NFIQ itself);
- :func:`ridge_period`: the dominant period of a patch from the peak of its 2-D power spectrum;
- :func:`similarity`: the normalised cross-correlation of the two ridge patterns after the
  best rigid alignment (found on the orientation fields, refined on the ridges), the
  documented measure for "same finger or not".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpload.synth._fields import bilinear_sample, gaussian_blur

BLOCK = 16
MIN_OVERLAP = 0.5  # of the smaller foreground, for an alignment to count in :func:`similarity`
ROTATIONS_DEG = tuple(range(-30, 31, 5))
COARSE_MARGIN = 0.03  # fine-align every angle whose field NCC is this close to the best
FINE_STEPS_DEG = (-2.0, 0.0, 2.0)


@dataclass(frozen=True, eq=False)
class OrientationField:
    """Block-wise ridge orientation ``theta`` (radians mod pi, ``atan2(dy, dx)``, y down),
    ``coherence`` in ``[0, 1]`` and boolean ``foreground``, one value per ``block`` pixels."""

    theta: np.ndarray
    coherence: np.ndarray
    foreground: np.ndarray
    block: int

    def doubled(self) -> np.ndarray:
        """``coherence * exp(2i theta)`` on the foreground, zero elsewhere (complex64)."""
        vec = self.coherence * np.exp(2j * self.theta) * self.foreground
        return vec.astype(np.complex64)


def _box3(a: np.ndarray) -> np.ndarray:
    """Sum over each 3 x 3 neighbourhood (edge-padded)."""
    p = np.pad(a, 1, mode="edge")
    h, w = a.shape
    return sum(p[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))


def estimate_orientation(image: np.ndarray, block: int = BLOCK) -> OrientationField:
    """The orientation field of a grayscale image (dark ridges on light background)."""
    img = np.asarray(image, np.float32)
    h, w = (img.shape[0] // block) * block, (img.shape[1] // block) * block
    img = img[:h, :w]
    gy, gx = np.gradient(img)
    shape = (h // block, block, w // block, block)
    gxx = _box3((gx * gx).reshape(shape).sum((1, 3)))
    gyy = _box3((gy * gy).reshape(shape).sum((1, 3)))
    gxy = _box3((gx * gy).reshape(shape).sum((1, 3)))
    theta = 0.5 * np.arctan2(2.0 * gxy, gxx - gyy) + np.pi / 2
    coherence = np.sqrt((gxx - gyy) ** 2 + 4.0 * gxy**2) / (gxx + gyy + 1e-6)
    std = img.reshape(shape).std((1, 3))
    foreground = std > max(15.0, 0.3 * float(np.percentile(std, 95)))
    foreground &= _box3(foreground.astype(np.float32)) > 8.5  # drop edge blocks: mixed estimates
    return OrientationField(theta.astype(np.float32), coherence.astype(np.float32), foreground, block)


def quality_score(image: np.ndarray) -> float:
    """A 0-100 quality proxy: foreground orientation coherence, penalised for small areas."""
    field = estimate_orientation(image)
    fg = field.foreground
    if not fg.any():
        return 0.0
    clarity = float(field.coherence[fg].mean())
    area = min(1.0, float(fg.mean()) / 0.2)
    return round(100.0 * clarity * area, 2)


def ridge_period(patch: np.ndarray, pad: int = 256) -> float:
    """Dominant ridge period (pixels) of a patch: the peak of its windowed 2-D power spectrum."""
    p = np.asarray(patch, np.float32)
    p = p - p.mean()
    window = np.outer(np.hanning(p.shape[0]), np.hanning(p.shape[1])).astype(np.float32)
    n = max(pad, *p.shape)
    power = np.abs(np.fft.rfft2(p * window, s=(n, n))) ** 2
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    rho = np.sqrt(fx * fx + fy * fy)
    power[rho < 1.0 / 40.0] = 0.0  # ignore DC and anything coarser than 40 px
    iy, ix = np.unravel_index(int(np.argmax(power)), power.shape)
    return float(1.0 / rho[iy, ix])


def _rotate_field(field: OrientationField, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Doubled-angle field and foreground turned by ``angle`` about the grid centre (nearest)."""
    vec, fg = field.doubled(), field.foreground.astype(np.float32)
    h, w = vec.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    c, s = np.cos(angle), np.sin(angle)
    sx = np.rint(cx + c * (x - cx) + s * (y - cy)).astype(np.intp)
    sy = np.rint(cy - s * (x - cx) + c * (y - cy)).astype(np.intp)
    inside = (sx >= 0) & (sy >= 0) & (sx < w) & (sy < h)
    sx, sy = np.clip(sx, 0, w - 1), np.clip(sy, 0, h - 1)
    turned = np.where(inside, vec[sy, sx], 0) * np.exp(2j * angle)
    return turned.astype(np.complex64), np.where(inside, fg[sy, sx], 0).astype(np.float32)


def _orientation_alignment(fa: OrientationField, fb: OrientationField) -> list[tuple[float, float, int, int]]:
    """Per angle of ``ROTATIONS_DEG``: best ``(score, angle_rad, ty, tx)`` of ``fb`` onto ``fa``.

    The score is the orientation-field NCC over the common foreground (shift in blocks);
    placements overlapping less than ``MIN_OVERLAP`` of the smaller foreground score -1.
    """
    u, mu = fa.doubled(), fa.foreground.astype(np.float32)
    h = u.shape[0] + fb.theta.shape[0]
    w = u.shape[1] + fb.theta.shape[1]
    fft = lambda z: np.fft.fft2(z, s=(h, w))  # noqa: E731 - local shorthand
    U, MU, UU = fft(u), fft(mu), fft(np.abs(u) ** 2)
    need = MIN_OVERLAP * min(float(mu.sum()), float(fb.foreground.sum()))
    out = []
    for deg in ROTATIONS_DEG:
        v, mv = _rotate_field(fb, np.deg2rad(deg))
        V, MV, VV = fft(v), fft(mv), fft(np.abs(v) ** 2)
        num = np.fft.ifft2(U * np.conj(V)).real
        overlap = np.fft.ifft2(MU * np.conj(MV)).real
        energy = np.fft.ifft2(UU * np.conj(MV)).real * np.fft.ifft2(MU * np.conj(VV)).real
        score = num / np.sqrt(np.maximum(energy, 1e-9))
        score[overlap < max(need, 1.0)] = -1.0
        k = int(np.argmax(score))
        ty, tx = np.unravel_index(k, score.shape)
        ty = int(ty - h if ty > h // 2 else ty)
        tx = int(tx - w if tx > w // 2 else tx)
        out.append((float(score.flat[k]), float(np.deg2rad(deg)), ty, tx))
    return out


def _ridge_signal(image: np.ndarray, field: OrientationField) -> tuple[np.ndarray, np.ndarray]:
    """Half-resolution, band-passed, contrast-normalised ridge signal and its foreground mask."""
    img = np.asarray(image, np.float32)
    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    half = img[:h, :w].reshape(h // 2, 2, w // 2, 2).mean((1, 3))
    band = gaussian_blur(half, 0.7) - gaussian_blur(half, 3.0)
    band /= np.sqrt(gaussian_blur(band * band, 4.0) + 1e-3)
    step = field.block // 2
    fg = np.repeat(np.repeat(field.foreground, step, 0), step, 1).astype(np.float32)
    mask = np.zeros(half.shape, np.float32)
    mask[: fg.shape[0], : fg.shape[1]] = fg[: half.shape[0], : half.shape[1]]
    return band * mask, mask


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """How alike two fingerprint images are, after alignment: a ridge-pattern NCC in [-1, 1].

    1. Coarse alignment on the orientation fields: each image's block field
       ``u = coherence * exp(2i theta)`` on its foreground; ``b``'s is turned by every angle in
       ``ROTATIONS_DEG`` (vectors too) and slid over every block offset; for each angle the
       offset with the best normalised cross-correlation (over at least ``MIN_OVERLAP`` of the
       smaller foreground) is kept, and every angle scoring within ``COARSE_MARGIN`` of the best
       goes on to step 2.
    2. Fine alignment on the ridges: both images at half resolution, band-passed to the ridge
       frequencies and contrast-normalised; ``b``'s is turned by each candidate angle plus
       ``FINE_STEPS_DEG`` and shifted by its offset; the result is the best normalised
       cross-correlation ``sum(a * b) / sqrt(sum(a^2) * sum(b^2))`` over the common foreground
       (at least ``MIN_OVERLAP`` of the smaller one), within +-1.5 blocks of that offset.

    Orientation alone cannot tell fingers of one class apart; the ridges can. On 50 synthetic
    fingers at 256 x 256 (the test), impressions of one finger score about 0.55 (median; their
    ridges line up in the undistorted core of the contact), different fingers about 0.16
    (parallel ridges of a similar period, nothing more): d' about 4.
    """
    fa, fb = estimate_orientation(a), estimate_orientation(b)
    coarse = _orientation_alignment(fa, fb)
    top = max(c[0] for c in coarse)
    if top <= -1.0:
        return 0.0
    candidates = [c for c in coarse if c[0] >= top - COARSE_MARGIN]
    sa, ma = _ridge_signal(a, fa)
    sb, mb = _ridge_signal(b, fb)
    h, w = sa.shape
    block = fa.block / 2.0
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    SA, MA, SAA = np.fft.fft2(sa), np.fft.fft2(ma), np.fft.fft2(sa * sa)
    need = MIN_OVERLAP * min(float(ma.sum()), float(mb.sum()))
    reach = int(round(1.5 * block))
    best = -1.0
    for _, angle, ty, tx in candidates:
        for delta in FINE_STEPS_DEG:
            c, s = np.cos(angle + np.deg2rad(delta)), np.sin(angle + np.deg2rad(delta))
            ux, uy = x - tx * block - cx, y - ty * block - cy
            qx, qy = cx + c * ux + s * uy, cy - s * ux + c * uy
            rb = bilinear_sample(sb, qx, qy, 0.0)
            rm = bilinear_sample(mb, qx, qy, 0.0)
            RB, RM, RBB = np.fft.fft2(rb), np.fft.fft2(rm), np.fft.fft2(rb * rb)
            num = np.fft.ifft2(SA * np.conj(RB)).real
            overlap = np.fft.ifft2(MA * np.conj(RM)).real
            energy = np.fft.ifft2(SAA * np.conj(RM)).real * np.fft.ifft2(MA * np.conj(RBB)).real
            score = num / np.sqrt(np.maximum(energy, 1e-6))
            score[overlap < max(need, 1.0)] = -1.0
            near = np.roll(score, (reach, reach), (0, 1))[: 2 * reach + 1, : 2 * reach + 1]
            best = max(best, float(near.max()))
    return best


def detect_minutiae(image: np.ndarray, period: float = 9.5, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Minutiae found in an image by a classical pipeline that knows nothing of the generator.

    Contextual (Gabor) enhancement with the orientation of :func:`estimate_orientation` in 8
    bins and a fixed ``period``, binarisation by the sign of the response, Zhang-Suen thinning,
    crossing numbers; detections closer than 6 px to another are dropped as spurs. Returns the
    ``(n, 2)`` x, y positions and the pixel foreground they were searched in (the orientation
    foreground, eroded by one block so the print's rim does not count).
    """
    from scipy import ndimage, signal

    from fpload.synth._minutiae import _neighbours, thin

    img = np.asarray(image, np.float32)
    field = estimate_orientation(img, block)
    bins = 8
    index = np.rint(field.theta / (np.pi / bins)).astype(np.intp) % bins
    index = np.kron(index, np.ones((block, block), np.intp))
    fg = np.kron(field.foreground, np.ones((block, block), bool))
    pad = ((0, img.shape[0] - fg.shape[0]), (0, img.shape[1] - fg.shape[1]))
    index, fg = np.pad(index, pad, mode="edge"), np.pad(fg, pad)
    fg = ndimage.binary_erosion(fg, np.ones((block + 1, block + 1), bool))
    centred = img - ndimage.uniform_filter(img, int(2 * period) | 1)
    r = int(np.ceil(1.5 * period))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float32)
    enhanced = np.zeros(img.shape, np.float32)
    for b in range(bins):
        angle = b * np.pi / bins  # ridge direction; the wave runs across it
        across = -xx * np.sin(angle) + yy * np.cos(angle)
        along = xx * np.cos(angle) + yy * np.sin(angle)
        kernel = np.exp(-(across**2) / (2 * (0.45 * period) ** 2) - along**2 / (2 * (0.7 * period) ** 2))
        kernel *= np.cos(2 * np.pi * across / period)
        kernel -= kernel.mean()
        response = signal.fftconvolve(centred, kernel.astype(np.float32), mode="same")
        enhanced = np.where(index == b, response, enhanced)
    skeleton = thin((enhanced < 0) & fg)  # dark ridges: negative response
    n = _neighbours(skeleton)
    ring = n + n[:1]
    crossing = sum((a != b).astype(np.uint8) for a, b in zip(ring[:-1], ring[1:])) // 2
    ys, xs = np.nonzero(skeleton & fg & ((crossing == 1) | (crossing == 3)))
    pts = np.stack([xs, ys], 1).astype(np.float32)
    if len(pts) > 1:
        d2 = ((pts[:, None] - pts[None]) ** 2).sum(-1)
        np.fill_diagonal(d2, np.inf)
        pts = pts[d2.min(1) > 36.0]
    return pts, fg
