"""fpload erase / erase verify on the command line: --help with an example, --json, one-line errors."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from fpload.cli import main
from fpload.erase import verify_receipt

from .conftest import make_world, subject_samples, version_content


def test_help_shows_an_example(capsys):
    assert main(["erase", "--help"]) == 0
    assert "fpload erase --subject" in capsys.readouterr().out
    assert main(["erase", "verify", "--help"]) == 0
    assert "fpload erase verify" in capsys.readouterr().out


def test_erase_json_then_verify_exit_codes(world, capsys, tmp_path):
    args = ["erase", "--subject", "S002", "--reason", "withdrawn", "--catalog", str(world["catalog"]),
            "--root", str(world["root"]), "--receipt", str(tmp_path / "r.json"), "--json"]
    assert main(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert len(r["samples"]) == 4
    assert main(["erase", "verify", str(tmp_path / "r.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "problems": []}
    (world["root"] / "leak.txt").write_text("x")  # harmless: still clean
    assert main(["erase", "verify", str(tmp_path / "r.json")]) == 0


def test_one_line_errors(world, capsys):
    base = ["--catalog", str(world["catalog"]), "--root", str(world["root"])]
    assert main(["erase", "--reason", "x", *base]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fpload: error:") and err.count("\n") == 1 and "--subject" in err
    assert main(["erase", "--subject", "S001", *base]) == 2
    assert "--reason" in capsys.readouterr().err
    assert main(["erase", "--subject", "NOPE", "--reason", "x", *base]) == 1
    assert "nothing to erase" in capsys.readouterr().err
    assert main(["erase", "verify", str(world["root"] / "missing.json")]) == 2


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subject=st.integers(0, 3), shard=st.integers(1, 6))
def test_property_any_subject_any_shard_size(tmp_path_factory, subject, shard):
    """For any subject and shard size: verify passes, the others are unchanged, and exactly the
    shards that held the subject are rewritten."""
    world = make_world(tmp_path_factory.mktemp("w"), subjects=4, shard=shard, features=False)
    before = version_content(world["versions"]["png"])
    gone = subject_samples(before, f"S{subject:03d}")
    r = main(["erase", "--subject", f"S{subject:03d}", "--reason", "withdrawn", "--catalog", str(world["catalog"]),
              "--root", str(world["root"]), "--receipt", str(world["root"].parent / "r.json")])
    assert r == 0
    rec = json.loads((world["root"].parent / "r.json").read_text())
    assert verify_receipt(world["root"].parent / "r.json") == []
    v = next(x for x in rec["versions"] if x["name"] == "png")
    assert v["shards_rewritten"] == len({before[s]["shard"] for s in gone})
    after = version_content(world["root"] / "png" / v["successor"])
    assert {s: d["members"] for s, d in after.items()} == {s: d["members"] for s, d in before.items() if s not in gone}
