"""Defect types from mask values (``--classes value``) and LOCO's overlapping mask files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mvtec2coco.convert import ConvertOptions, convert
from mvtec2coco.datasets import load_dataset
from mvtec2coco.errors import DatasetError, OptionError
from mvtec2coco.summary import summarize
from mvtec2coco.synth import generate
from mvtec2coco.tiling import TileOptions
from mvtec2coco.validate import validate_dataset
from mvtec2coco.verify import verify

COOKIE_IDS = {"255": "contamination", "254": "crack", "253": "hole", "0": "good"}  # MVTec 3D-AD's cookie


@pytest.fixture(scope="module")
def cookie(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("cookie") / "data", "cookie", "mvtec3d", seed=0)


def _coco(out: Path) -> list[tuple[dict, dict, dict[int, str]]]:
    """(image, annotation, category names) of every annotation in every subset file."""
    found = []
    for path in sorted((out / "annotations").glob("instances_*.json")):
        data = json.loads(path.read_text())
        names = {c["id"]: c["name"] for c in data["categories"]}
        images = {i["id"]: i for i in data["images"]}
        found += [(images[a["image_id"]], a, names) for a in data["annotations"]]
    return found


def _decode(ann: dict, image: dict) -> np.ndarray:
    seg = ann["segmentation"]
    if isinstance(seg, dict):  # compressed RLE, counts stored as str
        return mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()}).astype(bool)
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(seg, image["height"], image["width"]))).astype(bool)


def test_the_generated_cookie_ships_the_real_mapping(cookie):
    assert json.loads((cookie / "cookie" / "class_ids.json").read_text()) == COOKIE_IDS
    assert load_dataset(cookie).value_maps == {"cookie": {253: "hole", 254: "crack", 255: "contamination"}}


def test_every_region_of_a_combined_image_is_named_by_its_own_type(cookie, tmp_path):
    report = convert(load_dataset(cookie), tmp_path / "o", ConvertOptions(formats=("coco",), classes="value"))
    assert report["classes"] == ["contamination", "crack", "hole"]
    value_of = {name: int(v) for v, name in COOKIE_IDS.items()}
    combined = [(img, a, names) for img, a, names in _coco(tmp_path / "o") if "/combined/" in img["source_file"]]
    assert len({img["source_file"] for img, _, _ in combined}) == 4
    per_image: dict[str, dict[str, np.ndarray]] = {}
    for img, ann, names in combined:
        source = cv2.imread(str(cookie / img["source_file"].replace("/rgb/", "/gt/")), cv2.IMREAD_UNCHANGED)
        pixels = _decode(ann, img)
        name = names[ann["category_id"]]
        assert set(np.unique(source[pixels]).tolist()) == {value_of[name]}  # the region holds only its type's value
        per_image.setdefault(img["source_file"], {}).setdefault(name, np.zeros_like(pixels))
        per_image[img["source_file"]][name] |= pixels
    kinds = set()
    for rel, by_name in per_image.items():
        source = cv2.imread(str(cookie / rel.replace("/rgb/", "/gt/")), cv2.IMREAD_UNCHANGED)
        for value in set(np.unique(source).tolist()) - {0}:
            assert np.array_equal(by_name[COOKIE_IDS[str(value)]], source == value)  # and every pixel of its value
        kinds.add(len(by_name))
    assert max(kinds) >= 2  # combined images really hold several types
    assert verify(tmp_path / "o")["passed"]


def test_value_classes_in_yolo_and_verify_catches_a_swapped_class(cookie, tmp_path):
    convert(load_dataset(cookie), tmp_path / "o", ConvertOptions(formats=("yolo", "yolo-seg"), classes="value"))
    assert verify(tmp_path / "o")["passed"]
    label = next(p for p in sorted((tmp_path / "o" / "yolo-seg" / "labels").rglob("*combined*.txt"))
                 if len({line.split()[0] for line in p.read_text().splitlines()}) > 1)
    lines = label.read_text().splitlines()
    first = lines[0].split()
    first[0] = str((int(first[0]) + 1) % 3)
    label.write_text("\n".join([" ".join(first), *lines[1:]]) + "\n")
    result = verify(tmp_path / "o")
    assert not result["passed"] and result["formats"]["yolo-seg"]["class_mismatch"] >= 1


def test_value_classes_are_named_by_each_formats_own_names_in_verify(cookie, tmp_path):
    """With --classes value, verify names a source region by the names of the format it checks
    (COCO's categories, YOLO's data.yaml), as it names the output's instances: a category renamed
    in the COCO files or in data.yaml is those files' problem, not a class mismatch of every instance
    of the class, in COCO and YOLO alike; and a swapped COCO category still is a mismatch."""
    out = tmp_path / "o"
    convert(load_dataset(cookie), out, ConvertOptions(formats=("coco", "yolo"), classes="value"))
    assert verify(out)["passed"]
    coco_file = out / "coco" / "annotations" / "instances_train.json"
    data = json.loads(coco_file.read_text())
    used = sorted({a["category_id"] for a in data["annotations"]})
    for path in (out / "coco" / "annotations").glob("instances_*.json"):  # the class renamed in every file
        renamed = data if path == coco_file else json.loads(path.read_text())
        next(c for c in renamed["categories"] if c["id"] == used[0])["name"] = "renamed"
        path.write_text(json.dumps(renamed))
    yaml_file = out / "yolo" / "data.yaml"
    yaml_file.write_text(yaml_file.read_text().replace(" contamination", " renamed", 1))
    result = verify(out)
    for fmt, where in (("coco", "instances_train.json: categories"), ("yolo", "data.yaml: names")):
        summary = result["formats"][fmt]
        assert not summary["passed"] and summary["class_mismatch"] == 0, (fmt, summary["problems"][:3])
        assert any(where in p for p in summary["problems"]), (fmt, summary["problems"][:3])
    swapped = next(a for a in data["annotations"] if a["category_id"] == used[0])
    swapped["category_id"] = used[1]
    coco_file.write_text(json.dumps(data))
    assert verify(out)["formats"]["coco"]["class_mismatch"] >= 1


def test_loco_overlapping_masks_give_one_instance_each(tiny_factory, tmp_path):
    """Two mask files of one image that overlap give two instances, whose union is the merged
    mask; --loco-merge merges them first (one region where they touch)."""
    root = tiny_factory("loco")
    ds = load_dataset(root)
    sample = next(s for s in ds.samples if len(s.masks) == 2)
    files = [cv2.imread(str(m), cv2.IMREAD_UNCHANGED) > 0 for m in sample.masks]
    assert (files[0] & files[1]).any()  # the generated files overlap, as LOCO's may
    convert(ds, tmp_path / "o", ConvertOptions(formats=("coco",)))
    mine = [(img, a) for img, a, _ in _coco(tmp_path / "o") if img["source_file"] == sample.relpath]
    regions = sum(cv2.connectedComponents(f.astype(np.uint8), connectivity=8)[0] - 1 for f in files)
    assert len(mine) == regions
    union = np.zeros_like(files[0])
    for img, ann in mine:
        union |= _decode(ann, img)
    assert np.array_equal(union, files[0] | files[1])
    assert verify(tmp_path / "o")["passed"]
    convert(ds, tmp_path / "m", ConvertOptions(formats=("coco",), merge_masks=True))
    merged = [(img, a) for img, a, _ in _coco(tmp_path / "m") if img["source_file"] == sample.relpath]
    assert len(merged) == cv2.connectedComponents((files[0] | files[1]).astype(np.uint8), connectivity=8)[0] - 1
    assert len(merged) < len(mine)
    assert verify(tmp_path / "m")["passed"]


def test_loco_value_classes_name_each_file_by_defects_config(tiny_factory, tmp_path):
    root = tiny_factory("loco")
    config = json.loads((root / "bottle" / "defects_config.json").read_text())
    by_value = {e["pixel_value"]: e["defect_name"] for e in config}
    report = convert(load_dataset(root), tmp_path / "o", ConvertOptions(formats=("coco",), classes="value"))
    assert set(by_value.values()) <= set(report["classes"])
    for img, ann, names in _coco(tmp_path / "o"):
        if not img["source_file"].startswith("bottle/"):
            continue
        stem = Path(img["source_file"])
        folder = root / "bottle" / "ground_truth" / stem.parent.name / stem.stem
        values = {int(cv2.imread(str(f), cv2.IMREAD_UNCHANGED)[_decode(ann, img)].max()) for f in sorted(folder.iterdir())
                  if (cv2.imread(str(f), cv2.IMREAD_UNCHANGED)[_decode(ann, img)] > 0).all()}
        assert names[ann["category_id"]] in {by_value[v] for v in values}


def test_an_unmapped_value_is_warned_counted_and_not_written(tiny_factory, tmp_path):
    root = tmp_path / "loco"
    shutil.copytree(tiny_factory("loco"), root)
    mask_path = sorted((root / "bottle" / "ground_truth").rglob("000.png"))[0]
    mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(mask_path), np.where(mask > 0, 77, 0).astype(np.uint8))
    checks = validate_dataset(root, workers=1)["checks"]
    assert checks["unmapped_mask_values"]["count"] == 1 and "77" in checks["unmapped_mask_values"]["examples"][0]
    assert checks["non_binary_values"]["count"] == 0  # mapped values are what the masks should hold
    regions = cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)[0] - 1
    report = convert(load_dataset(root), tmp_path / "o", ConvertOptions(formats=("coco", "yolo"), classes="value"))
    assert report["skipped"]["instances_of_unmapped_mask_values"] == regions
    assert report["findings"]["mask_value_unmapped"]["examples"] == [str(mask_path)]
    assert verify(tmp_path / "o")["passed"]
    with pytest.raises(OptionError, match="--strict"):
        convert(load_dataset(root), tmp_path / "s", ConvertOptions(formats=("coco",), classes="value", strict=True))
    assert not (tmp_path / "s").exists()


def test_summary_lists_value_classes(cookie):
    (summary,) = summarize(load_dataset(cookie), workers=1)
    assert [(v["value"], v["name"]) for v in summary.value_classes] == [(253, "hole"), (254, "crack"),
                                                                          (255, "contamination")]
    assert all(v["regions"] > 0 for v in summary.value_classes)
    assert "253: hole" in summary.block()


def test_value_mode_needs_a_mapping(tiny_mvtec, tiny_factory, tmp_path):
    with pytest.raises(OptionError, match="mask value mapping"):
        convert(load_dataset(tiny_mvtec), tmp_path / "o", ConvertOptions(classes="value"))
    root = tmp_path / "visa"
    shutil.copytree(tiny_factory("visa"), root)
    with pytest.raises(OptionError, match="id2class.json"):
        convert(load_dataset(root), tmp_path / "v", ConvertOptions(classes="value"))
    ids = {"bottle": {"0": "BACKGROUND", "1": "Broken Large", "2": "broken small", "3": "Contamination"},
           "grid": {"0": "BACKGROUND", "1": "bent", "2": "thread"}}
    (root / "id2class.json").write_text(json.dumps(ids))
    report = convert(load_dataset(root), tmp_path / "v", ConvertOptions(formats=("coco",), classes="value"))
    assert report["classes"] == ["bent", "broken_large", "broken_small", "contamination", "thread"]
    assert verify(tmp_path / "v")["passed"]


def test_a_broken_mapping_file_is_named_and_blocks_only_value_classes(cookie, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(cookie, root)
    ids = root / "cookie" / "class_ids.json"
    for text, why in (('{"255": "contamination", "x": "crack"}', "'x'"),
                      ('{"255": "contamination", "0255": "crack"}', "listed twice"),  # int() would merge them
                      ('{"255": "contamination", "255": "crack"}', "given twice"),  # json would keep the last
                      ('{"2_55": "crack"}', "'2_55'")):
        ids.write_text(text)
        dataset = load_dataset(root)  # the mapping matters to --classes value only
        assert why in dataset.value_map_problems["cookie"]
        with pytest.raises(DatasetError, match="class_ids.json") as err:
            convert(dataset, tmp_path / "o", ConvertOptions(classes="value"))
        assert why in str(err.value) and not (tmp_path / "o").exists()
    assert validate_dataset(root, workers=1)["checks"]["unreadable_mapping"]["count"] == 1
    assert convert(load_dataset(root), tmp_path / "t", ConvertOptions(formats=("coco",)))["instances_total"] > 0
    ids.write_text('{"0": "good"}')
    with pytest.raises(OptionError, match="names no defect"):
        convert(load_dataset(root), tmp_path / "e", ConvertOptions(classes="value"))


def test_masks_that_cannot_hold_exact_values_are_refused(cookie, tmp_path):
    from mvtec2coco.errors import BrokenFileError

    root = tmp_path / "c"
    shutil.copytree(cookie, root)
    mask = sorted((root / "cookie" / "test" / "crack" / "gt").glob("*.png"))[0]
    values = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
    ok, jpeg = cv2.imencode(".jpg", values)
    mask.write_bytes(jpeg.tobytes())  # a JPEG under a .png name: its 253-255 noise must not become instances
    with pytest.raises(BrokenFileError, match="JPEG"):
        convert(load_dataset(root), tmp_path / "o", ConvertOptions(classes="value"))
    assert not (tmp_path / "o").exists()
    (summary,) = summarize(load_dataset(root), workers=1)  # summary still runs, counting by value where it can
    assert summary.value_classes


def test_tiles_refuse_value_classes_and_separate_mask_files(cookie, tiny_factory, tmp_path):
    with pytest.raises(OptionError, match="mask value"):
        convert(load_dataset(cookie), tmp_path / "a", ConvertOptions(classes="value"), tiles=TileOptions(64))
    with pytest.raises(OptionError, match="--loco-merge"):
        convert(load_dataset(tiny_factory("loco")), tmp_path / "b", ConvertOptions(), tiles=TileOptions(64))
    report = convert(load_dataset(tiny_factory("loco")), tmp_path / "c", ConvertOptions(merge_masks=True),
                     tiles=TileOptions(64))
    assert report["tiling"]["size"] == 64
