"""Summary facts, JSON and plot, and the exact block for the bottle preset."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from mvtec2coco.datasets import load_dataset
from mvtec2coco.summary import plot, summarize, to_json

from .helpers import run_cli

BOTTLE_BLOCK = """Dataset Summary for 'bottle':
Number of defect classes: 3
Types of defect classes: ['broken_large', 'broken_small', 'contamination']
Total images used: 292
- Training images (only 'good'): 209
- Test images (good + defective): 83
Image dimensions: 900 x 900 x 3"""


@pytest.mark.slow
def test_bottle_block_exact(bottle):
    result = run_cli("summary", bottle)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(BOTTLE_BLOCK + "\n")


def test_facts_match_the_data(tiny_mvtec):
    ds = load_dataset(tiny_mvtec)
    (bottle, grid) = summarize(ds, workers=1)
    assert bottle.total_images == 20 and grid.total_images == 14
    assert bottle.splits == {"train": 8, "test": 12}
    rows = {(r.split, r.label): r for r in bottle.rows}
    assert rows[("train", "good")].images == 8 and rows[("train", "good")].coverage_max == 0
    sample = next(s for s in ds.samples if s.label == "broken_large")
    mask = cv2.imread(str(sample.masks[0]), cv2.IMREAD_UNCHANGED) > 0
    members = [s for s in ds.samples if s.category == "bottle" and s.label == "broken_large"]
    coverages = [float((cv2.imread(str(s.masks[0]), 0) > 0).mean()) for s in members]
    row = rows[("test", "broken_large")]
    assert row.masks == 3
    assert np.isclose(row.coverage_mean, np.mean(coverages)) and np.isclose(row.coverage_max, max(coverages))
    regions = [cv2.connectedComponents((cv2.imread(str(s.masks[0]), 0) > 0).astype(np.uint8))[0] - 1
               for s in members]
    assert row.regions_min == min(regions) and row.regions_max == max(regions)
    assert mask.any()
    assert "Image dimensions: 80 x 80 x 1" in grid.block()


def test_varying_sizes_are_listed(tiny_copy):
    path = tiny_copy / "bottle/train/good/000.png"
    cv2.imwrite(str(path), np.zeros((50, 70), np.uint8))
    (bottle, _) = summarize(load_dataset(tiny_copy), workers=1)
    block = bottle.block()
    assert "Image dimensions (varying):" in block
    assert "- 96 x 96 x 3: 19 images" in block and "- 70 x 50 x 1: 1 images" in block


def test_validation_split_has_its_own_line(tiny_factory):
    (bottle, _) = summarize(load_dataset(tiny_factory("loco")), workers=1)
    assert "- Validation images: 1" in bottle.block()


def test_json_and_plot(tiny_mvtec, tmp_path):
    out_json, out_png = tmp_path / "s.json", tmp_path / "s.png"
    result = run_cli("summary", tiny_mvtec, "--json", out_json, "--plot", out_png)
    assert result.returncode == 0, result.stderr
    facts = json.loads(out_json.read_text())
    assert facts["categories"]["bottle"]["number_of_defect_classes"] == 3
    assert facts["categories"]["grid"]["splits"] == {"train": 6, "test": 8}
    assert facts["categories"]["bottle"]["dimensions"] == [{"width": 96, "height": 96, "channels": 3, "count": 20}]
    image = cv2.imread(str(out_png))
    assert image is not None and image.shape[0] > 300
    assert image.std() > 10 and len(np.unique(image.reshape(-1, 3), axis=0)) > 20  # not blank


def test_plot_function_writes_png(tiny_mvtec, tmp_path):
    path = plot(summarize(load_dataset(tiny_mvtec), workers=1), tmp_path / "p.png")
    assert path.stat().st_size > 5000
    assert to_json(load_dataset(tiny_mvtec), [])["layout"] == "mvtec"


def test_region_sizes_per_class_in_source_pixels_and_at_training_size(tmp_path):
    """Two regions per image, a single pixel and a 9 x 4 box, in 30 x 20 images: at --imgsz 60
    (scale 2) their shorter sides are 2 and 8 px, so one region per image is below 4 px."""
    import cv2
    import numpy as np

    from mvtec2coco.datasets import load_dataset

    root = tmp_path / "data" / "widget"
    for folder in ("train/good", "test/good", "test/dent", "ground_truth/dent"):
        (root / folder).mkdir(parents=True)
    for i in range(3):
        for folder in ("train/good", "test/good", "test/dent"):
            cv2.imwrite(str(root / folder / f"{i:03d}.png"), np.full((20, 30), 100, np.uint8))
        mask = np.zeros((20, 30), np.uint8)
        mask[5 + i, 7] = 255
        mask[10:14, 20:29] = 255
        cv2.imwrite(str(root / "ground_truth" / "dent" / f"{i:03d}_mask.png"), mask)
    (summary,) = summarize(load_dataset(tmp_path / "data"), workers=1, imgsz=60)
    (row,) = summary.sizes
    assert (row.label, row.regions) == ("dent", 6)
    assert row.area_px == [1.0, 1.0, 18.5, 36.0, 36.0] and row.shorter_side_px[0] == 1 and row.shorter_side_px[-1] == 4
    assert row.shorter_side_at_imgsz[0] == 2 and row.shorter_side_at_imgsz[-1] == 8
    assert row.below_small_at_imgsz == 3 and sum(row.histogram_at_imgsz) == 6
    path = tmp_path / "sizes.png"
    from mvtec2coco.summary import plot_sizes

    assert plot_sizes([summary], path).stat().st_size > 1000
    assert to_json(load_dataset(tmp_path / "data"), [summary])["categories"]["widget"]["sizes"][0]["regions"] == 6
