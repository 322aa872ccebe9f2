"""The generator: deterministic, realistic defects, every layout readable."""

from __future__ import annotations

import numpy as np

from mvtec2coco.datasets import load_dataset
from mvtec2coco.datasets.imageio import load_mask
from mvtec2coco.geometry.masks import instances
from mvtec2coco.synth import generate

from ..helpers import tree_digest


def test_same_seed_same_bytes(tmp_path):
    a = generate(tmp_path / "a", "tiny", "visa", seed=7)
    b = generate(tmp_path / "b", "tiny", "visa", seed=7)
    c = generate(tmp_path / "c", "tiny", "visa", seed=8)
    assert tree_digest(a) == tree_digest(b)
    assert tree_digest(a) != tree_digest(c)


def test_defects_have_the_hard_cases(tiny_mvtec):
    found = []
    ds = load_dataset(tiny_mvtec)
    for s in ds.samples:
        if s.masks:
            found += [(i, s) for i in instances(load_mask(s.masks, s.height, s.width))]
    areas = [i.area for i, _ in found]
    assert any(a <= 3 for a in areas), "regions of 1 to 3 pixels"
    assert any(i.has_holes for i, _ in found), "blobs with holes"
    assert any(i.bbox[0] == 0 or i.bbox[1] == 0 or i.bbox[0] + i.bbox[2] == s.width or i.bbox[1] + i.bbox[3] == s.height
               for i, s in found), "regions touching the border"
    per_image = {}
    for _, s in found:
        per_image[s.id] = per_image.get(s.id, 0) + 1
    assert max(per_image.values()) >= 2, "several regions in one image"
    thin = [i for i, _ in found if i.area >= 8 and i.area <= 2 * max(i.bbox[2], i.bbox[3])]
    assert thin, "thin cracks"


def test_defect_pixels_differ_from_good_pixels(tiny_mvtec):
    import cv2

    ds = load_dataset(tiny_mvtec)
    s = next(s for s in ds.samples if s.label == "contamination")
    image = cv2.imread(str(s.image))
    mask = load_mask(s.masks, s.height, s.width) > 0
    assert np.abs(image[mask].mean(axis=0) - image[~mask].mean(axis=0)).max() > 10
