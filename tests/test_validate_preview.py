"""`validate` finds broken masks; `preview` draws something a person can look at."""

from __future__ import annotations

import json

import cv2
import numpy as np

from mvtec2coco.validate import validate_dataset

from .helpers import run_cli


def test_clean_dataset_has_no_errors(tiny_mvtec):
    result = validate_dataset(tiny_mvtec, workers=1)
    assert result["errors"] == 0 and result["warnings"] == 0
    assert result["checks"]["tiny_regions"]["count"] > 0  # the generator draws specks on purpose
    assert result["images"] == 34


def test_finds_each_problem(tiny_copy, tmp_path):
    gt = tiny_copy / "bottle" / "ground_truth"
    empty = gt / "broken_large" / "000_mask.png"
    cv2.imwrite(str(empty), np.zeros((96, 96), np.uint8))
    aliased = cv2.imread(str(gt / "broken_small" / "000_mask.png"), 0)
    aliased[aliased > 0] = 254
    aliased[0, 0] = 253
    cv2.imwrite(str(gt / "broken_small" / "000_mask.png"), aliased)
    colour = np.zeros((96, 96, 3), np.uint8)
    colour[10:20, 10:20, 0] = 255
    cv2.imwrite(str(gt / "contamination" / "000_mask.png"), colour)
    (gt / "good").mkdir()
    on_good = np.zeros((96, 96), np.uint8)
    on_good[40:44, 40:44] = 255
    cv2.imwrite(str(gt / "good" / "000_mask.png"), on_good)
    (tiny_copy / "grid" / "test" / "bent" / "001.png").unlink()  # orphan mask: grid unreadable
    json_path = tmp_path / "v.json"
    result = run_cli("validate", tiny_copy, "--json", json_path)
    assert result.returncode == 1, result.stderr
    found = json.loads(json_path.read_text())["checks"]
    assert found["empty_defect_mask"]["count"] == 1 and "broken_large/000_mask.png" in found["empty_defect_mask"]["examples"][0]
    assert "253, 254" in found["non_binary_values"]["examples"][0]
    assert found["differing_channels"]["count"] == 1
    assert found["mask_on_good_image"]["count"] == 1
    assert found["pairing"]["count"] == 1 and "001_mask.png" in found["pairing"]["examples"][0]  # an orphan mask


def test_tools_script_runs(tiny_mvtec, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "tools" / "validate_masks.py"
    result = subprocess.run([sys.executable, str(script), str(tiny_mvtec), "--json", str(tmp_path / "f.json")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "f.json").read_text())["errors"] == 0


def test_preview_draws_labels(tiny_mvtec, tmp_path):
    out = tmp_path / "out"
    run_cli("convert", tiny_mvtec, "--format", "all", "--out", out, check=True)
    png = tmp_path / "grid.png"
    run_cli("preview", out, "--n", "4", "--out", png, check=True)
    image = cv2.imread(str(png))
    assert image.shape == (640, 640, 3)
    plain = cv2.imread(str(next((out / "coco" / "images").rglob("*.png"))))
    assert image.std() > 10 and plain is not None
    run_cli("preview", out / "yolo", "--n", "2", check=True)
    assert (out / "yolo" / "preview.png").is_file()


def test_mask_values_fast_path_equals_numpy_unique():
    """validate's distinct values (a shortcut for 0 plus one value, else a histogram) are np.unique's."""
    import numpy as np

    from mvtec2coco.validate import _values

    rng = np.random.default_rng(1)
    for k in range(400):
        mask = np.zeros((20, 30), np.uint8)
        kind = k % 5
        if kind == 1:
            mask[rng.random((20, 30)) > 0.5] = 255
        elif kind == 2:
            mask[:] = rng.integers(0, 4, (20, 30))
        elif kind == 3:
            mask[:] = 7
        elif kind == 4:
            mask[rng.random((20, 30)) > 0.9] = rng.integers(1, 256)
        assert np.array_equal(_values(mask), np.unique(mask))
        wide = mask.astype(np.uint16) * 257
        assert np.array_equal(_values(wide), np.unique(wide))
