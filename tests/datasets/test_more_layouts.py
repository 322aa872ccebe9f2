"""Real-IAD, BTAD, KolektorSDD, KSDD2, DAGM 2007, MPDD and Eyecandies on generated trees: pairing,
splits, parts and views, junk, a missing mask named in the error, and convert + verify."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from mvtec2coco.convert import ConvertOptions, convert
from mvtec2coco.datasets import detect_layout, load_dataset
from mvtec2coco.errors import PairingError
from mvtec2coco.split import make_split
from mvtec2coco.synth.presets import PRESETS
from mvtec2coco.verify import verify

NEW = ("realiad", "btad", "kolektor", "ksdd2", "dagm", "mpdd", "eyecandies")
TINY = PRESETS["tiny"]
DEFECTS = sum(n for c in TINY for label, n in c.test.items() if label != "good")  # 15
GOODS = sum(c.train_good + c.test["good"] for c in TINY)  # 19


@pytest.fixture()
def copy_of(tiny_factory, tmp_path):
    def make(layout: str) -> Path:
        dst = tmp_path / layout
        shutil.copytree(tiny_factory(layout), dst)
        return dst
    return make


@pytest.mark.parametrize("layout", NEW)
def test_each_layout_converts_and_verifies(tiny_factory, tmp_path, layout):
    root = tiny_factory(layout)
    assert detect_layout(root) == layout
    dataset = load_dataset(root)
    report = convert(dataset, tmp_path / "o", ConvertOptions(formats=("yolo", "yolo-seg", "coco")))
    assert report["instances_total"] > 0
    result = verify(tmp_path / "o")
    assert result["passed"], {f: r["problems"][:3] for f, r in result["formats"].items()}


@pytest.mark.parametrize("layout", NEW)
def test_a_missing_mask_is_named(copy_of, layout):
    root = copy_of(layout)
    sample = next(s for s in load_dataset(root).samples if not s.is_good and s.is_labeled)
    missing = sample.masks[0]
    missing.unlink()
    with pytest.raises(PairingError) as err:
        load_dataset(root)
    assert missing.name in str(err.value) or missing.stem in str(err.value)


@pytest.mark.parametrize("layout", NEW)
def test_junk_files_are_ignored(copy_of, layout):
    root = copy_of(layout)
    before = load_dataset(root).samples
    category = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("realiad_jsons", ".")))[0]
    for junk in (".DS_Store", "Thumbs.db", "license.txt"):
        (category / junk).write_text("junk\n")
    assert load_dataset(root).samples == before


def test_realiad_views_parts_and_json_split(tiny_factory):
    ds = load_dataset(tiny_factory("realiad"))
    parts = Counter(s.group for s in ds.samples)
    assert set(parts.values()) == {5}  # five camera views per physical part
    assert {s.view for s in ds.samples} == {f"C{k}" for k in range(1, 6)}
    assert {s.split for s in ds.samples} == {"train", "test"}  # from realiad_jsons/<category>.json
    # the fifth camera of a defective part sees no defect: a good view, as the dataset's own evaluation says
    c5 = [s for s in ds.samples if "/NG/" in s.group and s.view == "C5"]
    assert c5 and all(s.is_good and not s.masks for s in c5)
    assert sum(not s.is_good for s in ds.samples) == DEFECTS * 4


def test_realiad_split_group_keeps_every_view_of_a_part_together(tiny_factory):
    samples = list(load_dataset(tiny_factory("realiad")).samples)
    by_group = make_split(samples, "0.6,0.2,0.2", seed=3, group="sample")
    subsets: dict[str, set[str]] = {}
    for s in samples:
        subsets.setdefault(s.group, set()).add(by_group.subsets[s.id])
    assert all(len(v) == 1 for v in subsets.values())
    assert {"train", "val", "test"} == {next(iter(v)) for v in subsets.values()}
    plain = make_split(samples, "0.6,0.2,0.2", seed=3)
    scattered = {g for g in subsets if len({plain.subsets[s.id] for s in samples if s.group == g}) > 1}
    assert scattered  # without the option the views of a part are split apart


def test_realiad_without_its_json_uses_folders(copy_of):
    root = copy_of("realiad")
    shutil.rmtree(root / "realiad_jsons")
    with pytest.raises(PairingError):  # the C5 view of a defective part has no mask: the JSON said it was good
        load_dataset(root)


def test_kolektor_labels_come_from_the_masks_and_parts_group(tiny_factory):
    ds = load_dataset(tiny_factory("kolektor"))
    assert Counter(s.label for s in ds.samples) == {"good": GOODS, "defect": DEFECTS}
    assert all(len(s.masks) == 1 and s.masks[0].name == f"{s.image.stem}_label.bmp" for s in ds.samples)
    assert all(s.split == "all" and s.group.startswith(f"{s.category}/kos") for s in ds.samples)
    for s in ds.samples:
        assert bool(cv2.imread(str(s.masks[0]), cv2.IMREAD_GRAYSCALE).any()) == (s.label == "defect")


def test_ksdd2_official_split_and_gt_pairing(tiny_factory):
    ds = load_dataset(tiny_factory("ksdd2"))
    assert {s.split for s in ds.samples} == {"train", "test"}
    assert all(s.masks[0].name == f"{s.image.stem}_GT.png" for s in ds.samples)
    assert sum(s.label == "defect" for s in ds.samples) == DEFECTS


def test_dagm_reads_labels_txt(copy_of):
    root = copy_of("dagm")
    ds = load_dataset(root)
    assert Counter(s.label for s in ds.samples) == {"good": GOODS, "defect": DEFECTS}
    assert all(s.masks[0].parent.name == "Label" for s in ds.samples if s.masks)
    labels = root / "bottle" / "Test" / "Label" / "Labels.txt"
    lines = labels.read_text().splitlines()
    flagged = next(k for k, line in enumerate(lines) if line.split()[1:2] == ["1"])
    parts = lines[flagged].split()
    lines[flagged] = "\t".join([parts[0], "0", parts[2], "0", "0"])  # the row now says good: its label file is an orphan
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(PairingError, match="mask has no image"):
        load_dataset(root)


def test_btad_ok_ko_and_mixed_extensions(tiny_factory):
    ds = load_dataset(tiny_factory("btad"))
    assert ds.categories == ["01", "02"]
    assert {s.image.suffix for s in ds.samples if s.category == "01"} == {".bmp"}
    assert {s.label for s in ds.samples} == {"good", "ko"}
    assert all(s.masks[0].stem == s.image.stem for s in ds.samples if s.masks)


def test_mpdd_reads_both_mask_namings(tiny_factory):
    ds = load_dataset(tiny_factory("mpdd"))
    names = {s.category: {m.name.endswith("_mask.png") for m in s.masks} for s in ds.samples if s.masks}
    assert names == {"bracket_black": {True}, "bracket_brown": {False}}


def test_eyecandies_lighting_views_and_labels(tiny_factory):
    ds = load_dataset(tiny_factory("eyecandies"))
    assert {s.view for s in ds.samples} == {f"image_{k}" for k in range(6)}
    public = [s for s in ds.samples if s.split == "test_public"]
    assert Counter(s.label for s in public) == {"defect": DEFECTS * 6, "good": 5 * 6}
    assert {s.label for s in ds.samples if s.split == "test_private"} == {None}
    assert all(s.masks[0].name == s.group.rsplit("/", 1)[1] + "_mask.png" for s in public)


def test_eyecandies_metadata_missing_is_named(copy_of):
    root = copy_of("eyecandies")
    meta = next((root / "bottle" / "test_public" / "data").glob("*_metadata.yaml"))
    meta.unlink()
    with pytest.raises(PairingError, match="metadata"):
        load_dataset(root)


def test_validate_reports_layout_quirks(tiny_factory):
    from mvtec2coco.validate import validate_dataset

    result = validate_dataset(tiny_factory("dagm"), workers=1)
    assert result["checks"]["layout_quirks"]["count"] == 1
    assert "ellipses" in result["checks"]["layout_quirks"]["examples"][0]
    assert result["errors"] == 0


def test_split_group_in_the_manifest(tiny_factory, tmp_path):
    import csv

    report = convert(load_dataset(tiny_factory("realiad")), tmp_path / "o",
                     ConvertOptions(formats=("coco",), split_group="sample"))
    assert report["options"]["split_group"] == "sample"
    with open(tmp_path / "o" / "meta" / "split.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_group: dict[str, set[str]] = {}
    for row in rows:
        by_group.setdefault(row["group"], set()).add(row["subset"])
    assert rows[0]["view"].startswith("C") and all(len(v) == 1 for v in by_group.values())


def test_real_layout_json_is_read_relative_to_category(tiny_factory):
    data = json.loads((tiny_factory("realiad") / "realiad_jsons" / "bottle.json").read_text())
    assert {"meta", "train", "test"} <= set(data) and data["test"][0]["image_path"].startswith(("OK/", "NG/"))
    assert np.all([e["mask_path"] is None or e["mask_path"].endswith(".png") for e in data["test"]])


def test_split_warns_when_views_of_a_part_land_in_several_subsets(tiny_factory):
    samples = list(load_dataset(tiny_factory("realiad")).samples)
    plain = make_split(samples, "0.6,0.2,0.2", seed=3)
    assert any("--split-group sample" in w for w in plain.warnings)
    grouped = make_split(samples, "0.6,0.2,0.2", seed=3, group="sample")
    assert not any("several subsets" in w for w in grouped.warnings)
    mvtec = list(load_dataset(tiny_factory("mvtec")).samples)
    assert any("no physical parts" in w for w in make_split(mvtec, "0.6,0.2,0.2", group="sample").warnings)


def test_realiad_split_file_problems_are_named(copy_of):
    root = copy_of("realiad")
    path = root / "realiad_jsons" / "bottle.json"
    data = json.loads(path.read_text())
    data["test"].append({**data["test"][0], "image_path": "NG/gone/S9999/nowhere.jpg"})
    path.write_text(json.dumps(data))
    with pytest.raises(PairingError, match="do not exist"):
        load_dataset(root)
    data["test"].pop()
    data["test"].append(data["train"][0])
    path.write_text("\ufeff" + json.dumps(data))  # a BOM is accepted; an image listed twice is not
    with pytest.raises(Exception, match="listed twice"):
        load_dataset(root)


def test_dagm_labels_txt_listing_a_missing_image_is_named(copy_of):
    root = copy_of("dagm")
    labels = root / "bottle" / "Test" / "Label" / "Labels.txt"
    labels.write_text(labels.read_text() + "99\t0\t9999.PNG\t0\t0\n")
    with pytest.raises(PairingError, match="9999.PNG"):
        load_dataset(root)


def test_eyecandies_anomalous_must_be_zero_or_one(copy_of):
    from mvtec2coco.errors import BrokenFileError

    root = copy_of("eyecandies")
    meta = sorted((root / "bottle" / "test_public" / "data").glob("*_metadata.yaml"))[0]
    for text in ("anomalous: .inf\n", "anomalous: 0.7\n", "anomalous: [1]\n"):
        meta.write_text(text)
        with pytest.raises(BrokenFileError, match="0 or 1"):
            load_dataset(root)


def test_visa_csv_that_is_not_utf8_is_named(copy_of):
    from mvtec2coco.errors import DatasetError

    root = copy_of("visa")
    anno = root / "bottle" / "image_anno.csv"
    anno.write_bytes(anno.read_bytes() + "x.JPG,caf\xe9,\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="image_anno.csv"):
        load_dataset(root)
