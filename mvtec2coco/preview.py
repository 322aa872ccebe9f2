"""A grid of output images with their labels drawn on, read back from the written files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from .datasets.imageio import read_header
from .errors import OptionError, VerificationError
from .formats import coco, yolo
from .runtime.paths import check_output_file
from .runtime.staging import write_file
from .verify import find_outputs

TILE = 320
COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def render_preview(out: Path, n: int = 16, path: Path | None = None, subset: str | None = None) -> Path:
    """Draw ``n`` images (defect images first) with boxes, translucent masks and class names.

    The PNG goes to ``path`` (default ``OUT/preview.png``), checked before any drawing and
    written atomically; the path written is returned.
    """
    if n < 1:
        raise OptionError(f"--n {n}: at least one image is needed")
    outputs = find_outputs(Path(out))
    sources = []
    for folder in outputs.values():
        try:
            sources.append(Path(json.loads((folder / "report.json").read_text())["dataset"]["root"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    target = check_output_file(Path(path) if path else Path(out) / "preview.png", sources)
    fmt = next(f for f in ("coco", "yolo-seg", "yolo") if f in outputs)
    folder = outputs[fmt]
    items = _coco_items(folder, subset) if fmt == "coco" else _yolo_items(folder, subset, fmt)
    if not items:
        raise VerificationError("no images to preview", folder)
    items.sort(key=lambda it: (len(it[2]) == 0, it[0]))
    tiles = [_tile(image, anns) for image, anns in ((i[1], i[2]) for i in items[:n])]
    cols = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    grid = np.full((rows * TILE, cols * TILE, 3), 32, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        grid[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE] = tile
    ok, png = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if not ok:
        raise VerificationError("the preview image could not be encoded", path)
    return write_file(target, png.tobytes())


def _coco_items(folder: Path, subset: str | None) -> list:
    from pycocotools import mask as mask_utils

    items = []
    for ann_file in sorted((folder / "annotations").glob("instances_*.json")):
        name = ann_file.stem[len("instances_"):]
        if subset and name != subset:
            continue
        data = coco.read_json(ann_file)
        cats = {c["id"]: c["name"] for c in data["categories"]}
        by_image: dict[int, list] = {}
        for a in data["annotations"]:
            by_image.setdefault(a["image_id"], []).append(a)
        for img in data["images"]:
            anns = []
            for a in by_image.get(img["id"], []):
                seg = a["segmentation"]
                rle = mask_utils.merge(mask_utils.frPyObjects(seg, img["height"], img["width"])) \
                    if isinstance(seg, list) else seg
                anns.append((cats[a["category_id"]], a["bbox"], mask_utils.decode(rle)))
            items.append((f"{name}/{img['file_name']}", folder / "images" / name / img["file_name"], anns))
    return items


def _yolo_items(folder: Path, subset: str | None, fmt: str) -> list:
    names = dict(enumerate(yolo.class_names(yolo.read_data_yaml(folder / "data.yaml"))))
    items = []
    for image in sorted((folder / "images").rglob("*")):
        rel = image.relative_to(folder / "images")
        if not image.is_file() or (subset and rel.parts[0] != subset):
            continue
        label = (folder / "labels" / rel).with_suffix(".txt")
        header = read_header(image)  # the size only: the tile decodes the image once, later
        h, w = header.height, header.width
        anns = []
        for cls, coords in yolo.read_labels(label):
            if fmt == "yolo":
                cx, cy, bw, bh = coords * [w, h, w, h]
                anns.append((names[cls], [cx - bw / 2, cy - bh / 2, bw, bh], None))
            else:
                pts = coords.reshape(-1, 2) * [w, h]
                mask = np.zeros((h, w), np.uint8)
                cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
                x0, y0 = pts.min(axis=0)
                x1, y1 = pts.max(axis=0)
                anns.append((names[cls], [x0, y0, x1 - x0, y1 - y0], mask))
        items.append((rel.as_posix(), image, anns))
    return items


def _tile(image_path: Path, anns: list) -> np.ndarray:
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    overlay = image.copy()
    for k, (_, _, mask) in enumerate(anns):
        if mask is not None:
            overlay[mask > 0] = COLOURS[k % len(COLOURS)]
    image = cv2.addWeighted(overlay, 0.45, image, 0.55, 0)
    h, w = image.shape[:2]
    scale = TILE / max(h, w)
    image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    tile = np.full((TILE, TILE, 3), 32, np.uint8)
    tile[: image.shape[0], : image.shape[1]] = image
    for k, (name, (x, y, bw, bh), _) in enumerate(anns):
        colour = COLOURS[k % len(COLOURS)]
        p0 = (int(x * scale), int(y * scale))
        p1 = (int((x + bw) * scale), int((y + bh) * scale))
        cv2.rectangle(tile, p0, p1, colour, 1)
        cv2.putText(tile, name, (p0[0], max(10, p0[1] - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    caption = f"{image_path.parent.name}/{image_path.name}"
    cv2.putText(tile, caption, (4, TILE - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return tile
