"""The command line, end to end, as a user runs it (in-process through fpload.cli.main)."""

import json

import pytest

from fpload.cli import main


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_lists_the_verbs(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for verb in ("demo", "catalog", "pack", "versions", "doctor"):
        assert verb in out
    code, out, _ = run(capsys, "catalog", "--help")
    for verb in ("ingest", "query", "stats", "revisions", "update"):
        assert verb in out


def test_whole_path_through_the_cli(tmp_path, captures, capsys):
    cat = tmp_path / "cat.duckdb"
    code, out, _ = run(capsys, "catalog", "ingest", captures, "--catalog", cat)
    assert code == 0 and "revision 1: added 40 samples" in out
    code, out, _ = run(capsys, "catalog", "ingest", captures, "--catalog", cat)
    assert code == 0 and "nothing new" in out
    code, out, _ = run(capsys, "catalog", "query", "finger = 2 AND consent", "--catalog", cat, "--json")
    assert code == 0 and json.loads(out)["count"] == 20
    code, out, _ = run(capsys, "catalog", "update", "subject_id = 'S001'", "--set", "consent=false",
                       "--catalog", cat)
    assert code == 0 and "revision 2: changed 4" in out
    code, out, _ = run(capsys, "catalog", "query", "consent", "--catalog", cat, "--count", "--rev", "1")
    assert out.strip() == "40"
    code, out, _ = run(capsys, "catalog", "revisions", "--catalog", cat, "--json")
    assert [r["op"] for r in json.loads(out)] == ["create", "ingest", "update"]
    code, out, _ = run(capsys, "catalog", "stats", "--catalog", cat, "--json")
    assert json.loads(out)["consent"] == {"false": 4, "true": 36}

    root = tmp_path / "versions"
    code, out, _ = run(capsys, "pack", "--catalog", cat, "--where", "consent", "--config",
                       "configs/pack/demo.yaml", "--out", root, "--name", "demo", "--workers", "1", "--json")
    assert code == 0
    packed = json.loads(out)
    assert packed["created"] and packed["samples"] == 36
    code, out, _ = run(capsys, "versions", "list", root, "--json")
    assert [v["version_id"] for v in json.loads(out)] == [packed["version_id"]]
    code, out, _ = run(capsys, "versions", "show", root / "demo", "--json")
    assert json.loads(out)["encoding"] == "raw"
    code, out, _ = run(capsys, "versions", "verify", root)
    assert code == 0 and "ok" in out

    shard = sorted((root / "demo" / packed["version_id"] / "shards").glob("*.tar"))[0]
    data = bytearray(shard.read_bytes())
    data[1000] ^= 1
    shard.write_bytes(bytes(data))
    code, out, err = run(capsys, "versions", "verify", root)
    assert code == 1 and shard.name in err and "BAD" in err


@pytest.mark.parametrize("args,code,fragment", [
    (["catalog", "query", "fingr = 1"], 2, "unknown column 'fingr'"),
    (["catalog", "query", "finger IN (1,"], 2, "syntax error"),
    (["catalog", "query", "1=1; DELETE FROM sample_rows"], 2, "read-only"),
    (["pack", "--out", "x", "--name", "n"], 2, "give --where"),
    (["catalog", "update", "consent", "--set", "uri=/etc"], 2, "cannot be changed"),
])
def test_user_errors_are_one_line_and_exit_nonzero(tmp_path, captures, capsys, args, code, fragment):
    cat = tmp_path / "cat.duckdb"
    assert main(["catalog", "ingest", str(captures), "--catalog", str(cat)]) == 0
    capsys.readouterr()
    got, out, err = run(capsys, *args, "--catalog", cat)
    assert got == code
    assert fragment in err and err.startswith("fpload: error: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_data_errors_exit_1(tmp_path, capsys):
    bad = tmp_path / "m.csv"
    bad.write_text("file,subject_id\na.png,S1\n")
    code, _, err = run(capsys, "catalog", "ingest", bad, "--catalog", tmp_path / "c.duckdb")
    assert code == 1 and "missing required column" in err and str(bad) in err
    code, _, err = run(capsys, "catalog", "query", "consent", "--catalog", tmp_path / "none.duckdb")
    assert code == 1 and "catalog not found" in err
    code, _, err = run(capsys, "versions", "show", tmp_path / "nothing")
    assert code == 1 and "no published dataset version" in err


def test_doctor(capsys):
    code, out, _ = run(capsys, "doctor", "--json")
    info = json.loads(out)
    assert code == 0 and info["dali"].startswith("2.4") and "torch" in info


def test_json_stdout_holds_only_the_json(tmp_path, captures, capsys, monkeypatch):
    """What the work prints on stdout (Ray's driver prints task-retry notices there from its own
    thread) goes to stderr under --json, so stdout parses."""
    import threading

    import fpload.catalog._catalog_ingest as ingest_mod
    import fpload.pack as pack_mod

    notice = "(raylet) Task flaky failed. There are 3 retries remaining"

    def noisy(fn):
        def wrapper(*a, **kw):
            t = threading.Thread(target=print, args=(notice,))   # another thread, as Ray's listener
            t.start()
            t.join()
            return fn(*a, **kw)
        return wrapper

    monkeypatch.setattr(ingest_mod.IngestMixin, "ingest", noisy(ingest_mod.IngestMixin.ingest))
    monkeypatch.setattr(pack_mod, "pack_version", noisy(pack_mod.pack_version))
    cat = tmp_path / "cat.duckdb"
    code, out, err = run(capsys, "catalog", "ingest", captures, "--catalog", cat, "--json")
    assert code == 0 and json.loads(out)["added"] == 40 and notice in err
    code, out, err = run(capsys, "pack", "--catalog", cat, "--where", "consent", "--out", tmp_path / "v",
                         "--name", "x", "--workers", "1", "--json")
    assert code == 0 and json.loads(out)["created"] and notice in err
