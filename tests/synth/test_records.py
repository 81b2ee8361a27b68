"""``fpload synth --format wsq`` and ``--records an2|iso`` (issue 15, §3): the synthetic data as the
formats real data arrives in, ingestible with no outside data."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("nistitl", reason="needs the optional extra fpload[nist]")
pytest.importorskip("_wsq", reason="needs the optional extra fpload[nist]")

from fpload.catalog import open_catalog  # noqa: E402
from fpload.cli import main  # noqa: E402


@pytest.mark.parametrize("kind,suffix", [("an2", ".an2"), ("iso", ".fir")])
def test_synth_wsq_records_ingest_as_the_same_samples(tmp_path, capsys, kind, suffix):
    out = tmp_path / "syn"
    code = main(["synth", "--out", str(out), "--subjects", "2", "--fingers", "2", "--impressions", "1",
                 "--size", "128", "--format", "wsq", "--records", kind, "--workers", "1", "--no-progress", "--json"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert [p.rsplit("/", 1)[1] for p in summary["records"]] == [f"syn-s0-000001{suffix}", f"syn-s0-000002{suffix}"]
    assert sorted(p.suffix for p in (out / "images").iterdir()) == [".wsq"] * 4
    with open_catalog(tmp_path / "files.duckdb") as a, open_catalog(tmp_path / "records.duckdb") as b:
        a.ingest(out / "metadata.jsonl")
        b.ingest_records([out / "records"], consent=True)
        files = {r["sample_id"]: r for r in a.query("true").to_pylist()}
        records = {r["sample_id"]: r for r in b.query("true").to_pylist()}
    assert set(files) == set(records) and len(files) == 4
    for sid, r in records.items():
        f = files[sid]
        assert (r["subject_id"], r["finger"], r["ppi"], r["format"], r["width"]) == \
            (f["subject_id"], f["finger"], f["ppi"], "wsq", f["width"])
        assert r["quality"] == round(f["quality"])


def test_records_need_a_known_kind(tmp_path, capsys):
    code = main(["synth", "--out", str(tmp_path / "s"), "--subjects", "1", "--fingers", "1", "--impressions", "1",
                 "--size", "128", "--records", "xml", "--workers", "1", "--no-progress"])
    assert code == 2 and "--records: unknown kind 'xml'" in capsys.readouterr().err
