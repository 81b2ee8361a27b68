"""NumPy reference implementations of the csrc operators, vectorised over pixels.

They compute the same function as the C++/CUDA backends: the same Philox4x32-10 streams (bit
for bit), the same per-sample parameters (double math in the same order) and the same float32
pixel expressions. Tests compare the CPU backend against them; they also serve as the
"written in NumPy" baseline of ``benchmarks/bench_ops.py``.

Every function takes a list of ``uint8`` arrays of shape ``(H, W, 1)`` and returns a list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fpload.errors import UsageError

TAG_WARP, TAG_OCCLUSION, TAG_PHOTOMETRIC = 1, 2, 3
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
f32 = np.float32


def philox4x32_10(ctr: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Philox4x32-10 of counters ``ctr`` (..., 4) under keys ``key`` (..., 2); uint32 out."""
    c = [np.asarray(ctr[..., i], dtype=np.uint32).copy() for i in range(4)]
    k0 = np.asarray(key[..., 0], dtype=np.uint32).copy()
    k1 = np.asarray(key[..., 1], dtype=np.uint32).copy()
    k0, k1 = np.broadcast_arrays(k0, k1)
    k0, k1 = k0.copy(), k1.copy()
    for r in range(10):
        if r:
            k0 += _W0
            k1 += _W1
        p0 = _M0 * c[0].astype(np.uint64)
        p1 = _M1 * c[2].astype(np.uint64)
        hi0, lo0 = (p0 >> np.uint64(32)).astype(np.uint32), (p0 & _MASK32).astype(np.uint32)
        hi1, lo1 = (p1 >> np.uint64(32)).astype(np.uint32), (p1 & _MASK32).astype(np.uint32)
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
    return np.stack(c, axis=-1)


def draw_u32(seed: int, sample_idx: int, epoch: int, tag: int, ks: Sequence[int] | np.ndarray) -> np.ndarray:
    """Words ``ks`` of one sample's stream for operator ``tag`` (see csrc/fpload/philox.h)."""
    ks = np.asarray(ks, dtype=np.uint32)
    idx = sample_idx & 0xFFFFFFFFFFFFFFFF
    ctr = np.empty(ks.shape + (4,), dtype=np.uint32)
    ctr[..., 0] = idx & 0xFFFFFFFF
    ctr[..., 1] = idx >> 32
    ctr[..., 2] = epoch & 0xFFFFFFFF
    ctr[..., 3] = (np.uint32(tag) << np.uint32(24)) | (ks >> np.uint32(2))
    s = seed & 0xFFFFFFFFFFFFFFFF
    key = np.array([s & 0xFFFFFFFF, s >> 32], dtype=np.uint32)
    out = philox4x32_10(ctr, key)
    return np.take_along_axis(out, (ks & np.uint32(3)).astype(np.intp)[..., None], axis=-1)[..., 0]


def _uniforms(seed: int, idx: int, epoch: int, tag: int, n: int) -> list[float]:
    words = draw_u32(seed, idx, epoch, tag, np.arange(n))
    return [float(w >> 8) * (1.0 / 16777216.0) for w in words.tolist()]


def lowbias32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.uint32)
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def hash_normal(key: int, i: np.ndarray) -> np.ndarray:
    h = lowbias32((np.asarray(i, dtype=np.uint32) * np.uint32(0x9E3779B9)) ^ np.uint32(key))
    s = (h & 255) + ((h >> 8) & 255) + ((h >> 16) & 255) + (h >> 24)
    return (s.astype(np.int32) - 510).astype(f32) * f32(0.0067658)


# ---------------------------------------------------------------- validation helpers


def _check_batch(images: Sequence[np.ndarray], op: str) -> list[np.ndarray]:
    if len(images) == 0:
        raise UsageError(f"{op}: empty batch; expected at least one sample")
    out = []
    for i, im in enumerate(images):
        im = np.asarray(im)
        if im.dtype != np.uint8:
            raise UsageError(f"{op}: sample {i} has dtype {im.dtype}; expected uint8")
        if im.ndim != 3 or im.shape[2] != 1:
            raise UsageError(f"{op}: sample {i} has shape {im.shape}; expected HWC with C = 1")
        out.append(im[:, :, 0])
    return out


def _range(op: str, name: str, v: Sequence[float], lo: float | None = None, strict: bool = False) -> tuple[float, float]:
    if len(v) != 2 or not v[0] <= v[1]:
        raise UsageError(f"{op}: `{name}` must be a pair [lo, hi] with lo <= hi, got {v!r}")
    if lo is not None and (v[0] <= lo if strict else v[0] < lo):
        raise UsageError(f"{op}: `{name}` must be {'>' if strict else '>='} {lo}, got {v!r}")
    return float(f32(v[0])), float(f32(v[1]))


def _prob(op: str, name: str, p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise UsageError(f"{op}: `{name}` must be a probability in [0, 1], got {p!r}")
    return float(f32(p))


def _keys(n: int, sample_idx: Sequence[int], epoch: int | Sequence[int]) -> list[tuple[int, int]]:
    idx = [int(i) for i in np.atleast_1d(sample_idx)]
    ep = [int(e) for e in np.broadcast_to(np.atleast_1d(epoch), (n,))]
    if len(idx) != n:
        raise UsageError(f"sample_idx holds {len(idx)} values for a batch of {n}")
    return list(zip(idx, ep))


def _lerp(r: tuple[float, float], u: float) -> float:
    return r[0] + (r[1] - r[0]) * u


# ---------------------------------------------------------------- warp


def _grid_taps(n: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    k = f32(grid - 1) / f32(n)
    g = (np.arange(n, dtype=f32) + f32(0.5)) * k
    gi = np.clip(np.floor(g).astype(np.int64), 0, grid - 2)
    f = g - gi.astype(f32)
    w = np.stack([
        ((f32(-0.5) * f + f32(1.0)) * f - f32(0.5)) * f,
        ((f32(1.5) * f - f32(2.5)) * f) * f + f32(1.0),
        ((f32(-1.5) * f + f32(2.0)) * f + f32(0.5)) * f,
        ((f32(0.5) * f - f32(0.5)) * f) * f,
    ], axis=1)
    idx = np.stack([np.clip(gi - 1, 0, grid - 1), gi, gi + 1, np.clip(gi + 2, 0, grid - 1)], axis=1)
    return idx, w


def _combine4(w: np.ndarray, h: Sequence[np.ndarray]) -> np.ndarray:
    return ((w[..., 0] * h[0] + w[..., 1] * h[1]) + w[..., 2] * h[2]) + w[..., 3] * h[3]


def _sample(img: np.ndarray, sx: np.ndarray, sy: np.ndarray, nearest: bool, fill: np.float32) -> np.ndarray:
    h, w = img.shape

    def tap(xi: np.ndarray, yi: np.ndarray) -> np.ndarray:
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        return np.where(ok, img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)].astype(f32), fill)

    if nearest:
        fx = np.floor(np.clip(sx, f32(-1.0), f32(w + 1)))
        fy = np.floor(np.clip(sy, f32(-1.0), f32(h + 1)))
        return tap(fx.astype(np.int64), fy.astype(np.int64))
    px = np.clip(sx - f32(0.5), f32(-2.0), f32(w + 1))
    py = np.clip(sy - f32(0.5), f32(-2.0), f32(h + 1))
    x0f, y0f = np.floor(px), np.floor(py)
    fx, fy = px - x0f, py - y0f
    x0, y0 = x0f.astype(np.int64), y0f.astype(np.int64)
    v00, v01 = tap(x0, y0), tap(x0 + 1, y0)
    v10, v11 = tap(x0, y0 + 1), tap(x0 + 1, y0 + 1)
    top = v00 + fx * (v01 - v00)
    bot = v10 + fx * (v11 - v10)
    return top + fy * (bot - top)


def _to_u8(v: np.ndarray) -> np.ndarray:
    return (np.clip(v, f32(0.0), f32(255.0)) + f32(0.5)).astype(np.uint8)


def warp_params(seed: int, idx: int, epoch: int, *, angle=(0.0, 0.0), scale=(1.0, 1.0), translate=(0.0, 0.0),
                distortion: float = 0.0, grid: int = 4) -> dict:
    """One sample's warp parameters, as drawn by csrc/fpload/warp_math.h."""
    u = _uniforms(seed, idx, epoch, TAG_WARP, 4 + 2 * grid * grid)
    ang = angle[0] + (angle[1] - angle[0]) * u[0]
    sc = scale[0] + (scale[1] - scale[0]) * u[1]
    tx = (2.0 * u[2] - 1.0) * translate[0]
    ty = (2.0 * u[3] - 1.0) * translate[1]
    th = ang * (3.14159265358979323846 / 180.0)
    c, s = math.cos(th) / sc, math.sin(th) / sc
    g = np.array(u[4:], dtype=np.float64).reshape(grid * grid, 2)
    return {
        "a": (f32(c), f32(s), f32(-s), f32(c)), "tx": f32(tx), "ty": f32(ty),
        "gx": ((2.0 * g[:, 0] - 1.0) * distortion).astype(f32).reshape(grid, grid),
        "gy": ((2.0 * g[:, 1] - 1.0) * distortion).astype(f32).reshape(grid, grid),
    }


def warp(images: Sequence[np.ndarray], sample_idx: Sequence[int], epoch: int | Sequence[int] = 0, seed: int = 0, *,
         angle=(0.0, 0.0), scale=(1.0, 1.0), translate=(0.0, 0.0), distortion: float = 0.0, grid: int = 4,
         interp: str = "linear", fill: float = 255.0, size: tuple[int, int] | None = None,
         center_mode: str = "image", center: tuple[float, float] | None = None, fg_threshold: int = 200) -> list[np.ndarray]:
    """Reference of ``fn.fpload_warp``."""
    op = "fpload_warp"
    imgs = _check_batch(images, op)
    angle = _range(op, "angle", angle)
    scale = _range(op, "scale", scale, 0.0, strict=True)
    if len(translate) != 2 or min(translate) < 0:
        raise UsageError(f"{op}: `translate` must be a pair of non-negative pixel magnitudes, got {translate!r}")
    if distortion < 0:
        raise UsageError(f"{op}: `distortion` must be >= 0 pixels, got {distortion!r}")
    if not 2 <= grid <= 8:
        raise UsageError(f"{op}: `grid` must be in [2, 8], got {grid!r}")
    if interp not in ("linear", "nearest"):
        raise UsageError(f"{op}: `interp` must be 'linear' or 'nearest', got {interp!r}")
    if not 0 <= fill <= 255:
        raise UsageError(f"{op}: `fill` must be in [0, 255], got {fill!r}")
    if center_mode not in ("image", "foreground"):
        raise UsageError(f"{op}: `center_mode` must be 'image' or 'foreground', got {center_mode!r}")
    tr = (float(f32(translate[0])), float(f32(translate[1])))
    dist = float(f32(distortion))
    fillf = f32(fill)
    out = []
    for img, (idx, ep) in zip(imgs, _keys(len(imgs), sample_idx, epoch)):
        h, w = img.shape
        oh, ow = size if size is not None else (h, w)
        p = warp_params(seed, idx, ep, angle=angle, scale=scale, translate=tr, distortion=dist, grid=grid)
        if center is not None:
            cx, cy = f32(center[0]), f32(center[1])
        elif center_mode == "foreground":
            wt = np.maximum(0, fg_threshold - img.astype(np.int64))
            sw = int(wt.sum())
            if sw == 0:
                cx, cy = f32(w) * f32(0.5), f32(h) * f32(0.5)
            else:
                cx = f32(float(int((wt * np.arange(w)[None, :]).sum())) / float(sw) + 0.5)
                cy = f32(float(int((wt * np.arange(h)[:, None]).sum())) / float(sw) + 0.5)
        else:
            cx, cy = f32(w) * f32(0.5), f32(h) * f32(0.5)
        a00, a01, a10, a11 = p["a"]
        dx = (np.arange(ow, dtype=f32) + f32(0.5)) - f32(ow) * f32(0.5)
        dy = (np.arange(oh, dtype=f32) + f32(0.5)) - f32(oh) * f32(0.5)
        sx = (cx + p["tx"]) + (a00 * dx[None, :] + (a01 * dy)[:, None])
        sy = (cy + p["ty"]) + (a10 * dx[None, :] + (a11 * dy)[:, None])
        if dist > 0:
            jy, wy = _grid_taps(oh, grid)
            ix, wx = _grid_taps(ow, grid)
            for g, s in ((p["gx"], "x"), (p["gy"], "y")):
                hrow = _combine4(wy[:, None, :], [g[jy[:, k]] for k in range(4)])  # (oh, G)
                d = _combine4(wx[None, :, :], [hrow[:, ix[:, k]] for k in range(4)])
                if s == "x":
                    sx = sx + d
                else:
                    sy = sy + d
        out.append(_to_u8(_sample(img, sx, sy, interp == "nearest", fillf))[:, :, None])
    return out


# ---------------------------------------------------------------- occlusion


def _ellipse(cx: float, cy: float, ra: float, rb: float, theta: float) -> tuple:
    c, s = math.cos(theta), math.sin(theta)
    ia, ib = 1.0 / (ra * ra), 1.0 / (rb * rb)
    qa = c * c * ia + s * s * ib
    return (f32(cx), f32(cy), f32(2.0 * c * s * (ia - ib)), f32(s * s * ia + c * c * ib), f32(4.0 * qa), f32(0.5 / qa))


def _ellipse_rows(e: tuple, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    cx, cy, qb, qc, q4a, inv2a = e
    dy = (np.arange(h, dtype=f32) + f32(0.5)) - cy
    b = qb * dy
    c = (qc * dy) * dy - f32(1.0)
    disc = b * b - q4a * c
    ok = disc >= 0
    r = np.sqrt(np.where(ok, disc, f32(0.0)))
    xl = cx + (-b - r) * inv2a
    xr = cx + (-b + r) * inv2a
    lo = np.ceil(np.clip(xl - f32(0.5), f32(-1.0), f32(w + 1)))
    hi = np.floor(np.clip(xr - f32(0.5), f32(-2.0), f32(w))) + f32(1.0)
    x0 = np.where(ok, np.clip(lo.astype(np.int64), 0, w), 0)
    x1 = np.where(ok, np.clip(hi.astype(np.int64), 0, w), 0)
    return x0, x1


def _lround(x: float) -> int:
    return int(math.floor(x + 0.5))


def occlusion_params(seed: int, idx: int, epoch: int, h: int, w: int, a: dict) -> dict:
    """One sample's masks, as drawn by csrc/fpload/occlusion_math.h."""
    u = _uniforms(seed, idx, epoch, TAG_OCCLUSION, 29 + 5 * 4)
    pi = 3.14159265358979323846
    p: dict = {"contact": None, "window": None, "erase": [], "blobs": []}
    if u[0] < a["contact_prob"]:
        ra = _lerp(a["contact_axes"], u[1]) * w * 0.5
        rb = _lerp(a["contact_axes"], u[2]) * h * 0.5
        cx = w * 0.5 + (2.0 * u[3] - 1.0) * a["contact_jitter"] * w
        cy = h * 0.5 + (2.0 * u[4] - 1.0) * a["contact_jitter"] * h
        p["contact"] = _ellipse(cx, cy, max(ra, 0.5), max(rb, 0.5), (2.0 * u[5] - 1.0) * pi / 6.0)
    if u[6] < a["window_prob"]:
        ww = min(max(_lround(_lerp(a["window_size"], u[7]) * w), 1), w)
        wh = min(max(_lround(_lerp(a["window_size"], u[8]) * h), 1), h)
        x0 = min(int(u[9] * (w - ww + 1)), w - ww)
        y0 = min(int(u[10] * (h - wh + 1)), h - wh)
        p["window"] = (x0, y0, x0 + ww, y0 + wh)
    for k in range(min(int(u[11] * (a["erase_max"] + 1)), a["erase_max"])):
        b = 12 + 4 * k
        area = _lerp(a["erase_area"], u[b]) * h * w
        aspect = math.exp((2.0 * u[b + 1] - 1.0) * math.log(2.0))
        rh = min(max(_lround(math.sqrt(area * aspect)), 1), h)
        rw = min(max(_lround(math.sqrt(area / aspect)), 1), w)
        x0 = min(int(u[b + 2] * (w - rw + 1)), w - rw)
        y0 = min(int(u[b + 3] * (h - rh + 1)), h - rh)
        p["erase"].append((x0, y0, x0 + rw, y0 + rh))
    for k in range(min(int(u[28] * (a["blob_max"] + 1)), a["blob_max"])):
        b = 29 + 5 * k
        ra = _lerp(a["blob_radius"], u[b]) * min(h, w)
        rb = ra * (0.5 + 0.5 * u[b + 1])
        p["blobs"].append(_ellipse(u[b + 2] * w, u[b + 3] * h, max(ra, 0.5), max(rb, 0.5), u[b + 4] * pi))
    return p


def occlusion(images: Sequence[np.ndarray], sample_idx: Sequence[int], epoch: int | Sequence[int] = 0, seed: int = 0, *,
              fill: int = 255, contact_prob: float = 0.0, contact_axes=(0.6, 1.0), contact_jitter: float = 0.0,
              window_prob: float = 0.0, window_size=(0.6, 0.9), erase_max: int = 0, erase_area=(0.02, 0.08),
              blob_max: int = 0, blob_radius=(0.03, 0.08)) -> list[np.ndarray]:
    """Reference of ``fn.fpload_occlusion``."""
    op = "fpload_occlusion"
    imgs = _check_batch(images, op)
    if not 0 <= fill <= 255:
        raise UsageError(f"{op}: `fill` must be in [0, 255], got {fill!r}")
    if contact_jitter < 0:
        raise UsageError(f"{op}: `contact_jitter` must be >= 0, got {contact_jitter!r}")
    for name, v in (("erase_max", erase_max), ("blob_max", blob_max)):
        if not 0 <= v <= 4:
            raise UsageError(f"{op}: `{name}` must be in [0, 4], got {v!r}")
    a = {
        "contact_prob": _prob(op, "contact_prob", contact_prob),
        "contact_axes": _range(op, "contact_axes", contact_axes, 0.0, strict=True),
        "contact_jitter": float(f32(contact_jitter)),
        "window_prob": _prob(op, "window_prob", window_prob),
        "window_size": _range(op, "window_size", window_size, 0.0, strict=True),
        "erase_max": int(erase_max), "erase_area": _range(op, "erase_area", erase_area, 0.0),
        "blob_max": int(blob_max), "blob_radius": _range(op, "blob_radius", blob_radius, 0.0),
    }
    out = []
    for img, (idx, ep) in zip(imgs, _keys(len(imgs), sample_idx, epoch)):
        h, w = img.shape
        p = occlusion_params(seed, idx, ep, h, w, a)
        xs = np.arange(w)[None, :]
        k0, k1 = np.zeros(h, np.int64), np.full(h, w, np.int64)
        if p["contact"] is not None:
            k0, k1 = _ellipse_rows(p["contact"], h, w)
        if p["window"] is not None:
            x0, y0, x1, y1 = p["window"]
            rows = np.arange(h)
            inside = (rows >= y0) & (rows < y1)
            k0, k1 = np.where(inside, np.maximum(k0, x0), k0), np.where(inside, np.minimum(k1, x1), k0)
        keep = (xs >= k0[:, None]) & (xs < k1[:, None])
        for x0, y0, x1, y1 in p["erase"]:
            keep[y0:y1, x0:x1] = False
        for e in p["blobs"]:
            b0, b1 = _ellipse_rows(e, h, w)
            keep &= ~((xs >= b0[:, None]) & (xs < b1[:, None]))
        out.append(np.where(keep, img, np.uint8(fill))[:, :, None])
    return out


# ---------------------------------------------------------------- photometric


def photometric_params(seed: int, idx: int, epoch: int, a: dict) -> dict:
    """One sample's photometric parameters, as drawn by csrc/fpload/photometric_math.h."""
    u = _uniforms(seed, idx, epoch, TAG_PHOTOMETRIC, 8)
    contrast, brightness, gamma = _lerp(a["contrast"], u[0]), _lerp(a["brightness"], u[1]), _lerp(a["gamma"], u[2])
    noise = f32(_lerp(a["noise_std"], u[3]))
    blur = f32(_lerp(a["blur_strength"], u[5])) if u[4] < a["blur_prob"] else f32(0.0)
    morph = 1 if u[6] < a["dry_prob"] else (2 if u[6] < a["dry_prob"] + a["wet_prob"] else 0)
    lut = np.empty(257, dtype=f32)
    for i in range(256):
        t = (i / 255.0 - 0.5) * contrast + 0.5 + brightness
        t = min(max(t, 0.0), 1.0)
        lut[i] = f32(math.pow(t, gamma) * 255.0)
    lut[256] = lut[255]
    return {"noise": noise, "blur": blur, "morph": morph, "invert": u[7] < a["invert_prob"],
            "noise_key": int(draw_u32(seed, idx, epoch, TAG_PHOTOMETRIC, [8])[0]), "lut": lut}


def photometric(images: Sequence[np.ndarray], sample_idx: Sequence[int], epoch: int | Sequence[int] = 0, seed: int = 0, *,
                contrast=(1.0, 1.0), brightness=(0.0, 0.0), gamma=(1.0, 1.0), noise_std=(0.0, 0.0),
                blur_prob: float = 0.0, blur_strength=(1.0, 1.0), dry_prob: float = 0.0, wet_prob: float = 0.0,
                invert_prob: float = 0.0, dtype: str = "uint8", mean: float = 0.0, std: float = 1.0) -> list[np.ndarray]:
    """Reference of ``fn.fpload_photometric``; ``dtype`` is "uint8", "float32" or "float16"."""
    op = "fpload_photometric"
    imgs = _check_batch(images, op)
    br = _range(op, "brightness", brightness)
    if br[0] < -1 or br[1] > 1:
        raise UsageError(f"{op}: `brightness` must lie within [-1, 1], got {brightness!r}")
    bs = _range(op, "blur_strength", blur_strength, 0.0)
    if bs[1] > 1:
        raise UsageError(f"{op}: `blur_strength` must lie in [0, 1], got {blur_strength!r}")
    a = {
        "contrast": _range(op, "contrast", contrast, 0.0), "brightness": br,
        "gamma": _range(op, "gamma", gamma, 0.0, strict=True), "noise_std": _range(op, "noise_std", noise_std, 0.0),
        "blur_prob": _prob(op, "blur_prob", blur_prob), "blur_strength": bs,
        "dry_prob": _prob(op, "dry_prob", dry_prob), "wet_prob": _prob(op, "wet_prob", wet_prob),
        "invert_prob": _prob(op, "invert_prob", invert_prob),
    }
    if a["dry_prob"] + a["wet_prob"] > 1.0:
        raise UsageError(f"{op}: `dry_prob` + `wet_prob` must be <= 1")
    if dtype not in ("uint8", "float32", "float16"):
        raise UsageError(f"{op}: `dtype` must be uint8, float32 or float16, got {dtype!r}")
    if not std > 0:
        raise UsageError(f"{op}: `std` must be > 0, got {std!r}")
    meanf, inv_std = f32(mean), f32(1.0 / float(f32(std)))
    out = []
    for img, (idx, ep) in zip(imgs, _keys(len(imgs), sample_idx, epoch)):
        h, w = img.shape
        p = photometric_params(seed, idx, ep, a)
        if p["morph"] or p["blur"] > 0:
            pad = np.pad(img, 1, mode="edge").astype(np.int32)
            nb = [pad[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
            if p["morph"] == 1:
                m = np.max(nb, axis=0).astype(f32)
            elif p["morph"] == 2:
                m = np.min(nb, axis=0).astype(f32)
            else:
                m = img.astype(f32)
            if p["blur"] > 0:
                s = (nb[0] + 2 * nb[1] + nb[2]) + 2 * (nb[3] + 2 * nb[4] + nb[5]) + (nb[6] + 2 * nb[7] + nb[8])
                m = m + p["blur"] * (s.astype(f32) * f32(0.0625) - m)
            v = m
        else:
            v = img.astype(f32)
        lut = p["lut"]
        vi = v.astype(np.int32)
        fr = v - vi.astype(f32)
        t = lut[vi] + fr * (lut[vi + 1] - lut[vi])
        if p["noise"] > 0:
            t = t + p["noise"] * hash_normal(p["noise_key"], np.arange(h * w, dtype=np.uint32).reshape(h, w))
        t = np.clip(t, f32(0.0), f32(255.0))
        if p["invert"]:
            t = f32(255.0) - t
        if dtype == "uint8":
            o = _to_u8(t)
        else:
            o = ((t - meanf) * inv_std).astype(dtype)
        out.append(o[:, :, None])
    return out
