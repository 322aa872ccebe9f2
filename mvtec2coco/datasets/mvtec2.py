"""MVTec AD 2: ``<category>/{train/good, validation/good, test_public/{good,bad},
test_public/ground_truth/bad/<stem>_mask.png}``; ``test_private*`` folders are unlabeled."""

from __future__ import annotations

from pathlib import Path

from ..records import GOOD, Sample
from .common import (
    image_files,
    image_files_recursive,
    make_sample,
    orphan_masks,
    require_mask,
    require_samples,
    subdirs,
)

NAME = "mvtec2"


def is_category(folder: Path) -> bool:
    return (folder / "test_public").is_dir()


def read_category(root: Path, category_dir: Path) -> list[Sample]:
    category = category_dir.name
    samples: list[Sample] = []
    used: set[Path] = set()
    all_masks: set[Path] = set()
    for split_dir in subdirs(category_dir):
        split = split_dir.name
        if split.startswith("test_private"):
            for image in image_files_recursive(split_dir):
                samples.append(make_sample(root, category, split, None, image, ()))
            continue
        gt_dir = split_dir / "ground_truth"
        all_masks |= {m for d in subdirs(gt_dir) for m in image_files(d)}
        for label_dir in subdirs(split_dir):
            if label_dir.name == "ground_truth":
                continue
            label = label_dir.name
            for image in image_files(label_dir):
                found = gt_dir / label / f"{image.stem}_mask.png"
                masks: tuple[Path, ...] = ()
                if label != GOOD:
                    masks = require_mask(image, found if found.is_file() else None, found.parent, found.name)
                elif found.is_file():
                    masks = (found,)
                used.update(masks)
                samples.append(make_sample(root, category, split, label, image, masks))
    orphan_masks(all_masks, used)
    require_samples(samples, category_dir)
    return samples
