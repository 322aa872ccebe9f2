"""One configuration mechanism: shipped YAMLs against the code's defaults, typed settings, overrides."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mvtec2coco.errors import ConfigError
from mvtec2coco.models.common import config as configs

ROOT = Path(__file__).resolve().parents[2]


def _writer():
    spec = importlib.util.spec_from_file_location("write_default_configs", ROOT / "tools" / "write_default_configs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WRITER = _writer()


@pytest.mark.parametrize("family", sorted(WRITER.FAMILIES))
def test_default_yaml_equals_the_code_defaults(family):
    cls = WRITER.FAMILIES[family]
    path = ROOT / "configs" / family / "default.yaml"
    assert configs.to_dict(configs.load(cls, path)) == configs.to_dict(cls())
    assert path.read_text() == WRITER.render(family), "run python tools/write_default_configs.py"


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.yaml")), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_shipped_yaml_loads_strictly(path):
    cls = WRITER.FAMILIES[path.parent.name]
    loaded = configs.load(cls, path)  # unknown keys or wrong types would raise
    raw = configs.read_yaml_mapping(path)
    flat = configs.to_dict(loaded)
    for key, value in raw.items():  # what the file says is what the run gets
        if isinstance(value, dict) and isinstance(flat[key], dict) and key != "class_words":
            for sub, v in value.items():
                assert flat[key][sub] == (list(v) if isinstance(v, tuple) else v), (path, key, sub)
        else:
            assert flat[key] == value, (path, key)


@dataclass(frozen=True)
class Inner:
    lr: float = 0.1
    steps: int = 3


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    tags: tuple[str, ...] = ("a",)
    limit: int | None = None
    on: bool = True


def test_types_are_checked_and_named():
    assert configs.build(Outer, {"inner": {"lr": 1, "steps": 5}, "tags": ["b", "c"], "limit": 4}) == \
        Outer("x", Inner(1.0, 5), ("b", "c"), 4, True)
    assert configs.build(Outer, {"inner": {"lr": "1e-4"}}).inner.lr == 1e-4  # YAML 1.1 reads 1e-4 as text
    for values, message in (({"inner": {"steps": 2.5}}, "'inner.steps' must be a whole number"),
                            ({"inner": {"steps": True}}, "'inner.steps' must be a whole number"),
                            ({"inner": {"lr": "fast"}}, "'inner.lr' must be a number"),
                            ({"on": "yes please"}, "'on' must be true or false"),
                            ({"limit": "many"}, "'limit' must be a whole number"),
                            ({"inner": 3}, "'inner.' must be a mapping"),
                            ({"inenr": {}}, "unknown setting(s) inenr")):
        with pytest.raises(ConfigError) as err:
            configs.build(Outer, values)
        assert message in str(err.value), (values, str(err.value))


def test_overrides_apply_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: file\ninner: {lr: 0.5}\n")
    cfg = configs.load(Outer, path, ["inner.steps=9", "name=set"], {"name": "option", "inner.lr": 0.25})
    assert cfg == Outer("set", Inner(0.25, 9))
    assert configs.load(Outer, None) == Outer()
    with pytest.raises(ConfigError, match="not key=value"):
        configs.load(Outer, None, ["name"])
    with pytest.raises(ConfigError, match="not a section"):
        configs.load(Outer, path, ["name.x=1"])
    with pytest.raises(ConfigError, match="'name' must be text"):
        configs.load(Outer, None, ["name.x=1"])
    assert configs.field_names(Outer) == ["name", "inner.lr", "inner.steps", "tags", "limit", "on"]


def test_a_run_folder_holds_its_resolved_config_and_it_loads_back(tmp_path):
    from mvtec2coco.models.sam.config import SamConfig

    cfg = configs.load(SamConfig, None, ["lr=3e-3", "epochs=2"])
    (tmp_path / "config.yaml").write_text(configs.dump(cfg))
    assert configs.load(SamConfig, tmp_path / "config.yaml") == cfg
