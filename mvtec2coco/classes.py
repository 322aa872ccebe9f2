"""Class naming modes: one class per defect type, one ``defect`` class, or ``category/type``."""

from __future__ import annotations

from collections import defaultdict

from .errors import OptionError
from .records import Sample

CLASS_MODES = ("type", "single", "category-type")
SINGLE = "defect"


def class_name(sample: Sample, mode: str) -> str | None:
    """The class of the sample's defects, or None for a good or unlabeled sample."""
    if sample.is_good or not sample.is_labeled:
        return None
    if mode == "single":
        return SINGLE
    if mode == "category-type":
        return f"{sample.category}/{sample.label}"
    if mode == "type":
        return sample.label
    raise OptionError(f"unknown class mode '{mode}'", hint=f"use one of {', '.join(CLASS_MODES)}")


def class_names(samples: list[Sample], mode: str) -> list[str]:
    """Sorted class names; index = YOLO class id, index + 1 = COCO category id."""
    return sorted({n for n in (class_name(s, mode) for s in samples) if n is not None})


def supercategories(samples: list[Sample], mode: str) -> dict[str, str]:
    """The product category of each class ('+'-joined when a type name spans several)."""
    owners: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        name = class_name(s, mode)
        if name is not None:
            owners[name].add(s.category)
    return {name: "+".join(sorted(cats)) for name, cats in owners.items()}


def shared_type_warning(samples: list[Sample], mode: str) -> str | None:
    """With ``type`` over several categories, equal type names merge: say so."""
    if mode != "type":
        return None
    shared = {k: v for k, v in supercategories(samples, mode).items() if "+" in v}
    if not shared:
        return None
    listed = ", ".join(f"{k} ({v.replace('+', ', ')})" for k, v in sorted(shared.items()))
    return f"defect types with the same name in several categories share one class: {listed}; " \
           "use --classes category-type to keep them apart"
