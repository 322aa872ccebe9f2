"""YAML files of settings (configs, ``data.yaml``): a mapping or one typed error naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError


def read_yaml_mapping(path: Path | str, what: str = "config") -> dict:
    """A YAML file holding a mapping (an empty file is an empty mapping)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file does not exist", path)
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{what} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}", path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} cannot be read ({exc})", path) from exc
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{what} is not a mapping of settings (found a {type(values).__name__})", path)
    return values


def yaml_value(text: str, key: str) -> Any:
    """The value of a ``--set key=value`` override, read as YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}={text}: the value is not valid YAML") from exc
