"""MPDD (Metal Parts Defect Detection): MVTec AD's layout, ``<category>/{train/good, test/<type>,
ground_truth/<type>/<mask>}``, where a mask is named ``000_mask.png`` or ``000.png``.

Recognised by its six category names (the folders alone look like MVTec AD); ``--layout mpdd``
reads any category so.

Source: S. Jezek et al., "Deep learning-based defect detection of metal parts: evaluating current
methods in complex conditions", ICUMT 2021. Licence: CC BY-NC-SA 4.0 (per its publisher).
"""

from __future__ import annotations

from pathlib import Path

from ..records import Sample
from . import mvtec

NAME = "mpdd"
CATEGORIES = {"bracket_black", "bracket_brown", "bracket_white", "connector", "metal_plate", "tubes"}
QUIRKS = ("masks are named 000_mask.png or 000.png; both are read",)


def is_category(folder: Path) -> bool:
    return folder.name in CATEGORIES and mvtec.is_category(folder)


def read_category(root: Path, category_dir: Path) -> list[Sample]:
    return mvtec.read_category(root, category_dir, plain_names=True)
