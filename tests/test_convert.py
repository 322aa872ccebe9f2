"""End to end: synth -> convert (each format, each class mode) -> verify, plus safety and determinism."""

from __future__ import annotations

import csv
import json
import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from mvtec2coco.convert import ConvertOptions, convert, parse_formats
from mvtec2coco.datasets import load_dataset
from mvtec2coco.errors import BrokenFileError, OptionError, OutputExistsError, SizeMismatchError
from mvtec2coco.verify import verify

from .helpers import run_cli, tree_digest


@pytest.fixture(scope="module")
def converted_all(tiny_mvtec, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("conv") / "all"
    run_cli("convert", tiny_mvtec, "--format", "all", "--out", out, check=True)
    return out


def test_all_formats_written_and_verified(converted_all):
    for fmt in ("yolo", "yolo-seg", "coco"):
        assert (converted_all / fmt / "meta" / "split.csv").is_file()
        assert (converted_all / fmt / "report.json").is_file()
    result = run_cli("verify", converted_all)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((converted_all / "verify.json").read_text())
    assert report["passed"]
    for fmt, f in report["formats"].items():
        assert f["missing"] == f["extra"] == f["class_mismatch"] == 0, fmt
        assert f["matched"] == f["instances_expected"] > 20
        assert f["instance_iou_min"] >= (0.999 if fmt == "yolo" else 0.99)
    assert report["formats"]["coco"]["instance_iou_mean"] == 1.0


def test_flat_names_one_level_deep_and_collision_free(converted_all):
    """The default name layout: every image one file name inside its subset folder, which
    ``placement.source_name`` turns back into the source path listed in split.csv."""
    from mvtec2coco.formats.placement import source_name

    root = converted_all / "yolo"
    images = sorted(p.relative_to(root / "images") for p in (root / "images").rglob("*.png"))
    assert len(images) == 34 and all(len(p.parts) == 2 for p in images)  # images/<subset>/<name>
    assert len({p.name for p in images}) == 34  # equal source stems (000.png) stay apart
    with open(root / "meta" / "split.csv") as fh:
        rows = {r["file_name"]: r for r in csv.DictReader(fh)}
    for image in images:
        subset, name = image.parts
        assert rows[name]["subset"] == subset and source_name(name) == rows[name]["source"]
        assert (root / "labels" / image).with_suffix(".txt").is_file()
    good = [p for p in images if "__good__" in p.name]
    assert good and all((root / "labels" / p).with_suffix(".txt").read_text() == "" for p in good)
    coco_images = json.loads((converted_all / "coco" / "annotations" / "instances_test.json").read_text())["images"]
    assert all(source_name(i["file_name"]) == i["source_file"] for i in coco_images)


def test_mirror_names_keep_the_source_tree(tiny_mvtec, tmp_path):
    out = tmp_path / "m"
    convert(load_dataset(tiny_mvtec), out, ConvertOptions(formats=("yolo", "coco"), names="mirror"))
    images = sorted(p.relative_to(out / "yolo" / "images") for p in (out / "yolo" / "images").rglob("*.png"))
    assert len(images) == 34 and all(len(p.parts) == 5 for p in images)  # <subset>/grid/test/<type>/000.png
    for image in images:
        assert (tiny_mvtec / Path(*image.parts[1:])).is_file()
        assert (out / "yolo" / "labels" / image).with_suffix(".txt").is_file()
    assert verify(out)["passed"]


def test_awkward_names_convert_verify_and_turn_back(tmp_path):
    """Folder-layout names with ``__``, leading and trailing ``_`` and ``%``: the flat names are
    one level deep, distinct, verified, and name their source paths."""
    from mvtec2coco.formats.placement import source_name

    root = tmp_path / "data" / "odd__cat%"
    for folder in ("good", "_dent_", "masks/_dent_"):
        (root / folder).mkdir(parents=True)
    for i, stem in enumerate(("a__b", "_a", "a_", "50%")):
        image = np.full((16, 16), 90, np.uint8)
        cv2.imwrite(str(root / "good" / f"{stem}.png"), image)
        cv2.imwrite(str(root / "_dent_" / f"{stem}.png"), image)
        mask = np.zeros((16, 16), np.uint8)
        mask[2 + i : 5 + i, 3:7] = 255
        cv2.imwrite(str(root / "masks" / "_dent_" / f"{stem}_mask.png"), mask)
    out = tmp_path / "out"
    convert(load_dataset(tmp_path / "data"), out, ConvertOptions(formats=("yolo-seg", "coco"), split="1,0,0"))
    names = sorted(p.name for p in (out / "coco" / "images" / "train").iterdir())
    sources = sorted(source_name(n) for n in names)
    assert len(names) == 8 and "/" not in "".join(names)
    assert sources == sorted(f"odd__cat%/{t}/{s}.png" for t in ("good", "_dent_") for s in ("a__b", "_a", "a_", "50%"))
    assert verify(out)["passed"]


@pytest.mark.parametrize("path", ["bottle/test/broken_large/000.png", "a__b/_x/y_/50%/%5F.png", "c/_/__/x.png"])
def test_flat_names_are_reversible(path):
    from mvtec2coco.formats.placement import output_name, source_name

    name = output_name(path)
    assert "/" not in name and source_name(name) == path


def test_flat_names_fast_path_equals_escaping_every_part():
    """A path no part of which needs escaping is joined in one replace: on random paths of `_`,
    `%`, `/` and letters, the name is the one escaping part by part gives, and reversible."""
    import random

    from mvtec2coco.formats.placement import JOIN, _escape, output_name, source_name

    rng = random.Random(5)
    for _ in range(3000):
        parts = ["".join(rng.choice("ab_%") for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 4))]
        path = "/".join(parts) + ".png"
        assert output_name(path) == JOIN.join(_escape(p) for p in path.split("/")), path
        assert source_name(output_name(path)) == path, path


def test_yolo_box_values_are_exact(tmp_path):
    """A hand-made dataset with one known box per image."""
    import cv2

    root = tmp_path / "data" / "widget"
    for split, label in (("train", "good"), ("test", "good"), ("test", "dent")):
        (root / split / label).mkdir(parents=True)
    (root / "ground_truth" / "dent").mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(root / "train" / "good" / f"{i:03d}.png"), np.full((20, 30), 100, np.uint8))
        cv2.imwrite(str(root / "test" / "good" / f"{i:03d}.png"), np.full((20, 30), 100, np.uint8))
        cv2.imwrite(str(root / "test" / "dent" / f"{i:03d}.png"), np.full((20, 30), 100, np.uint8))
        mask = np.zeros((20, 30), np.uint8)
        mask[5 + i, 7] = 255  # a single pixel
        mask[10:14, 20:29] = 255  # a 9 x 4 box
        cv2.imwrite(str(root / "ground_truth" / "dent" / f"{i:03d}_mask.png"), mask)
    out = tmp_path / "out"
    convert(load_dataset(tmp_path / "data"), out, ConvertOptions(formats=("yolo", "coco"), workers=1))
    label = next(p for p in (out / "yolo" / "labels").rglob("*.txt") if "dent__000" in p.name)
    rows = [line.split() for line in label.read_text().splitlines()]
    assert rows[0] == ["0", f"{7.5 / 30:.6f}", f"{5.5 / 20:.6f}", f"{1 / 30:.6f}", f"{1 / 20:.6f}"]
    assert rows[1] == ["0", f"{24.5 / 30:.6f}", f"{12 / 20:.6f}", f"{9 / 30:.6f}", f"{4 / 20:.6f}"]
    subset = label.relative_to(out / "yolo" / "labels").parts[0]
    coco = json.loads((out / "coco" / "annotations" / f"instances_{subset}.json").read_text())
    image = next(i for i in coco["images"] if i["file_name"] == "widget__test__dent__000.png")
    anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
    assert [a["bbox"] for a in anns] == [[7, 5, 1, 1], [20, 10, 9, 4]]
    assert [a["area"] for a in anns] == [1, 36]
    assert all(a["iscrowd"] == 0 for a in anns)
    # the single pixel (7, 5) by the top-left rule: left and top on the pixel edges, right and bottom 0.25 px in
    assert anns[0]["segmentation"] == [[7.0, 5.0, 7.0, 5.75, 7.75, 5.75, 7.75, 5.0]]


def test_coco_text_is_what_json_dumps_writes(converted_all):
    """The COCO files are joined from per-annotation text: they must be exactly the compact
    json.dumps of their own content (floats as floats, key order, escaping)."""
    files = sorted((converted_all / "coco" / "annotations").glob("instances_*.json"))
    assert len(files) == 3
    for path in files:
        text = path.read_text()
        data = json.loads(text)
        assert text == json.dumps(data, separators=(",", ":"))
        polygons = [a["segmentation"] for a in data["annotations"] if isinstance(a["segmentation"], list)]
        assert polygons and all(isinstance(v, float) for p in polygons for ring in p for v in ring)
        assert list(data["annotations"][0]) == ["id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd"]


def test_coco_loads_and_cocoeval_gt_vs_gt_is_perfect(converted_all):
    import contextlib
    import io

    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    path = converted_all / "coco" / "annotations" / "instances_test.json"
    data = json.loads(path.read_text())
    assert [c["id"] for c in data["categories"]] == list(range(1, len(data["categories"]) + 1))
    assert {c["supercategory"] for c in data["categories"]} == {"bottle", "grid"}
    assert any(isinstance(a["segmentation"], dict) for a in data["annotations"]), "holes are stored as RLE"
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(path))
        for iou_type in ("bbox", "segm"):
            dets = []
            for ann in gt.dataset["annotations"]:
                det = {"image_id": ann["image_id"], "category_id": ann["category_id"], "score": 1.0}
                if iou_type == "bbox":
                    det["bbox"] = ann["bbox"]
                else:
                    rle = gt.annToRLE(ann)
                    det["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()
                                           if isinstance(rle["counts"], bytes) else rle["counts"]}
                dets.append(det)
            evaluator = COCOeval(gt, gt.loadRes(dets), iou_type)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
            assert evaluator.stats[0] == pytest.approx(1.0), iou_type
    for ann in data["annotations"]:
        if isinstance(ann["segmentation"], dict):
            assert mask_utils.area(ann["segmentation"]) == ann["area"]


@pytest.mark.parametrize("mode,expected", [("single", ["defect"]),
                                           ("category-type", ["bottle/broken_large", "bottle/broken_small",
                                                              "bottle/contamination", "grid/bent", "grid/thread"])])
def test_class_modes_verify(tiny_mvtec, tmp_path, mode, expected):
    out = tmp_path / mode
    report = convert(load_dataset(tiny_mvtec), out, ConvertOptions(formats=parse_formats("all"), classes=mode))
    assert report["classes"] == expected
    import yaml

    names = yaml.safe_load((out / "yolo-seg" / "data.yaml").read_text())["names"]
    assert list(names.values()) == expected
    result = verify(out)
    assert result["passed"] and set(result["formats"]) == {"yolo", "yolo-seg", "coco"}


def test_converting_twice_gives_identical_bytes(tiny_mvtec, tmp_path):
    options = ConvertOptions(formats=parse_formats("all"), images="copy", workers=2)
    convert(load_dataset(tiny_mvtec), tmp_path / "out", options)
    first = tree_digest(tmp_path / "out")
    unsized = load_dataset(tiny_mvtec, sizes=False)  # the second time the workers read the headers
    assert not any(s.has_size for s in unsized.samples)
    convert(unsized, tmp_path / "out", options, overwrite=True)
    assert tree_digest(tmp_path / "out") == first
    assert len(first) > 150


@pytest.mark.parametrize("damage", ["mask size", "truncated image"])
def test_workers_reading_headers_name_the_bad_file(tiny_copy, tmp_path, damage):
    if damage == "mask size":
        bad = tiny_copy / "grid/ground_truth/bent/000_mask.png"
        cv2.imwrite(str(bad), np.zeros((40, 40), np.uint8))
    else:
        bad = tiny_copy / "bottle/train/good/003.png"
        bad.write_bytes(bad.read_bytes()[:-40])
    out = tmp_path / "out"
    with pytest.raises(SizeMismatchError if damage == "mask size" else BrokenFileError) as err:
        convert(load_dataset(tiny_copy, sizes=False), out, ConvertOptions(formats=parse_formats("all"), workers=2))
    assert err.value.path == bad  # raised in a worker process, path intact
    assert ("40x40" if damage == "mask size" else "truncated") in str(err.value)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_refuses_non_empty_output_unless_overwrite(tiny_mvtec, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        convert(load_dataset(tiny_mvtec), out, ConvertOptions())
    assert (out / "keep.txt").read_text() == "mine"
    result = run_cli("convert", tiny_mvtec, "--out", out)
    assert result.returncode == 2 and "--overwrite" in result.stderr
    with pytest.raises(OutputExistsError, match="not written by mvtec2coco"):  # not ours: never replaced
        convert(load_dataset(tiny_mvtec), out, ConvertOptions(), overwrite=True)
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    convert(load_dataset(tiny_mvtec), out, ConvertOptions())
    (out / "extra.txt").write_text("added to an output")
    convert(load_dataset(tiny_mvtec), out, ConvertOptions(), overwrite=True)  # an output of ours: replaced
    assert not (out / "extra.txt").exists() and (out / "data.yaml").is_file() and (out / ".mvtec2coco").is_file()


def test_a_bad_file_leaves_no_partial_output(tiny_copy, tmp_path):
    dataset = load_dataset(tiny_copy)
    mask = tiny_copy / "grid/ground_truth/thread/002_mask.png"
    mask.write_bytes(mask.read_bytes()[:60] + b"\0" * 20 + mask.read_bytes()[-12:])  # corrupt but well-ended
    out = tmp_path / "out"
    with pytest.raises(BrokenFileError) as err:
        convert(dataset, out, ConvertOptions(formats=parse_formats("all"), workers=2))
    assert err.value.path.name == "002_mask.png"
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_min_area_counts_what_it_skips(tiny_mvtec, tmp_path):
    report = convert(load_dataset(tiny_mvtec), tmp_path / "o", ConvertOptions(min_area=4))
    skipped = report["skipped"]["instances_below_min_area"]
    assert sum(skipped.values()) > 0
    full = convert(load_dataset(tiny_mvtec), tmp_path / "p", ConvertOptions())
    assert full["instances_total"] - report["instances_total"] == sum(skipped.values())
    assert verify(tmp_path / "o")["passed"]  # verify knows the threshold


def test_split_is_stratified_and_reusable(tiny_mvtec, tmp_path):
    report = convert(load_dataset(tiny_mvtec), tmp_path / "a", ConvertOptions(seed=3))
    for subset in ("train", "val", "test"):
        assert set(report["images"][subset]) == {"good", "bent", "broken_large", "broken_small", "contamination",
                                                 "thread"}
    with open(tmp_path / "a" / "meta" / "split.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 34 and {r["subset"] for r in rows} == {"train", "val", "test"}
    assert rows[0].keys() == {"sample_id", "source", "subset", "class", "file_name"}
    result = run_cli("convert", tiny_mvtec, "--out", tmp_path / "b", "--split-file", tmp_path / "a" / "meta" / "split.csv",
                     "--format", "coco")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "b" / "meta" / "split.csv").read_text() == (tmp_path / "a" / "meta" / "split.csv").read_text()
    other = convert(load_dataset(tiny_mvtec), tmp_path / "c", ConvertOptions(seed=4))
    assert (tmp_path / "c" / "meta" / "split.csv").read_text() != (tmp_path / "a" / "meta" / "split.csv").read_text()
    assert other["images"]["train"] == report["images"]["train"]


def test_official_split_warns(tiny_mvtec, tmp_path):
    result = run_cli("convert", tiny_mvtec, "--out", tmp_path / "o", "--split", "official")
    assert result.returncode == 0, result.stderr
    assert "no defect image reaches training" in result.stderr
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert set(report["images"]["train"]) == {"good"}


def test_bad_options_exit_2(tiny_mvtec, tmp_path):
    for args in (["--split", "0.5,0.5"], ["--classes", "colour"], ["--format", "voc"], ["--images", "teleport"]):
        result = run_cli("convert", tiny_mvtec, "--out", tmp_path / "x", *args)
        assert result.returncode == 2, args
        assert result.stderr.strip().count("\n") == 0 and "error:" in result.stderr
        assert "Traceback" not in result.stderr
    with pytest.raises(OptionError):
        convert(load_dataset(tiny_mvtec), tmp_path / "y", ConvertOptions(formats=("voc",)))


@pytest.mark.parametrize("mode", ["link", "copy", "symlink"])
def test_image_modes(tiny_mvtec, tmp_path, mode):
    out = tmp_path / mode
    convert(load_dataset(tiny_mvtec), out, ConvertOptions(images=mode))
    from mvtec2coco.formats.placement import source_name

    image = next((out / "images").rglob("*.png"))
    source = tiny_mvtec / source_name(image.name)
    assert image.read_bytes() == source.read_bytes()
    if mode == "symlink":
        assert image.is_symlink()
    elif mode == "link":
        assert os.stat(image).st_ino == os.stat(source).st_ino
    else:
        assert os.stat(image).st_ino != os.stat(source).st_ino and not image.is_symlink()


def test_good_exclude_and_unlabeled_are_counted(tiny_factory, tmp_path):
    report = convert(load_dataset(tiny_factory("mvtec2")), tmp_path / "o", ConvertOptions(good="exclude"))
    assert report["skipped"]["images_unlabeled"] == 4
    assert report["skipped"]["images_good_excluded"] == 19
    assert all("good" not in v for v in report["images"].values())


@pytest.mark.parametrize("layout", ["loco", "mvtec3d", "visa", "folder"])
def test_other_layouts_convert_and_verify(tiny_factory, tmp_path, layout):
    out = tmp_path / layout
    convert(load_dataset(tiny_factory(layout)), out, ConvertOptions(formats=("yolo-seg", "coco")))
    assert verify(out)["passed"]


def test_coco_polygon_mode_keeps_holes_exactly(tiny_mvtec, tmp_path):
    """Polygon-only COCO for tools without RLE: holes ride on zero-width bridges, and pycocotools
    fills every region back to exactly its pixels."""
    report = convert(load_dataset(tiny_mvtec), tmp_path / "o", ConvertOptions(formats=("coco",), coco_masks="polygon"))
    assert report["instances_with_holes"] > 0
    assert report["coco"]["polygons_with_keyholes"] == report["instances_with_holes"]
    assert report["coco"]["rle_instances"] == 0
    data = json.loads((tmp_path / "o" / "annotations" / "instances_train.json").read_text())
    assert all(isinstance(a["segmentation"], list) and len(a["segmentation"]) == 1 for a in data["annotations"])
    result = verify(tmp_path / "o", min_iou=1.0)
    assert result["passed"] and result["formats"]["coco"]["instance_iou_min"] == 1.0
    rle = convert(load_dataset(tiny_mvtec), tmp_path / "r", ConvertOptions(formats=("coco",), coco_masks="rle"))
    assert rle["coco"]["rle_instances"] == rle["instances_total"]


def test_simplify_reports_its_iou_cost(tiny_mvtec, tmp_path):
    report = convert(load_dataset(tiny_mvtec), tmp_path / "o", ConvertOptions(formats=("coco",), simplify=1.0))
    assert 0.5 < report["simplify"]["polygon_iou_mean"] < 1.0


def test_verify_catches_a_broken_output(converted_all, tmp_path):
    import shutil

    out = tmp_path / "broken"
    shutil.copytree(converted_all, out, symlinks=True)
    label = next(p for p in (out / "yolo-seg" / "labels").rglob("*.txt") if p.read_text())
    lines = label.read_text().splitlines()
    label.write_text("\n".join(lines[1:]) + "\n")  # drop one instance
    orphan = out / "yolo" / "labels" / "train" / "stray.txt"
    orphan.write_text("0 0.5 0.5 0.1 0.1\n")
    coco = out / "coco" / "annotations" / "instances_train.json"
    data = json.loads(coco.read_text())
    data["annotations"][0]["bbox"] = [0, 0, 1, 1]
    data["annotations"][0]["segmentation"] = [[0, 0, 1, 0, 1, 1, 0, 1]]
    coco.write_text(json.dumps(data))
    result = run_cli("verify", out)
    assert result.returncode == 1
    report = json.loads((out / "verify.json").read_text())
    assert report["formats"]["yolo-seg"]["missing"] == 1
    assert any("stray" in p for p in report["formats"]["yolo"]["unpaired"])
    assert report["formats"]["coco"]["missing"] == 1 and report["formats"]["coco"]["extra"] == 1
    assert not report["passed"]


def test_verify_twice_in_one_process_reads_the_images_again(tiny_mvtec, tmp_path):
    """Library use: an image damaged in place between two ``verify`` calls of one process (same
    file, same inode) is found by the second; nothing from the first call is trusted."""
    import shutil

    data, out = tmp_path / "data", tmp_path / "o"
    shutil.copytree(tiny_mvtec, data)  # linked images: damaging one damages this copy's source
    convert(load_dataset(data), out, ConvertOptions(formats=("coco",), workers=1))
    assert verify(out, workers=1)["passed"]
    path = next((out / "images").rglob("*.png"))
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"IDAT") + 12] ^= 0xFF
    with open(path, "r+b") as fh:  # in place: the inode stays
        fh.write(bytes(raw))
    result = verify(out, workers=1)
    assert not result["passed"]
    assert any("image data is corrupt" in p for p in result["formats"]["coco"]["problems"])


@pytest.mark.slow
def test_ctrl_c_leaves_no_partial_output(bottle, tmp_path):
    """Interrupt a real conversion once its staging folder exists: nothing may remain."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "mvtec2coco", "convert", str(bottle), "--format", "all",
                             "--images", "copy", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".out.m2c-tmp-*")) and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "conversion finished before it could be interrupted"
    time.sleep(0.05)  # into the work: the whole conversion of this set takes a few tenths of a second
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_moved_output_still_loads_and_verifies(tiny_mvtec, tmp_path):
    """data.yaml holds no absolute path: a copied or moved output stays usable where it lands."""
    import shutil

    import yaml

    first = tmp_path / "here" / "out"
    run_cli("convert", tiny_mvtec, "--format", "all", "--out", first, check=True)
    moved = tmp_path / "elsewhere" / "out"
    shutil.move(str(first.parent), str(moved.parent))
    for fmt in ("yolo", "yolo-seg"):
        assert "path" not in yaml.safe_load((moved / fmt / "data.yaml").read_text())
    result = run_cli("verify", moved)
    assert result.returncode == 0, result.stdout + result.stderr
    pytest.importorskip("ultralytics")
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(moved / "yolo" / "data.yaml"), autodownload=False)
    assert Path(data["train"]).resolve() == (moved / "yolo" / "images" / "train").resolve()


def _pil_accepts(path: Path) -> bool:
    """Whether PIL's own ``verify`` passes the file."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
    except Exception:  # noqa: BLE001 - PIL raises many types for broken data
        return False
    return True


def test_png_check_agrees_with_pil_on_every_kind_of_damage(tiny_mvtec, tmp_path):
    """The chunk walk that verify uses for PNGs calls a file broken exactly when PIL's own verify
    does (byte flips anywhere after the signature), and also when it is cut short."""
    import random

    from mvtec2coco.image_integrity import png_problem

    source = next((tiny_mvtec / "bottle" / "test" / "broken_large").glob("*.png"))
    data = source.read_bytes()
    assert png_problem(source) is None
    rng = random.Random(0)
    path = tmp_path / "x.png"
    for _ in range(60):
        damaged = bytearray(data)
        at = rng.randrange(8, len(data))
        damaged[at] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(damaged))
        assert (png_problem(path) is None) == _pil_accepts(path), at
    for cut in (len(data) - 1, len(data) - 12, len(data) // 2, 20):
        path.write_bytes(data[:cut])
        assert png_problem(path) is not None


def _reference_png_problem(data: bytes) -> str | None:
    """The chunk walk written plainly: each chunk's length, type and CRC, one after another."""
    import struct
    import zlib

    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return "signature"
    at, first = 8, True
    while True:
        if at + 8 > len(data):
            return "truncated"
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if first and (kind != b"IHDR" or length < 8):
            return "no IHDR"
        first = False
        end = at + 12 + length
        if end > len(data):
            return "truncated"
        if zlib.crc32(data[at + 4 : end - 4]) != struct.unpack(">I", data[end - 4 : end])[0]:
            return f"CRC {kind!r}"
        if kind == b"IEND":
            return None if end == len(data) else "after IEND"
        at = end


def test_png_walk_reading_ahead_over_equal_chunks_agrees_with_a_plain_walk_and_pil(tmp_path):
    """A large PNG (fixed 8 KB IDAT chunks, read ahead in runs) is found broken exactly when PIL and
    a plain chunk-by-chunk walk find it broken, wherever one bit flips: in data, in a CRC, in a
    length or type inside the run; and when it is cut short anywhere."""
    import random

    import cv2

    from mvtec2coco.image_integrity import _equal_idat_run, walk_png

    pixels = np.random.default_rng(1).integers(0, 256, (300, 300, 3), dtype=np.uint8)  # incompressible: ~33 chunks
    data = cv2.imencode(".png", pixels)[1].tobytes()
    assert walk_png(data)[0] is None and _equal_idat_run(data, 33, 8192)[0] >= 8  # the run-ahead is used
    rng = random.Random(2)
    path = tmp_path / "x.png"
    positions = [rng.randrange(8, len(data)) for _ in range(120)] + [33 + 8204 * 5 + k for k in range(8)] + \
        [33 + 8204 * 9 - 4 + k for k in range(4)]  # a run chunk's length and type, and a stored CRC
    for at in positions:
        damaged = bytearray(data)
        damaged[at] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(damaged))
        ours = walk_png(bytes(damaged))[0]
        assert (ours is None) == _pil_accepts(path) == (_reference_png_problem(bytes(damaged)) is None), at
        writable = bytearray(damaged)  # a run in writable memory is checked by one CRC over it
        assert walk_png(memoryview(writable))[0] == ours and writable == damaged, at
    for cut in (len(data) - 1, len(data) - 12, 33 + 8204 * 12, 33 + 8204 * 12 + 7, len(data) // 2, 40):
        assert walk_png(data[:cut])[0] is not None and _reference_png_problem(data[:cut]) is not None, cut
        assert walk_png(memoryview(bytearray(data[:cut])))[0] == walk_png(data[:cut])[0], cut


def test_png_walk_checks_a_run_in_writable_memory_with_one_crc(tmp_path, monkeypatch):
    """Read into a writable buffer (as ``png_facts`` reads), a run of equal IDAT chunks costs one
    CRC call, not one per chunk, and still finds every damaged chunk: one, two or all of them, in
    data or in a stored CRC; the buffer is left as it was."""
    import cv2

    import mvtec2coco.image_integrity as integrity

    pixels = np.random.default_rng(7).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    data = cv2.imencode(".png", pixels)[1].tobytes()
    chunks = (len(data) - 33) // 8204
    calls = []
    real = integrity.crc32
    monkeypatch.setattr(integrity, "crc32", lambda *a: calls.append(1) or real(*a))
    assert integrity.walk_png(memoryview(bytearray(data)))[0] is None
    assert len(calls) < 6 < chunks  # the run, plus the chunks before and after it
    calls.clear()
    assert integrity.walk_png(data)[0] is None and len(calls) > chunks  # read-only: one call per chunk
    for damage in ([5], [5, 9], [6, 6 + 1], list(range(1, chunks - 1))):
        damaged = bytearray(data)
        for k in damage:
            damaged[33 + 8204 * k + 100] ^= 0x40
        copy = bytes(damaged)
        assert integrity.walk_png(memoryview(damaged))[0] == "image data is corrupt (PNG chunk 'IDAT' fails its CRC)"
        assert damaged == copy and _reference_png_problem(copy) is not None, damage
    stored = bytearray(data)
    stored[33 + 8204 * 4 - 1] ^= 1  # the CRC of a run chunk
    assert "fails its CRC" in integrity.walk_png(memoryview(stored))[0]
    monkeypatch.setattr(integrity, "_VALID_RUNS", {})  # built afresh, grown, then read shorter
    for count in (3, 10, 5):
        assert integrity._valid_run_crc(8192, count) == real(count * (struct.pack(">I", 8192) + b"IDAT" + bytes(8192)
                                                             + real(b"IDAT" + bytes(8192)).to_bytes(4, "little")))
    assert len(integrity._VALID_RUNS[8192]) == 10


def test_png_walk_splits_runs_and_lengths_beyond_its_cache(monkeypatch):
    """A run longer than ``_MAX_RUN`` takes several CRCs, and chunk lengths beyond
    ``_MAX_RUN_LENGTHS`` one CRC per chunk: the findings are those of a plain walk either way."""
    import cv2

    import mvtec2coco.image_integrity as integrity

    data = cv2.imencode(".png", np.random.default_rng(8).integers(0, 256, (300, 300, 3), dtype=np.uint8))[1].tobytes()
    damaged = bytearray(data)
    damaged[33 + 8204 * 20 + 50] ^= 2
    for limits in ((9, 32), (4096, 0)):
        monkeypatch.setattr(integrity, "_MAX_RUN", limits[0])
        monkeypatch.setattr(integrity, "_MAX_RUN_LENGTHS", limits[1])
        monkeypatch.setattr(integrity, "_VALID_RUNS", {})
        assert integrity.walk_png(memoryview(bytearray(data)))[0] is None
        assert "fails its CRC" in integrity.walk_png(memoryview(bytearray(damaged)))[0]
        assert len(integrity._VALID_RUNS) == (1 if limits[1] else 0)


def test_png_file_check_read_whole_or_mapped_finds_the_same(tmp_path, monkeypatch):
    """A PNG up to MAP_ABOVE bytes is read whole, a larger one memory-mapped: both ways give the
    same finding for an intact file, for damaged ones (a bit flipped, cut short, bytes appended)
    and for an empty file; and both are used."""
    import mmap

    import cv2

    import mvtec2coco.image_integrity as integrity

    pixels = np.random.default_rng(4).integers(0, 256, (120, 120, 3), dtype=np.uint8)
    data = cv2.imencode(".png", pixels)[1].tobytes()
    files = {"intact": data, "flipped": data[:500] + bytes([data[500] ^ 4]) + data[501:], "cut": data[:-5],
             "padded": data + b"\0", "empty": b""}
    maps = []
    real_mmap = mmap.mmap
    monkeypatch.setattr(integrity.mmap, "mmap", lambda *a, **k: maps.append(1) or real_mmap(*a, **k))
    found = {}
    for limit in (1 << 30, 0):  # everything read whole, then everything (but the empty file) mapped
        monkeypatch.setattr(integrity, "MAP_ABOVE", limit)
        for name, content in files.items():
            path = tmp_path / f"{name}.png"
            path.write_bytes(content)
            found.setdefault(name, []).append((integrity.png_facts(path), integrity.image_data_problem(path)))
    assert len(maps) == 2 * (len(files) - 1)  # png_facts and image_data_problem, each non-empty file, once
    for name, (whole, mapped) in found.items():
        assert whole == mapped, name
        assert (whole[0][0] is None) == (name == "intact"), name
    assert found["intact"][0][1] == (None, (120, 120))
    assert found["empty"][0][0][0] == "image data is corrupt (empty file)"


def test_png_read_into_the_reused_buffer_sees_only_this_file(tmp_path):
    """The read buffer a process reuses keeps a larger file's bytes: a shorter file read after it
    must be walked over its own bytes alone (cut short is found, intact passes), and a file that
    grew after its size was taken is read whole (bytes appended are found)."""
    import cv2

    import mvtec2coco.image_integrity as integrity

    big = cv2.imencode(".png", np.random.default_rng(5).integers(0, 256, (200, 200, 3), dtype=np.uint8))[1].tobytes()
    small = cv2.imencode(".png", np.random.default_rng(6).integers(0, 256, (40, 40, 3), dtype=np.uint8))[1].tobytes()
    for name, content in {"big": big, "small": small, "small_cut": small[:-3], "big_cut": big[: len(big) // 2]}.items():
        (tmp_path / f"{name}.png").write_bytes(content)
    found = {name: integrity.png_facts(tmp_path / f"{name}.png")[0]
             for name in ("big", "small_cut", "small", "big_cut", "big")}
    assert found["big"] is None and found["small"] is None
    assert "truncated" in found["small_cut"] and "truncated" in found["big_cut"]
    assert len(integrity._READ_BUFFER) > len(small)  # the buffer is the big file's, reused
    (tmp_path / "padded.png").write_bytes(small + b"\0\0")
    with open(tmp_path / "padded.png", "rb", buffering=0) as fh:  # as if it grew by two bytes after its fstat
        assert integrity._walk_read(fh, len(small))[0] == "image data is corrupt (bytes after the PNG's IEND)"
    with open(tmp_path / "small.png", "rb", buffering=0) as fh:
        assert integrity._walk_read(fh, len(small) - 10)[0] is None  # grew by ten: still read whole


def test_verify_runs_its_passes_with_the_cyclic_collector_off(converted_all, monkeypatch):
    """Off for its workers (forked with it off) and its own share of the work; back on after."""
    import gc

    import mvtec2coco.verify as verify_module

    seen = []
    real = verify_module.fork_map

    def recording(fn, items, *args, **kwargs):
        seen.append(gc.isenabled())
        return real(fn, items, *args, **kwargs)

    monkeypatch.setattr(verify_module, "fork_map", recording)
    assert verify_module.verify(converted_all, workers=2)["passed"]
    assert seen and not any(seen)
    assert gc.isenabled()


def test_listing_and_convert_run_with_the_cyclic_collector_off(tiny_mvtec, tmp_path, monkeypatch):
    """The listing's records and convert's own work in this process (its split, its report)
    are made with the collector off; it is on again after each."""
    import gc

    import mvtec2coco.convert as convert_module
    import mvtec2coco.datasets.mvtec as mvtec_reader
    from mvtec2coco.convert import ConvertOptions, convert
    from mvtec2coco.datasets import load_dataset

    seen = []
    for module, name in ((mvtec_reader, "read_category"), (convert_module, "make_split"), (convert_module, "_report")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, **k: seen.append(gc.isenabled()) or _real(*a, **k))
    dataset = load_dataset(tiny_mvtec, sizes=False)
    assert gc.isenabled()
    convert(dataset, tmp_path / "out", ConvertOptions(formats=("yolo",), workers=2))
    assert (tmp_path / "out" / "data.yaml").is_file() and gc.isenabled()
    assert len(seen) == len(dataset.categories) + 2 and not any(seen)


def test_verify_of_coco_alone_never_imports_ultralytics(converted_all):
    """ultralytics (and torch with it) is imported only to read YOLO outputs."""
    import subprocess
    import sys

    code = ("import sys; from mvtec2coco.verify import verify; r = verify(sys.argv[1], workers=2); "
            "print(r['passed'], 'ultralytics' in sys.modules, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(converted_all / "coco")], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["True", "False", "False"]


def test_coco_files_load_while_the_first_pass_runs_and_renamed_categories_fail(tiny_mvtec, tmp_path, monkeypatch):
    """The COCO files are read with pycocotools while the first pass's workers check the sources
    and images, and every COCO image is read in the second pass against them: a category renamed
    in one file fails COCO alone, naming the file's categories."""
    import mvtec2coco.verify as verify_module

    out = tmp_path / "all"
    run_cli("convert", tiny_mvtec, "--format", "all", "--out", out, check=True)
    path = out / "coco" / "annotations" / "instances_train.json"
    data = json.loads(path.read_text())
    used = {a["category_id"] for a in data["annotations"]}
    renamed = next(c for c in data["categories"] if c["id"] in used)
    renamed["name"] = "renamed"
    path.write_text(json.dumps(data))
    events = []
    real_fork_map, real_load = verify_module.fork_map, verify_module._load_coco_files

    def fork_map(fn, *args, **kwargs):
        events.append(fn.__name__)
        return real_fork_map(fn, *args, **kwargs)

    def load(*args):
        events.append("load")
        return real_load(*args)

    monkeypatch.setattr(verify_module, "fork_map", fork_map)
    monkeypatch.setattr(verify_module, "_load_coco_files", load)
    result = verify(out, workers=2)
    assert events == ["_check_sources", "load", "_check_later"]  # loaded during the first pass, read in the second
    passed = {fmt: summary["passed"] for fmt, summary in result["formats"].items()}
    assert passed == {"yolo": True, "yolo-seg": True, "coco": False}
    assert any(p.startswith("annotations/instances_train.json: categories") and "'renamed'" in p
               for p in result["formats"]["coco"]["problems"])


def test_verify_reads_a_linked_source_images_header_from_its_check(tiny_copy, tmp_path, monkeypatch):
    """Where an output image is a link to its source, verify takes the source's header from the
    bytes its data check read instead of opening the file again, with ``read_header``'s own
    verdicts: a header OpenCV cannot use still stops verify naming the file; the masks' headers
    are still read and checked, so a mask of the wrong size, or with bytes after its IEND
    (which OpenCV decodes), still does too."""
    import zlib

    import mvtec2coco.datasets.common as common

    out = tmp_path / "all"
    run_cli("convert", tiny_copy, "--format", "all", "--out", out, check=True)
    read = []
    real = common.read_header
    monkeypatch.setattr(common, "read_header", lambda path: read.append(str(path)) or real(path))
    assert verify(out, workers=1)["passed"]
    assert read and all("/ground_truth/" in p for p in read)  # every image a link: only masks' headers read

    image = tiny_copy / "bottle/test/broken_large/000.png"
    original = image.read_bytes()
    data = bytearray(original)
    data[25] = 5  # colour type 5 does not exist; the chunk's CRC made right again
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    image.write_bytes(bytes(data))
    with pytest.raises(BrokenFileError, match="colour type 5") as err:
        verify(out, workers=1)
    assert err.value.path == image
    image.write_bytes(original)  # the same file (inode) again
    assert verify(out, workers=1)["passed"]
    mask = tiny_copy / "grid/ground_truth/bent/000_mask.png"
    inode, intact = mask.stat().st_ino, mask.read_bytes()
    mask.write_bytes(intact + b"junk after the end")
    with pytest.raises(BrokenFileError, match="no IEND") as err:
        verify(out, workers=1)
    assert err.value.path == mask
    cv2.imwrite(str(mask), np.zeros((40, 40), np.uint8))
    assert mask.stat().st_ino == inode
    with pytest.raises(SizeMismatchError, match="40x40") as err:
        verify(out, workers=1)
    assert err.value.path == mask


def test_an_output_image_that_cannot_be_read_is_a_finding_not_a_crash(converted_all, monkeypatch):
    """An image that can be listed but not read (permissions, an I/O error) fails every format
    that holds it with one line naming the error; verify itself does not fail."""
    import errno
    import os

    import mvtec2coco.verify as verify_module

    real = verify_module.image_data_check
    broken = {}

    def unreadable(path):  # the first file checked, under each of its names (one inode for all formats)
        inode = os.stat(path).st_ino
        if broken.setdefault("inode", inode) == inode:
            broken.setdefault("path", path)
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(verify_module, "image_data_check", unreadable)
    result = verify(converted_all, workers=1)
    name = broken["path"].rsplit("/images/", 1)[1]
    for fmt in ("yolo", "yolo-seg", "coco"):
        summary = result["formats"][fmt]
        assert not summary["passed"]
        assert f"{name}: image file cannot be read (Permission denied)" in summary["problems"], summary["problems"][:3]


def test_each_format_is_checked_against_its_own_split_file(tiny_mvtec, tmp_path):
    """The formats of an --format all output share one parsed split.csv only while its bytes are
    the same: a row repeated in yolo-seg's fails yolo-seg alone, and the other two still pass."""
    out = tmp_path / "all"
    run_cli("convert", tiny_mvtec, "--format", "all", "--out", out, check=True)
    path = out / "yolo-seg" / "meta" / "split.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines, lines[1]]))
    result = verify(out, workers=2)
    passed = {fmt: summary["passed"] for fmt, summary in result["formats"].items()}
    assert passed == {"yolo": True, "yolo-seg": False, "coco": True}
    assert any("listed more than once" in p for p in result["formats"]["yolo-seg"]["problems"])


def test_yolo_pass_trusts_only_the_pngs_the_first_pass_found_intact(converted_all, monkeypatch):
    """The YOLO labels are read in a second pass of workers, forked after the first has checked
    every image: ultralytics' own full image check is replaced by the header size of each PNG
    the first pass found intact, so with that check broken, an intact output still passes; and a
    damaged image still fails (found by the first pass, whatever the second does)."""
    import ultralytics.data.utils as consumer

    def broken(_path):
        raise AssertionError("ultralytics' full image check ran")

    monkeypatch.setattr(consumer, "check_image", broken)
    result = verify(converted_all, workers=2)  # 34 samples: above fork_map's pool threshold
    assert result["passed"], result["formats"]["yolo"]["problems"][:3]
    assert result["formats"]["yolo-seg"]["images"] == 34


def test_image_iou_of_one_region_and_one_instance_equals_the_unions():
    """With one source region and one output mask, the image IoU is read off the pair itself: on
    random crops and windows (overlapping, apart, nested, an empty output, values other than 1)
    it equals the IoU of the unions built over their common box."""
    import mvtec2coco.verify as verify_module

    rng = np.random.default_rng(7)
    for _ in range(500):
        h, w = (int(v) for v in rng.integers(1, 12, 2))
        crop = rng.random((h, w)) < 0.6
        region = verify_module.Region((int(rng.integers(0, 20)), int(rng.integers(0, 20)), w, h), int(crop.sum()))
        oh, ow = (int(v) for v in rng.integers(0, 12, 2))
        window = (rng.random((oh, ow)) < 0.5).astype(np.uint8) * rng.choice([1, 255])
        output = verify_module.OutputMask(window, (int(rng.integers(0, 20)), int(rng.integers(0, 20)), ow, oh),
                                          int(np.count_nonzero(window)))
        fast = verify_module.mask_ious([region], [crop], [output])[1]
        full = verify_module._union_iou([region], [crop], [output])
        assert fast == pytest.approx(full, abs=1e-12), (region, output.box)


def test_matching_small_and_large_matrices_pair_alike(monkeypatch):
    """verify's greedy matching sorts small IoU matrices in Python and large ones with numpy:
    on random matrices full of ties and zeros both give the same pairs, equal IoUs taken in
    row-major order."""
    import mvtec2coco.verify as verify_module

    rng = np.random.default_rng(6)
    for _ in range(400):
        shape = (int(rng.integers(1, 9)), int(rng.integers(1, 9)))
        matrix = rng.choice([0.0, 0.0, 0.25, 0.5, 0.5, 1.0, 1.5], size=shape)
        small = verify_module._match(matrix)
        monkeypatch.setattr(verify_module, "_SMALL_SORT", 0)
        large = verify_module._match(matrix)
        monkeypatch.setattr(verify_module, "_SMALL_SORT", 64)
        assert small == large, matrix
        if matrix.max() == 0:
            assert small == []
            continue
        assert small[0][:2] == divmod(int(np.flatnonzero(matrix.ravel() == matrix.max())[0]), shape[1])


def test_verify_without_rle_regions_finds_the_same_instances():
    """verify finds source regions without their RLE: boxes, areas and outlines equal those of the
    conversion's own regions, on random masks with holes and islands."""
    from mvtec2coco.geometry.masks import instances_of_masks

    rng = np.random.default_rng(3)
    for _ in range(200):
        masks = [(rng.random((int(rng.integers(3, 50)), int(rng.integers(3, 50)))) < rng.uniform(0.1, 0.8))
                 .astype(np.uint8) for _ in range(3)]
        full, lean = instances_of_masks(masks), instances_of_masks(masks, rle=False)
        for a, b in zip(full, lean):
            assert [(i.bbox, i.area, i.hole_pixels) for i in a] == [(i.bbox, i.area, i.hole_pixels) for i in b]
            assert all(np.array_equal(i.outer, j.outer) for i, j in zip(a, b))
            assert all(j.rle is None for j in b)


def test_data_yaml_check_skips_only_the_plotting_font(converted_all, monkeypatch, tmp_path):
    """ultralytics' check_det_dataset still judges data.yaml; its font lookup for plots does not
    run (it imports matplotlib and requests) and is put back afterwards."""
    import shutil

    import ultralytics.data.utils as consumer

    def font(*_args, **_kwargs):
        raise AssertionError("check_font ran")

    monkeypatch.setattr(consumer, "check_font", font)
    assert verify(converted_all / "yolo", workers=1)["formats"]["yolo"]["dataset_yaml"] == "ok"
    assert consumer.check_font is font
    broken = tmp_path / "yolo"
    shutil.copytree(converted_all / "yolo", broken, symlinks=True)
    (broken / "data.yaml").write_text((broken / "data.yaml").read_text().replace("val:", "vall:"))
    assert verify(broken, workers=1)["formats"]["yolo"]["dataset_yaml"].startswith("check_det_dataset failed")


def test_a_missing_label_is_named_even_when_ultralytics_refuses_the_image(tmp_path):
    """ultralytics checks the image before it looks for the label: an image it refuses (here one
    under 10 px) must not hide that the label file is missing."""
    import cv2

    from mvtec2coco.errors import VerificationError
    from mvtec2coco.verify import _yolo_instances

    (tmp_path / "images" / "test").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "images" / "test" / "a.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(VerificationError, match="label file is missing"):
        _yolo_instances(str(tmp_path), "test", (8, 8), "a.png", "yolo", 1, True)
    (tmp_path / "labels" / "test").mkdir(parents=True)
    (tmp_path / "labels" / "test" / "a.txt").write_text("")
    with pytest.raises(VerificationError, match="ultralytics rejected the label.*<10 pixels"):
        _yolo_instances(str(tmp_path), "test", (8, 8), "a.png", "yolo", 1, True)


def test_a_signal_before_the_staging_folder_is_marked_leaves_nothing(tiny_mvtec, tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM can land between the staging folder's creation and its marker."""
    import signal

    from mvtec2coco.runtime import staging

    def interrupted(*_args) -> None:
        raise staging.Interrupted(signal.SIGTERM)

    monkeypatch.setattr(staging, "_mark", interrupted)
    with pytest.raises(staging.Interrupted):
        convert(load_dataset(tiny_mvtec), tmp_path / "out", ConvertOptions(formats=("coco",), workers=1))
    assert list(tmp_path.iterdir()) == []
