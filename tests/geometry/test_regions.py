"""region_stats: OpenCV's per-region statistics, computed on the defect pixels' box only."""

from __future__ import annotations

import cv2
import numpy as np

from mvtec2coco.geometry.regions import region_stats


def test_region_stats_equal_the_whole_image_call():
    rng = np.random.default_rng(0)
    for k in range(300):
        mask = np.zeros((90, 120), np.uint8)
        h, w = rng.integers(1, 60), rng.integers(1, 80)
        y, x = rng.integers(0, 90 - h + 1), rng.integers(0, 120 - w + 1)
        mask[y : y + h, x : x + w] = (rng.random((h, w)) > rng.uniform(0.2, 0.9)) * (k % 255 + 1)
        _, _, plain, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
        found = region_stats(mask > 0 if k % 3 == 0 else mask)
        assert sorted(map(tuple, found.tolist())) == sorted(map(tuple, plain[1:].tolist()))
    assert region_stats(np.zeros((5, 5), np.uint8)).shape == (0, 5)
