"""Render one synthetic sample (image and 0/1 defect mask) from a spec and a seed."""

from __future__ import annotations

import numpy as np

from ..runtime.seeding import stable_int
from .presets import CategorySpec
from .shapes import STYLES, defect_mask, paint_defect, product, texture


def _palette(seed: int, key: str) -> np.ndarray:
    return np.random.default_rng([seed, stable_int(key)]).integers(30, 226, size=3).astype(np.uint8)


def style_of(spec: CategorySpec, label: str) -> str:
    """Each defect type gets a main shape style of its own, in a stable order."""
    return STYLES[spec.defect_types.index(label) % len(STYLES)]


def render_sample(spec: CategorySpec, seed: int, split: str, label: str, index: int,
                  parts: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray | None]:
    """Image (H x W or H x W x 3, uint8) and, for a defect label, its 0/1 mask.

    With ``parts`` (defect types), the image shows one defect of each type and the mask holds
    k + 1 where ``parts[k]``'s defect lies (a later part covers an earlier one): a ``combined``
    image whose regions have several types, as in MVTec 3D-AD.
    """
    rng = np.random.default_rng([seed, stable_int(spec.name), stable_int(split), stable_int(label), index])
    size = spec.size
    background = texture(rng, size, spec.channels, _palette(seed, spec.name + "/bg"))
    product(rng, background, _palette(seed, spec.name + "/product"))
    mask = None
    if label != "good" and parts:
        mask = np.zeros((size, size), np.uint8)
        for k, part in enumerate(parts):
            region = defect_mask(rng, size, style_of(spec, part))
            paint_defect(rng, background, region, _palette(seed, f"{spec.name}/{part}"))
            mask[region > 0] = k + 1
    elif label != "good":
        mask = defect_mask(rng, size, style_of(spec, label))
        paint_defect(rng, background, mask, _palette(seed, f"{spec.name}/{label}"))
    image = background[..., 0] if spec.channels == 1 else background
    return image, mask
