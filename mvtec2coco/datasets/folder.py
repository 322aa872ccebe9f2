"""A generic folder layout for datasets that follow no published structure.

Pairing rule::

    <category>/good/*.png                   good images (no mask needed)
    <category>/<type>/<stem>.<ext>          defect images, one folder per defect type
    <category>/masks/<type>/<stem>.png      its mask, or <stem>_mask.png (any image format)

The category is the folder's name; several categories may sit side by side under one root.
Every sample gets split ``all``: a split is made at conversion time.
"""

from __future__ import annotations

from pathlib import Path

from ..records import GOOD, Sample
from .common import image_files, make_sample, orphan_masks, require_mask, require_samples, subdirs

NAME = "folder"
MASKS = "masks"


def is_category(folder: Path) -> bool:
    return (folder / GOOD).is_dir() or (folder / MASKS).is_dir()


def read_category(root: Path, category_dir: Path) -> list[Sample]:
    category = category_dir.name
    masks_dir = category_dir / MASKS
    all_masks = {m for d in subdirs(masks_dir) for m in image_files(d)}
    by_key: dict[tuple[str, str], Path] = {}
    for m in sorted(all_masks):
        stem = m.stem[: -len("_mask")] if m.stem.endswith("_mask") else m.stem
        by_key.setdefault((m.parent.name, stem), m)
    samples: list[Sample] = []
    used: set[Path] = set()
    for label_dir in subdirs(category_dir):
        if label_dir.name == MASKS:
            continue
        label = label_dir.name
        for image in image_files(label_dir):
            found = by_key.get((label, image.stem))
            if label != GOOD:
                masks = require_mask(image, found, masks_dir / label, f"{image.stem}.png")
            else:
                masks = (found,) if found is not None else ()
            used.update(masks)
            samples.append(make_sample(root, category, "all", label, image, masks))
    orphan_masks(all_masks, used)
    require_samples(samples, category_dir)
    return samples
