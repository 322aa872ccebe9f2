"""Mask value -> defect name, read from the mapping file a dataset ships with its masks.

- MVTec 3D-AD: ``<category>/class_ids.json``, an object ``{"255": "contamination", "254":
  "crack", "0": "good"}``; a ``combined`` image's mask holds several of these values.
- MVTec LOCO AD: ``<category>/defects_config.json``, a list of ``{"defect_name", "pixel_value",
  "saturation_threshold", "relative_saturation"}``; each mask file of an image is one defect
  filled with its ``pixel_value``.
- VisA: masks hold class ids (1..k). The ids are named by ``id2class.json`` from the VisA
  repository (``{"pcb1": {"0": "BACKGROUND", "1": "Bent", ...}, ...}``), placed in the VisA root
  or in the category folder.

Value 0 (background, ``good``) is never a defect and is left out of every map.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import DatasetError

ValueMap = dict[int, str]
BACKGROUND_NAMES = {"good", "background", "bg", "normal", "ok"}


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object that refuses a key given twice (json keeps the last one silently)."""
    found: dict = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"key {key!r} is given twice")
        found[key] = value
    return found


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=_pairs)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DatasetError(f"mapping file cannot be read ({type(exc).__name__}: {str(exc)[:200]})", path,
                           "restore the dataset's own file") from exc


def type_name(text: str) -> str:
    """A defect name as a class name: lower case, words joined by ``_``."""
    return "_".join(str(text).strip().lower().split())


def _value(key: object, path: Path) -> int:
    text = str(key).strip() if not isinstance(key, bool) else ""
    if not re.fullmatch(r"[0-9]+", text):
        raise DatasetError(f"mapping key {key!r} is not a mask value", path, "values are integers 0..65535")
    value = int(text)
    if not 0 <= value <= 65535:
        raise DatasetError(f"mask value {value} is out of range", path, "values are 0..65535")
    return value


def _from_object(data: dict, path: Path) -> ValueMap:
    found: ValueMap = {}
    seen: set[int] = set()
    for key, name in data.items():
        value = _value(key, path)
        if value in seen:
            raise DatasetError(f"mask value {value} is listed twice", path, "restore the dataset's own file")
        seen.add(value)
        if not isinstance(name, str) or not name.strip():
            raise DatasetError(f"mask value {value} has no name", path, "each value maps to a defect name")
        if value != 0 and type_name(name) not in BACKGROUND_NAMES:
            found[value] = type_name(name)
    return dict(sorted(found.items()))


def read_class_ids(path: Path) -> ValueMap:
    """MVTec 3D-AD's ``class_ids.json``: ``{"<value>": "<defect>"}``."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DatasetError("class_ids.json is not an object of value -> name", path, "restore the dataset's own file")
    return _from_object(data, path)


def read_defects_config(path: Path) -> ValueMap:
    """MVTec LOCO's ``defects_config.json``: a list of ``{"defect_name", "pixel_value", ...}``."""
    data = _read_json(path)
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise DatasetError("defects_config.json is not a list of defects", path, "restore the dataset's own file")
    found: ValueMap = {}
    for entry in data:
        if "pixel_value" not in entry or "defect_name" not in entry:
            raise DatasetError("a defect entry lacks 'pixel_value' or 'defect_name'", path,
                               "restore the dataset's own file")
        value = _value(entry["pixel_value"], path)
        if value in found:
            raise DatasetError(f"pixel_value {value} is listed twice", path, "restore the dataset's own file")
        name = entry["defect_name"]
        if not isinstance(name, str) or not name.strip() or type_name(name) in BACKGROUND_NAMES:
            raise DatasetError(f"pixel_value {value} has no defect name ({name!r})", path,
                               "each entry names its defect")
        if value == 0:
            raise DatasetError("pixel_value 0 is the background, not a defect", path, "restore the dataset's own file")
        found[value] = type_name(name)
    return dict(sorted(found.items()))


def read_id2class(path: Path, category: str) -> ValueMap:
    """VisA's ``id2class.json``: per object ``{"<id>": "<name>"}``, or one flat object."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DatasetError("id2class.json is not an object", path, "use the VisA repository's id2class.json")
    if data and all(isinstance(v, dict) for v in data.values()):
        if category not in data:
            raise DatasetError(f"id2class.json has no entry for '{category}'", path,
                               f"it lists {', '.join(sorted(data))}")
        data = data[category]
    return _from_object(data, path)
