"""libfpload_native.so (csrc/native.cc) computes the same bits as its NumPy twins (issue 14 §4).

The pack's built-in features and its PNG decoding run through the C++ loops when the library is
built (``make`` builds it); ``FPLOAD_NATIVE=0`` runs the NumPy twins. Which path ran must never
change a value: a version packed either way has the same id.
"""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fpload import _native, _png
from fpload.features import BUILTINS, FeaturesConfig, resolve_extractors, run_extractors
from fpload.features import _builtin
from fpload.testing import encode, ridge_image


@pytest.fixture(autouse=True)
def _native_on(monkeypatch):
    monkeypatch.setenv("FPLOAD_NATIVE", "1")
    st_ = _native.status()
    # `make` builds the library beside the plugin; a checkout without it is a broken set-up here
    assert st_["enabled"], f"the native library is not in use: {st_}"


def _both(monkeypatch, fn):
    """``fn()`` with the native loops, then with the NumPy twins."""
    monkeypatch.setenv("FPLOAD_NATIVE", "1")
    a = fn()
    monkeypatch.setenv("FPLOAD_NATIVE", "0")
    assert _native.lib() is None
    b = fn()
    monkeypatch.setenv("FPLOAD_NATIVE", "1")
    return a, b


def _image(kind: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    if kind == "ridges":
        return ridge_image(rng, (h, w), period=float(rng.uniform(4, 14)))
    if kind == "noise":
        return rng.integers(0, 256, (h, w), dtype=np.uint8)
    if kind == "flat":
        return np.full((h, w), rng.integers(0, 256), np.uint8)
    return np.where(rng.random((h, w)) < 0.5, 0, 255).astype(np.uint8)  # the largest sums


def _assert_features_equal(a, b, what) -> None:
    assert a.keys() == b.keys()
    for ext in a:
        for name in a[ext]:
            x, y = a[ext][name], b[ext][name]
            assert x.dtype == y.dtype and x.shape == y.shape, (what, ext, name)
            assert np.array_equal(x, y), f"{what}: {ext}.{name} differs between native and NumPy"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 140), w=st.integers(1, 140), block=st.sampled_from([4, 8, 12, 16, 32]),
       kind=st.sampled_from(["ridges", "noise", "flat", "extremes"]), seed=st.integers(0, 2 ** 16),
       window=st.sampled_from([16, 24, 32, 48]), step=st.sampled_from([1, 2, 3]))
def test_every_builtin_is_bit_identical_to_its_numpy_twin(monkeypatch, h, w, block, kind, seed, window, step):
    image = _image(kind, np.random.default_rng(seed), h, w)
    cfg = FeaturesConfig(block=block, extractors=[
        "orientation", {"name": "frequency", "params": {"window": window, "step": step}}, "foreground", "quality",
        "thumbnail"])
    job = resolve_extractors(cfg)
    a, b = _both(monkeypatch, lambda: run_extractors(image, job))
    _assert_features_equal(a, b, f"{kind} {image.shape} block {block} window {window} step {step}")


@pytest.mark.parametrize("shape", [(512, 512), (500, 500), (388, 374), (480, 640), (1024, 256)])
def test_full_sized_captures_are_bit_identical(monkeypatch, shape):
    image = ridge_image(np.random.default_rng(shape[0]), shape)
    job = resolve_extractors(FeaturesConfig())
    a, b = _both(monkeypatch, lambda: run_extractors(image, job))
    _assert_features_equal(a, b, str(shape))
    assert (a["frequency"]["frequency"] > 0).mean() > 0.5  # the comparison covers valued blocks


def test_block_moments_are_the_exact_sums():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (37, 29), dtype=np.uint8)
    m = _native.block_moments(image, 8)
    p = np.pad(image.astype(np.int64), 1, mode="edge")
    gx = (p[:-2, 2:] - p[:-2, :-2]) + 2 * (p[1:-1, 2:] - p[1:-1, :-2]) + (p[2:, 2:] - p[2:, :-2])
    gy = (p[2:, :-2] - p[:-2, :-2]) + 2 * (p[2:, 1:-1] - p[:-2, 1:-1]) + (p[2:, 2:] - p[:-2, 2:])
    px = image.astype(np.int64)
    for plane, values in enumerate([px, px * px, gx * gx, gy * gy, gx * gy]):
        padded = np.pad(values, ((0, 40 - 37), (0, 32 - 29)))
        np.testing.assert_array_equal(m[plane], padded.reshape(5, 8, 4, 8).sum(axis=(1, 3)))
    # a view with strides is copied, not misread
    np.testing.assert_array_equal(_native.block_moments(image[:, ::-1].copy(), 8),
                                  _native.block_moments(np.ascontiguousarray(image[:, ::-1]), 8))
    np.testing.assert_array_equal(_native.block_moments(image.T, 8), _native.block_moments(image.T.copy(), 8))


def test_cell_sums_and_window_twins(monkeypatch):
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (48, 40), dtype=np.uint8)
    np.testing.assert_array_equal(_native.cell_sums(image, 8, 4), image.reshape(6, 8, 10, 4).sum(axis=(1, 3)))
    taper = rng.random((16, 16)).astype(np.float32)
    top = np.array([-8, 0, 40, 44, -15, 16])  # windows reaching past every edge, one nearly outside
    left = np.array([-8, 30, 32, -3, -15, 8])
    (xa, sa), (xb, sb) = _both(monkeypatch, lambda: _builtin._freq_windows(image, top, left, taper))
    assert xa.dtype == xb.dtype == np.float32 and np.array_equal(xa, xb) and np.array_equal(sa, sb)
    assert sa[4].tolist() == [int(image[0, 0]), int(image[0, 0]) ** 2, 1]
    tiles = (np.array([0, 16, 32]), np.array([0, 16, 0]))  # the twin's tiling shortcut, same bits
    (xa, sa), (xb, sb) = _both(monkeypatch, lambda: _builtin._freq_windows(image[:48, :32], *tiles, taper))
    assert np.array_equal(xa, xb) and np.array_equal(sa, sb)
    spec = (rng.standard_normal((5, 16, 9)) + 1j * rng.standard_normal((5, 16, 9))).astype(np.complex64)
    idx = rng.choice(16 * 9, 40, replace=False)
    radius = rng.random(40)
    (ta, ma), (tb, mb) = _both(monkeypatch, lambda: _builtin._band_stats(spec, idx, radius))
    assert np.array_equal(ta, tb) and np.array_equal(ma, mb) and (ta > 0).all()
    (ta, ma), (tb, mb) = _both(monkeypatch, lambda: _builtin._band_stats(spec, idx[:0], radius[:0]))
    assert not ta.any() and not tb.any() and not ma.any() and not mb.any()


def test_wrappers_refuse_mismatched_buffers():
    image = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="2-D uint8"):
        _native.block_moments(np.zeros((8, 8), np.float32), 4)
    with pytest.raises(ValueError, match="block"):
        _native.block_moments(image, 0)
    with pytest.raises(ValueError, match="do not tile"):
        _native.cell_sums(image, 3, 4)
    with pytest.raises(ValueError, match="rows of 1"):
        _native.png_unfilter(b"\0" * 11, 2, 4, 1)
    with pytest.raises(ValueError, match="flat indices"):
        _native.band_stats(np.zeros((1, 4, 3), np.complex64), np.array([12]), np.array([0.5]))


def test_native_off_and_its_reason(monkeypatch):
    monkeypatch.setenv("FPLOAD_NATIVE", "0")
    assert _native.status() == {"enabled": False, "path": None, "reason": "FPLOAD_NATIVE=0"}
    assert _png.decode_gray8(encode(np.zeros((4, 4), np.uint8))) is None
    monkeypatch.setenv("FPLOAD_NATIVE", "maybe")
    from fpload.errors import ConfigError

    with pytest.raises(ConfigError, match="FPLOAD_NATIVE"):
        _native.lib()


def test_frequency_version_moved_with_its_sums():
    # float64 sums in bin order (C++ and NumPy alike) replaced float32 pairwise and BLAS sums:
    # values may differ in the last float16 bit from version 3, so its caches are not reused
    assert BUILTINS["frequency"].version == 4


# -- the PNG decoder -------------------------------------------------------------------------------

def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with_filters(px: np.ndarray, filters, *, split: int = 1, extra: bytes = b"") -> bytes:
    """An 8-bit grey PNG whose row y is filtered with ``filters[y]`` (RFC 2083 section 6), its IDAT
    split into ``split`` chunks, with ``extra`` chunks before the IDATs."""
    h, w = px.shape
    prev = np.zeros(w, np.int64)
    rows = []
    for y in range(h):
        cur = px[y].astype(np.int64)
        a = np.concatenate([[0], cur[:-1]])
        c = np.concatenate([[0], prev[:-1]])
        f = int(filters[y])
        pred = [np.zeros(w, np.int64), a, prev, (a + prev) // 2, _paeth(a, prev, c)][f]
        rows.append(bytes([f]) + ((cur - pred) % 256).astype(np.uint8).tobytes())
        prev = cur
    stream = zlib.compress(b"".join(rows), 6)
    parts = [stream[i * len(stream) // split:(i + 1) * len(stream) // split] for i in range(split)]
    return (_png.SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + extra
            + b"".join(_chunk(b"IDAT", p) for p in parts) + _chunk(b"IEND", b""))


def _pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("L"))


@pytest.mark.parametrize("f", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (9, 1), (5, 3), (33, 70)])
def test_each_filter_type_decodes_to_the_pixels(f, shape):
    px = np.random.default_rng(f).integers(0, 256, shape, dtype=np.uint8)
    data = _png_with_filters(px, [f] * shape[0])
    out = _png.decode_gray8(data)
    assert out is not None and out.dtype == np.uint8
    np.testing.assert_array_equal(out, px)
    np.testing.assert_array_equal(out, _pillow(data))


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), seed=st.integers(0, 2 ** 16),
       filters=st.lists(st.integers(0, 4), min_size=40, max_size=40), split=st.integers(1, 4))
def test_mixed_filters_and_split_idat(h, w, seed, filters, split):
    # runs of Paeth rows take the wavefront path, other rows the plain one; any mix, any split
    px = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    data = _png_with_filters(px, filters[:h], split=split, extra=_chunk(b"tEXt", b"k\0v"))
    out = _png.decode_gray8(data)
    assert out is not None
    np.testing.assert_array_equal(out, px)


def test_pillow_written_captures_decode_the_same():
    rng = np.random.default_rng(7)
    for shape in [(512, 512), (300, 257), (2, 2)]:
        img = ridge_image(rng, shape)
        np.testing.assert_array_equal(_png.decode_gray8(encode(img)), img)


def _pillow_png(obj, **kw) -> bytes:
    buf = io.BytesIO()
    (obj if isinstance(obj, Image.Image) else Image.fromarray(obj)).save(buf, format="PNG", **kw)
    return buf.getvalue()


def test_other_layouts_are_left_to_pillow():
    rng = np.random.default_rng(8)
    g = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    others = [
        _pillow_png(np.stack([g] * 3, -1)),                     # RGB
        _pillow_png(g.astype(np.uint16) * 257),                  # 16-bit grey
        _pillow_png(g > 127),                                   # 1-bit
        _pillow_png(Image.fromarray(g).convert("P")),           # palette
    ]
    for data in others:
        assert _png.decode_gray8(data) is None
    interlaced = bytearray(_png_with_filters(g, [0] * 6))
    interlaced[28] = 1  # the IHDR's interlace byte, its CRC now wrong too
    assert _png.decode_gray8(bytes(interlaced)) is None
    assert _png.decode_gray8(_png_with_filters(g, [0] * 6), max_pixels=29) is None
    assert _png.decode_gray8(_png_with_filters(g, [0] * 6), max_pixels=30) is not None


def test_malformed_files_are_left_to_pillow():
    g = np.random.default_rng(9).integers(0, 256, (12, 10), dtype=np.uint8)
    good = _png_with_filters(g, [4] * 12)
    ihdr_end = 8 + 25
    cases = {
        "truncated": good[:-20],
        "no IEND": good[:-12],
        "PLTE": good[:ihdr_end] + _chunk(b"PLTE", b"\0\0\0") + good[ihdr_end:],
        "unknown critical chunk": good[:ihdr_end] + _chunk(b"ABCD", b"") + good[ihdr_end:],
        "second IHDR": good[:ihdr_end] + good[8:ihdr_end] + good[ihdr_end:],
        "bad IHDR CRC": good[:29] + b"\0\0\0\0" + good[33:],
        "length past the end": good[:ihdr_end] + struct.pack(">I", 2 ** 30) + good[ihdr_end + 4:],
    }
    # a filter type of 5, in a stream that inflates correctly
    raw = b"".join(bytes([5 if y == 11 else 0]) + g[y].tobytes() for y in range(12))
    cases["bad filter type"] = (good[:ihdr_end] + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))
    # IDAT, another chunk, IDAT again
    stream = zlib.compress(b"".join(b"\0" + g[y].tobytes() for y in range(12)))
    cases["IDATs not in one run"] = (good[:ihdr_end] + _chunk(b"IDAT", stream[:20]) + _chunk(b"tEXt", b"k\0v")
                                     + _chunk(b"IDAT", stream[20:]) + _chunk(b"IEND", b""))
    cases["stream too short"] = good[:ihdr_end] + _chunk(b"IDAT", zlib.compress(raw[:-1])) + _chunk(b"IEND", b"")
    cases["stream too long"] = good[:ihdr_end] + _chunk(b"IDAT", zlib.compress(raw + b"\0")) + _chunk(b"IEND", b"")
    cases["bad Adler-32"] = good[:ihdr_end] + _chunk(b"IDAT", zlib.compress(raw)[:-1] + b"\0") + _chunk(b"IEND", b"")
    # ancillary chunks Pillow interprets: transparency, EXIF, animation, profiles are Pillow's;
    # short ones whose handler would raise; a bad checksum Pillow refuses
    for kind, body in [(b"tRNS", b"\0\1"), (b"eXIf", b"MM\0*"), (b"acTL", b"\0" * 8), (b"iCCP", b"p\0\0x"),
                       (b"pHYs", b"\0" * 5), (b"gAMA", b"\0\0"), (b"sRGB", b""), (b"tEXt", b"exif\0MM"),
                       (b"tEXt", b"XML:com.adobe.xmp\0<x tiff:Orientation=\"6\"/>"), (b"tEXt", b"xmp\0x"),
                       (b"tEXt", b"Raw profile type exif\0\n\n\n00")]:
        cases[f"{kind.decode()} {body[:24]!r}"] = good[:ihdr_end] + _chunk(kind, body) + good[ihdr_end:]
    bad_crc = bytearray(_chunk(b"tEXt", b"k\0v"))
    bad_crc[-1] ^= 1
    cases["bad tEXt checksum"] = good[:ihdr_end] + bytes(bad_crc) + good[ihdr_end:]
    for what, data in cases.items():
        assert _png.decode_gray8(data) is None, what
    # chunks Pillow skips or reads without fail are fine, before or after the image data
    fine = (good[:ihdr_end] + _chunk(b"pHYs", struct.pack(">IIB", 19685, 19685, 1)) + _chunk(b"gAMA", b"\0\1\x86\xa0")
            + _chunk(b"sRGB", b"\0") + _chunk(b"tIME", b"\x07\xea\x0c\x02\0\0\0") + _chunk(b"prVt", b"x")
            + good[ihdr_end:-12] + _chunk(b"tEXt", b"Comment\0scanner 7") + good[-12:])
    np.testing.assert_array_equal(_png.decode_gray8(fine), g)
    np.testing.assert_array_equal(_pillow(fine), g)


@settings(max_examples=400, deadline=None)
@given(pos=st.integers(0, 10 ** 6), value=st.integers(0, 255), cut=st.integers(0, 10 ** 6), mode=st.integers(0, 2))
def test_mutated_files_decode_as_pillow_does_or_not_at_all(pos, value, cut, mode):
    g = np.random.default_rng(10).integers(0, 256, (16, 16), dtype=np.uint8)
    # ancillary chunks before the image data (Pillow checks their checksums and lengths)
    extra = _chunk(b"pHYs", struct.pack(">IIB", 19685, 19685, 1)) + _chunk(b"tEXt", b"Source\0sensor")
    data = bytearray(_png_with_filters(g, [0, 1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 2, 1, 0, 3], split=2, extra=extra))
    if mode == 0:
        data[pos % len(data)] = value
    elif mode == 1:
        del data[cut % len(data):]
    else:
        data.insert(pos % len(data), value)
    out = _png.decode_gray8(bytes(data))
    if out is None:
        return
    try:
        expected = _pillow(bytes(data))
    except Exception:  # noqa: BLE001 - Pillow refuses a file the fast path decoded
        pytest.fail("the fast path decoded a file Pillow refuses")
    np.testing.assert_array_equal(out, expected)


def test_a_pack_is_the_same_version_with_or_without_the_native_loops(tmp_path, monkeypatch):
    # the invariant that lets the C++ loops be an optimisation only: same features, same id
    from fpload.catalog import open_catalog
    from fpload.pack import pack_version
    from fpload.testing import make_captures

    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(make_captures(tmp_path / "caps", subjects=3, fingers=2, impressions=2, size=(70, 61), seed=11))
    decoded = []
    real = _png.decode_gray8
    monkeypatch.setattr(_png, "decode_gray8", lambda data, *a, **k: decoded.append(real(data, *a, **k)) or decoded[-1])
    ids = []
    for flag in ("1", "0"):
        monkeypatch.setenv("FPLOAD_NATIVE", flag)
        res = pack_version(cat, out=tmp_path / f"v{flag}", name="fp", where="consent", workers=1)
        ids.append(res.version_id)
        assert res.features_computed == 12
    assert ids[0] == ids[1]
    # the native pack decoded every capture on the fast path; without the library it declined
    assert len(decoded) == 24 and all(d is not None for d in decoded[:12]) and all(d is None for d in decoded[12:])
    cat.close()
