"""KolektorSDD: ``<root>/kosNN/PartN.jpg`` with ``PartN_label.bmp`` beside each image.

Each ``kosNN`` folder is one electrical commutator photographed in several parts; an image is
defective when its label mask holds any defect pixel (the dataset has no other label), so this
reader decodes the masks. There is no fixed split: every sample gets ``all`` and its commutator
as ``group`` (``--split-group sample`` keeps a commutator's parts in one subset).

Source: D. Tabernik et al., "Segmentation-based deep-learning approach for surface-defect
detection", J. Intell. Manuf. 2020 (ViCoS, University of Ljubljana). Licence: CC BY-NC-SA 4.0
(per its publisher). Never shipped here.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..records import Sample
from .common import read_labelled_by_masks, subdirs

NAME = "kolektor"
DEFECT = "defect"
LABEL_SUFFIX = "_label"
FOLDER = re.compile(r"kos\d+$", re.IGNORECASE)
QUIRKS = ("good and defective images are told apart by decoding every label mask (no other label exists)",
          "no official split: use --split ratios with --split-group sample to keep each commutator together")


def is_category(folder: Path) -> bool:
    return any(FOLDER.match(d.name) for d in subdirs(folder))


def read_category(root: Path, category_dir: Path) -> list[Sample]:
    parts = [(d, "all", f"{category_dir.name}/{d.name}") for d in subdirs(category_dir) if FOLDER.match(d.name)]
    return read_labelled_by_masks(root, category_dir, parts, LABEL_SUFFIX, ".bmp", DEFECT)
