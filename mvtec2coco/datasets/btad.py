"""BTAD (beanTech Anomaly Detection): ``<product>/{train/ok, test/{ok,ko}, ground_truth/ko/<stem>.<ext>}``.

Products ``01``, ``02`` and ``03``; images are ``.bmp`` or ``.png`` and masks ``.png`` or
``.bmp`` depending on the product, named like their image (no ``_mask``). ``ok`` is good;
``ko`` (the only defect folder) stays the defect type's name.

Source: P. Mishra et al., "VT-ADL: A Vision Transformer Network for Image Anomaly Detection and
Localization", ISIE 2021. Licence: CC BY-SA 4.0 (per its publisher). Never shipped here.
"""

from __future__ import annotations

from pathlib import Path

from ..records import Sample
from . import mvtec

NAME = "btad"
OK = "ok"
QUIRKS = ("images and masks mix .bmp and .png by product; masks carry the image's own name",)


def is_category(folder: Path) -> bool:
    return (folder / "train" / OK).is_dir() and (folder / "test").is_dir()


def read_category(root: Path, category_dir: Path) -> list[Sample]:
    """MVTec AD's reading, with ``ok`` for good and masks named like their images."""
    return mvtec.read_category(root, category_dir, plain_names=True, good_folder=OK, hint_suffix="")
