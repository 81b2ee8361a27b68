"""Every shipped config parses; bad ones fail naming the file, the key and what is allowed."""

from pathlib import Path

import pytest

from fpload.catalog import load_filter
from fpload.load import LoaderConfig
from fpload.pack import PackConfig
from fpload.errors import ConfigError

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("path", sorted((CONFIGS / "pack").glob("*.yaml")), ids=lambda p: p.name)
def test_pack_configs_parse(path):
    assert isinstance(PackConfig.from_yaml(path), PackConfig)


@pytest.mark.parametrize("path", sorted((CONFIGS / "loader").glob("*.yaml")), ids=lambda p: p.name)
def test_loader_configs_parse(path):
    assert isinstance(LoaderConfig.from_yaml(path), LoaderConfig)


@pytest.mark.parametrize("path", sorted((CONFIGS / "filters").glob("*.yaml")), ids=lambda p: p.name)
def test_filters_parse(path):
    assert load_filter(path).startswith("(")


def test_default_pack_yaml_is_the_default_config():
    assert PackConfig.from_yaml(CONFIGS / "pack" / "default.yaml") == PackConfig()


@pytest.mark.parametrize("text,fragment", [
    ("encodng: png\n", "key 'encodng': unknown key (allowed: allow_subject_overlap"),
    ("encoding: webp\n", "key 'encoding': Input should be 'passthrough', 'png', 'jpeg', 'raw' or 'raw-lz4'"),
    ("jpeg_quality: 101\n", "key 'jpeg_quality'"),
    ("splits: {train: 0.5, val: 0.4}\n", "sum to 1"),
    ("shard_max_samples: null\nshard_max_mb: null\n", "set shard_max_samples, shard_max_mb or both"),
    ("- a list\n", "expected a mapping"),
    ("encoding: [unclosed\n", "not valid YAML"),
])
def test_bad_pack_config(tmp_path, text, fragment):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        PackConfig.from_yaml(f)
    assert str(f) in str(e.value) and fragment in str(e.value)


def test_nested_unknown_key_lists_the_nested_keys(tmp_path):
    f = tmp_path / "l.yaml"
    f.write_text("augment:\n  rotation: 10\n")
    with pytest.raises(ConfigError, match=r"key 'augment.rotation': unknown key \(allowed: backend, enabled, ops, stock\)"):
        LoaderConfig.from_yaml(f)
    f.write_text("augment:\n  ops:\n    warp:\n      angel: [-5, 5]\n")
    with pytest.raises(ConfigError, match=r"key 'augment.ops.warp.angel': unknown key \(allowed: angle, center_mode"):
        LoaderConfig.from_yaml(f)
    f.write_text("augment:\n  ops:\n    warp:\n      distortion: -1\n")
    with pytest.raises(ConfigError, match=r"key 'augment.ops.warp.distortion': Input should be greater than or equal to 0"):
        LoaderConfig.from_yaml(f)
