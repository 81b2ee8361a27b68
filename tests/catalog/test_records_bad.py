"""Bad biometric records (issue 15, §4): one line naming the file and record, exit code 1, nothing
written to the catalog when any record fails; and a fuzz test of mutated transactions."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("nistitl", reason="needs the optional extra fpload[nist]")
pytest.importorskip("_wsq", reason="needs the optional extra fpload[nist]")

from fpload.catalog import open_catalog  # noqa: E402
from fpload.catalog._an2 import build_transaction  # noqa: E402
from fpload.catalog._iso19794 import write_record  # noqa: E402
from fpload.cli import main  # noqa: E402
from fpload.errors import DataError  # noqa: E402
from fpload.testing import encode, ridge_image  # noqa: E402


def _image(seed=0, fmt="wsq", size=(72, 64)):
    return {"image": encode(ridge_image(np.random.default_rng(seed), size), fmt), "format": fmt,
            "width": size[1], "height": size[0], "finger": 2, "impression": 0, "ppi": 500, "quality": 50}


def _transaction(*images) -> bytes:
    return build_transaction("S1", list(images) or [_image()])


def _fail(capsys, tmp_path, bad: bytes, name="bad.an2") -> str:
    """Ingest a folder of one good and one bad file through the CLI; expect one line, exit 1, no catalog rows."""
    folder = tmp_path / "rec"
    folder.mkdir(exist_ok=True)
    (folder / "good.an2").write_bytes(_transaction(_image(7)))
    (folder / name).write_bytes(bad)
    cat = tmp_path / "cat.duckdb"
    code = main(["catalog", "ingest", str(folder), "--catalog", str(cat)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("fpload: error: "), lines
    assert name in lines[0]
    with open_catalog(cat, read_only=True) as c:
        assert c.stats()["samples"] == 0  # nothing written, not even the good file's images
    return lines[0]


def test_truncated_transaction(tmp_path, capsys):
    line = _fail(capsys, tmp_path, _transaction()[:-30])
    assert "truncated transaction: record 2 at byte" in line


def test_wrong_record_length(tmp_path, capsys):
    data = _transaction()
    head_len = data.split(b"\x1d", 1)[0]  # 1.001:NNN
    wrong = head_len[:-1] + bytes([head_len[-1] - 1 if head_len[-1] > 0x30 else head_len[-1] + 1])
    line = _fail(capsys, tmp_path, wrong + data[len(head_len):])
    assert "bad.an2: record 0 (Type-1) at byte 0: its length field says" in line and "wrong lengths" in line


def test_binary_record_of_length_zero_is_refused_not_looped_on(tmp_path, capsys):
    import nistitl

    msg = nistitl.Message()
    msg.TOT, msg[0].TCN = "X", "S1"
    r4 = nistitl.BinaryRecord(4)
    r4.IDC, r4.value = 1, bytes(13) + b"image"
    msg += r4
    data = msg.NIST
    at = data.index(b"\x1c") + 1  # the Type-4 record follows the Type-1: its 4-byte length set to 0
    line = _fail(capsys, tmp_path, data[:at] + bytes(4) + data[at + 4:])
    assert "record 1 at byte" in line and "length 0 is too small" in line


def test_unknown_record_type_is_refused(tmp_path, capsys):
    import nistitl

    msg = nistitl.Message()
    msg.TOT, msg[0].TCN = "X", "S1"
    r2 = nistitl.AsciiRecord(2)
    r2.IDC = 0
    msg += r2
    data = msg.NIST
    head = data[:data.index(b"\x1c") + 1].replace(b"\x1e2\x1f0", b"\x1e50\x1f0")  # CNT: a Type-50 record
    old_len = head.split(b"\x1d", 1)[0]
    head = head.replace(old_len, b"1.001:%d" % len(head), 1)  # one byte longer, same number of digits
    line = _fail(capsys, tmp_path, head + b"50.001:19\x1d50.002:0\x1c")
    assert "unknown record type 50" in line and "refused" in line


def test_image_that_does_not_decode(tmp_path, capsys):
    im = _image()
    im["image"] = im["image"][:60]
    line = _fail(capsys, tmp_path, _transaction(im))
    assert "bad.an2#type14/2" in line and "WSQ" in line


def test_image_of_another_size_than_the_record_says(tmp_path, capsys):
    im = {**_image(), "width": 65}
    line = _fail(capsys, tmp_path, _transaction(im))
    assert "bad.an2#type14/2" in line and "65×72" in line


def test_missing_resolution(tmp_path, capsys):
    data = _transaction().replace(b"14.008:1", b"14.008:0")
    line = _fail(capsys, tmp_path, data)
    assert "record 2 (Type-14)" in line and "resolution missing" in line


@pytest.mark.parametrize("fgp", [39, 77, -1])
def test_finger_position_out_of_range(tmp_path, capsys, fgp):
    line = _fail(capsys, tmp_path, _transaction({**_image(), "finger": fgp}))
    assert "record 2 (Type-14)" in line and f"finger position {fgp} is out of range" in line


def test_subject_field_missing(tmp_path, capsys):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "a.an2").write_bytes(_transaction())
    code = main(["catalog", "ingest", str(folder), "--subject-field", "2.099", "--catalog", str(tmp_path / "c.duckdb")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "a.an2" in lines[0] and "2.099" in lines[0]


def test_bad_subject_field_option_is_a_usage_error(tmp_path, capsys):
    code = main(["catalog", "ingest", str(tmp_path), "--subject-field", "14.013", "--catalog", str(tmp_path / "c.duckdb")])
    assert code == 2 and "--subject-field '14.013'" in capsys.readouterr().err


def test_truncated_iso_record(tmp_path, capsys):
    data = write_record([_image(fmt="png")], ppi=500, compression="png")
    line = _fail(capsys, tmp_path, data[:-5], name="bad.fir")
    assert "record length field says" in line




@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_transactions_never_crash(tmp_path_factory, data):
    """Fuzz: any mutation of a valid transaction ingests or raises the project's DataError."""
    raw = bytearray(_transaction(_image(1), {**_image(2), "finger": 13}))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "m.an2").write_bytes(bytes(raw))
    with open_catalog(folder / "cat.duckdb") as cat:
        try:
            cat.ingest_records([folder / "m.an2"])
        except DataError as err:
            assert "\n" not in str(err) and "m.an2" in str(err)
