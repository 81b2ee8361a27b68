"""Fuzz the two inputs a user hands ingest: metadata rows and image files.

Random rows either ingest exactly (text stays text, integers are those written) or raise one
MetadataError naming the row and leave the catalog as it was; random or damaged image bytes
either probe cleanly or raise one ImageError naming the file; never any other exception.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fpload.catalog import open_catalog
from fpload.catalog._image import ImageLimits, probe_image
from fpload.catalog._ingest import SUPPORTED_FORMATS, parse_row, read_metadata
from fpload.errors import ImageError, MetadataError
from fpload.testing import encode, ridge_image

IMAGES = [encode(ridge_image(np.random.default_rng(i), (6, 5))) for i in range(3)]
FIELDS = ("subject_id", "finger", "impression", "sensor", "ppi", "consent", "quality", "split", "synthetic")

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                                max_size=2))
good = {
    "subject_id": st.one_of(st.text("0123456789S. ", min_size=1, max_size=6), st.integers(0, 999)),
    "finger": st.one_of(st.integers(0, 10), st.integers(0, 10).map(str), st.just("7.0")),
    "impression": st.one_of(st.integers(0, 2**31 - 1), st.just(2**40), st.just("0042")),
    "sensor": st.text("abcxyz-_ ", min_size=1, max_size=6),
    "ppi": st.sampled_from([500, "1000", 0, 100001]),
    "consent": st.sampled_from([True, False, "yes", "no", "1", "0", 1, 0]),
    "quality": st.one_of(st.floats(0, 100), st.just("nan"), st.just(None)),
    "split": st.sampled_from(["train", "val", "../x", None, "", "a b"]),
    "synthetic": st.sampled_from([True, False, None, "t"]),
}


@st.composite
def metadata_rows(draw):
    rows = []
    for i in range(draw(st.integers(1, 3))):
        row = {"file": f"{i}.png"}
        for f in FIELDS:
            if draw(st.integers(0, 19)) == 0:
                continue  # a missing key
            row[f] = draw(junk) if draw(st.integers(0, 5)) == 0 else draw(good[f])
        extra = draw(st.dictionaries(st.text("abc", min_size=1, max_size=3), junk, max_size=2))
        row.update({k: v for k, v in extra.items() if k not in row})
        rows.append(row)
    return rows


def _expected_text(value):
    return value.strip() if isinstance(value, str) else str(value)


def _expected_int(value):
    return value if isinstance(value, int) else int(float(value))


@settings(max_examples=50, deadline=None)
@given(rows=metadata_rows())
def test_random_rows_ingest_exactly_or_name_the_row(rows):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for i in range(len(rows)):
            (d / f"{i}.png").write_bytes(IMAGES[i])
        meta = d / "m.jsonl"
        meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
        with open_catalog(":memory:") as cat:
            try:
                rep = cat.ingest(meta, workers=1)
            except MetadataError as err:
                msg = str(err)
                assert "\n" not in msg
                assert any(f"row {n}" in msg or f"line {n}" in msg for n in range(1, len(rows) + 1)), msg
                assert cat.head == 0
                return
            assert rep.added == len(rows)
            got = {r["uri"].rsplit("/", 1)[1]: r for r in cat.snapshot().to_pylist()}
            for row in rows:
                out = got[row["file"]]
                assert out["subject_id"] == _expected_text(row["subject_id"])
                assert out["sensor"] == _expected_text(row["sensor"])
                for f in ("finger", "impression", "ppi"):
                    assert out[f] == _expected_int(row[f])
                assert out["split"] in (None, _expected_text(row.get("split")))


@settings(max_examples=50, deadline=None)
@given(ids=st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8), min_size=1, max_size=3))
def test_csv_text_cells_stay_text(ids):
    """Whatever a CSV subject_id cell holds ("007", "42.0", "NA", "1e3", "true"), it is read as that
    text (stripped), or refused naming the row when empty."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["file", "subject_id", "finger", "impression", "sensor", "ppi", "consent"])
        for i, sid in enumerate(ids):
            (d / f"{i}.png").write_bytes(IMAGES[i])
            w.writerow([f"{i}.png", sid, 1, 0, "s", 500, "true"])
        (d / "m.csv").write_text(buf.getvalue(), encoding="utf-8")
        rows = read_metadata(d / "m.csv")
        empty = [n for n, sid in enumerate(ids, 1) if not sid.strip()]
        for n, row in enumerate(rows, 1):
            try:
                parsed = parse_row(row)
            except ValueError as err:
                assert n == empty[0] and "'subject_id' is empty" in str(err)
                return
            assert parsed["subject_id"] == ids[n - 1].strip()
        assert not empty


def _seed_images() -> list[bytes]:
    g = ridge_image(np.random.default_rng(5), (8, 7))
    out = []
    for fmt, kw in (("PNG", {}), ("JPEG", {"quality": 90}), ("TIFF", {}), ("BMP", {}),
                    ("JPEG2000", {"irreversible": False}), ("TIFF", {"compression": "tiff_lzw"})):
        buf = io.BytesIO()
        Image.fromarray(g).save(buf, format=fmt, **kw)
        out.append(buf.getvalue())
    return out


SEEDS = _seed_images()


@st.composite
def image_bytes(draw):
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))]) if draw(st.booleans()) else bytes(data)


@settings(max_examples=50, deadline=None)
@given(data=image_bytes())
def test_random_image_bytes_probe_or_name_the_file(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.img"
        path.write_bytes(data)
        try:
            info = probe_image(str(path), ImageLimits(max_bytes=1 << 20, max_pixels=1 << 20))
        except ImageError as err:
            assert str(path) in str(err) and "\n" not in str(err)
            return
        assert info["format"] in SUPPORTED_FORMATS.values()
        assert 0 < info["width"] * info["height"] <= 1 << 20
