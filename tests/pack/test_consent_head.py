"""Issue 10 §2 (pack): consent is read at the catalog's head whatever revision is packed, and the
manifest records the revision it was read at."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpload.catalog._query import run_where
from fpload.cli import main
from fpload.pack import PackConfig
from fpload.errors import ConsentError
from fpload.pack import pack_version
from fpload.pack._consent import with_head_consent
from fpload.versions import open_version, verify_version

GOLDEN = Path(__file__).parents[1] / "golden" / "version-v1"
RAW = PackConfig(encoding="raw")


def _rows(res):
    return pq.read_table(res.path / "samples.parquet").to_pylist()


def test_packing_an_old_revision_does_not_undo_a_withdrawal(tmp_path, catalog):
    catalog.update("subject_id = 'S003'", {"consent": False}, message="withdrawn")
    assert catalog.head == 2
    # the example: --where true --rev 1 packed S003; now it is refused, nothing written
    with pytest.raises(ConsentError, match="4 selected sample.*latest revision 2"):
        pack_version(catalog, out=tmp_path, name="v", where="true", revision=1, config=RAW)
    assert not list(tmp_path.glob("v/*/manifest.json"))
    # the query sees consent at the head, so 'consent' at revision 1 leaves S003 out
    res = pack_version(catalog, out=tmp_path, name="v", where="consent", revision=1, config=RAW)
    rows = _rows(res)
    assert len(rows) == 36 and "S003" not in {r["subject_id"] for r in rows}
    assert all(r["consent"] for r in rows)
    m = res.manifest
    assert m["catalog"]["revision"] == 1
    assert m["consent"]["checked_at"] == {"revision": 2, "digest": catalog.revision(2).digest}
    assert verify_version(res.path) == []


def test_allow_without_consent_packs_them_marked_as_withdrawn_at_any_revision(tmp_path, catalog):
    catalog.update("subject_id = 'S003'", {"consent": False})
    res = pack_version(catalog, out=tmp_path, name="v", where="true", revision=1,
                       config=PackConfig(encoding="raw", allow_without_consent=True))
    rows = _rows(res)
    assert len(rows) == 40
    assert {r["subject_id"] for r in rows if not r["consent"]} == {"S003"}
    assert res.manifest["consent"]["samples_without_consent"] == 4
    head = pack_version(catalog, out=tmp_path, name="h", where="true",
                        config=PackConfig(encoding="raw", allow_without_consent=True))
    assert head.manifest["consent"] == res.manifest["consent"]


def test_consent_given_again_at_the_head_counts_for_an_older_revision(tmp_path, catalog):
    catalog.update("subject_id = 'S003'", {"consent": False})
    catalog.update("subject_id = 'S003'", {"consent": True}, message="consent given again")
    res = pack_version(catalog, out=tmp_path, name="v", where="consent", revision=2, config=RAW)
    assert len(_rows(res)) == 40 and res.manifest["consent"]["checked_at"]["revision"] == 3


def test_cli_pack_of_an_old_revision_after_withdrawal(tmp_path, catalog, capsys):
    catalog.update("subject_id = 'S003'", {"consent": False})
    path = catalog.path
    catalog.close()
    root = tmp_path / "versions"
    code = main(["pack", "--catalog", str(path), "--where", "true", "--rev", "1", "--out", str(root),
                 "--name", "v", "--workers", "1", "--config", "configs/pack/demo.yaml"])
    err = capsys.readouterr().err
    assert code == 1 and "lack consent" in err and len(err.strip().splitlines()) == 1
    code = main(["pack", "--catalog", str(path), "--where", "consent", "--rev", "1", "--out", str(root),
                 "--name", "v", "--workers", "1", "--config", "configs/pack/demo.yaml", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert code == 0 and res["samples"] == 36
    code = main(["versions", "show", str(root / "v"), "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert shown["consent"]["checked_at"]["revision"] == 2


def test_manifests_written_before_checked_at_existed_still_open_and_verify():
    v = open_version(GOLDEN)
    assert "checked_at" not in v.manifest["consent"]
    assert verify_version(GOLDEN) == []


_ids = [f"s{i}" for i in range(8)]


@settings(max_examples=100, deadline=None)
@given(old=st.lists(st.booleans(), min_size=8, max_size=8),
       head=st.lists(st.one_of(st.none(), st.booleans()), min_size=8, max_size=8))
def test_property_no_sample_without_consent_at_the_head_is_selected(old, head):
    """Whatever an old revision says, 'consent' selects exactly the samples the head consents to
    (absent from the head, None here, means erased: no consent)."""
    old_t = pa.table({"sample_id": _ids, "consent": old})
    kept = [(s, c) for s, c in zip(_ids, head) if c is not None]
    head_t = pa.table({"sample_id": pa.array([s for s, _ in kept], pa.string()),
                       "consent": pa.array([c for _, c in kept], pa.bool_())})
    merged = with_head_consent(old_t, head_t)
    assert merged["sample_id"].to_pylist() == _ids
    assert merged["consent"].to_pylist() == [bool(c) for c in head]
    selected = run_where(merged, "consent")["sample_id"].to_pylist()
    assert selected == [s for s, c in zip(_ids, head) if c]
