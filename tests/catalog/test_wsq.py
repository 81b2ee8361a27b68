"""WSQ images at ingest (issue 15, §2): decoded (in a sandbox process), sized, hostile bytes refused
with one line naming the file; the NBIS decoder's crashes and hangs stay in its helper process."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("_wsq", reason="needs the optional extra fpload[nist]")

from fpload.catalog import _wsq, open_catalog  # noqa: E402
from fpload.catalog._image import ImageLimits, probe_bytes  # noqa: E402
from fpload.cli import main  # noqa: E402
from fpload.errors import ImageError  # noqa: E402
from fpload.testing import encode, make_captures, ridge_image  # noqa: E402


def _wsq_bytes(seed: int = 0, size=(80, 64)) -> bytes:
    return encode(ridge_image(np.random.default_rng(seed), size), "wsq")


def _one_line_error(capsys, *args) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("fpload: error: "), err
    return err[0]


def test_wsq_files_ingest_with_their_size(tmp_path):
    meta = make_captures(tmp_path / "caps", subjects=2, fingers=1, impressions=2, size=(80, 64), fmt="wsq")
    with open_catalog(tmp_path / "cat.duckdb") as cat:
        rep = cat.ingest(meta)
        rows = cat.query("true").to_pylist()
    assert rep.added == 4
    assert {(r["format"], r["width"], r["height"]) for r in rows} == {("wsq", 64, 80)}


def test_decoded_pixels_match_the_codec(tmp_path):
    img = ridge_image(np.random.default_rng(3), (96, 64))
    px = _wsq.decode_wsq(_wsq.encode_wsq(img), max_pixels=10**6)
    assert px.shape == (96, 64) and px.dtype == np.uint8
    assert np.abs(px.astype(int) - img.astype(int)).mean() < 12  # lossy, but the same picture


def test_bomb_header_is_refused_before_decoding(tmp_path, capsys):
    data = bytearray(_wsq_bytes())
    sof = data.index(b"\xff\xa2")
    data[sof + 6:sof + 10] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")
    caps = tmp_path / "caps"
    meta = make_captures(caps, subjects=1, fingers=1, impressions=1, size=(80, 64), fmt="wsq")
    target = next((caps / "images").glob("*.wsq"))
    target.write_bytes(bytes(data))
    line = _one_line_error(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "cat.duckdb")
    assert target.name in line and "3600000000 pixels is over the limit" in line


@pytest.mark.parametrize("cut", [3, 40, -200])
def test_truncated_wsq_is_one_line_naming_the_file(tmp_path, capsys, cut):
    caps = tmp_path / "caps"
    meta = make_captures(caps, subjects=1, fingers=1, impressions=1, size=(80, 64), fmt="wsq")
    target = next((caps / "images").glob("*.wsq"))
    target.write_bytes(target.read_bytes()[:cut])
    line = _one_line_error(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "cat.duckdb")
    assert target.name in line and "WSQ" in line
    assert not (tmp_path / "cat.duckdb").exists() or open_catalog(tmp_path / "cat.duckdb").stats()["samples"] == 0


def test_a_crashing_decoder_is_an_error_for_that_image_only(monkeypatch):
    good = _wsq_bytes()
    monkeypatch.setattr(_wsq, "_CHILD", "import os; os.abort()")
    monkeypatch.setattr(_wsq, "_IDLE", [])
    with pytest.raises(ValueError, match="crashed"):
        _wsq.decode_wsq(good, max_pixels=10**6)
    monkeypatch.undo()
    assert _wsq.decode_wsq(good, max_pixels=10**6).shape == (80, 64)  # a fresh helper serves the next image


def test_a_hanging_decoder_is_stopped(monkeypatch):
    monkeypatch.setattr(_wsq, "_CHILD", "import time; time.sleep(600)")
    monkeypatch.setattr(_wsq, "_IDLE", [])
    with pytest.raises(ValueError, match="ran past"):
        _wsq.decode_wsq(_wsq_bytes(), max_pixels=10**6, timeout=0.5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_wsq_gives_pixels_of_its_header_size_or_an_image_error(data):
    """Property: whatever bytes a WSQ file is mutated into, probing gives the header's size or an
    ImageError (the real NBIS decoder segfaults on some of these: the sandbox keeps us alive)."""
    raw = bytearray(_wsq_bytes(1))
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    try:
        info = probe_bytes(bytes(raw), "m.wsq", ImageLimits(max_pixels=10**6))
    except ImageError as err:
        assert str(err).startswith("m.wsq: ") and "\n" not in str(err)
        return
    assert (info["width"], info["height"]) == _wsq.wsq_size(bytes(raw))


def test_header_walk_never_reads_past_the_end():
    for n in range(0, 40):
        with pytest.raises(ValueError):
            _wsq.wsq_size(_wsq_bytes()[:n] if n < 4 else b"\xff\xa0" + b"\xff\xa8\x00\xff" + bytes(n))
    assert json.dumps(_wsq.wsq_size(_wsq_bytes())) == "[64, 80]"


@pytest.mark.parametrize("size", [(80, 40), (40, 80), (30, 30)])
def test_wsq_smaller_than_the_codec_handles_is_refused(size):
    """NBIS decodes WSQ narrower or shorter than about 52 pixels to garbage that changes from one
    decode to the next: fpload neither writes nor reads such images."""
    img = ridge_image(np.random.default_rng(0), size)
    with pytest.raises(ValueError, match="at least 64"):
        _wsq.encode_wsq(img)
    import _wsq as codec

    h, w = size
    small = bytes(codec.compress(img.tobytes(), h, w, 2.25))
    with pytest.raises(ImageError, match=r"s.wsq: WSQ image of \d+×\d+ pixels: fpload reads WSQ of at least 64×64"):
        probe_bytes(small, "s.wsq")
