"""Issue 12 §6: ``fpload versions check`` — no subject, sample or image in two splits."""

import csv
import io
import json

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fpload.catalog import open_catalog
from fpload.cli import main
from fpload.pack import PackConfig, pack_version
from fpload.testing import make_captures
from fpload.versions._check import (HASH_BITS, check_version, find_leaks, hamming, near_duplicate_pairs,
                                    phash)


def _png(pixels: np.ndarray, level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def _captures_with_copies(tmp_path):
    """Captures of 6 subjects, plus s000_f01_i0 ingested again as subject S900 (same pixels, other
    PNG compression: other bytes) and as S901 (one pixel changed)."""
    meta = make_captures(tmp_path / "caps", subjects=6, seed=3)
    src = meta.parent / "images" / "s000_f01_i0.png"
    pixels = np.asarray(Image.open(src))
    copy = _png(pixels, 1)
    assert copy != src.read_bytes()
    (meta.parent / "images" / "again.png").write_bytes(copy)
    noisy = pixels.copy()
    noisy[5, 7] ^= 0x20
    (meta.parent / "images" / "noisy.png").write_bytes(_png(noisy, 9))
    with open(meta, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for name, subject in (("again.png", "S900"), ("noisy.png", "S901")):
        rows.append({**rows[0], "file": f"images/{name}", "subject_id": subject})
    with open(meta, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return meta


def test_a_capture_ingested_twice_under_other_subjects_and_splits_is_flagged(tmp_path, capsys):
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(_captures_with_copies(tmp_path))
    cat.update("subject_id = 'S000'", {"split": "train"})
    cat.update("subject_id = 'S900'", {"split": "test"})
    cat.update("subject_id = 'S901'", {"split": "val"})
    res = pack_version(cat, out=tmp_path / "v", name="v", where="consent", config=PackConfig(encoding="raw"))
    report = check_version(res.path)
    assert report.images_checked and not report.ok
    assert report.subjects_in_several_splits == [] and report.samples_in_several_splits == []
    pairs = {frozenset((p["a"]["subject_id"], p["b"]["subject_id"])) for p in report.near_duplicates}
    assert pairs == {frozenset(("S000", "S900")), frozenset(("S000", "S901")), frozenset(("S900", "S901"))}
    assert all(p["a"]["split"] != p["b"]["split"] and p["distance"] <= 16 for p in report.near_duplicates)
    assert main(["versions", "check", str(res.path)]) == 1
    out = capsys.readouterr().out
    assert "LEAK" in out and "S900" in out and "S901" in out
    assert main(["versions", "check", str(res.path), "--json"]) == 1
    js = json.loads(capsys.readouterr().out)
    assert js["ok"] is False and len(js["near_duplicates"]) == 3
    # the same captures without the copies: nothing flagged (no false positive among 24 images)
    clean = pack_version(cat, out=tmp_path / "v", name="clean", where="consent AND subject_id < 'S9'",
                         config=PackConfig(encoding="raw"))
    assert check_version(clean.path).ok
    assert main(["versions", "check", str(clean.path)]) == 0
    assert "ok" in capsys.readouterr().out
    # within one split the copies are label noise, not leakage
    cat.update("subject_id IN ('S900', 'S901')", {"split": "train"})
    same = pack_version(cat, out=tmp_path / "v", name="same", where="consent", config=PackConfig(encoding="raw"))
    assert check_version(same.path).ok
    cat.close()


def test_a_subject_in_two_splits_is_flagged(tmp_path, catalog, capsys):
    catalog.update("subject_id = 'S001' AND finger = 1", {"split": "train"})
    catalog.update("subject_id = 'S001' AND finger = 2", {"split": "test"})
    res = pack_version(catalog, out=tmp_path, name="v", where="consent",
                       config=PackConfig(encoding="raw", allow_subject_overlap=True, features={"enabled": False}))
    r = check_version(res.path)
    assert r.subjects_in_several_splits == [{"subject_id": "S001", "splits": ["test", "train"], "samples": 4}]
    assert not r.images_checked and "not checked" in r.note
    assert main(["versions", "check", str(res.path)]) == 1
    captured = capsys.readouterr()
    assert "subject S001 in splits test, train" in captured.out and "note" in captured.err


def test_a_sample_in_two_splits_is_flagged():
    t = pa.table({"sample_id": ["a", "a", "b"], "subject_id": ["S1", "S2", "S3"], "split": ["train", "val", "val"]})
    r = find_leaks(t)
    assert r.samples_in_several_splits == [{"sample_id": "a", "splits": ["train", "val"]}]
    assert r.subjects_in_several_splits == [] and not r.ok


def test_threshold_out_of_range_is_a_usage_error(tmp_path, capsys):
    assert main(["versions", "check", str(tmp_path), "--threshold", "64"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 40), st.integers(0, 24), st.integers(0, 30))
def test_near_duplicate_pairs_match_all_pairs(seed, n, threshold, flips):
    """Banding finds exactly the pairs a comparison of all pairs finds (hashes with planted near-copies)."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n, HASH_BITS), dtype=np.uint8)
    for k in range(1, n, 3):  # every third row: a copy of the previous with some bits flipped
        bits[k] = bits[k - 1]
        bits[k, rng.choice(HASH_BITS, size=rng.integers(0, flips + 1), replace=False)] ^= 1
    hashes = np.packbits(bits, axis=1)
    splits = rng.choice(["train", "val", "test"], size=n)
    want = [(i, j, int(hamming(hashes[i:i + 1], hashes[j:j + 1])[0])) for i in range(n) for j in range(i + 1, n)
            if splits[i] != splits[j]]
    want = [p for p in want if p[2] <= threshold]
    assert near_duplicate_pairs(hashes, splits, threshold) == want


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 3))
def test_phash_survives_a_few_changed_pixels_and_tells_images_apart(seed, changed):
    from fpload.features._builtin import thumbnail_of
    from fpload.testing import ridge_image

    rng = np.random.default_rng(seed)
    img, other = ridge_image(rng, (120, 100)), ridge_image(rng, (120, 100))
    copy = img.copy()
    for _ in range(changed):
        copy[rng.integers(0, 120), rng.integers(0, 100)] = rng.integers(0, 256)
    h = phash(np.stack([thumbnail_of(x, 64) for x in (img, copy, other)]))
    assert hamming(h[:1], h[1:2])[0] <= 16 < hamming(h[:1], h[2:3])[0]
