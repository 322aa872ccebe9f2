"""A sample's mask files as labelled layers: the masks whose regions become instances, each with its class.

By default every mask file of a sample is merged and all its regions take the sample's class
(one defect type per image). Two rules refine that:

- ``per_file``: each mask file is a layer of its own (MVTec LOCO: one file per annotated defect),
  so masks that overlap or touch give separate instances, as COCO and YOLO-seg allow.
- ``values``: regions are split by mask value and each value is named through the dataset's own
  mapping (``datasets.value_maps``), so a ``combined`` image names every region by its own type.
  A value the mapping lacks gives a layer without class: its regions are counted, never written.

``convert`` and ``verify`` both build their instances through ``sample_layers``, so that what is
checked is what had to be written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .datasets.imageio import JPEG_SOI, load_mask, read_mask_bytes
from .errors import BrokenFileError, SizeMismatchError

UNMAPPED = -1  # class id of a layer whose mask value the mapping does not name


class Layer(NamedTuple):
    mask: np.ndarray  # uint8 (H, W); any value > 0 is this layer's defect
    class_id: int  # index into the class names, or UNMAPPED
    value: int  # the mask value the layer holds, 0 when not split by value
    source: str  # the mask file (the first of a merged group)


def value_array(path: Path | str, height: int, width: int) -> np.ndarray:
    """The stored values of a value-coded mask (class ids, LOCO pixel values) as a 2-D array.

    Palette PNGs give their indices; a colour mask must have equal channels; a JPEG cannot carry
    exact values and is refused.
    """
    path = Path(path)
    head, raw = read_mask_bytes(path)
    if head.startswith(JPEG_SOI):  # by its bytes: a JPEG saved under a .png name too
        raise BrokenFileError("a JPEG mask cannot carry exact mask values", path, "use the PNG masks or --classes type")
    if raw.dtype not in (np.uint8, np.uint16):
        raise BrokenFileError(f"mask values are {raw.dtype}, not class ids (8- or 16-bit unsigned integers)", path,
                              "use --classes type")
    if raw.ndim == 3 and raw.shape[2] in (2, 4) and raw[..., -1].min() < raw[..., -1].max():
        colour, alpha = raw[..., :-1], raw[..., -1]  # drawn in the alpha channel, or partly transparent
        raw = alpha if colour.min() == colour.max() else np.where(alpha[..., None] > 0, colour, 0).astype(raw.dtype)
    if raw.ndim == 3:
        colour = raw[..., : min(3, raw.shape[2])]
        if any(not np.array_equal(colour[..., 0], colour[..., i]) for i in range(1, colour.shape[2])):
            raise BrokenFileError("colour mask whose channels differ: its values are not class ids", path,
                                  "use --classes type")
        raw = np.ascontiguousarray(colour[..., 0])
    if raw.shape != (height, width):
        raise SizeMismatchError(f"mask is {raw.shape[1]}x{raw.shape[0]} but its image is {width}x{height}", path,
                                "resize the mask with nearest-neighbour interpolation or fix the pairing")
    return raw


def split_by_value(values: np.ndarray, classes: dict[int, int], source: str) -> list[Layer]:
    """One layer per non-zero value present, in value order; unknown values get ``UNMAPPED``."""
    counts = np.bincount(values.ravel(), minlength=1)
    present = np.flatnonzero(counts)
    return [Layer((values == v).view(np.uint8), classes.get(int(v), UNMAPPED), int(v), source)
            for v in present.tolist() if v != 0]


def sample_layers(paths: Sequence[str | Path], height: int, width: int, class_id: int | None,
                  values: dict[int, int] | None = None, per_file: bool = False,
                  notes: list[tuple[str, str]] | None = None) -> list[Layer]:
    """The layers of one sample's mask files (see the module docstring).

    ``class_id`` is the sample's class (None for a good image: its layers keep class 0 and are
    never written); ``values`` maps mask value -> class id and switches splitting by value on.
    """
    if not paths:
        return []
    groups = [[p] for p in paths] if per_file else [list(paths)]
    fallback = 0 if class_id is None else class_id
    layers: list[Layer] = []
    for group in groups:
        if values is None:
            mask = load_mask(group, height, width, zero_one=False, notes=notes)
            layers.append(Layer(mask, fallback, 0, str(group[0])))
            continue
        merged: np.ndarray | None = None
        for p in group:
            array = value_array(p, height, width)
            merged = array if merged is None else np.maximum(merged, array)
        assert merged is not None
        if class_id is None:  # a good image: its values name nothing; keep one layer for the findings
            layers.append(Layer((merged > 0).view(np.uint8), fallback, 0, str(group[0])))
        else:
            layers.extend(split_by_value(merged, values, str(group[0])))
    return layers
