"""KolektorSDD2: ``<root>/{train,test}/<id>.png`` with ``<id>_GT.png`` beside each image.

An image is defective when its ``_GT`` mask holds any defect pixel (the dataset has no other
label), so this reader decodes the masks; ``train`` and ``test`` are the official split.

Source: J. Bozic et al., "Mixed supervision for surface-defect detection: from weakly to fully
supervised learning", Computers in Industry 2021 (ViCoS, University of Ljubljana). Licence:
CC BY-NC-SA 4.0 (per its publisher). Never shipped here.
"""

from __future__ import annotations

from pathlib import Path

from ..records import Sample
from .common import read_labelled_by_masks

NAME = "ksdd2"
DEFECT = "defect"
GT_SUFFIX = "_GT"
SPLITS = ("train", "test")
QUIRKS = ("good and defective images are told apart by decoding every _GT mask (no other label exists)",)


def is_category(folder: Path) -> bool:
    train = folder / "train"
    if not train.is_dir():
        return False
    try:
        return any(name.endswith(f"{GT_SUFFIX}.png") for name in (p.name for p in train.iterdir()))
    except OSError:  # unreadable: a train/ without test/ siblings of other layouts; the reader names it
        return (folder / "test").is_dir() and not (folder / "train" / "good").is_dir() \
            and not (folder / "ground_truth").is_dir()


def read_category(root: Path, category_dir: Path) -> list[Sample]:
    parts = [(category_dir / split, split, "") for split in SPLITS]
    return read_labelled_by_masks(root, category_dir, parts, GT_SUFFIX, ".png", DEFECT)
