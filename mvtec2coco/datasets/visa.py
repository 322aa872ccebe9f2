"""VisA: ``<category>/Data/{Images/{Normal,Anomaly}/*.JPG, Masks/Anomaly/*.png}``.

The split comes from the official ``split_csv/1cls.csv`` beside the categories when present
(columns object, split, label, image, mask; paths relative to the VisA root); without it every
sample gets split ``all``. Masks hold small class ids, so any value > 0 is defect. Defect type
names come from the category's ``image_anno.csv`` (spaces become ``_``; an image with several
listed defects is ``combined``); without it every defect is ``anomaly``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import DatasetError
from ..records import GOOD, Sample
from .common import image_files, make_sample, orphan_masks, require_mask, require_samples
from .value_maps import ValueMap, read_id2class

NAME = "visa"
QUIRKS = ("masks hold class ids (1..k), not 0/255: any value > 0 is defect; --classes value names them through "
          "id2class.json",)
SPLIT_CSV = Path("split_csv") / "1cls.csv"
DEFAULT_TYPE = "anomaly"


def is_category(folder: Path) -> bool:
    return (folder / "Data" / "Images").is_dir()


def read_category(root: Path, category_dir: Path) -> list[Sample]:
    category = category_dir.name
    splits = _official_splits(root)
    types = _defect_types(root, category_dir)
    images_dir = category_dir / "Data" / "Images"
    masks_dir = category_dir / "Data" / "Masks" / "Anomaly"
    masks_by_stem = {m.stem: m for m in image_files(masks_dir)}
    samples: list[Sample] = []
    used: set[Path] = set()
    for folder, is_normal in (("Normal", True), ("Anomaly", False)):
        for image in image_files(images_dir / folder):
            rel = image.relative_to(root).as_posix()
            if is_normal:
                label, masks = GOOD, ()
            else:
                masks = require_mask(image, masks_by_stem.get(image.stem), masks_dir, f"{image.stem}.png")
                label = types.get(rel, DEFAULT_TYPE)
            used.update(masks)
            split = splits.get(rel, "all") if splits else "all"
            samples.append(make_sample(root, category, split, label, image, masks))
    orphan_masks(set(masks_by_stem.values()), used)
    require_samples(samples, category_dir)
    return samples


def _official_splits(root: Path) -> dict[str, str]:
    path = root / SPLIT_CSV
    if not path.is_file():
        return {}
    rows = _rows(path)
    if rows and not {"split", "image"} <= set(rows[0]):
        raise DatasetError("split CSV lacks the columns 'split' and 'image'", path)
    return {row["image"]: row["split"] for row in rows if row.get("image") and row.get("split")}


def _defect_types(root: Path, category_dir: Path) -> dict[str, str]:
    path = category_dir / "image_anno.csv"
    if not path.is_file():
        return {}
    rows = _rows(path)
    if rows and not {"image", "label"} <= set(rows[0]):
        raise DatasetError("annotation CSV lacks the columns 'image' and 'label'", path)
    return {row["image"]: _type_name(row.get("label") or "") for row in rows
            if row.get("image") and (row.get("label") or "").strip() != "normal"}


def _rows(path: Path) -> list[dict]:
    """The rows of one of VisA's CSV files; an unreadable file is one clear error naming it."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"CSV file cannot be read ({type(exc).__name__}: {str(exc)[:160]})", path,
                           "restore the dataset's own file (UTF-8)") from exc


def _type_name(text: str) -> str:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) != 1:
        return "combined" if parts else DEFAULT_TYPE
    return "_".join(parts[0].lower().split())


ID2CLASS = "id2class.json"


def value_map(root: Path, category_dir: Path) -> ValueMap | None:
    """VisA's ``id2class.json`` (class id -> defect), from the category folder or else the VisA
    root; None without one."""
    for path in (category_dir / ID2CLASS, root / ID2CLASS):
        if path.is_file():
            return read_id2class(path, category_dir.name)
    return None
