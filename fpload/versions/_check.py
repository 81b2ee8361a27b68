"""``fpload versions check VERSION``: identity leakage across the splits of a version.

A model evaluated on a subject it was trained on looks better than it is. Three checks:

1. **subjects in several splits** — ``samples.parquet`` grouped by ``subject_id``;
2. **samples in several splits** — the same ``sample_id`` (same bytes) under two splits;
3. **near-duplicate images across splits** — the same capture ingested twice with different bytes
   (re-encoded, re-compressed, a pixel changed) and different subject ids. Each sample's
   ``features.zarr/thumbnail`` (uint8 64×64) gets a perceptual hash: the 2-D DCT-II of the
   thumbnail, its top-left 16×16 low-frequency coefficients, one bit per coefficient (above the
   median of the 255 non-DC coefficients or not) = 256 bits. Two samples of different splits
   whose hashes differ in at most ``threshold`` bits (default :data:`DEFAULT_THRESHOLD` = 16,
   i.e. 6 %) are reported. Unrelated images differ in about 128 bits. Candidate pairs are found
   without comparing all pairs: the 256 bits are cut into ``threshold + 1`` bands, and two hashes
   within ``threshold`` bits agree exactly on at least one band (pigeonhole), so only pairs sharing
   a band are compared (a DuckDB self-join).

Limits: the hash sees a 64×64 thumbnail, so it finds copies of one capture, not two different
captures of the same finger (that needs a fingerprint matcher); a version packed without a
thumbnail feature gets checks 1 and 2 only, and the report says so (``images_checked: false``).

Example::

    >>> report = check_version("versions/thumbs")      # doctest: +SKIP
    >>> report.ok, report.near_duplicates[:1]          # doctest: +SKIP
    (False, [{'distance': 0, 'a': {'sample_id': '3f1c…', 'subject_id': 'S000', 'split': 'train'}, ...}])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from fpload.errors import UsageError
from fpload.versions._registry import Version, open_version

#: perceptual-hash bits (16×16 low-frequency DCT coefficients)
HASH_BITS = 256
#: Hamming distance (bits of 256) at or under which two thumbnails count as the same image
DEFAULT_THRESHOLD = 16
_LOW = 16
_CHUNK = 4096


def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix ``C`` (``C @ x`` transforms a column)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    c[0] /= np.sqrt(2.0)
    return c


def phash(thumbnails: np.ndarray) -> np.ndarray:
    """256-bit perceptual hashes of ``uint8 [N, H, W]`` thumbnails (H, W ≥ 16), packed ``uint8 [N, 32]``.

    >>> img = np.random.default_rng(0).integers(0, 256, (1, 64, 64), dtype=np.uint8)
    >>> noisy = img.copy(); noisy[0, 10, 10] ^= 0x40
    >>> int(np.unpackbits(phash(img) ^ phash(noisy)).sum()) <= 4
    True
    """
    t = np.asarray(thumbnails)
    if t.ndim != 3 or t.shape[1] < _LOW or t.shape[2] < _LOW:
        raise UsageError(f"thumbnails must be [N, H, W] with H, W >= {_LOW}, got shape {t.shape}")
    ch, cw = _dct_matrix(t.shape[1])[:_LOW], _dct_matrix(t.shape[2])[:_LOW]
    coef = (ch @ t.astype(np.float64) @ cw.T).reshape(len(t), _LOW * _LOW)  # [N, 16, 16] low frequencies
    med = np.median(coef[:, 1:], axis=1, keepdims=True)
    return np.packbits(coef > med, axis=1)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits in which packed hashes ``a[i]`` and ``b[i]`` differ."""
    return np.unpackbits(np.bitwise_xor(a, b), axis=1).sum(axis=1)


def _bands(hashes: np.ndarray, count: int) -> np.ndarray:
    """``int64 [N, count]``: each hash's bits cut into ``count`` bands, each band as an integer."""
    bits = np.unpackbits(hashes, axis=1).astype(np.int64)
    edges = np.linspace(0, HASH_BITS, count + 1).astype(int)
    out = np.empty((len(hashes), count), np.int64)
    for j in range(count):
        seg = bits[:, edges[j]:edges[j + 1]]
        out[:, j] = seg @ (1 << np.arange(seg.shape[1], dtype=np.int64))
    return out


def near_duplicate_pairs(hashes: np.ndarray, splits: np.ndarray, threshold: int) -> list[tuple[int, int, int]]:
    """``(i, j, distance)`` for rows ``i < j`` of different splits whose hashes are within ``threshold`` bits.

    >>> h = np.zeros((3, 32), np.uint8); h[2, 0] = 0xFF
    >>> near_duplicate_pairs(h, np.array(["train", "val", "val"]), 4)
    [(0, 1, 0)]
    """
    if not 0 <= threshold < HASH_BITS // 4:
        raise UsageError(f"near-duplicate threshold {threshold} is out of range (0–{HASH_BITS // 4 - 1} bits "
                         f"of {HASH_BITS})")
    n = len(hashes)
    if n < 2:
        return []
    count = max(threshold + 1, 5)  # more bands keep the pigeonhole; at least 5 keeps each under 63 bits
    bands = _bands(hashes, count)
    idx = np.repeat(np.arange(n, dtype=np.int64), count)
    band = np.tile(np.arange(count, dtype=np.int64), n)
    _, split_code = np.unique(np.asarray(splits, dtype=str), return_inverse=True)
    tab = pa.table({"i": idx, "band": band, "key": bands.reshape(-1), "split": np.repeat(split_code, count)})
    con = duckdb.connect(":memory:")
    try:
        con.register("h", tab)
        cand = con.execute("SELECT DISTINCT a.i AS i, b.i AS j FROM h a JOIN h b ON a.band = b.band "
                           "AND a.key = b.key AND a.i < b.i AND a.split <> b.split ORDER BY 1, 2").fetchnumpy()
    finally:
        con.close()
    i, j = np.asarray(cand["i"], np.int64), np.asarray(cand["j"], np.int64)
    if not len(i):
        return []
    dist = hamming(hashes[i], hashes[j])
    keep = dist <= threshold
    return [(int(a), int(b), int(d)) for a, b, d in zip(i[keep], j[keep], dist[keep])]


@dataclass(frozen=True)
class LeakReport:
    """The outcome of :func:`check_version`; ``ok`` when no check found anything."""

    version: str
    samples: int
    subjects_in_several_splits: list[dict[str, Any]]
    samples_in_several_splits: list[dict[str, Any]]
    near_duplicates: list[dict[str, Any]]
    images_checked: bool
    threshold: int
    note: str | None = field(default=None)

    @property
    def ok(self) -> bool:
        return not (self.subjects_in_several_splits or self.samples_in_several_splits or self.near_duplicates)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["ok"] = self.ok
        d["hash"] = f"DCT pHash, {HASH_BITS} bits of features.zarr/thumbnail, Hamming <= {self.threshold}"
        return d


def find_leaks(samples: pa.Table, thumbnails: np.ndarray | None = None, *,
               threshold: int = DEFAULT_THRESHOLD, version: str = "") -> LeakReport:
    """Run the three checks on a ``samples.parquet`` table (sample_id, subject_id, split) and, when
    given, its thumbnails (row i = sample i).

    >>> t = pa.table({"sample_id": ["a", "b"], "subject_id": ["S1", "S1"], "split": ["train", "val"]})
    >>> find_leaks(t).subjects_in_several_splits
    [{'subject_id': 'S1', 'splits': ['train', 'val'], 'samples': 2}]
    """
    con = duckdb.connect(":memory:")
    try:
        con.register("s", samples.select(["sample_id", "subject_id", "split"]))
        subjects = [{"subject_id": s, "splits": list(sp), "samples": int(n)} for s, sp, n in con.execute(
            "SELECT subject_id, list_sort(list_distinct(list(split))), count(*) FROM s GROUP BY subject_id "
            "HAVING count(DISTINCT split) > 1 ORDER BY subject_id").fetchall()]
        dupes = [{"sample_id": s, "splits": list(sp)} for s, sp in con.execute(
            "SELECT sample_id, list_sort(list_distinct(list(split))) FROM s GROUP BY sample_id "
            "HAVING count(DISTINCT split) > 1 ORDER BY sample_id").fetchall()]
    finally:
        con.close()
    pairs: list[dict[str, Any]] = []
    if thumbnails is not None:
        hashes = np.concatenate([phash(thumbnails[k:k + _CHUNK]) for k in range(0, len(thumbnails), _CHUNK)]) \
            if len(thumbnails) else np.zeros((0, HASH_BITS // 8), np.uint8)
        ids = samples.column("sample_id").to_pylist()
        subj = samples.column("subject_id").to_pylist()
        split = samples.column("split").to_pylist()

        def who(k: int) -> dict[str, Any]:
            return {"index": k, "sample_id": ids[k], "subject_id": subj[k], "split": split[k]}

        pairs = [{"a": who(i), "b": who(j), "distance": d}
                 for i, j, d in near_duplicate_pairs(hashes, np.asarray(split, dtype=str), threshold)]
    return LeakReport(version=version, samples=samples.num_rows, subjects_in_several_splits=subjects,
                      samples_in_several_splits=dupes, near_duplicates=pairs,
                      images_checked=thumbnails is not None, threshold=threshold)


def _thumbnails(version: Version) -> np.ndarray | None:
    if not version.manifest.get("features"):
        return None
    from fpload.features import open_features

    cache = open_features(version)
    if "thumbnail" not in cache:
        return None
    arr = cache.array("thumbnail")
    return np.concatenate([arr[k:k + _CHUNK] for k in range(0, cache.samples, _CHUNK)]) if cache.samples else \
        np.zeros((0, *arr.shape[1:]), np.uint8)


def check_version(version: str | Path | Version, *, threshold: int = DEFAULT_THRESHOLD) -> LeakReport:
    """Check a published version for identity leakage across its splits (see the module doc).

    >>> r = check_version("versions/thumbs", threshold=12)   # doctest: +SKIP
    >>> r.ok                                                 # doctest: +SKIP
    True
    """
    v = open_version(version)
    thumbs = _thumbnails(v)
    if thumbs is not None:  # cache rows are global indices (an erasure's successor keeps gaps)
        thumbs = thumbs[v.samples.column("index").to_numpy()]
    report = find_leaks(v.samples, thumbs, threshold=threshold, version=f"{v.name}/{v.id}")
    if thumbs is None:
        return LeakReport(**{**report.__dict__, "note": "no features.zarr/thumbnail in this version: "
                             "near-duplicate images were not checked (pack with the thumbnail feature)"})
    return report
