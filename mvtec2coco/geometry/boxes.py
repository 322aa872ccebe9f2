"""The one box convention: pixel-edge coordinates.

A mask pixel (r, c) covers [c, c+1) x [r, r+1). A box is given by its edges ``x0, y0, x1, y1``
(``x1`` is the right edge, one past the last pixel's index), and a COCO ``bbox`` is
``[x0, y0, x1 - x0, y1 - y0]``: a single pixel at (r, c) is ``[c, r, 1, 1]``. Detectors
(ultralytics) report edges already. Segment Anything's box prompts name the first and last
pixel instead (its ``batched_mask_to_box``), so they are the edges less one at the far side.
"""

from __future__ import annotations

import numpy as np


def coco_bbox(edges: np.ndarray | list[float]) -> list[float]:
    """``[x0, y0, x1, y1]`` edges -> COCO ``[x, y, w, h]``."""
    x0, y0, x1, y1 = (float(v) for v in edges)
    return [x0, y0, x1 - x0, y1 - y0]


def edges_of_bbox(bboxes: np.ndarray | list) -> np.ndarray:
    """COCO ``[x, y, w, h]`` rows -> ``(N, 4)`` edges ``x0, y0, x1, y1``."""
    b = np.asarray(bboxes, np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)


def sam_prompts(edges: np.ndarray) -> np.ndarray:
    """``(N, 4)`` edges -> Segment Anything's box prompts (first and last pixel of each box)."""
    e = np.asarray(edges, np.float64).reshape(-1, 4)
    return np.stack([e[:, 0], e[:, 1], np.maximum(e[:, 0], e[:, 2] - 1), np.maximum(e[:, 1], e[:, 3] - 1)], axis=1)


def edges_of_mask(mask: np.ndarray) -> np.ndarray | None:
    """The edges of a mask's pixels, or None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
