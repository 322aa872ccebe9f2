#!/usr/bin/env python3
"""Measure how exactly each common polygon rasteriser fills our polygons back to the source masks.

For every region of the masks (random masks like the property tests', and the defect masks the
``synth`` presets draw), each outline rule is rasterised by each rasteriser and compared with
the region's pixels; the table gives the worst and the mean IoU. Regions with holes are scored
as ``--coco-masks polygon`` writes them, holes joined by zero-width bridges.

Rules: ``edge`` the exact pixel-edge outline; ``inset 0.05`` every edge 0.05 px in;
``top-left 0.25`` left and top edges on the pixel edges, right and bottom 0.25 px in (COCO
polygons); ``top-left 0.55`` the same beyond half a pixel; ``yolo 0.05/0.55`` left and top
0.05 px in, right and bottom 0.55 px in, scored after the 6-decimal normalised text of a label
file (YOLO-seg polygons); ``centres`` OpenCV's contour through the boundary pixels' centres
(what most hand-written converters write).

Rasterisers: pycocotools ``frPyObjects`` (COCOeval, Detectron2, MMDetection, FiftyOne's and
Datumaro's COCO readers); ``cv2.fillPoly`` on truncated points (ultralytics) and on rounded
points (supervision); ``skimage.draw.polygon2mask``; PIL ``ImageDraw.polygon``. Needs
scikit-image (``pip install scikit-image``; ``make interop`` installs it).

Usage: python tools/measure_rasterisers.py [--random 400] [--preset tiny] [--markdown FILE]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable, Iterator

import cv2
import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils
from skimage.draw import polygon2mask

from mvtec2coco.geometry.masks import (
    COCO_PULL,
    YOLO_INSET,
    YOLO_LEAD,
    YOLO_PULL,
    Instance,
    decode_rle,
    inset_rings,
    instances,
    iou,
    join_holes,
    top_left_rings,
)
from mvtec2coco.synth.presets import PRESETS
from mvtec2coco.synth.render import render_sample

Fill = Callable[[np.ndarray, int, int], np.ndarray]


def _pil(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    image = Image.new("L", (width, height))
    ImageDraw.Draw(image).polygon([tuple(p) for p in polygon.tolist()], fill=1)
    return np.asarray(image)


def _pycocotools(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    return mask_utils.decode(mask_utils.frPyObjects([polygon.reshape(-1).tolist()], height, width))[:, :, 0]


RASTERISERS: dict[str, Fill] = {
    "pycocotools": _pycocotools,
    "fillPoly, truncated": lambda p, h, w: cv2.fillPoly(np.zeros((h, w), np.uint8), [p.astype(np.int32)], 1),
    "fillPoly, rounded": lambda p, h, w: cv2.fillPoly(np.zeros((h, w), np.uint8), [np.rint(p).astype(np.int32)], 1),
    "skimage polygon2mask": lambda p, h, w: polygon2mask((h, w), p[:, ::-1]).astype(np.uint8),
    "PIL polygon": _pil,
}


def _centres(inst: Instance, height: int, width: int) -> list[np.ndarray]:
    region = decode_rle(inst.rle)
    contours, _ = cv2.findContours(region, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    return [c.reshape(-1, 2).astype(np.float64) for c in contours]


def _rule_rings(inst: Instance, rule: str, height: int, width: int) -> list[np.ndarray]:
    rings = [inst.outer, *inst.holes]
    if rule == "edge":
        return rings
    if rule == f"inset {YOLO_INSET}":
        return inset_rings(rings, YOLO_INSET, np.zeros(len(rings), np.int64))
    if rule.startswith("top-left"):
        return top_left_rings(rings, float(rule.split()[1]), np.zeros(len(rings), np.int64))
    if rule.startswith("yolo"):
        moved = top_left_rings(rings, YOLO_PULL, np.zeros(len(rings), np.int64), lead=YOLO_LEAD)
        return [np.round(r / [width, height], 6) * [width, height] for r in moved]  # the label file's text
    return _centres(inst, height, width)


RULES = ("edge", f"inset {YOLO_INSET}", f"top-left {COCO_PULL}", "top-left 0.55", f"yolo {YOLO_LEAD}/{YOLO_PULL}", "centres")


def random_masks(count: int) -> Iterator[np.ndarray]:
    """The property tests' masks: 1-40 px sides, random density, every third one dilated (holes)."""
    for seed in range(count):
        rng = np.random.default_rng(seed)
        height, width = (int(v) for v in rng.integers(1, 41, 2))
        mask = (rng.random((height, width)) < rng.uniform(0.05, 0.8)).astype(np.uint8)
        yield cv2.dilate(mask, np.ones((3, 3), np.uint8)) if seed % 3 == 0 else mask


def preset_masks(preset: str) -> Iterator[np.ndarray]:
    """The defect masks ``synth --preset`` draws (first three per defect type and category)."""
    for spec in PRESETS[preset]:
        for label in spec.defect_types:
            for index in range(3):
                _, mask = render_sample(spec, 0, "test", label, index)
                yield mask


def measure(masks: Iterator[np.ndarray]) -> dict[tuple[str, str, bool], list[float]]:
    scores: dict[tuple[str, str, bool], list[float]] = defaultdict(list)
    for mask in masks:
        height, width = mask.shape
        for inst in instances(mask):
            exact = decode_rle(inst.rle)
            for rule in RULES:
                rings = _rule_rings(inst, rule, height, width)
                polygon = join_holes(rings[0], rings[1:]) if len(rings) > 1 else rings[0]
                polygon = np.resize(polygon, (max(3, len(polygon)), 2))  # a 1-2 point contour (centres rule)
                for name, fill in RASTERISERS.items():
                    scores[(rule, name, inst.has_holes)].append(iou(fill(polygon, height, width), exact))
    return scores


def table(scores: dict[tuple[str, str, bool], list[float]], holes: bool) -> str:
    count = len(scores[(RULES[0], next(iter(RASTERISERS)), holes)])
    head = f"| rule ({count} regions {'with holes, keyholed' if holes else 'without holes'}) | " + " | ".join(RASTERISERS) + " |"
    rows = [head, "|" + "---|" * (len(RASTERISERS) + 1)]
    for rule in RULES:
        cells = []
        for name in RASTERISERS:
            values = scores[(rule, name, holes)]
            cells.append(f"{min(values):.3f} / {np.mean(values):.3f}" if values else "-")
        rows.append(f"| {rule} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=400, help="random masks (property-test kind)")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="synth preset whose masks to add")
    parser.add_argument("--markdown", help="also write the tables to this file")
    args = parser.parse_args()
    scores = measure(m for source in (random_masks(args.random), preset_masks(args.preset)) for m in source)
    text = "IoU worst / mean per rule and rasteriser\n\n" + table(scores, False) + "\n\n" + table(scores, True) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
