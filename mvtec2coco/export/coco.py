"""COCO instance-segmentation JSON, one file per subset."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import __version__


@dataclass(frozen=True)
class CocoImage:
    file_name: str  # relative to images/<subset>/
    width: int
    height: int
    annotations: tuple[dict, ...]  # {"category_id", "segmentation", "area", "bbox"}


def build(images: list[CocoImage], names: list[str], supercategories: dict[str, str], subset: str) -> dict:
    """The COCO dictionary; image and annotation ids start at 1 in the given (sorted) order."""
    out = {
        "info": {"description": f"mvtec2coco {subset} subset", "version": __version__,
                 "contributor": "mvtec2coco", "year": 0, "date_created": ""},
        "licenses": [],
        "categories": [{"id": i + 1, "name": n, "supercategory": supercategories.get(n, "defect")}
                       for i, n in enumerate(names)],
        "images": [],
        "annotations": [],
    }
    ann_id = 0
    for image_id, image in enumerate(images, 1):
        out["images"].append({"id": image_id, "file_name": image.file_name,
                              "width": image.width, "height": image.height})
        for ann in image.annotations:
            ann_id += 1
            out["annotations"].append({"id": ann_id, "image_id": image_id, "category_id": ann["category_id"],
                                       "segmentation": ann["segmentation"], "area": ann["area"],
                                       "bbox": list(ann["bbox"]), "iscrowd": 0})
    return out


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, separators=(",", ":")))
