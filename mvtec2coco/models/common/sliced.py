"""Sliced inference: a detector run on the whole image and on its tiles, the boxes merged back.

A defect a few pixels wide vanishes when a large image is shrunk to the detector's input size;
on tiles of the same grid as ``convert --tile`` the detector sees it at full resolution. Boxes
found on the tiles are shifted into image coordinates, clipped to the image, and merged with the
whole image's by class-wise NMS (``torchvision.ops.batched_nms``), so that ``evaluate`` scores a
sliced run on the same full-image ground truth as an unsliced one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...errors import OptionError
from ...geometry.tiles import cut, tile_grid

Detections = tuple[np.ndarray, np.ndarray, np.ndarray]  # (N, 4) x0 y0 x1 y1 (pixel edges), (N,) scores, (N,) classes
MERGE_IOS = 0.5  # intersection over the smaller box at which two boxes of a class are one defect


def check_slicing(size: int | None, overlap: float, default_overlap: float = 0.2) -> None:
    """``--tile`` and ``--overlap`` as ``convert --tile`` takes them; ``--overlap`` alone is refused."""
    from ...tiling import MAX_TILE, MIN_TILE

    if size is None:
        if overlap != default_overlap:
            raise OptionError("--overlap applies to --tile", hint="add --tile SIZE, or drop --overlap")
        return
    if not MIN_TILE <= size <= MAX_TILE:
        raise OptionError(f"--tile {size} is not between {MIN_TILE} and {MAX_TILE} px")
    if not 0.0 <= overlap < 1.0:  # also refuses NaN
        raise OptionError(f"--overlap {overlap} is not in [0, 1)")


def sliced_detect(image: np.ndarray, predict: Callable[[np.ndarray], Detections], size: int, overlap: float,
                  ios: float = MERGE_IOS) -> Detections:
    """``predict`` on ``image`` and on each SIZE x SIZE tile of it; all boxes in image coordinates,
    merged (``merge_boxes``), sorted by score."""
    height, width = image.shape[:2]
    parts = [predict(image)]
    if max(height, width) > size:  # an image no larger than a tile is its own only tile
        for x, y in tile_grid(width, height, size, overlap):
            boxes, scores, classes = predict(cut(image, x, y, size))
            parts.append((np.asarray(boxes, np.float64).reshape(-1, 4) + [x, y, x, y], scores, classes))
    boxes = np.concatenate([np.asarray(b, np.float64).reshape(-1, 4) for b, _, _ in parts])
    boxes = np.clip(boxes, 0, [width, height, width, height])  # a box past a padded tile stops at the image's edge
    scores = np.concatenate([np.asarray(s, np.float64).reshape(-1) for _, s, _ in parts])
    classes = np.concatenate([np.asarray(c, np.int64).reshape(-1) for _, _, c in parts])
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores, classes = boxes[valid], scores[valid], classes[valid]
    return merge_boxes(boxes, scores, classes, ios)


def merge_boxes(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, ios: float = MERGE_IOS) -> Detections:
    """Greedy merge by intersection over the smaller box, class by class, best score first: each
    kept box absorbs, until none is left, every unused box of its class whose overlap with it
    covers at least ``ios`` of the smaller of the two, and grows to their union."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores, classes = boxes[order], scores[order], classes[order]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    used = np.zeros(len(boxes), bool)
    kept = []
    for i in range(len(boxes)):
        if used[i]:
            continue
        used[i] = True
        box = boxes[i].copy()
        while True:
            others = np.flatnonzero(~used & (classes == classes[i]))
            if not len(others):
                break
            w = np.minimum(box[2], boxes[others, 2]) - np.maximum(box[0], boxes[others, 0])
            h = np.minimum(box[3], boxes[others, 3]) - np.maximum(box[1], boxes[others, 1])
            inter = np.clip(w, 0, None) * np.clip(h, 0, None)
            own = (box[2] - box[0]) * (box[3] - box[1])
            hit = others[inter >= ios * np.minimum(own, areas[others])]
            if not len(hit):
                break
            used[hit] = True
            box = np.concatenate([np.minimum(box[:2], boxes[hit, :2].min(axis=0)),
                                  np.maximum(box[2:], boxes[hit, 2:].max(axis=0))])
        kept.append((box, scores[i], classes[i]))
    if not kept:
        return boxes[:0], scores[:0], classes[:0]
    return np.array([k[0] for k in kept]), np.array([k[1] for k in kept]), np.array([k[2] for k in kept], np.int64)
