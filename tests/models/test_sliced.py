"""Sliced inference: boxes found on tiles come back in image coordinates, merged with the whole image's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mvtec2coco.models.common.sliced import merge_boxes, sliced_detect

SQUARES = [(40, 50, 6), (200, 180, 8), (100, 20, 60)]  # x, y, side: two small defects and a large one


def scene() -> np.ndarray:
    image = np.zeros((256, 256), np.uint8)
    for x, y, side in SQUARES:
        image[y : y + side, x : x + side] = 255
    return image


def shrinking_detector(input_size: int = 64, min_side: int = 3):
    """Like a detector: sees its input resized to ``input_size`` (the longer side) and finds the
    bright squares whose shorter side is still ``min_side`` px there; boxes in input pixels."""
    calls = []

    def predict(array: np.ndarray):
        h, w = array.shape[:2]
        scale = input_size / max(h, w)
        small = cv2.resize(array, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        n, _, stats, _ = cv2.connectedComponentsWithStats((small > 127).astype(np.uint8), connectivity=8)
        boxes = [[x / scale, y / scale, (x + bw) / scale, (y + bh) / scale] for x, y, bw, bh, _ in stats[1:].tolist()
                 if min(bw, bh) >= min_side]
        calls.append(array.shape)
        return np.array(boxes, float).reshape(-1, 4), np.full(len(boxes), 0.9), np.zeros(len(boxes), np.int64)

    return predict, calls


def test_whole_image_alone_misses_the_small_defects():
    predict, _ = shrinking_detector()
    boxes, _, _ = predict(scene())
    assert len(boxes) == 1  # only the 60 px square survives the shrink to 64 px


def test_sliced_detection_finds_every_defect_once_in_image_coordinates():
    predict, calls = shrinking_detector()
    boxes, scores, classes = sliced_detect(scene(), predict, 64, 0.25)
    assert len(calls) == 1 + 25  # the whole image, then a 5 x 5 grid of 64 px tiles
    want = sorted([x, y, x + side, y + side] for x, y, side in SQUARES)
    assert len(boxes) == len(SQUARES)  # the large square's partial boxes from the tiles merged into one
    assert np.allclose(sorted(boxes.tolist()), want, atol=1.0)
    assert np.all(scores == 0.9) and np.all(classes == 0)


def test_merge_keeps_distinct_classes_and_far_boxes_apart():
    boxes = np.array([[0, 0, 10, 10], [2, 2, 8, 8], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    classes = np.array([0, 0, 1, 0])
    merged, kept_scores, kept_classes = merge_boxes(boxes, scores, classes)
    assert merged.tolist() == [[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]]
    assert kept_scores.tolist() == [0.9, 0.7, 0.6] and kept_classes.tolist() == [0, 1, 0]


def test_boxes_of_a_padded_tile_stop_at_the_image_edge():
    image = np.zeros((100, 70), np.uint8)
    image[90:100, 60:70] = 255

    def predict(array):  # full resolution: every bright region, and one box past the tile's padding
        n, _, stats, _ = cv2.connectedComponentsWithStats((array > 127).astype(np.uint8), connectivity=8)
        boxes = [[x, y, x + w + 30, y + h] for x, y, w, h, _ in stats[1:].tolist()]
        return np.array(boxes, float).reshape(-1, 4), np.ones(len(boxes)), np.zeros(len(boxes), np.int64)

    boxes, _, _ = sliced_detect(image, predict, 64, 0.0)
    assert boxes.shape == (1, 4) and boxes[0].tolist() == [60, 90, 70, 100]


@pytest.mark.parametrize("size,overlap,message", [(8, 0.2, "--tile 8"), (64, 1.0, "--overlap"), (64, float("nan"), "--overlap")])
def test_bad_slicing_is_refused(size, overlap, message):
    from mvtec2coco.errors import OptionError
    from mvtec2coco.models.common.sliced import check_slicing

    with pytest.raises(OptionError, match=message):
        check_slicing(size, overlap)
