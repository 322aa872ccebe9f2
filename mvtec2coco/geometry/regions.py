"""Statistics of a mask's 8-connected regions, computed where the defect pixels are.

``cv2.connectedComponentsWithStats`` over a whole 1024 x 1024 mask costs about 6 ms here, nearly
all of it in the statistics pass over every pixel; most defect masks are empty outside a small
box, so the same call on the box of the defect pixels (``cv2.boundingRect``) gives the same rows
for a fraction of the cost.
"""

from __future__ import annotations

import cv2
import numpy as np


def region_stats(mask: np.ndarray) -> np.ndarray:
    """(N, 5) int array: x, y, w, h, area of every 8-connected region of ``mask > 0``, in image
    coordinates; the order of the rows is the labelling's own (callers use them as a set)."""
    binary = mask if mask.dtype == np.uint8 else (mask > 0).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(binary)
    if w == 0 or h == 0:
        return np.zeros((0, 5), np.int32)
    crop = np.ascontiguousarray(binary[y : y + h, x : x + w])
    # Grana's block-based labelling: the same labels, about three times faster than the default
    # algorithm on one thread (worker processes run OpenCV single-threaded).
    _, _, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(crop, 8, cv2.CV_32S, cv2.CCL_GRANA)
    rows = stats[1:].copy()
    rows[:, cv2.CC_STAT_LEFT] += x
    rows[:, cv2.CC_STAT_TOP] += y
    return rows
