"""Each benchmark runs at the tiny size, so it never rots. No speed assertions: only that every
contender ran, the JSON lines and the plot were written, and the ratios are against the baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fpload.bench import run_catalog_bench, run_loader_bench, run_pack_bench


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_loader_bench_tiny(plugin, tmp_path, capsys):
    results = run_loader_bench("tiny", tmp_path, log=lambda m: None)
    ran = [r for r in results if not r.get("skipped")]
    assert not [r for r in ran if r.get("error")], [r["error"] for r in ran if r.get("error")]
    assert {r["encoding"] for r in ran} == {"png", "jpeg", "raw", "raw-lz4"}
    assert {r["contender"] for r in ran} >= {"fpload-cpu", "fpload-noaug", "dali-stock", "wds-torch", "io-floor"}
    for r in ran:
        assert r["samples"] >= 16 and r["samples_per_s"] > 0
        if r["contender"] != "io-floor":
            assert r["batch_shape"][1:] == [1, 128, 128]
            assert r["dtype"] == ("torch.uint8" if r["contender"].endswith("-u8") else "torch.float32")
        if r["contender"] == "wds-torch":
            assert r["ratio_vs_baseline"] == pytest.approx(1.0)
    lines = _lines(tmp_path / "loader.jsonl")
    assert len(lines) == len(results)
    assert all(line["size"] == "tiny" and line["cores"] >= 1 and "dali" in line for line in lines)
    assert (tmp_path / "loader.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "fpload bench loader" in out and "target fpload-cpu" in out


def test_pack_bench_tiny(tmp_path, capsys):
    results = run_pack_bench("tiny", tmp_path, log=lambda m: None)
    assert not [r for r in results if r.get("error")], [r["error"] for r in results if r.get("error")]
    assert {(r["contender"], r["workers"]) for r in results} >= {("wds-shardwriter", 1), ("fpload-pack", 1)}
    for r in results:
        assert r["samples"] == 40 and r["bytes_written"] > 0 and r["cpu_s"] > 0
        # the share of the run the machine stalled on I/O (Linux PSI), where the kernel reports it
        assert (r["io_stall"] is None) == (not Path("/proc/pressure/io").exists())
        assert r["io_stall"] is None or r["io_stall"] >= 0
    lines = _lines(tmp_path / "pack.jsonl")
    assert len(lines) == len(results) and all(line["bench"] == "pack" for line in lines)
    assert (tmp_path / "pack.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "× wds-shardwriter" in out and "I/O stall" in out
    # the engine comparison: local ×1, local ×2, Ray with 2 CPUs (Ray is in the test extra)
    engines = {(r.get("engine"), r["workers"]) for r in results if r["contender"] == "fpload-pack"}
    assert {("local", 1), ("local", 2), ("ray", 2)} <= engines
    assert all(r["driver_rss_growth_mb"] is not None for r in results if r["contender"] == "fpload-pack")
    assert "cost per sample by size" in out and "fpload-pack ray ×2" in out


def test_pack_scaling_fit_and_driver_bytes_per_sample():
    from fpload.bench._pack import scaling

    runs = [{"contender": "fpload-pack", "engine": "ray", "workers": 2, "samples": n, "seconds": 2.0 + 0.001 * n,
             "cpu_s": 0.002 * n, "driver_rss_growth_mb": 10.0 + 300e-6 * n} for n in (1000, 10_000, 100_000)]
    runs.append({"contender": "wds-shardwriter", "workers": 1, "samples": 1000, "seconds": 1.0, "cpu_s": 1.0})
    rows = {r["label"]: r for r in scaling(runs)}
    ray = rows["fpload-pack ray ×2"]
    assert ray["fit_s_per_sample"] == pytest.approx(0.001) and ray["fit_fixed_s"] == pytest.approx(2.0)
    assert ray["extrapolated_s"] == pytest.approx(2.0 + 1000.0)
    assert ray["driver_bytes_per_sample"] == 300
    assert ray["wall_us_per_sample"] == [3000.0, 1200.0, 1020.0] and ray["spread"] == pytest.approx(3000 / 1020, 1e-3)
    base = rows["wds-shardwriter"]
    assert "extrapolated_s" not in base and base["wall_us_per_sample"] == [1000.0]


def test_catalog_bench_tiny_through_the_cli(tmp_path):
    from typer.testing import CliRunner

    from fpload.cli import app

    res = CliRunner().invoke(app, ["bench", "catalog", "--size", "tiny", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    lines = _lines(tmp_path / "catalog.jsonl")
    _check_catalog_lines(lines, {"duckdb"})
    assert (tmp_path / "catalog.png").stat().st_size > 0


def _check_catalog_lines(lines: list[dict], backends: set[str]) -> None:
    """Each backend measured: image ingest, commit of metadata rows, cold and cached queries."""
    assert {line["backend"] for line in lines} == backends
    for b in backends:
        mine = [line for line in lines if line["backend"] == b]
        ingest = [line for line in mine if line["op"] == "ingest"]
        assert len(ingest) == 1 and ingest[0]["rows"] == 40 and ingest[0]["images_per_s"] > 0
        commit = [line for line in mine if line["op"] == "commit"]
        assert len(commit) == 1 and commit[0]["rows"] == 1000 and commit[0]["seconds"] > 0
        cold = [line for line in mine if line["op"] == "query-cold"]
        assert len(cold) == 1 and cold[0]["rows"] == 1000 and cold[0]["latency_ms"] > 0
        queries = [line for line in mine if line["op"] == "query"]
        assert len(queries) == 5 and all(q["rows"] == 1000 and q["latency_ms"] > 0 and q["ids_latency_ms"] > 0
                                         for q in queries)
    # the same generated rows give the same matches on every backend
    matched = {(q["backend"], q["query"]): q["matched"] for q in lines if q["op"] == "query"}
    for (b, name), n in matched.items():
        assert all(n == matched[(other, name)] for other in backends)


@pytest.mark.postgres
def test_catalog_bench_both_backends_on_a_given_server(tmp_path, pg_server, monkeypatch):
    import psycopg

    from fpload.cli import main

    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    assert main(["bench", "catalog", "--size", "tiny", "--backend", "both", "--pg-url", pg_server.url(),
                 "--out", str(tmp_path)]) == 0
    _check_catalog_lines(_lines(tmp_path / "catalog.jsonl"), {"duckdb", "postgresql"})
    with psycopg.connect(pg_server.url(), password=pg_server.password) as con:   # its databases are dropped
        left = con.execute("SELECT datname FROM pg_database WHERE datname LIKE 'fpload_bench%'").fetchall()
    assert left == []


@pytest.mark.postgres
def test_catalog_bench_starts_a_temporary_server_when_given_none(tmp_path, pg_server, monkeypatch):
    monkeypatch.delenv("FPLOAD_BENCH_PG_URL", raising=False)
    monkeypatch.setenv("PGPASSWORD", "not-this-one")   # the temporary server's own password is used
    results = run_catalog_bench("tiny", tmp_path, backend="postgresql", plot=False, log=lambda m: None)
    _check_catalog_lines(results, {"postgresql"})
    import os

    assert os.environ["PGPASSWORD"] == "not-this-one"   # put back


def test_catalog_bench_bad_backend_choices(tmp_path, monkeypatch, capsys):
    from fpload.bench import _pgserver
    from fpload.cli import main

    assert main(["bench", "catalog", "--size", "tiny", "--backend", "mysql", "--out", str(tmp_path)]) == 2
    assert "mysql" in capsys.readouterr().err
    from fpload.errors import UsageError

    with pytest.raises(UsageError, match="'mysql://x' is not a postgresql:// URL"):
        run_catalog_bench("tiny", tmp_path, backend="postgresql", pg_url="mysql://x", log=lambda m: None)
    monkeypatch.delenv("FPLOAD_BENCH_PG_URL", raising=False)
    monkeypatch.setattr(_pgserver, "available", lambda: False)
    with pytest.raises(UsageError, match="needs a server: give --pg-url .* or install PostgreSQL"):
        run_catalog_bench("tiny", tmp_path, backend="both", log=lambda m: None)
    monkeypatch.setenv("FPLOAD_BENCH_PG_URL", "postgresql://fp:secret-pw@127.0.0.1:1/x")
    from fpload.errors import CatalogError

    with pytest.raises(CatalogError) as info:   # the URL from the environment is used, its password never shown
        run_catalog_bench("tiny", tmp_path, backend="postgresql", log=lambda m: None)
    msg = str(info.value)
    assert "secret-pw" not in msg and "postgresql://fp@127.0.0.1:1/x" in msg and "refused" in msg and "\n" not in msg


def test_bench_rejects_an_unknown_size(tmp_path):
    from fpload.errors import UsageError

    with pytest.raises(UsageError, match="huge"):
        run_catalog_bench("huge", tmp_path)


BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_bench_script_{name}", BENCHMARKS / f"bench_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["loader", "pack", "catalog"])
def test_scripts_parse_their_arguments(name, capsys):
    with pytest.raises(SystemExit) as exc:
        _script(name).main(["--help"])
    assert exc.value.code == 0
    assert "--size" in capsys.readouterr().out


def test_catalog_script_tiny(tmp_path):
    assert _script("catalog").main(["--size", "tiny", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "catalog.jsonl").exists()
