"""The one evaluation: perfect predictions score 1, random scores 0.5, a prediction file of another
ground truth is refused; compare puts every run on one table with dashes for what a run lacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mvtec2coco.errors import OptionError
from mvtec2coco.evaluate import evaluate
from mvtec2coco.formats.coco import write_predictions

from .helpers import run_cli

NAMES = ("crack", "hole")


def write_ground_truth(out: Path, subset: str, n: int, seed: int) -> dict:
    """A subset of ``n`` 24x24 images, half of them with one or two rectangular defects."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(1, n + 1):
        defect = i % 2 == 0
        kind = NAMES[i % 4 // 2] if defect else "good"
        images.append({"id": i, "file_name": f"widget/{subset}/{kind}/{i:03d}.png", "width": 24, "height": 24})
        for _ in range(int(rng.integers(1, 3)) if defect else 0):
            m = np.zeros((24, 24), np.uint8)
            y, x = (int(v) for v in rng.integers(0, 18, 2))
            h, w = (int(v) for v in rng.integers(1, 6, 2))
            m[y : y + h, x : x + w] = 1
            rle = mask_utils.encode(np.asfortranarray(m))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": NAMES.index(kind) + 1,
                         "segmentation": {"size": [24, 24], "counts": rle["counts"].decode()}, "area": int(m.sum()),
                         "bbox": [x, y, w, h], "iscrowd": 0})
    data = {"info": {}, "licenses": [], "images": images, "annotations": anns,
            "categories": [{"id": k + 1, "name": n, "supercategory": "defect"} for k, n in enumerate(NAMES)]}
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    (out / "annotations" / f"instances_{subset}.json").write_text(json.dumps(data))
    return data


@pytest.fixture(scope="module")
def gt(tmp_path_factory) -> tuple[Path, dict, dict]:
    out = tmp_path_factory.mktemp("gt") / "conv"
    return out, write_ground_truth(out, "val", 40, 1), write_ground_truth(out, "test", 300, 2)


def perfect(folder: Path, data: dict, gt_file: Path) -> Path:
    """The ground truth itself, as predictions."""
    defective = {a["image_id"] for a in data["annotations"]}
    images = [{**img, "score": 1.0 if img["id"] in defective else 0.0} for img in data["images"]]
    anns = [{k: a[k] for k in ("image_id", "category_id", "segmentation", "bbox", "area", "iscrowd")} | {"score": 1.0}
            for a in data["annotations"]]
    return write_predictions(folder, images, data["categories"], anns, {"family": "sam",
                                                                         "ground_truth": str(gt_file.resolve())})


def test_perfect_predictions_score_one(gt, tmp_path):
    out, val, test = gt
    pred = perfect(tmp_path / "test", test, out / "annotations" / "instances_test.json")
    val_pred = perfect(tmp_path / "val", val, out / "annotations" / "instances_val.json")
    m = evaluate(pred, out, "test", val_pred)
    assert m["image"]["auroc"] == 1.0 and m["image"]["ap"] == 1.0 and m["image"]["balanced_accuracy"] == 1.0
    assert m["image"]["confusion"] == [[150, 0], [0, 150]]
    assert m["pixel"]["auroc"] == pytest.approx(1.0) and m["pixel"]["aupro"] == pytest.approx(1.0)
    assert m["pixel"]["dice"] == pytest.approx(1.0) and m["pixel"]["iou"] == pytest.approx(1.0)
    for kind in ("bbox", "segm"):
        assert m["instance"][kind]["ap"] == pytest.approx(1.0) and m["instance"][kind]["ap50"] == pytest.approx(1.0)
        assert set(m["instance"][kind]["per_class"]) == set(NAMES)
    assert set(m["per_type"]) == set(NAMES) and m["per_type"]["crack"]["image"]["images"] == 225
    assert m["thresholds"]["chosen_on"] == "validation"


def test_random_scores_give_chance(gt, tmp_path):
    out, _, test = gt
    rng = np.random.default_rng(0)
    images = [{**img, "score": float(rng.random())} for img in test["images"]]
    pred = write_predictions(tmp_path, images, test["categories"], [], {"family": "classifier"})
    m = evaluate(pred, out, "test")
    assert abs(m["image"]["auroc"] - 0.5) < 0.1
    assert m["pixel"] is None and m["instance"] == {}  # a classifier gives neither pixels nor instances
    assert "balanced_accuracy" not in m["image"] and m["thresholds"]["chosen_on"] is None  # never chosen on test


def test_predictions_of_another_ground_truth_are_refused(gt, tmp_path):
    out, _, test = gt
    images = [{**img, "file_name": img["file_name"].replace("widget", "gadget")} for img in test["images"]]
    pred = write_predictions(tmp_path / "a", images, test["categories"], [], {"family": "classifier"})
    with pytest.raises(OptionError, match="not images of this ground truth"):
        evaluate(pred, out, "test")
    pred = write_predictions(tmp_path / "b", test["images"][:-5], test["categories"], [], {"family": "classifier"})
    with pytest.raises(OptionError, match="lack 5 of the subset's 300 images"):
        evaluate(pred, out, "test")


def test_evaluate_and_compare_commands(gt, tmp_path):
    out, val, test = gt
    perfect(tmp_path / "sam", test, out / "annotations" / "instances_test.json")
    rng = np.random.default_rng(1)
    write_predictions(tmp_path / "cls", [{**img, "score": float(rng.random())} for img in test["images"]],
                      test["categories"], [], {"family": "classifier", "model": "resnet18", "parameters": 11_000_000})
    for run in ("sam", "cls"):
        result = run_cli("evaluate", tmp_path / run, "--gt", out, "--split", "test")
        assert result.returncode == 0, result.stderr
        assert (tmp_path / run / "metrics.json").is_file()
    md, png = tmp_path / "compare.md", tmp_path / "compare.png"
    result = run_cli("compare", tmp_path / "sam", tmp_path / "cls" / "metrics.json", "--markdown", md, "--plot", png)
    assert result.returncode == 0, result.stderr
    lines = md.read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("| run | family | model |")
    cls_row = [c.strip() for c in lines[3].split("|")[1:-1]]
    assert cls_row[:3] == ["cls", "classifier", "resnet18"] and cls_row[-1] == "11,000,000"
    assert cls_row[8] == "-" and cls_row[11] == "-"  # no pixel AUROC, no box AP50: a dash, never a zero
    sam_row = [c.strip() for c in lines[2].split("|")[1:-1]]
    assert sam_row[5] == "1.000" and sam_row[11] == "1.000"
    assert png.stat().st_size > 10_000
    bad = run_cli("evaluate", tmp_path / "cls", "--gt", out, "--split", "val")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not images of this ground truth" in bad.stderr


def test_broken_predictions_and_outputs_are_refused(gt, tmp_path):
    """What evaluate reads is checked record by record; what it writes never replaces an input."""
    import os

    out, _, test = gt
    gt_file = out / "annotations" / "instances_test.json"
    good = perfect(tmp_path / "good", test, gt_file).parent
    cases = {
        "nan score": lambda d: d["images"][0].__setitem__("score", float("nan")),
        "text score": lambda d: d["annotations"][0].__setitem__("score", "high"),
        "negative box": lambda d: d["annotations"][0].__setitem__("bbox", [10, 10, -5, -5]),
        "huge polygon": lambda d: d["annotations"][0].__setitem__("segmentation", [[0, 0, 1e9, 0, 1e9, 1e9]]),
        "rle of another size": lambda d: d["annotations"][0]["segmentation"].__setitem__("size", [10, 10]),
        "unknown image": lambda d: d["annotations"][0].__setitem__("image_id", 999),
        "image twice": lambda d: d["images"].append(dict(d["images"][0])),
        "wrong width": lambda d: d["images"][0].__setitem__("width", 10),
        "not records": lambda d: d.__setitem__("annotations", [1, 2]),
    }
    for name, damage in cases.items():
        data = json.loads((good / "predictions.json").read_text())
        damage(data)
        folder = tmp_path / name.replace(" ", "_")
        folder.mkdir()
        (folder / "predictions.json").write_text(json.dumps(data))
        result = run_cli("evaluate", folder, "--gt", out, "--split", "test")
        assert result.returncode == 2, (name, result.stderr)
        assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, (name, result.stderr)
        assert not (folder / "metrics.json").exists(), name
    before = (good / "predictions.json").read_bytes()
    for target in (good / "predictions.json", good / "results.json"):
        result = run_cli("evaluate", good, "--gt", out, "--split", "test", "--out", target)
        assert result.returncode == 2 and "inside the input" in result.stderr or "is the input" in result.stderr
    assert (good / "predictions.json").read_bytes() == before
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = run_cli("evaluate", good, "--gt", out, "--split", "test", "--out", fifo)
    assert result.returncode == 2 and "not a regular file" in result.stderr and fifo.is_fifo()
    run_cli("evaluate", good, "--gt", out, "--split", "test", check=True)
    twice = run_cli("compare", good, good / "metrics.json")
    assert twice.returncode == 2 and "given twice" in twice.stderr


def test_per_type_pixel_metrics_from_one_sort_equal_their_own_sorts():
    """The pixel metrics of each defect type's images are computed from the one sort of all
    images' pixels (``_suborder``); they equal the metrics computed from scratch, ties included."""
    from mvtec2coco.evaluate import _pixel_block, _suborder

    rng = np.random.default_rng(5)
    maps = [np.round(rng.random((24, 20)).astype(np.float32), 2) for _ in range(9)]  # rounded: many ties
    truth = [(rng.random((24, 20)) < 0.1).astype(np.uint8) if k % 3 else np.zeros((24, 20), np.uint8)
             for k in range(9)]
    order = np.argsort(np.concatenate([m.ravel() for m in maps]))
    for keep in (np.ones(9, bool), np.array([1, 1, 0, 1, 0, 0, 1, 1, 0], bool), np.array([0, 1, 0, 0, 1, 0, 0, 0, 1], bool)):
        picked_maps, picked_truth = [m for m, k in zip(maps, keep) if k], [t for t, k in zip(truth, keep) if k]
        sub = _suborder(order, [m.size for m in maps], keep)
        assert np.array_equal(np.concatenate([m.ravel() for m in picked_maps])[sub],
                              np.sort(np.concatenate([m.ravel() for m in picked_maps])))
        shared = _pixel_block(picked_maps, picked_truth, 0.5, sub)
        alone = _pixel_block(picked_maps, picked_truth, 0.5)
        assert shared == pytest.approx(alone, abs=1e-12)  # within a tie group, sums may run in another order
        assert shared["auroc"] is not None and shared["aupro"] is not None


def test_pixel_scores_that_are_not_finite_are_refused(gt, tmp_path):
    """A NaN pixel score has no rank: the evaluation refuses it instead of placing it somewhere
    (here through anomaly maps whose stored scale is not a number)."""
    from mvtec2coco.models.patchcore.run import write_maps

    out, _, test = gt
    rng = np.random.default_rng(0)
    ids = [img["id"] for img in test["images"]]
    maps = write_maps(tmp_path / "pred" / "maps", ids, [rng.random((24, 24)).astype(np.float32) for _ in ids])
    images = [{**img, "score": float(rng.random())} for img in test["images"]]
    pred = write_predictions(tmp_path / "pred", images, test["categories"], [],
                             {"family": "patchcore", "anomaly_maps": maps})
    assert evaluate(pred, out, "test")["pixel"]["auroc"] is not None
    data = json.loads(pred.read_text())
    data["info"]["anomaly_maps"]["scale"] = [float("nan"), 1.0]
    pred.write_text(json.dumps(data))
    with pytest.raises(OptionError, match="NaN or infinity"):
        evaluate(pred, out, "test")
