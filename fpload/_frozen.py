"""FrozenConfig: the base of every config model (frozen, no unknown keys, dict and YAML round trips).

It lives in its own ground-floor module so that stage packages (e.g. ``fpload.features``) can
define their config models on one base (see :mod:`fpload.config` for the ground floor).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from fpload.errors import ConfigError

M = TypeVar("M", bound="FrozenConfig")


def read_yaml(path: str | Path, kind: str = "config") -> Any:
    """Parse a YAML file; a missing file or bad YAML is a ConfigError naming the file."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{kind} file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None


def _describe(model: type[BaseModel], err: dict[str, Any], source: str) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        # find the model the unknown key sits in, to list its allowed keys
        target: Any = model
        for part in err["loc"][:-1]:
            field = getattr(target, "model_fields", {}).get(part)
            ann = getattr(field, "annotation", None)
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                target = ann
        allowed = ", ".join(sorted(getattr(target, "model_fields", {})))
        return f"{source}: key '{loc}': unknown key (allowed: {allowed})"
    return f"{source}: key '{loc}': {err['msg']} (got {err.get('input')!r})"


class FrozenConfig(BaseModel):
    """Base of all config models: frozen, no unknown keys, dict and YAML round trips."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def from_dict(cls: type[M], data: dict[str, Any] | None, source: str | None = None) -> M:
        """Validate a plain dict; ``source`` names where it came from in error messages."""
        source = source or f"{cls._config_kind()} config"
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ConfigError(_describe(cls, err.errors()[0], source)) from None

    @classmethod
    def from_yaml(cls: type[M], path: str | Path) -> M:
        """Read a YAML file of this config; errors name the file and the key."""
        return cls.from_dict(read_yaml(path, "config"), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, the inverse of :meth:`from_dict`."""
        return self.model_dump(mode="json")

    @classmethod
    def _config_kind(cls) -> str:
        return cls.__name__.removesuffix("Config").lower() or "fpload"
