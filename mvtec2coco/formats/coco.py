"""COCO instance-segmentation JSON, one file per subset, written as text from per-annotation pieces.

Workers turn each annotation into JSON text (``annotation_tail``) while the geometry is at hand;
the main process only numbers images and annotations and joins the pieces. The file is exactly
``json.dumps(data, separators=(",", ":"))`` of the COCO dictionary (tested), without ever
building that dictionary or encoding every polygon coordinate in one process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__

_COMPACT = (",", ":")


@dataclass(frozen=True)
class CocoImage:
    file_name: str  # relative to images/<subset>/
    width: int
    height: int
    category_id: int  # of every annotation of this image (one defect type per image)
    annotations: tuple[str, ...]  # ``annotation_tail`` texts


def ring_texts(rings: list[np.ndarray]) -> list[str]:
    """``[x1,y1,x2,...]`` per ring, exactly as ``json.dumps`` writes a list of floats.

    Pixel-edge outlines have integer vertices: their text (``3.0``) is built for all rings at
    once from digit arrays, with no float repr per coordinate; anything else goes through
    json.dumps.
    """
    if not rings:
        return []
    flat = np.concatenate([np.asarray(r, dtype=np.float64).reshape(-1) for r in rings])
    whole = flat.astype(np.int64)
    if not np.array_equal(whole, flat) or whole.min() < 0:
        return [json.dumps(np.asarray(r, dtype=np.float64).reshape(-1).tolist(), separators=_COMPACT) for r in rings]
    places = len(str(int(whole.max())))
    powers = 10 ** np.arange(places - 1, -1, -1, dtype=np.int64)
    digits = np.searchsorted(powers[::-1], whole, side="right").clip(1)  # digits of each number
    chars = np.empty((whole.size, places + 3), np.uint8)
    chars[:, :places] = 48 + whole[:, None] // powers % 10
    chars[:, places:] = (46, 48, 44)  # ".0,"
    keep = np.arange(places + 3) >= (places - digits)[:, None]  # drop leading zeros
    text = chars[keep].tobytes().decode("ascii")
    sizes = np.fromiter((np.size(r) for r in rings), np.int64, len(rings))
    ends = np.cumsum(np.add.reduceat(digits + 3, np.cumsum(sizes) - sizes)).tolist()
    return [f"[{text[start : end - 1]}]" for start, end in zip([0, *ends[:-1]], ends)]


def rle_json(rle: dict) -> str:
    """A compressed RLE ``{"size":[h,w],"counts":"..."}``."""
    height, width = rle["size"]
    return f'{{"size":[{height},{width}],"counts":{json.dumps(rle["counts"])}}}'


def annotation_tail(segmentation_json: str, area: int, bbox: tuple[int, int, int, int]) -> str:
    """An annotation's JSON after its ids: segmentation, area, bbox, iscrowd (always 0)."""
    x, y, w, h = bbox
    return f'"segmentation":{segmentation_json},"area":{area},"bbox":[{x},{y},{w},{h}],"iscrowd":0}}'


def _json_string(text: str) -> str:
    """``json.dumps(text)``, without its machinery for the usual plain ASCII path."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text)


def header(names: list[str], supercategories: dict[str, str], subset: str) -> dict:
    """Everything of the COCO dictionary except images and annotations."""
    return {
        "info": {"description": f"mvtec2coco {subset} subset", "version": __version__,
                 "contributor": "mvtec2coco", "year": 0, "date_created": ""},
        "licenses": [],
        "categories": [{"id": i + 1, "name": n, "supercategory": supercategories.get(n, "defect")}
                       for i, n in enumerate(names)],
    }


def write(path: Path, images: list[CocoImage], names: list[str], supercategories: dict[str, str], subset: str) -> None:
    """Write the subset's file; image and annotation ids start at 1 in the given (sorted) order."""
    head = json.dumps(header(names, supercategories, subset), separators=_COMPACT)
    image_parts, annotation_parts = [], []
    ann_id = 0
    for image_id, image in enumerate(images, 1):
        image_parts.append(f'{{"id":{image_id},"file_name":{_json_string(image.file_name)},'
                           f'"width":{image.width},"height":{image.height}}}')
        for tail in image.annotations:
            ann_id += 1
            annotation_parts.append(f'{{"id":{ann_id},"image_id":{image_id},"category_id":{image.category_id},{tail}')
    text = f'{head[:-1]},"images":[{",".join(image_parts)}],"annotations":[{",".join(annotation_parts)}]}}'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
