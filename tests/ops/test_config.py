"""The AugmentOps config model: defaults, round trip, validation."""

import pytest
from pydantic import ValidationError

from fpload.errors import ConfigError
from fpload.ops import AugmentOps, WarpOps


def test_defaults_enable_every_operator_and_round_trip() -> None:
    cfg = AugmentOps()
    assert cfg.warp.enabled and cfg.occlusion.enabled and cfg.photometric.enabled
    assert AugmentOps.from_dict(cfg.to_dict()) == cfg
    assert AugmentOps.from_dict(None) == cfg


def test_identity_disables_everything() -> None:
    cfg = AugmentOps.identity()
    assert not (cfg.warp.enabled or cfg.occlusion.enabled or cfg.photometric.enabled)
    assert cfg.output.dtype == "uint8"


def test_partial_dict_overrides_only_what_it_names() -> None:
    cfg = AugmentOps.from_dict({"warp": {"distortion": 2.5}, "output": {"dtype": "float16"}})
    assert cfg.warp.distortion == 2.5 and cfg.warp.angle == WarpOps().angle
    assert cfg.output.dtype == "float16"


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"warp": {"distortion": -1}}, "warp.distortion"),
        ({"warp": {"scale": [1.2, 0.8]}}, "warp"),
        ({"photometric": {"dry_prob": 0.7, "wet_prob": 0.7}}, "photometric"),
        ({"occlusion": {"blob_max": 9}}, "occlusion.blob_max"),
        ({"warp": {"bogus": 1}}, "warp.bogus"),
        ({"output": {"dtype": "int32"}}, "output.dtype"),
    ],
)
def test_bad_values_raise_config_error_naming_the_field(data: dict, where: str) -> None:
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        AugmentOps.from_dict(data)


def test_models_are_frozen() -> None:
    cfg = AugmentOps()
    with pytest.raises(ValidationError):
        cfg.warp.distortion = 1.0  # type: ignore[misc]
