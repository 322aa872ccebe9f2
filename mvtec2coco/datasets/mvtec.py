"""MVTec AD (and MPDD, which shares it):
``<category>/{train/good, test/<type>, ground_truth/<type>/<stem>_mask.png}``."""

from __future__ import annotations

from pathlib import Path

from ..records import GOOD, Sample
from .common import image_files, make_sample, orphan_masks, require_mask, require_samples, subdirs

NAME = "mvtec"


def is_category(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def read_category(root: Path, category_dir: Path, plain_names: bool = False, good_folder: str = GOOD,
                  hint_suffix: str = "_mask") -> list[Sample]:
    """All samples of one category; every defect image must have ``<stem>_mask.<ext>`` (or, with
    ``plain_names``, ``<stem>.<ext>``: MPDD names its masks both ways, BTAD without ``_mask``).
    ``good_folder`` holds the good images (BTAD: ``ok``); ``hint_suffix`` is the mask name an error
    says it looked for."""
    category = category_dir.name
    gt_dir = category_dir / "ground_truth"
    all_masks = {m for d in subdirs(gt_dir) for m in image_files(d)}
    by_key = {(m.parent.name, m.stem[: -len("_mask")]): m for m in all_masks if m.stem.endswith("_mask")}
    if plain_names:
        for m in sorted(all_masks):
            if not m.stem.endswith("_mask"):
                by_key.setdefault((m.parent.name, m.stem), m)
    samples: list[Sample] = []
    used: set[Path] = set()
    for split_dir in subdirs(category_dir):
        if split_dir.name == "ground_truth":
            continue
        for label_dir in subdirs(split_dir):
            label = GOOD if label_dir.name == good_folder else label_dir.name
            label_masks = gt_dir / label_dir.name
            for image in image_files(label_dir):
                # ground_truth/ describes the test images; train/good/000 must not claim good/000_mask
                found = by_key.get((label_dir.name, image.stem)) if split_dir.name != "train" else None
                masks: tuple[Path, ...] = ()
                if label != GOOD:
                    masks = require_mask(image, found, label_masks, f"{image.stem}{hint_suffix}.png")
                elif found is not None:
                    masks = (found,)
                used.update(masks)
                samples.append(make_sample(root, category, split_dir.name, label, image, masks))
    orphan_masks(all_masks, used)
    require_samples(samples, category_dir)
    return samples
