"""The one box convention (pixel edges) and its conversions, against convert's own boxes."""

from __future__ import annotations

import numpy as np

from mvtec2coco.geometry.boxes import coco_bbox, edges_of_bbox, edges_of_mask, sam_prompts
from mvtec2coco.geometry.masks import instances


def test_a_single_pixel_is_one_by_one():
    mask = np.zeros((8, 10), np.uint8)
    mask[3, 7] = 1
    edges = edges_of_mask(mask)
    assert edges.tolist() == [7, 3, 8, 4]
    assert coco_bbox(edges) == [7.0, 3.0, 1.0, 1.0]
    assert sam_prompts(edges).tolist() == [[7, 3, 7, 3]]  # SAM names the first and last pixel
    assert edges_of_mask(np.zeros((4, 4), np.uint8)) is None


def test_round_trips_and_agreement_with_the_ground_truth_boxes():
    rng = np.random.default_rng(0)
    for _ in range(50):
        mask = np.zeros((40, 50), np.uint8)
        y, x = rng.integers(0, 30), rng.integers(0, 40)
        mask[y : y + rng.integers(1, 10), x : x + rng.integers(1, 10)] = 1
        (found,) = instances(mask)
        edges = edges_of_mask(mask)
        assert coco_bbox(edges) == [float(v) for v in found.bbox]  # convert's bbox is the same box
        assert np.array_equal(edges_of_bbox([found.bbox])[0], edges)
        prompt = sam_prompts(edges)[0]
        ys, xs = np.nonzero(mask)
        assert prompt.tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]


def test_detector_boxes_keep_their_width():
    """A detector's xyxy box is already in edges: its COCO width is x1 - x0, with no +1."""
    assert coco_bbox([10.5, 20.0, 30.25, 21.0]) == [10.5, 20.0, 19.75, 1.0]
