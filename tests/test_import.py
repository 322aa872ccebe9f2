"""import: corrected labels back into a dataset; convert -> import -> convert gives the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from .helpers import run_cli, tree_digest


def _masks(root: Path) -> dict[str, np.ndarray]:
    return {m.relative_to(root).as_posix(): cv2.imread(str(m), cv2.IMREAD_GRAYSCALE) > 0
            for m in sorted(root.rglob("*_mask.png"))}


def _without_reports(digest: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in digest.items() if not k.endswith("report.json")}


def test_convert_import_convert_gives_identical_outputs(tiny_mvtec, tmp_path):
    first = tmp_path / "first"
    run_cli("convert", tiny_mvtec, "--format", "all", "--out", first, check=True)
    dataset = tmp_path / "imported"
    result = run_cli("import", first / "coco", "--out", dataset)
    assert result.returncode == 0, result.stderr
    source_masks, imported = _masks(tiny_mvtec), _masks(dataset)
    assert source_masks.keys() == imported.keys()
    assert all(np.array_equal(source_masks[k], imported[k]) for k in source_masks)  # bit for bit, as read
    again = tmp_path / "again"
    run_cli("convert", dataset, "--format", "all", "--out", again, "--split-file", first / "meta" / "split.csv", check=True)
    assert _without_reports(tree_digest(again)) == _without_reports(tree_digest(first))
    # report.json differs only where it names the folders and the split option
    a, b = (json.loads((d / "coco" / "report.json").read_text()) for d in (first, again))
    for report in (a, b):
        report["dataset"].pop("root"), report.pop("output"), report["options"].pop("split")
    assert a == b


def test_yolo_seg_labels_come_back_as_the_source_masks(tiny_mvtec, tmp_path):
    pytest.importorskip("ultralytics")
    out = tmp_path / "out"
    run_cli("convert", tiny_mvtec, "--format", "yolo-seg", "--out", out, check=True)
    result = run_cli("import", out, "--out", tmp_path / "ds")
    assert result.returncode == 0, result.stderr
    source, imported = _masks(tiny_mvtec), _masks(tmp_path / "ds")
    assert source.keys() == imported.keys() and all(np.array_equal(source[k], imported[k]) for k in source)


def test_foreign_names_and_refusals(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(images / name), np.full((20, 30, 3), 90, np.uint8))
    rle_of = {}
    from pycocotools import mask as mask_utils

    m = np.zeros((20, 30), np.uint8)
    m[5:9, 10:20] = 1
    rle_of["a.png"] = mask_utils.encode(np.asfortranarray(m))
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 30, "height": 20},
                       {"id": 2, "file_name": "b.png", "width": 30, "height": 20}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 40, "bbox": [10, 5, 10, 4],
                             "segmentation": {"size": [20, 30], "counts": rle_of["a.png"]["counts"].decode()}}],
            "categories": [{"id": 1, "name": "scratch"}, {"id": 2, "name": "dent"}]}
    ann = tmp_path / "fixed.json"
    ann.write_text(json.dumps(data))
    out = tmp_path / "ds"
    result = run_cli("import", ann, "--images", images, "--category", "widget", "--out", out)
    assert result.returncode == 0, result.stderr
    assert (out / "widget" / "test" / "scratch" / "a.png").is_file() and (out / "widget" / "test" / "good" / "b.png").is_file()
    assert np.array_equal(cv2.imread(str(out / "widget" / "ground_truth" / "scratch" / "a_mask.png"), 0) > 0, m > 0)
    assert run_cli("convert", out, "--format", "coco", "--out", tmp_path / "conv").returncode == 0
    # one image, two defect types: an MVTec AD image has one
    data["annotations"].append({**data["annotations"][0], "id": 2, "category_id": 2})
    ann.write_text(json.dumps(data))
    result = run_cli("import", ann, "--images", images, "--out", tmp_path / "two")
    assert result.returncode == 2 and "several types" in result.stderr and not (tmp_path / "two").exists()
    data["annotations"].pop()
    ann.write_text(json.dumps(data))
    # the output may not lie inside the images it reads
    result = run_cli("import", ann, "--images", images, "--out", images / "ds")
    assert result.returncode == 2 and "inside" in result.stderr and not (images / "ds").exists()
    # a file name may not lead out of the images folder, nor the output into the conversion read
    for name in ("../../escape.png", "/etc/passwd"):
        data["images"][0]["file_name"] = name
        ann.write_text(json.dumps(data))
        result = run_cli("import", ann, "--images", images, "--out", tmp_path / "esc")
        assert result.returncode == 2 and "leaves the images folder" in result.stderr and not (tmp_path / "esc").exists()
    data["images"][0]["file_name"] = "a.png"
    ann.write_text(json.dumps(data))
    # an image the file names do not find
    (tmp_path / "empty").mkdir()
    result = run_cli("import", ann, "--images", tmp_path / "empty", "--out", tmp_path / "none")
    assert result.returncode == 2 and "does not exist" in result.stderr and not (tmp_path / "none").exists()
