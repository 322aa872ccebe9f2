"""Class naming modes: one class per defect type, one ``defect`` class, ``category/type``, or the
defect named by each region's mask value through the dataset's mapping file (``value``)."""

from __future__ import annotations

from collections import defaultdict

from .errors import OptionError
from .records import Sample

CLASS_MODES = ("type", "single", "category-type", "value")
ValueMaps = dict[str, dict[int, str]]  # category -> mask value -> defect name
SINGLE = "defect"


def class_name(sample: Sample, mode: str) -> str | None:
    """The class of the sample's defects, or None for a good or unlabeled sample."""
    if sample.is_good or not sample.is_labeled:
        return None
    if mode == "single":
        return SINGLE
    if mode == "category-type":
        return f"{sample.category}/{sample.label}"
    if mode in ("type", "value"):  # value: the image's own type; its regions are named by value
        return sample.label
    raise OptionError(f"unknown class mode '{mode}'", hint=f"use one of {', '.join(CLASS_MODES)}")


def require_value_maps(samples: list[Sample], value_maps: ValueMaps | None,
                       problems: dict[str, str] | None = None) -> ValueMaps:
    """The mapping of every category of ``samples`` (``--classes value``), or an error: the
    mapping's own (``problems``: unreadable), or an ``OptionError`` (missing, or naming no defect)."""
    from .errors import DatasetError

    value_maps, problems = value_maps or {}, problems or {}
    broken = sorted({s.category for s in samples} & set(problems))
    if broken:
        raise DatasetError(f"--classes value: {problems[broken[0]]}")
    empty = sorted(c for c in {s.category for s in samples} & set(value_maps) if not value_maps[c])
    if empty:
        raise OptionError(f"--classes value: the mask value mapping of category {', '.join(empty)} names no defect",
                          hint="restore the dataset's mapping file, or use --classes type")
    missing = sorted({s.category for s in samples} - set(value_maps))
    if missing:
        raise OptionError(f"--classes value needs the dataset's mask value mapping, which category "
                          f"{', '.join(missing)} lacks", hint="MVTec 3D-AD class_ids.json, MVTec LOCO "
                          "defects_config.json or VisA id2class.json; else use --classes type")
    return {c: value_maps[c] for c in sorted({s.category for s in samples})}


def class_names(samples: list[Sample], mode: str, value_maps: ValueMaps | None = None,
                problems: dict[str, str] | None = None) -> list[str]:
    """Sorted class names; index = YOLO class id, index + 1 = COCO category id. With ``value``,
    every name of the categories' mappings (whether or not a mask uses it)."""
    if mode == "value":
        return sorted({n for m in require_value_maps(samples, value_maps, problems).values() for n in m.values()})
    return sorted({n for n in (class_name(s, mode) for s in samples) if n is not None})


def value_classes(value_maps: ValueMaps, names: list[str]) -> dict[str, tuple[tuple[int, int], ...]]:
    """Per category: (mask value, class id) pairs, for ``mask_layers.sample_layers``."""
    index = {n: i for i, n in enumerate(names)}
    return {c: tuple((v, index[n]) for v, n in sorted(m.items())) for c, m in value_maps.items()}


def supercategories(samples: list[Sample], mode: str, value_maps: ValueMaps | None = None) -> dict[str, str]:
    """The product category of each class ('+'-joined when a type name spans several)."""
    owners: dict[str, set[str]] = defaultdict(set)
    if mode == "value":
        for c, m in require_value_maps(samples, value_maps).items():
            for n in m.values():
                owners[n].add(c)
    for s in samples if mode != "value" else ():
        name = class_name(s, mode)
        if name is not None:
            owners[name].add(s.category)
    return {name: "+".join(sorted(cats)) for name, cats in owners.items()}


def shared_type_warning(samples: list[Sample], mode: str, value_maps: ValueMaps | None = None) -> str | None:
    """With ``type`` or ``value`` over several categories, equal type names merge: say so."""
    if mode not in ("type", "value"):
        return None
    shared = {k: v for k, v in supercategories(samples, mode, value_maps).items() if "+" in v}
    if not shared:
        return None
    listed = ", ".join(f"{k} ({v.replace('+', ', ')})" for k, v in sorted(shared.items()))
    return f"defect types with the same name in several categories share one class: {listed}; " \
           "use --classes category-type to keep them apart"
