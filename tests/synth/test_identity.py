"""Subject ids are namespaced by seed and prefix: two runs never merge into one identity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpload.catalog import open_catalog
from fpload.errors import UsageError
from fpload.synth import SynthConfig, synthesize

TINY = {"subjects": 2, "fingers": 1, "impressions": 2, "size": 128, "workers": 1, "progress": False}


def _subjects(metadata: Path) -> set[str]:
    return {json.loads(line)["subject_id"] for line in metadata.read_text().splitlines()}


def test_two_seeds_ingested_into_one_catalog_stay_distinct_subjects(tmp_path: Path) -> None:
    a = synthesize(tmp_path / "a", seed=0, **TINY)
    b = synthesize(tmp_path / "b", seed=1, **TINY)
    ids_a, ids_b = _subjects(a.metadata_path), _subjects(b.metadata_path)
    assert ids_a == {"syn-s0-000001", "syn-s0-000002"}
    assert ids_a.isdisjoint(ids_b)
    cat = open_catalog(tmp_path / "cat.duckdb")
    cat.ingest(a.metadata_path)
    cat.ingest(b.metadata_path)
    table = cat.snapshot()
    assert table.num_rows == 8
    assert len(set(table.column("subject_id").to_pylist())) == 4


def test_subject_prefix_namespaces_the_ids(tmp_path: Path) -> None:
    result = synthesize(tmp_path / "p", seed=3, subject_prefix="lab-a", **TINY)
    assert _subjects(result.metadata_path) == {"lab-a-s3-000001", "lab-a-s3-000002"}


@pytest.mark.parametrize("prefix", ["", "-x", "x-", "a b", "ä", "x" * 33, 7])
def test_bad_prefix_is_a_usage_error(prefix: object) -> None:
    with pytest.raises(UsageError, match="subject_prefix"):
        SynthConfig(subjects=1, subject_prefix=prefix)


prefixes = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,6}[A-Za-z0-9])?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.tuples(prefixes, st.integers(0, 10**6), st.integers(1, 10**7)),
       st.tuples(prefixes, st.integers(0, 10**6), st.integers(1, 10**7)))
def test_distinct_runs_never_share_a_subject_id(one: tuple, two: tuple) -> None:
    """(prefix, seed, number) -> id is one-to-one, even with '-' and digits inside prefixes."""
    (pa, sa, na), (pb, sb, nb) = one, two
    ida = SynthConfig(subjects=1, seed=sa, subject_prefix=pa).subject_id(na)
    idb = SynthConfig(subjects=1, seed=sb, subject_prefix=pb).subject_id(nb)
    assert (ida == idb) == (one == two)


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    def digest(root: Path) -> str:
        h = hashlib.sha256()
        for p in sorted(root.rglob("*")):
            if p.is_file():
                h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
        return h.hexdigest()

    one = synthesize(tmp_path / "x", seed=11, **TINY)
    two = synthesize(tmp_path / "y", seed=11, **TINY)
    assert digest(one.out) == digest(two.out)
