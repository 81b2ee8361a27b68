"""The pack's per-pixel CPU loops in C++ (``csrc/native.cc``, built as ``libfpload_native.so``
beside the operator plugin), called through ctypes.

Each function here has a NumPy twin that computes the same bits (integer sums are exact; float
expressions run in one order with no FMA contraction; float64 sums are sequential): the twins are
the reference the tests hold these to, and they run instead whenever the library is missing, was
built from other sources than a checkout's ``csrc/`` (stale), or ``FPLOAD_NATIVE=0``. Which path
ran changes the speed, never a value, so a version packed either way has the same id.
:func:`status` says which is in use and why (``fpload doctor`` prints it).

Every wrapper checks shapes and dtypes before the call, so the C loops only ever see extents
that match their buffers.

    >>> from fpload import _native
    >>> sorted(_native.status())
    ['enabled', 'path', 'reason']
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Any

import numpy as np

from fpload.config import env_native

ABI_VERSION = 1

_P = ctypes.c_void_p
_I = ctypes.c_int64
_SIGNATURES: dict[str, tuple[list[Any], Any]] = {
    "fpl_png_unfilter": ([_P, _I, _I, ctypes.c_int32, _P], _I),
    "fpl_block_moments": ([_P, _I, _I, _I, _I, _P], None),
    "fpl_cell_sums": ([_P, _I, _I, _I, _I, _I, _P], None),
    "fpl_freq_windows": ([_P, _I, _I, _I, _P, _P, _I, _I, _P, _P, _P], None),
    "fpl_band_stats": ([_P, _I, _I, _P, _P, _I, _P, _P], None),
}

_lock = threading.Lock()
_state: dict[str, Any] | None = None


def _library_path() -> Path | None:
    from fpload.ops._plugin import NATIVE_LIB_NAME, _candidate_dirs, plugin_path

    for d in [plugin_path().parent, *_candidate_dirs()]:
        if (d / NATIVE_LIB_NAME).is_file():
            return d / NATIVE_LIB_NAME
    return None


def _load() -> dict[str, Any]:
    from fpload.ops._plugin import _is_stale, read_build_record

    path = _library_path()
    if path is None:
        return {"lib": None, "path": None, "reason": "libfpload_native.so is not built (run `fpload ops build`)"}
    try:
        record = read_build_record(path.parent)
    except Exception as err:  # noqa: BLE001 - an unreadable record: the NumPy path, with the reason
        return {"lib": None, "path": str(path), "reason": f"its build record is unreadable: {err}"}
    if record is not None and _is_stale(record):
        return {"lib": None, "path": str(path),
                "reason": "built from older sources than csrc/ (run `fpload ops build` or `make`)"}
    try:
        lib = ctypes.CDLL(str(path))
        abi = lib.fpl_native_abi
        abi.restype = ctypes.c_int32
        if abi() != ABI_VERSION:
            return {"lib": None, "path": str(path),
                    "reason": f"ABI {abi()} where {ABI_VERSION} is expected (run `fpload ops build`)"}
        for name, (args, res) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, res
    except (OSError, AttributeError) as err:
        return {"lib": None, "path": str(path), "reason": f"cannot load it: {err}"}
    return {"lib": lib, "path": str(path), "reason": "loaded"}


def lib() -> Any | None:
    """The loaded library (once per process), or None when the NumPy twins are to run."""
    global _state
    if not env_native():
        return None
    if _state is None:
        with _lock:
            if _state is None:
                _state = _load()
    return _state["lib"]


def status() -> dict[str, Any]:
    """``{"enabled", "path", "reason"}``: whether the C++ loops run here, and why (not)."""
    if not env_native():
        return {"enabled": False, "path": None, "reason": "FPLOAD_NATIVE=0"}
    lib()
    assert _state is not None
    return {"enabled": _state["lib"] is not None, "path": _state["path"], "reason": _state["reason"]}


def _u8_image(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8 or img.ndim != 2 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected a non-empty 2-D uint8 image, got {img.dtype} {img.shape}")
    return np.ascontiguousarray(img)  # rows img.shape[1] bytes apart, as the loops assume


def png_unfilter(raw: bytes | bytearray | memoryview, height: int, row_bytes: int, bpp: int) -> np.ndarray:
    """Unfilter ``height`` PNG scanlines (``raw``: the inflated IDAT stream, ``height × (1 +
    row_bytes)`` bytes) into ``height × row_bytes`` bytes. Raises ValueError naming the first row
    whose filter type is not 0–4, or when ``raw`` has another length."""
    native = lib()
    assert native is not None, "png_unfilter needs the native library"
    buf = np.frombuffer(raw, np.uint8)
    if not 1 <= bpp <= 8 or height < 1 or row_bytes < 1 or buf.size != height * (row_bytes + 1):
        raise ValueError(f"PNG data of {buf.size} bytes is not {height} rows of 1 + {row_bytes} bytes")
    out = np.empty((height, row_bytes), np.uint8)
    bad = native.fpl_png_unfilter(buf.ctypes.data, height, row_bytes, bpp, out.ctypes.data)
    if bad >= 0:
        raise ValueError(f"row {bad} has filter type {buf[bad * (row_bytes + 1)]} (PNG defines 0-4)")
    return out


def block_moments(img: np.ndarray, block: int) -> np.ndarray:
    """int64 ``[5, hb, wb]``: per ``block``² block, Σ px, Σ px², Σ gx², Σ gy², Σ gx·gy, with
    (gx, gy) 8 × the edge-replicated Sobel gradients (the sums ImageAnalysis makes in NumPy)."""
    native = lib()
    assert native is not None
    img = _u8_image(img)
    if not 1 <= block <= 256:
        raise ValueError(f"block {block} is outside 1..256")
    h, w = img.shape
    out = np.empty((5, -(-h // block), -(-w // block)), np.int64)
    native.fpl_block_moments(img.ctypes.data, h, w, img.shape[1], block, out.ctypes.data)
    return out


def cell_sums(img: np.ndarray, ry: int, rx: int) -> np.ndarray:
    """int64 sums of the whole ``ry × rx`` cells of ``img`` (its sides multiples of them)."""
    native = lib()
    assert native is not None
    img = _u8_image(img)
    h, w = img.shape
    if ry < 1 or rx < 1 or h % ry or w % rx or ry * rx * 255 >= 2 ** 31:
        raise ValueError(f"cells of {ry}×{rx} do not tile a {h}×{w} image")
    out = np.empty((h // ry, w // rx), np.int64)
    native.fpl_cell_sums(img.ctypes.data, h, w, img.shape[1], ry, rx, out.ctypes.data)
    return out


def freq_windows(img: np.ndarray, top: np.ndarray, left: np.ndarray, taper: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``[n, win, win]``: the windows at (``top``, ``left``) (image coordinates, possibly
    outside it), ``(px - mean) * taper`` on the image's pixels and 0 elsewhere, ``mean`` the
    float32 quotient of the window's pixel sum by its pixel count; and int64 ``[n, 3]``: each
    window's Σ px, Σ px² and pixel count (see :func:`fpload.features._builtin._freq_windows`)."""
    native = lib()
    assert native is not None
    img = _u8_image(img)
    top, left = (np.ascontiguousarray(a, np.int64) for a in (top, left))
    taper = np.ascontiguousarray(taper, np.float32)
    win = taper.shape[0]
    if top.shape != left.shape or top.ndim != 1 or taper.shape != (win, win) or win < 1:
        raise ValueError("freq_windows: top, left must be 1-D of one length and taper square")
    out = np.empty((top.size, win, win), np.float32)
    sums = np.empty((top.size, 3), np.int64)
    h, w = img.shape
    native.fpl_freq_windows(img.ctypes.data, h, w, img.shape[1], top.ctypes.data, left.ctypes.data,
                            top.size, win, taper.ctypes.data, out.ctypes.data, sums.ctypes.data)
    return out, sums


def band_stats(spec: np.ndarray, idx: np.ndarray, radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For spectra ``spec`` (complex64 ``[n, ...]``) over the flat bins ``idx`` with radii
    ``radius``: the float64 ``total`` of the power at or above half its peak, and its ``moment``
    (Σ power·radius), summed in bin order (see :func:`fpload.features._builtin._band_stats`)."""
    native = lib()
    assert native is not None
    spec = np.ascontiguousarray(spec, np.complex64)
    n = spec.shape[0]
    per = int(np.prod(spec.shape[1:], dtype=np.int64))
    idx = np.ascontiguousarray(idx, np.int64)
    radius = np.ascontiguousarray(radius, np.float64)
    if idx.ndim != 1 or radius.shape != idx.shape or (idx.size and (idx.min() < 0 or idx.max() >= per)):
        raise ValueError("band_stats: idx must be 1-D flat indices into one spectrum, radius beside it")
    total, moment = np.empty(n), np.empty(n)
    native.fpl_band_stats(spec.ctypes.data, n, per, idx.ctypes.data, radius.ctypes.data, idx.size,
                          total.ctypes.data, moment.ctypes.data)
    return total, moment
