"""region_stats: the regions convert writes, with the boxes and areas of OpenCV's connected components."""

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


def test_region_stats_count_a_region_inside_another_regions_hole_and_regions_on_the_border():
    mask = np.zeros((40, 40), np.uint8)
    mask[0:30, 0:30] = 1
    mask[5:25, 5:25] = 0  # a hole ...
    mask[10:15, 10:15] = 1  # ... holding a region of its own
    mask[39, 39] = 1  # a single pixel in the corner
    mask[31, 31] = mask[32, 32] = 1  # two pixels touching at a corner: one 8-connected region
    found = sorted(map(tuple, region_stats(mask).tolist()))
    assert found == [(0, 0, 30, 30, 900 - 400), (10, 10, 5, 5, 25), (31, 31, 2, 2, 2), (39, 39, 1, 1, 1)]
