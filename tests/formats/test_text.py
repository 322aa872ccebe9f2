"""The vectorised text writers against Python's own formatting."""

from __future__ import annotations

import json

import numpy as np

from mvtec2coco.formats.coco import ring_texts
from mvtec2coco.formats.yolo import polygon_lines, polygon_texts, unit_decimals


def test_unit_decimals_match_percent_format():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.random(20000), [0.0, 1.0, 0.5, 1e-7, 0.9999996, 0.25]])
    assert unit_decimals(values).split() == [f"{v:.6f}" for v in values]
    assert unit_decimals(np.array([-0.2, 1.7])).split() == ["0.000000", "1.000000"]  # clipped to the image


def test_polygon_texts_split_per_polygon_and_scale_per_image():
    a = np.array([[0.0, 0.0], [10.0, 5.0], [5.0, 10.0]])
    b = np.array([[1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [1.0, 2.0]])
    texts = polygon_texts([a, b], [(10, 10), (4, 2)])
    assert texts == ["0.000000 0.000000 1.000000 0.500000 0.500000 1.000000",
                     "0.250000 0.500000 0.500000 0.500000 0.500000 1.000000 0.250000 1.000000"]
    assert polygon_lines(3, [a], 10, 10) == ["3 " + texts[0]]


def test_ring_texts_match_json_dumps():
    rng = np.random.default_rng(1)
    rings = [rng.integers(0, 10 ** int(rng.integers(1, 6)), size=(int(rng.integers(3, 50)), 2)).astype(float)
             for _ in range(300)]
    rings.append(np.array([[0.0, 0.0], [9.0, 0.0], [10.0, 100.0]]))
    assert ring_texts(rings) == [json.dumps(r.reshape(-1).tolist(), separators=(",", ":")) for r in rings]
    odd = [np.array([[0.5, 1.0], [2.0, 3.0], [4.0, 4.0]])]  # not integer: json.dumps writes it
    assert ring_texts(odd) == ["[0.5,1.0,2.0,3.0,4.0,4.0]"]
