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


def render_sample(spec: CategorySpec, seed: int, split: str, label: str, index: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Image (H x W or H x W x 3, uint8) and, for a defect label, its 0/1 mask."""
    rng = np.random.default_rng([seed, stable_int(spec.name), stable_int(split), stable_int(label), index])
    size = spec.size
    background = texture(rng, size, spec.channels, _palette(seed, spec.name + "/bg"))
    product(rng, background, _palette(seed, spec.name + "/product"))
    mask = None
    if label != "good":
        mask = defect_mask(rng, size, style_of(spec, label))
        paint_defect(rng, background, mask, _palette(seed, f"{spec.name}/{label}"))
    image = background[..., 0] if spec.channels == 1 else background
    return image, mask
