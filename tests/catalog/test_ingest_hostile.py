"""Ingest reads only what it should, as it is (issue 10, §3), and never drops changed metadata of
known bytes (§2): each example of the issue through the CLI (one line on stderr, exit code 1),
plus fuzz tests of metadata rows and image bytes."""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fpload.catalog import open_catalog
from fpload.cli import main
from fpload.errors import DataError
from fpload.testing import encode, ridge_image

BASE = {"subject_id": "S1", "finger": 2, "impression": 0, "sensor": "optical", "ppi": 500, "consent": True}


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(capsys, *args) -> str:
    """Run the CLI expecting a failure: exit code 1 and exactly one line on stderr; return it."""
    code, _, err = run(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 1, err
    assert len(lines) == 1 and lines[0].startswith("fpload: error: "), err
    return lines[0]


def png(seed: int = 0, size=(12, 10)) -> bytes:
    return encode(ridge_image(np.random.default_rng(seed), size))


def pil_bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def folder(tmp_path: Path, images: dict[str, bytes], rows: list[dict] | None = None) -> Path:
    """A capture folder with the given images and a metadata.jsonl naming them (one row each)."""
    d = tmp_path / "caps"
    d.mkdir(exist_ok=True)
    for name, data in images.items():
        (d / name).write_bytes(data)
    if rows is None:
        rows = [{**BASE, "file": name, "impression": i} for i, name in enumerate(images)]
    return write_jsonl(d / "metadata.jsonl", rows)


# -- CSV columns are read as the schema says ----------------------------------------------------

def test_csv_subject_ids_stay_text(tmp_path, capsys):
    d = tmp_path / "caps"
    d.mkdir()
    ids = ["007", "7", "0042", "42.0"]
    lines = ["file,subject_id,finger,impression,sensor,ppi,consent"]
    for i, sid in enumerate(ids):
        (d / f"{i}.png").write_bytes(png(i))
        lines.append(f"{i}.png,{sid},1,0,optical,500,true")
    (d / "m.csv").write_text("\n".join(lines) + "\n")
    cat = tmp_path / "cat.duckdb"
    code, _, err = run(capsys, "catalog", "ingest", d / "m.csv", "--catalog", cat)
    assert code == 0, err
    with open_catalog(cat) as c:
        assert sorted(c.snapshot()["subject_id"].to_pylist()) == sorted(ids)


def test_csv_duplicated_column_is_an_error(tmp_path, capsys):
    d = tmp_path / "caps"
    d.mkdir()
    (d / "a.png").write_bytes(png())
    (d / "m.csv").write_text("file,subject_id,finger,impression,sensor,ppi,consent,subject_id\n"
                             "a.png,S1,1,0,optical,500,true,S2\n")
    line = one_line_error(capsys, "catalog", "ingest", d / "m.csv", "--catalog", tmp_path / "c.duckdb")
    assert "'subject_id' appears twice" in line


def test_jsonl_duplicated_key_is_an_error(tmp_path, capsys):
    meta = folder(tmp_path, {"a.png": png()})
    meta.write_text('{"file": "a.png", "subject_id": "S1", "subject_id": "S2", "finger": 1, "impression": 0, '
                    '"sensor": "x", "ppi": 500, "consent": true}\n')
    line = one_line_error(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb")
    assert "line 1" in line and "'subject_id' appears twice" in line


def test_parquet_duplicated_column_and_float_ids(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = tmp_path / "caps"
    d.mkdir()
    (d / "a.png").write_bytes(png())
    cols = {**{k: [v] for k, v in BASE.items()}, "file": ["a.png"]}
    pq.write_table(pa.table([pa.array(v) for v in cols.values()] + [pa.array(["S2"])],
                            names=[*cols, "subject_id"]), d / "dup.parquet")
    line = one_line_error(capsys, "catalog", "ingest", d / "dup.parquet", "--catalog", tmp_path / "c.duckdb")
    assert "'subject_id' appears twice" in line
    pq.write_table(pa.table({**cols, "subject_id": [42.0]}), d / "float.parquet")
    line = one_line_error(capsys, "catalog", "ingest", d / "float.parquet", "--catalog", tmp_path / "c.duckdb")
    assert "row 1" in line and "'subject_id' must be text, got 42.0" in line


def test_out_of_range_integer_names_row_and_field(tmp_path, capsys):
    meta = folder(tmp_path, {"a.png": png(1), "b.png": png(2)})
    rows = [json.loads(x) for x in meta.read_text().splitlines()]
    rows[1]["impression"] = 2**40
    write_jsonl(meta, rows)
    line = one_line_error(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb")
    assert "row 2" in line and "'impression' = 1099511627776 is out of range" in line


# -- images: only pixels every reader decodes alike ----------------------------------------------

def _bad_images() -> dict[str, tuple[bytes, str]]:
    g16 = (np.arange(120, dtype=np.uint16).reshape(10, 12) * 500)
    pages = [Image.fromarray(ridge_image(np.random.default_rng(i), (10, 12))) for i in range(3)]
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb = np.random.default_rng(0).integers(0, 255, (10, 12, 3), dtype=np.uint8)
    return {
        "16-bit PNG": (pil_bytes(Image.fromarray(g16), "PNG"), "16-bit greyscale images are not supported"),
        "16-bit TIFF": (pil_bytes(Image.fromarray(g16), "TIFF"), "16-bit greyscale images are not supported"),
        "float TIFF": (pil_bytes(Image.fromarray(g16.astype(np.float32) / 65535), "TIFF"),
                       "32-bit float images are not supported"),
        "multi-page TIFF": (pil_bytes(pages[0], "TIFF", save_all=True, append_images=pages[1:]),
                            "holds 3 pages or frames"),
        "CMYK JPEG": (pil_bytes(Image.fromarray(rgb).convert("CMYK"), "JPEG"), "CMYK colour images"),
        "rotated JPEG": (pil_bytes(pages[0], "JPEG", exif=exif.tobytes()), "EXIF orientation 6"),
        # 8-bit grey PNGs take the fast decoder (fpload._png), which must step aside for these
        "rotated grey PNG (eXIf)": (pil_bytes(pages[0], "PNG", exif=exif.tobytes()), "EXIF orientation 6"),
        "rotated grey PNG (XMP)": (pil_bytes(pages[0], "PNG", pnginfo=_xmp_text('<x tiff:Orientation="6"/>')),
                                   "EXIF orientation 6"),
    }


def _xmp_text(xmp: str):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("XML:com.adobe.xmp", xmp)
    return info


@pytest.mark.parametrize("kind", list(_bad_images()))
def test_images_whose_pixels_readers_disagree_on_are_refused(tmp_path, capsys, kind):
    data, expect = _bad_images()[kind]
    meta = folder(tmp_path, {"ok.png": png(), "bad.img": data})
    line = one_line_error(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb")
    assert "bad.img" in line and expect in line
    if "bit" in expect or "float" in expect:
        assert "convert it to 8-bit greyscale" in line


def _accepted_images() -> dict[str, Image.Image]:
    rng = np.random.default_rng(3)
    g = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    rgb = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    return {"L": Image.fromarray(g), "1": Image.fromarray(g).convert("1"),
            "LA": Image.fromarray(np.dstack([g, g]), "LA"), "P": Image.fromarray(rgb).convert("P"),
            "RGB": Image.fromarray(rgb), "RGBA": Image.fromarray(np.dstack([rgb, g]), "RGBA")}


def test_accepted_modes_decode_alike_in_dali_and_pillow():
    """The rule's ground: for every accepted mode, DALI's GRAY decode (the loader, passthrough
    shards) and Pillow's convert("L") (features, re-encoding pack) give the same pixels, up to
    one grey level of luma rounding for colour; for 16-bit they do not (so it is refused)."""
    pytest.importorskip("nvidia.dali")
    from nvidia.dali import fn, pipeline_def, types

    def dali_gray(data: bytes) -> np.ndarray:
        @pipeline_def(batch_size=1, num_threads=1, device_id=None)
        def pipe():
            raw = fn.external_source(source=lambda: [np.frombuffer(data, np.uint8)], batch=True)
            return fn.decoders.image(raw, device="cpu", output_type=types.GRAY)

        p = pipe()
        p.build()
        return np.array(p.run()[0][0])[..., 0].astype(int)

    for mode, img in _accepted_images().items():
        data = pil_bytes(img, "PNG")
        with Image.open(io.BytesIO(data)) as im:
            assert im.mode == mode
            pil = np.asarray(im.convert("L")).astype(int)
        diff = np.abs(dali_gray(data) - pil).max()
        assert diff <= (0 if mode in ("L", "1", "LA") else 1), mode
    g16 = np.arange(120, dtype=np.uint16).reshape(10, 12) * 500
    data = pil_bytes(Image.fromarray(g16), "PNG")
    with Image.open(io.BytesIO(data)) as im:
        pil16 = np.asarray(im.convert("L")).astype(int)
    assert np.abs(dali_gray(data) - pil16).max() > 100


def test_accepted_modes_ingest(tmp_path):
    imgs = {f"{m}.png": pil_bytes(img, "PNG") for m, img in _accepted_images().items()}
    meta = folder(tmp_path, imgs)
    rep = open_catalog(tmp_path / "c.duckdb").ingest(meta)
    assert rep.added == len(imgs)


# -- only regular files, within limits ------------------------------------------------------------

@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_device_file_is_refused(tmp_path, capsys):
    meta = folder(tmp_path, {}, rows=[{**BASE, "file": "/dev/zero"}])
    line = one_line_error(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb",
                          "--allow-outside")
    assert "/dev/zero: not a regular file" in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_waiting(tmp_path, capsys):
    d = tmp_path / "caps"
    d.mkdir()
    os.mkfifo(d / "pipe.png")
    meta = folder(tmp_path, {}, rows=[{**BASE, "file": "pipe.png"}])
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        code=main(["catalog", "ingest", str(meta), "--catalog", str(tmp_path / "c.duckdb")])), daemon=True)
    worker.start()
    worker.join(120)  # a liveness guard, not a timing: reading a FIFO would block forever
    if worker.is_alive():  # unblock the reader so the suite can go on, then fail
        with open(d / "pipe.png", "wb"):
            pass
        pytest.fail("ingest waited on a FIFO")
    assert result["code"] == 1
    assert "pipe.png: not a regular file" in capsys.readouterr().err


def test_file_over_the_size_limit_is_refused(tmp_path, capsys):
    big = encode(np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8))
    meta = folder(tmp_path, {"big.png": big})
    line = one_line_error(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb",
                          "--max-image-mb", "0.01")
    assert "big.png" in line and "over the image size limit of 10485 bytes" in line
    code, _, _ = run(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb")
    assert code == 0


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width × height`` 8-bit grey pixels (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [60000, 10000, 9000])  # beyond Pillow's own limit, in its warning band, below
def test_decompression_bomb_is_one_line(tmp_path, capsys, side):
    meta = folder(tmp_path, {"bomb.png": png_declaring(side, side)})
    line = one_line_error(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb")
    assert "bomb.png" in line and "pixels" in line


def test_pixel_limit_is_per_call(tmp_path, capsys):
    meta = folder(tmp_path, {"a.png": png(size=(40, 40))})
    line = one_line_error(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb",
                          "--max-image-pixels", "1000")
    assert "40×40 = 1600 pixels is over the limit of 1000 pixels" in line
    assert run(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb")[0] == 0


# -- paths stay inside the metadata file's folder (or --images) ------------------------------------

@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_paths_leading_out_are_refused_unless_allowed(tmp_path, capsys, how):
    outside = tmp_path / "outside.png"
    outside.write_bytes(png(7))
    d = tmp_path / "caps"
    d.mkdir()
    if how == "symlink":
        (d / "link.png").symlink_to(outside)
        name = "link.png"
    else:
        name = "../outside.png" if how == "dotdot" else str(outside)
    meta = folder(tmp_path, {}, rows=[{**BASE, "file": name}])
    line = one_line_error(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb")
    assert "row 1" in line and "--allow-outside" in line
    code, _, err = run(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb", "--allow-outside")
    assert code == 0, err


def test_images_option_sets_the_confinement_root(tmp_path, capsys):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(png())
    meta = write_jsonl(tmp_path / "m.jsonl", [{**BASE, "file": "a.png"}])
    assert run(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb",
               "--images", tmp_path / "imgs")[0] == 0
    write_jsonl(meta, [{**BASE, "file": "../m.jsonl"}])
    line = one_line_error(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c2.duckdb",
                          "--images", tmp_path / "imgs")
    assert "--allow-outside" in line


@pytest.mark.parametrize("split", ["../x", "a/b", "train\n", " ", "tr ain"])
def test_split_names_are_validated_at_ingest(tmp_path, capsys, split):
    meta = folder(tmp_path, {"a.png": png()}, rows=[{**BASE, "file": "a.png", "split": split}])
    code, _, err = run(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb")
    if split.strip() == "":
        assert code == 0  # an empty split is no split
        return
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "'split'" in err and ("not a valid split name" in err or "control character" in err)


# -- one-line errors, exit 1 -----------------------------------------------------------------------

@pytest.mark.parametrize("line,expect", [
    ('[1, 2]', "line 2 is a JSON list, not an object"),
    ('5', "line 2 is a JSON int, not an object"),
    ('null', "line 2 is a JSON null, not an object"),
    ('{"file": "b.png", "subject_id": "S1"}', "row 2 (file='b.png'): 'finger' is missing"),
])
def test_jsonl_lines_that_are_not_rows(tmp_path, capsys, line, expect):
    meta = folder(tmp_path, {"a.png": png(), "b.png": png(1)})
    meta.write_text(json.dumps({**BASE, "file": "a.png"}) + "\n" + line + "\n")
    assert expect in one_line_error(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_non_utf8_metadata(tmp_path, capsys, suffix):
    d = tmp_path / "caps"
    d.mkdir()
    (d / "a.png").write_bytes(png())
    if suffix == ".csv":
        text = b"file,subject_id,finger,impression,sensor,ppi,consent\na.png,M\xfcller,1,0,x,500,true\n"
    else:
        text = json.dumps({**BASE, "file": "a.png", "subject_id": "MXller"}).encode().replace(b"X", b"\xfc") + b"\n"
    (d / f"m{suffix}").write_bytes(text)
    line = one_line_error(capsys, "catalog", "ingest", d / f"m{suffix}", "--catalog", tmp_path / "c.duckdb")
    assert "is not UTF-8 text" in line and ("line 2" if suffix == ".csv" else "line 1") in line


# s3fs and aiohttp are test dependencies (object-store versions), so gs:// and abfs:// are the
# backends certainly missing here; s3:// and http:// run where those are not installed
@pytest.mark.parametrize("uri", ["gs://bucket/a.png", "abfs://container/a.png", "s3://bucket/a.png",
                                 "http://example.invalid/a.png"])
def test_remote_uri_without_its_backend(tmp_path, capsys, uri):
    import fsspec

    try:
        fsspec.get_filesystem_class(uri.split("://")[0])
        pytest.skip("the backend is installed here")
    except ImportError:
        pass
    meta = folder(tmp_path, {}, rows=[{**BASE, "file": uri}])
    line = one_line_error(capsys, "catalog", "ingest", meta, "--catalog", tmp_path / "c.duckdb", "--allow-outside")
    assert "row 1" in line and "no fsspec backend" in line


@pytest.mark.parametrize("damage", ["truncated", "flipped", "garbage"])
def test_damaged_catalog_is_one_line(tmp_path, capsys, captures, damage):
    cat = tmp_path / "cat.duckdb"
    assert run(capsys, "catalog", "ingest", captures, "--catalog", cat)[0] == 0
    data = cat.read_bytes()
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped":
        # one flipped byte in every block after DuckDB's three header blocks (4 KiB each; data blocks
        # are 256 KiB, each with a checksum): a single flip may land in free space, unread and harmless
        buf = bytearray(data)
        for off in range(3 * 4096 + 64, len(buf), 256 * 1024):
            buf[off] ^= 0xFF
        data = bytes(buf)
    else:
        data = os.urandom(len(data))
    cat.write_bytes(data)
    for args in (["catalog", "ingest", captures], ["catalog", "query", "consent"], ["catalog", "stats"]):
        line = one_line_error(capsys, *args, "--catalog", cat)
        assert str(cat.name) in line


# -- a failing ingest changes nothing --------------------------------------------------------------

@pytest.mark.parametrize("bad", ["bomb", "16-bit", "outside", "split", "missing key"])
def test_failing_ingest_loses_nothing(tmp_path, catalog, bad):
    before = catalog.snapshot()
    head = catalog.head
    imgs = {"new.png": png(11), "bad.png": png(12)}
    rows = [{**BASE, "file": "new.png"}, {**BASE, "file": "bad.png", "impression": 1}]
    if bad == "bomb":
        imgs["bad.png"] = png_declaring(60000, 60000)
    elif bad == "16-bit":
        imgs["bad.png"] = pil_bytes(Image.fromarray(np.full((4, 4), 30000, np.uint16)), "PNG")
    elif bad == "outside":
        (tmp_path / "outside.png").write_bytes(png(13))
        rows[1]["file"] = str(tmp_path / "outside.png")
    elif bad == "split":
        rows[1]["split"] = "../x"
    else:
        del rows[1]["consent"]
    meta = folder(tmp_path, imgs, rows)
    with pytest.raises(DataError):
        catalog.ingest(meta)
    assert catalog.head == head and catalog.snapshot().equals(before)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_pack_refuses_a_source_replaced_by_a_fifo(tmp_path):
    """Pack reads sources as ingest does: a catalogued file later replaced by a FIFO is refused."""
    from fpload.errors import ImageError
    from fpload.pack._encode import encode_sample

    os.mkfifo(tmp_path / "a.png")
    row = {"sample_id": "0" * 32, "uri": str(tmp_path / "a.png"), "format": "png"}
    with pytest.raises(ImageError, match="sample 0{32}: source image .*a.png: not a regular file"):
        encode_sample((row, {"encoding": "passthrough"}))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_metadata_fifo_is_refused(tmp_path, capsys):
    os.mkfifo(tmp_path / "m.csv")  # reading it would wait forever for a writer
    line = one_line_error(capsys, "catalog", "ingest", tmp_path / "m.csv", "--catalog", tmp_path / "c.duckdb")
    assert "m.csv: not a regular file" in line
