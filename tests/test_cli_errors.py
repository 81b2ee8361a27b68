"""The CLI's promise: every usage error is one line and exit 2, data errors one line and exit 1, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fpload
from fpload.cli import app, main

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str) -> None:
    assert err.startswith("fpload: error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err


def _verb_paths(command, prefix=()) -> list[tuple[str, ...]]:
    """Every verb and sub-verb of the CLI, as argument tuples (``("catalog", "ingest")``, ...)."""
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _verb_paths(sub, prefix + (name,))
    return paths


VERBS = _verb_paths(typer.main.get_command(app))


def test_the_verb_walk_finds_the_nested_verbs():
    assert ("features", "import") in VERBS and ("catalog", "ingest") in VERBS and ("pack",) in VERBS
    assert len(VERBS) > 20


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: " ".join(v) or "fpload")
def test_help_works_for_every_verb(capsys, verb):
    """`fpload features import --help` crashed on the rich markup `ROOT/NAME[/ID]`."""
    code, out, err = run(capsys, *verb, "--help")
    assert code == 0, err
    assert "Usage" in out and "Traceback" not in out + err


def test_version_prints_the_version(capsys):
    code, out, err = run(capsys, "--version")
    assert code == 0 and out.strip() == f"fpload {fpload.__version__}" and err == ""


@pytest.mark.parametrize("args,fragment", [
    (["pack", "--bogus"], "No such option: --bogus"),
    (["--bogus"], "No such option: --bogus"),
    (["catalog", "query", "--no-such-flag"], "No such option"),
    (["catalog", "ingest"], "Missing argument"),
    (["versions", "show"], "Missing argument"),
    (["pack", "--where", "consent", "--name", "n"], "Missing option '--out'"),
    (["pack", "--where", "consent", "--out", "x", "--name", "n", "--workers", "zero"], "Invalid value for '--workers'"),
    (["pack", "--where", "consent", "--out", "x", "--name", "n", "--workers", "0"], "--workers"),
    (["catalog", "query", "--limit"], "requires an argument"),
    (["catalog", "query", "--rev", "1.5"], "Invalid value for '--rev'"),
    (["no-such-verb"], "No such command 'no-such-verb'"),
    (["catalog", "frobnicate"], "No such command 'frobnicate'"),
])
def test_usage_errors_are_one_line_exit_2(capsys, args, fragment):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert_one_line_error(err)
    assert fragment in err


def test_data_errors_stay_exit_1_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "catalog", "stats", "--catalog", tmp_path / "none.duckdb")
    assert code == 1 and "catalog not found" in err
    assert_one_line_error(err)


def test_a_group_without_a_verb_shows_its_help_and_exits_2(capsys):
    code, out, err = run(capsys, "catalog")
    assert code == 2 and "Traceback" not in out + err
    assert (out + err).count("Usage: fpload catalog") == 1 and "ingest" in out + err


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(verb=st.sampled_from([v for v in VERBS if v]),
       option=st.from_regex(r"--[a-z][a-z0-9-]{0,14}", fullmatch=True))
def test_any_unknown_option_is_a_one_line_usage_error(capsys, verb, option):
    command = typer.main.get_command(app)
    for name in verb:
        command = command.commands[name]
    known = {o for p in command.params for o in p.opts + p.secondary_opts}
    if option in known or option in ("--help", "--version"):
        return
    code, out, err = run(capsys, *verb, option)
    assert code == 2
    assert_one_line_error(err)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(min_size=1, max_size=12).filter(lambda t: not _is_int(t) and not t.startswith("-")))
def test_any_non_integer_for_an_integer_option_is_a_one_line_usage_error(capsys, value):
    code, out, err = run(capsys, "catalog", "query", "consent", "--limit", value)
    assert code == 2
    assert_one_line_error(err)


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FPLOAD_DEBUG", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120)


def test_the_cli_needs_no_standalone_click(tmp_path):
    """typer >= 0.29 does not depend on click: the CLI must work when `import click` fails."""
    res = _python("import sys; sys.modules['click'] = None\n"
                  "from fpload.cli import main\n"
                  "assert main(['--version']) == 0\n"
                  "sys.exit(main(['pack', '--bogus']))", tmp_path)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("fpload: error: No such option: --bogus") and res.stderr.count("\n") == 1


@pytest.mark.parametrize("module", ["fpload.synth._cli", "fpload.ops._cli", "fpload.bench._cli",
                                    "fpload.features._cli"])
def test_a_broken_stage_verb_fails_loudly(tmp_path, module):
    """An import error in a stage's CLI must not silently remove its verb."""
    res = _python(f"import sys; sys.modules[{module!r}] = None\nimport fpload.cli", tmp_path)
    assert res.returncode != 0 and "ModuleNotFoundError" in res.stderr and module in res.stderr


def test_the_console_entry_point_in_a_real_process(tmp_path):
    res = _python("import sys; from fpload.cli import main; sys.exit(main())", tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    res = subprocess.run([sys.executable, "-c", "import sys; from fpload.cli import main; sys.exit(main())",
                          "pack", "--where", "consent", "--out", "x", "--name", "n", "--nope"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 2
    assert_one_line_error(res.stderr)
