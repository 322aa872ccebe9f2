"""MVTec 3D-AD, RGB part: ``<category>/{train,validation,test}/<type>/{rgb,gt,xyz}/<stem>.*``.

``rgb`` holds the images and ``gt`` the masks; ``xyz`` (point clouds) is ignored. Good images may
come with an all-zero ``gt``; it is kept as the sample's mask. ``<category>/class_ids.json`` maps
mask values to defect types (a ``combined`` image's mask holds several; ``--classes value``).
"""

from __future__ import annotations

from pathlib import Path

from ..records import GOOD, Sample
from .common import image_files, make_sample, orphan_masks, require_mask, require_samples, subdirs
from .value_maps import ValueMap, read_class_ids

NAME = "mvtec3d"
QUIRKS = ("good test images come with an all-zero gt mask; combined images hold regions of several types, "
          "named by --classes value through class_ids.json",)


def is_category(folder: Path) -> bool:
    return (folder / "train" / "good" / "rgb").is_dir()


def read_category(root: Path, category_dir: Path) -> list[Sample]:
    category = category_dir.name
    samples: list[Sample] = []
    used: set[Path] = set()
    all_masks: set[Path] = set()
    for split_dir in subdirs(category_dir):
        for label_dir in subdirs(split_dir):
            label = label_dir.name
            gts = {m.stem: m for m in image_files(label_dir / "gt")}
            all_masks |= set(gts.values())
            for image in image_files(label_dir / "rgb"):
                found = gts.get(image.stem)
                if label != GOOD:
                    masks = require_mask(image, found, label_dir / "gt", f"{image.stem}.png")
                else:
                    masks = (found,) if found is not None else ()
                used.update(masks)
                samples.append(make_sample(root, category, split_dir.name, label, image, masks))
    orphan_masks(all_masks, used)
    require_samples(samples, category_dir)
    return samples


CLASS_IDS = "class_ids.json"


def value_map(root: Path, category_dir: Path) -> ValueMap | None:
    """``<category>/class_ids.json`` (mask value -> defect type), or None without one."""
    path = category_dir / CLASS_IDS
    return read_class_ids(path) if path.is_file() else None
