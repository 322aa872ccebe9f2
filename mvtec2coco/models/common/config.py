"""The one configuration mechanism of every model family.

A family's settings are a (possibly nested) frozen dataclass whose field defaults are the single
source of every default. A YAML file (``configs/<family>/*.yaml``) sets some of them and
``--set a.b=value`` overrides on top; unknown keys and values of the wrong type are errors that
name the key. The resolved settings are written into every run folder as ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ...errors import ConfigError
from ...formats.yaml_file import read_yaml_mapping, yaml_value

C = TypeVar("C")


def to_dict(config: Any) -> dict:
    """Plain data (tuples as lists) that ``build`` turns back into the same config."""
    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(config))


def dump(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True)


def _check(value: Any, hint: Any, key: str, source: Path | None) -> Any:
    """``value`` as the annotated type, or a ConfigError naming ``key``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check(value, arg, key, source)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if hint is Any:
        return value
    if origin is tuple:
        items = value if isinstance(value, (list, tuple)) else [value]
        (inner, *_) = typing.get_args(hint) or (Any,)
        return tuple(_check(v, inner, key, source) for v in items)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"setting '{key}' must be a mapping, not {value!r}", source)
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"setting '{key}' must be true or false, not {value!r}", source)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"setting '{key}' must be a whole number, not {value!r}", source)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                try:
                    return float(value)  # YAML 1.1 reads 1e-4 (no dot) as text
                except ValueError:
                    pass
            raise ConfigError(f"setting '{key}' must be a number, not {value!r}", source)
        return float(value)
    if hint is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"setting '{key}' must be text, not {value!r}", source)
        return value
    return value


Limit = tuple  # (low, high, low included, high included); None: no bound on that side
AT_LEAST_ONE: Limit = (1, None, True, False)
POSITIVE: Limit = (0, None, False, False)
NON_NEGATIVE: Limit = (0, None, True, False)
UNIT: Limit = (0, 1, True, True)  # [0, 1]
FRACTION: Limit = (0, 1, False, True)  # (0, 1]


def _within(value: Any, limit: Limit, key: str, source: Path | None) -> None:
    import math

    low, high, low_in, high_in = limit
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    bad = (isinstance(value, float) and not math.isfinite(value)) \
        or (low is not None and (value < low or (value == low and not low_in))) \
        or (high is not None and (value > high or (value == high and not high_in)))
    if bad:
        if high is None:
            span = f"at least {low}" if low_in else f"greater than {low}"
        elif low is None:
            span = f"at most {high}" if high_in else f"less than {high}"
        else:
            span = f"in {'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
        raise ConfigError(f"setting '{key}' must be {span}, not {value!r}", source)


def build(cls: type[C], values: dict, source: Path | None = None, where: str = "") -> C:
    """``cls`` from a mapping: unknown keys and wrong types are ConfigErrors naming the key."""
    if not isinstance(values, dict):
        raise ConfigError(f"'{where}' must be a mapping of settings", source)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(f'{where}{k}' for k in unknown)}", source,
                          f"known{' in ' + where.rstrip('.') if where else ''}: {', '.join(fields)}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = build(hint, value if value is not None else {}, source, f"{where}{name}.")
        else:
            kwargs[name] = _check(value, hint, f"{where}{name}", source)
    built = cls(**kwargs)
    for name, limit in getattr(cls, "LIMITS", {}).items():  # ranges: also defaults, since LIMITS may be new
        _within(getattr(built, name), limit, f"{where}{name}", source)
    return built


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """``a.b=value`` texts applied to a nested mapping (values read as YAML)."""
    values = dict(values)
    for text in overrides:
        if "=" not in text:
            raise ConfigError(f"--set '{text}' is not key=value", hint="e.g. --set lr=1e-4")
        key, raw = text.split("=", 1)
        keys = key.strip().split(".")
        value = yaml_value(raw, key)
        node = values
        for part in keys[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, dict) else ({} if child is None else child)
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text}: '{part}' is not a section")
            node[part] = child
            node = child
        node[keys[-1]] = value
    return values


def load(cls: type[C], path: Path | None = None, overrides: list[str] | None = None, extra: dict | None = None) -> C:
    """Defaults of ``cls`` <- the YAML file <- ``extra`` (command-line options) <- ``--set`` texts."""
    values = read_yaml_mapping(path) if path is not None else {}
    if extra:
        values = apply_overrides(values, [])
        for key, value in extra.items():
            if value is None:
                continue
            node = values
            *parents, last = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
    values = apply_overrides(values, list(overrides or []))
    return build(cls, values, path)


def field_names(cls: type) -> list[str]:
    """Every settable key of ``cls`` in dotted form (for help texts and tests)."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out += [f"{f.name}.{k}" for k in field_names(hints[f.name])]
        else:
            out.append(f.name)
    return out
