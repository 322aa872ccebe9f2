"""Reading the files a training command is given: YAML configs, ``data.yaml``, COCO JSON and
weight or checkpoint files. Each check fails with a typed error naming the file, before any
output is made, instead of a traceback from deep inside yaml, pycocotools, torch or ultralytics.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ...errors import ConfigError, OptionError, WeightsError

T = TypeVar("T")


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


def read_data_yaml(path: Path | str) -> dict:
    """A YOLO ``data.yaml`` (class names and subset folders), not a COCO file or anything else."""
    path = Path(path)
    if not path.is_file():
        raise OptionError("data.yaml does not exist", path, "pass OUT/data.yaml of `mvtec2coco convert`")
    if path.suffix.lower() == ".json":
        raise OptionError("this is a JSON file where a YOLO data.yaml is expected", path,
                          "pass OUT/data.yaml of `mvtec2coco convert --format yolo`")
    data = read_yaml_mapping(path, "data.yaml")
    if "names" not in data or "images" in data and "annotations" in data:
        raise OptionError("not a YOLO data.yaml (no 'names')", path, "pass OUT/data.yaml of `mvtec2coco convert`")
    return data


def check_coco_json(path: Path | str) -> Path:
    """A COCO instances JSON (``images``, ``annotations``, ``categories``), not a data.yaml."""
    path = Path(path)
    if not path.is_file():
        raise OptionError("COCO file does not exist", path, "pass annotations/instances_<subset>.json of `convert`")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        hint = "a data.yaml is for YOLO; pass annotations/instances_<subset>.json" if path.suffix in (".yaml", ".yml") \
            else "pass annotations/instances_<subset>.json of `convert`"
        raise OptionError(f"not a COCO JSON file ({type(exc).__name__})", path, hint) from exc
    if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
        raise OptionError("not a COCO instances file (needs images, annotations and categories)", path)
    return path


LOAD_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, KeyError, TypeError, AttributeError,
               ImportError, zipfile.BadZipFile, OSError, AssertionError, IndexError)


def load_weights(path: Path | str, what: str, load: Callable[[str], T]) -> T:
    """``load(path)`` for a weights or checkpoint file; whatever it raises on a file that is no
    such checkpoint (garbage, truncated, another model) becomes one ``WeightsError``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{what} does not exist", path)
    try:
        return load(str(path))
    except LOAD_ERRORS as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise WeightsError(f"{what} cannot be loaded ({type(exc).__name__}: {first})", path,
                           "pass a file written for this model, or fetch it again") from exc


def torch_file(path: Path | str, what: str, weights_only: bool = True) -> Any:
    """``torch.load`` of ``path`` on the CPU, through ``load_weights``."""
    import torch

    return load_weights(path, what, lambda p: torch.load(p, map_location="cpu", weights_only=weights_only))
