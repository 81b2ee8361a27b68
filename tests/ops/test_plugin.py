"""Plugin loading: once, explicit, refusing a missing library or another DALI minor version."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fpload.errors import PluginError
from fpload.ops import _plugin


def test_load_is_idempotent_and_info_reports(plugin: dict) -> None:
    assert _plugin.load_plugin() == _plugin.load_plugin()
    info = _plugin.plugin_info()
    assert info["loaded"] and info["exists"]
    assert info["dali_version"].split(".")[:2] == info["installed_dali_version"].split(".")[:2]
    assert isinstance(info["gpu_backend"], bool)
    assert (info["cuda_version"] is None) == (not info["gpu_backend"])


def test_baked_info_matches_record(plugin: dict) -> None:
    baked = _plugin._baked_info(_plugin.plugin_path())
    assert baked["dali"] == plugin["dali_version"]
    assert (baked["gpu"] == "1") == plugin["gpu_backend"]


def test_missing_library_says_how_to_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_plugin, "LIB_DIR", tmp_path)
    monkeypatch.setattr(_plugin, "_candidate_dirs", lambda: [tmp_path])  # no build anywhere
    monkeypatch.setattr(_plugin, "_loaded", None)
    with pytest.raises(PluginError, match="fpload ops build"):
        _plugin.load_plugin()
    assert _plugin.plugin_info()["exists"] is False


def test_other_dali_minor_is_refused_naming_both(plugin: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copyfile(_plugin.plugin_path(), tmp_path / _plugin.LIB_NAME)
    record = json.loads((_plugin.LIB_DIR / _plugin.META_NAME).read_text())
    record["dali_version"] = "2.3.0"
    (tmp_path / _plugin.META_NAME).write_text(json.dumps(record))
    monkeypatch.setattr(_plugin, "LIB_DIR", tmp_path)
    monkeypatch.setattr(_plugin, "_loaded", None)
    installed = _plugin._installed_dali_version()
    with pytest.raises(PluginError, match=rf"built for DALI 2\.3\.0, but DALI {installed} is installed"):
        _plugin.load_plugin()


def test_gpu_pipeline_without_gpu_backend_refuses(plugin: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_plugin, "_loaded", {**plugin, "gpu_backend": False})
    monkeypatch.setattr(_plugin, "plugin_info", lambda: {**plugin, "gpu_backend": False, "path": "x"})
    with pytest.raises(PluginError, match="without its CUDA backend"):
        _plugin.require_gpu_backend()


def test_import_has_no_side_effects() -> None:
    code = ("import sys, os; env = dict(os.environ); import fpload.ops, fpload.ops._reference; "
            "assert 'nvidia.dali' not in sys.modules; assert dict(os.environ) == env")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc.stderr


def test_cli_info_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "fpload.ops", "info", "--json"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["path"].endswith(_plugin.LIB_NAME)
