"""MVTec AD (and MPDD, which shares it):
``<category>/{train/good, test/<type>, ground_truth/<type>/<stem>_mask.png}``."""

from __future__ import annotations

from pathlib import Path

from ..records import GOOD, Sample
from .common import children, image_names, make_sample, orphan_masks, require_mask, require_samples, sample_ids, stem_of, subdirs

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
    all_masks: set[Path] = set()
    by_key: dict[tuple[str, str], Path] = {}
    plain: list[tuple[tuple[str, str], Path]] = []
    for folder in subdirs(gt_dir):  # names paired as strings: a Path's stem is parsed on each use
        names = image_names(folder)
        paths = children(folder, names)
        all_masks.update(paths)
        for stem, mask in zip(map(stem_of, names), paths):
            if stem.endswith("_mask"):
                by_key[(folder.name, stem[: -len("_mask")])] = mask
            elif plain_names:
                plain.append(((folder.name, stem), mask))
    for key, mask in plain:  # ``<stem>_mask`` wins over ``<stem>``
        by_key.setdefault(key, mask)
    samples: list[Sample] = []
    used: set[Path] = set()
    for split_dir in subdirs(category_dir):
        if split_dir.name == "ground_truth":
            continue
        for label_dir in subdirs(split_dir):
            label = GOOD if label_dir.name == good_folder else label_dir.name
            label_masks = gt_dir / label_dir.name
            names = image_names(label_dir)
            for name, image, sid in zip(names, children(label_dir, names), sample_ids(root, label_dir, names)):
                # ground_truth/ describes the test images; train/good/000 must not claim good/000_mask
                found = by_key.get((label_dir.name, stem_of(name))) if split_dir.name != "train" else None
                masks: tuple[Path, ...] = ()
                if label != GOOD:
                    masks = require_mask(image, found, label_masks, f"{stem_of(name)}{hint_suffix}.png")
                elif found is not None:
                    masks = (found,)
                used.update(masks)
                samples.append(make_sample(root, category, split_dir.name, label, image, masks, known_id=sid))
    orphan_masks(all_masks, used)
    require_samples(samples, category_dir)
    return samples
