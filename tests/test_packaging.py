"""Packaging contracts: declared dependencies, bundled configs, the config ground floor, and the
plugin's source hash (CMake and Python compute the same one; a stale plugin is refused).

The clean install itself (wheel → fresh venv without system packages → ``fpload demo`` from an
empty folder) is ``.ci/clean-install``, run by CI on every submission.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from fpload.config import bundled_configs, configs_root, resolve_config
from fpload.errors import ConfigError, PluginError
from fpload.ops import _plugin

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _dist_name(requirement: str) -> str:
    name = requirement
    for sep in "<>=!~[; ":
        name = name.split(sep)[0]
    return name.strip().lower().replace("_", "-")


def _imported_top_modules() -> dict[str, list[str]]:
    """Top-level modules imported anywhere in fpload/ (module and function level), with where."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "fpload").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_runtime_import_is_a_declared_dependency():
    extras = PYPROJECT["project"].get("optional-dependencies", {})
    declared = {_dist_name(r) for r in PYPROJECT["project"]["dependencies"]}
    # a store's or framework's client may be an optional extra (psycopg: `fpload[postgres]`), never a
    # test-only one
    declared |= {_dist_name(r) for name, reqs in extras.items() if name != "test" for r in reqs}
    dist_of = packages_distributions()
    undeclared = {}
    for module, where in _imported_top_modules().items():
        if module == "fpload" or module in sys.stdlib_module_names:
            continue
        dists = {d.lower().replace("_", "-") for d in dist_of.get(module, [])}
        if not dists:
            undeclared[module] = where  # importable from no installed distribution: a bug either way
        elif not dists & declared:
            undeclared[module] = where
    assert not undeclared, f"imported but not in [project.dependencies]: {undeclared}"


def test_build_requires_the_same_dali_minor_as_run_time():
    build = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("nvidia-dali")]
    run = [r for r in PYPROJECT["project"]["dependencies"] if r.startswith("nvidia-dali")]
    assert build and build == run


def test_config_module_is_the_ground_floor():
    code = "import sys, fpload.config; print(sorted(m for m in sys.modules if m.startswith('fpload')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['fpload', 'fpload.config', 'fpload.errors']"


def test_no_lazy_import_of_fpload_config_hides_a_cycle():
    for path in (ROOT / "fpload").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.module == "fpload.config":
                    pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} imports fpload.config inside a function")


def test_bundled_configs_are_the_repository_files():
    assert configs_root().resolve() == (ROOT / "configs").resolve()
    for kind in ("pack", "loader", "filters"):
        assert bundled_configs(kind) == sorted(p.stem for p in (ROOT / "configs" / kind).glob("*.yaml"))
    assert PYPROJECT["tool"]["scikit-build"]["wheel"]["packages"]["fpload/configs"] == "configs"


def test_config_names_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config("demo", "pack") == configs_root() / "pack" / "demo.yaml"
    assert resolve_config("configs/pack/demo.yaml", "pack") == configs_root() / "pack" / "demo.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("encoding: png\n")
    assert resolve_config(own, "pack") == own
    with pytest.raises(ConfigError, match=r"pack config 'nope'.*bundled: default, demo"):
        resolve_config("nope", "pack")
    with pytest.raises(ConfigError, match="not a bundled"):
        resolve_config("../pack/demo", "pack")


def test_cli_takes_a_bundled_config_name(tmp_path):
    exe = Path(sys.executable).with_name("fpload")
    proc = subprocess.run([str(exe), "configs", "pack", "--show", "demo"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (ROOT / "configs" / "pack" / "demo.yaml").read_text()


# -- the plugin's source hash ---------------------------------------------------------------------

def test_cmake_and_python_hash_the_sources_alike():
    record = _plugin.read_build_record()
    if record is None:
        pytest.skip("the plugin is not built")
    assert record["schema_version"] == _plugin.META_SCHEMA_VERSION
    assert record["sources_sha256"] == _plugin.sources_digest(), (
        "the plugin was built from other sources; `fpload ops build` (or `make`) rebuilds it")
    assert _plugin.plugin_info()["stale"] is False


def test_a_plugin_older_than_its_sources_is_refused(tmp_path, monkeypatch):
    record = _plugin.read_build_record()
    if record is None:
        pytest.skip("the plugin is not built")
    src = tmp_path / "csrc"
    shutil.copytree(ROOT / "csrc", src)
    monkeypatch.setattr(_plugin, "SOURCE_DIR", src)
    assert _plugin.sources_digest(src) == record["sources_sha256"]
    _plugin._check_compatible(_plugin.plugin_path(), record)  # same sources: accepted

    (src / "tests" / "kernel_check.cu").write_text("// not part of the plugin\n")
    assert _plugin.sources_digest(src) == record["sources_sha256"]
    header = src / "fpload" / "philox.h"
    header.write_text(header.read_text() + "\n// edited\n")
    assert _plugin.sources_digest(src) != record["sources_sha256"]
    with pytest.raises(PluginError, match=r"older than its sources.*fpload ops build"):
        _plugin._check_compatible(_plugin.plugin_path(), record)
    assert "stale" in json.dumps(_plugin.plugin_info())


def test_outside_a_checkout_the_source_hash_is_not_checked(tmp_path, monkeypatch):
    record = _plugin.read_build_record()
    if record is None:
        pytest.skip("the plugin is not built")
    monkeypatch.setattr(_plugin, "SOURCE_DIR", tmp_path / "no-csrc")
    assert not _plugin.in_checkout()
    _plugin._check_compatible(_plugin.plugin_path(), {**record, "sources_sha256": "0" * 64})
