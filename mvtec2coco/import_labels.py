"""Labels back into a dataset: COCO (polygons or RLE) or YOLO-seg annotations — corrected in
CVAT, Label Studio or FiftyOne, or drafted by ``patchcore annotate`` — become an MVTec AD layout
folder (``<category>/<split>/<type>/<image>``, ``<category>/ground_truth/<type>/<stem>_mask.png``)
that ``convert`` reads again.

An image keeps its place when its file name already has the MVTec shape
``<category>/<split>/<type>/<file>`` (every conversion of an MVTec-layout dataset names its
images so); any other image goes to ``<category>/test/<type>/``. An image's type is the class of
its annotations (one defect type per image, as in MVTec AD; ``category/type`` class names give
both); an image without annotations is ``good``. Its mask is the union of its annotations, 255 on
0. COCO masks come back exactly (pycocotools decodes what ``convert`` encoded); YOLO-seg polygons
are filled with ultralytics' ``polygon2mask``, which is exact for regions without holes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from .errors import OptionError
from .formats import coco, yolo
from .formats.placement import source_name
from .records import GOOD

SPLITS = ("train", "test", "validation", "val")


@dataclass
class Labelled:
    """One image to place: where it comes from, its name, its defect type and mask (None: good)."""

    source: Path
    file_name: str  # the source path it was converted from, when the name tells it (``placement.source_name``)
    category: str | None
    label: str
    mask: np.ndarray | None


def _split_class(name: str, fallback: str | None) -> tuple[str | None, str]:
    category, _, kind = name.rpartition("/")
    return (category or fallback), kind


def _safe_name(name: object, where: Path) -> str:
    """A file name that stays inside the images folder (no absolute path, no ``..``)."""
    if not isinstance(name, str) or not name or PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts \
            or "\\" in name:
        raise OptionError(f"file name {name!r} leaves the images folder", where,
                          "file names must be relative paths below the images folder")
    return name


def read_coco(path: Path, images_dir: Path | None) -> list[Labelled]:
    data = coco.load(path, images_dir)
    names = data.categories
    known_images = {img["id"] for img in data.images}
    for a in data.coco.dataset["annotations"]:
        if a.get("image_id") not in known_images:
            raise OptionError(f"annotation {a.get('id')} refers to image id {a.get('image_id')!r}, which is not listed",
                              path)
        if a.get("category_id") not in names:
            raise OptionError(f"annotation {a.get('id')} has unknown category_id {a.get('category_id')!r}", path)
    if any("tile" in img for img in data.images):
        raise OptionError("these are tiles of `convert --tile`, not whole images", path,
                          "import the untiled conversion of the same dataset")
    listed = [img.get("file_name") for img in data.images]
    twice = sorted({n for n in listed if listed.count(n) > 1})
    if twice:
        raise OptionError(f"file name {twice[0]!r} is listed for more than one image", path)
    from .datasets.imageio import read_header

    found = []
    for img in data.images:
        _safe_name(img.get("file_name"), path)
        source = data.images_dir / img["file_name"]
        if source.is_file():
            header = read_header(source)
            if (header.width, header.height) != (img.get("width"), img.get("height")):
                raise OptionError(f"image {img['file_name']} is {header.width}x{header.height}, the annotations say "
                                  f"{img.get('width')}x{img.get('height')}", path)
        anns = data.annotations(img["id"])
        kinds = {names[a["category_id"]] for a in anns}
        if len(kinds) > 1:
            raise OptionError(f"image {img['file_name']} has defects of several types {sorted(kinds)}", path,
                              "an MVTec AD image has one defect type: relabel the image's regions to one class")
        mask = None
        if anns:
            mask = np.zeros((img["height"], img["width"]), np.uint8)
            for a in anns:
                try:
                    m = data.coco.annToMask(a)
                except Exception as exc:  # noqa: BLE001 - pycocotools on a malformed segmentation
                    raise OptionError(f"annotation {a.get('id')}: segmentation cannot be decoded "
                                      f"({type(exc).__name__})", path) from exc
                if m.shape != mask.shape:
                    raise OptionError(f"annotation {a.get('id')}: mask is {m.shape[1]}x{m.shape[0]}, its image "
                                      f"{mask.shape[1]}x{mask.shape[0]}", path)
                mask |= (m > 0).astype(np.uint8)
        name = source_name(img["file_name"])
        category = PurePosixPath(name).parts[0] if "/" in name else None
        category, label = _split_class(kinds.pop(), category) if anns else (category, GOOD)
        found.append(Labelled(data.images_dir / img["file_name"], name, category, label, mask))
    return found


def read_yolo_seg(folder: Path) -> list[Labelled]:
    """Every subset of a YOLO-seg output (``data.yaml``, ``images/<subset>/``, ``labels/<subset>/``)."""
    from .runtime.ultralytics_env import quiet_offline_ultralytics

    quiet_offline_ultralytics()
    from ultralytics.data.utils import polygon2mask

    from .datasets.imageio import is_image_file, read_header

    data_yaml = yolo.find_data_yaml(folder)
    names = yolo.class_names(yolo.read_data_yaml(data_yaml))
    root = data_yaml.parent
    from .tiling import TILES_MANIFEST

    if (root / TILES_MANIFEST).is_file():
        raise OptionError("these are tiles of `convert --tile`, not whole images", root,
                          "import the untiled conversion of the same dataset")
    found = []
    for image in sorted(p for p in (root / "images").rglob("*") if p.is_file() and is_image_file(p)):
        rel = image.relative_to(root / "images")
        name = source_name(PurePosixPath(*rel.parts[1:]).as_posix())  # without the subset folder
        rows = yolo.read_labels((root / "labels" / rel).with_suffix(".txt"))
        header = read_header(image)
        h, w = header.height, header.width
        kinds = {names[c] for c, _ in rows}
        if len(kinds) > 1:
            raise OptionError(f"image {name} has defects of several types {sorted(kinds)}", image)
        mask = None
        for cls, coords in rows:
            if len(coords) < 6 or len(coords) % 2:
                raise OptionError(f"label row of class {cls} is not a polygon (a box output cannot give masks)",
                                  (root / "labels" / rel).with_suffix(".txt"), "import a yolo-seg or coco output")
            region = polygon2mask((h, w), [coords.reshape(-1, 2) * [w, h]])
            mask = region.astype(np.uint8) if mask is None else mask | region.astype(np.uint8)
        category = PurePosixPath(name).parts[0] if "/" in name else None
        category, label = _split_class(kinds.pop(), category) if rows else (category, GOOD)
        found.append(Labelled(image, name, category, label, mask))
    return found


def place(item: Labelled, default_category: str) -> tuple[Path, Path | None]:
    """(image path, mask path or None) inside the dataset, both relative."""
    parts = PurePosixPath(item.file_name).parts
    category = item.category or default_category
    if len(parts) == 4 and parts[1] in SPLITS and parts[0] == category:
        split, file = parts[1], parts[3]
    else:
        split, file = "test", "__".join(parts)  # a flat, collision-free name
    image = Path(category, split, item.label, file)
    mask = Path(category, "ground_truth", item.label, f"{Path(file).stem}_mask.png") if item.mask is not None else None
    return image, mask


def import_labels(sources: list[Path], out: Path, images_dir: Path | None = None, category: str = "product",
                  overwrite: bool = False) -> dict:
    """Write the dataset; returns counts of images and masks per category and type."""
    from .runtime.staging import staged_output

    items: list[Labelled] = []
    inputs: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir() and (source / "coco" / "annotations").is_dir():  # an output of --format all
            source = source / "coco"
        if source.is_dir() and source.name == "annotations" and list(source.glob("instances_*.json")):
            source = source.parent
        if source.is_file() and source.suffix.lower() == ".json":
            items += read_coco(source, images_dir)
            inputs += [source, images_dir or coco.subset_images_dir(source)]
            if source.parent.name == "annotations":  # a conversion's file: the whole conversion is an input
                inputs.append(source.parent.parent)
        elif source.is_dir() and (source / "annotations").is_dir():
            for file in sorted((source / "annotations").glob("instances_*.json")):
                items += read_coco(file, None)
            inputs.append(source)
        elif source.is_dir():
            items += read_yolo_seg(source)
            inputs.append(source)
        else:
            raise OptionError("not a COCO file, a COCO output or a YOLO-seg output", source)
    if not items:
        raise OptionError("no images in the annotations given", sources[0] if sources else None)
    placed: dict[Path, Labelled] = {}
    for item in items:
        image, _ = place(item, category)
        if image in placed:  # the same image from two files, or two images of one name: never a silent choice
            raise OptionError(f"two annotated images would both become {image.as_posix()}", item.source,
                              "import each image's labels from one file")
        placed[image] = item
    missing = [i.source for i in placed.values() if not i.source.is_file()]
    if missing:
        raise OptionError(f"image of the annotations does not exist ({len(missing)} in all)", missing[0],
                          "pass --images DIR, the folder the file names are relative to")
    counts: dict[str, dict[str, int]] = {}
    folders = sorted({i.source.parent for i in items})  # the output may not land among the images it reads
    with staged_output(Path(out), overwrite, [*map(Path, sources), *inputs, *folders]) as tmp:
        for image, item in sorted(placed.items()):
            _, mask = place(item, category)
            (tmp / image).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item.source, tmp / image)
            if mask is not None:
                (tmp / mask).parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(tmp / mask), item.mask * 255)
            key = image.parts[0]
            counts.setdefault(key, {}).setdefault(item.label, 0)
            counts[key][item.label] += 1
        for cat in counts:  # an MVTec AD category has train/ and test/, even when one is empty
            for split in ("train", "test"):
                (tmp / cat / split).mkdir(parents=True, exist_ok=True)
    return {"images": sum(sum(c.values()) for c in counts.values()), "per_category": counts,
            "masks": sum(1 for i in placed.values() if i.mask is not None), "output": str(Path(out))}
