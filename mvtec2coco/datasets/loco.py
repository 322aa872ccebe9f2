"""MVTec LOCO AD: ``<category>/{train/good, validation/good, test/{good,logical_anomalies,
structural_anomalies}, ground_truth/<type>/<stem>/000.png, 001.png, ...}``.

One image may have several mask files, one per annotated defect, which may overlap; each file is
filled with its defect's ``pixel_value`` from ``<category>/defects_config.json`` (any value > 0
is defect; ``--classes value`` names it).
"""

from __future__ import annotations

from pathlib import Path

from ..records import GOOD, Sample
from .common import image_files, make_sample, orphan_masks, require_mask, require_samples, subdirs
from .value_maps import ValueMap, read_defects_config

NAME = "loco"
QUIRKS = ("masks hold values other than 255 (each defect's pixel_value); an image may have several mask files, "
          "which may overlap: each gives its own instances unless --loco-merge",)


def is_category(folder: Path) -> bool:
    test = folder / "test"
    return (test / "logical_anomalies").is_dir() or (test / "structural_anomalies").is_dir()


def read_category(root: Path, category_dir: Path) -> list[Sample]:
    category = category_dir.name
    gt_dir = category_dir / "ground_truth"
    mask_sets = {
        (type_dir.name, stem_dir.name): tuple(image_files(stem_dir))
        for type_dir in subdirs(gt_dir)
        for stem_dir in subdirs(type_dir)
    }
    samples: list[Sample] = []
    used: set[Path] = set()
    for split_dir in subdirs(category_dir):
        if split_dir.name == "ground_truth":
            continue
        for label_dir in subdirs(split_dir):
            label = label_dir.name
            for image in image_files(label_dir):
                masks = mask_sets.get((label, image.stem), ())
                if label != GOOD and not masks:
                    require_mask(image, None, gt_dir / label / image.stem, "000.png")
                used.update(masks)
                samples.append(make_sample(root, category, split_dir.name, label, image, masks))
    orphan_masks({m for ms in mask_sets.values() for m in ms}, used)
    require_samples(samples, category_dir)
    return samples


DEFECTS_CONFIG = "defects_config.json"


def value_map(root: Path, category_dir: Path) -> ValueMap | None:
    """``<category>/defects_config.json`` (pixel value -> fine-grained defect), or None without one."""
    path = category_dir / DEFECTS_CONFIG
    return read_defects_config(path) if path.is_file() else None
