"""Readers on generated trees: every layout, every error case, junk tolerance, detection."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from mvtec2coco.datasets import LAYOUTS, detect_layout, load_dataset
from mvtec2coco.errors import (
    BrokenFileError,
    EmptyCategoryError,
    PairingError,
    SizeMismatchError,
    UnknownLayoutError,
)
from mvtec2coco.synth.presets import PRESETS

TINY = PRESETS["tiny"]
TOTAL = sum(c.train_good + sum(c.test.values()) for c in TINY)  # 34
CATEGORY_NAMES = {"btad": ["01", "02"], "mpdd": ["bracket_black", "bracket_brown"]}  # the datasets' own names


@pytest.mark.parametrize("layout", LAYOUTS)
def test_detects_each_layout(tiny_factory, layout):
    root = tiny_factory(layout)
    assert detect_layout(root) == layout
    dataset = load_dataset(root)
    assert dataset.layout == layout
    assert dataset.categories == CATEGORY_NAMES.get(layout, ["bottle", "grid"])


def test_mvtec_counts_labels_and_masks(tiny_mvtec):
    ds = load_dataset(tiny_mvtec)
    assert len(ds.samples) == TOTAL
    assert ds.defect_types("bottle") == ["broken_large", "broken_small", "contamination"]
    counts = ds.counts()
    assert counts[("bottle", "train", "good")] == 8
    assert counts[("bottle", "test", "broken_small")] == 3
    for s in ds.samples:
        assert bool(s.masks) == (not s.is_good)
        if s.masks:
            assert s.masks[0].name == s.image.stem + "_mask.png"
    grid = [s for s in ds.samples if s.category == "grid"]
    assert {(s.width, s.height, s.channels) for s in grid} == {(80, 80, 1)}
    assert ds.samples == tuple(sorted(ds.samples, key=lambda s: s.id))


def test_one_category_folder_as_root(tiny_mvtec):
    ds = load_dataset(tiny_mvtec / "grid")
    assert ds.categories == ["grid"]
    assert ds.samples[0].id.startswith("grid/")


def test_mvtec2_private_sets_are_unlabeled(tiny_factory):
    ds = load_dataset(tiny_factory("mvtec2"))
    splits = {s.split for s in ds.samples}
    assert {"train", "validation", "test_public", "test_private"} <= splits
    private = [s for s in ds.samples if s.split == "test_private"]
    assert private and all(s.label is None and not s.masks for s in private)
    bad = [s for s in ds.samples if s.label == "bad"]
    assert bad and all(s.masks[0].parent.name == "bad" for s in bad)


def test_loco_has_several_masks_with_odd_values(tiny_factory):
    ds = load_dataset(tiny_factory("loco"))
    defects = [s for s in ds.samples if s.masks]
    assert {s.label for s in defects} == {"logical_anomalies", "structural_anomalies"}
    multi = [s for s in defects if len(s.masks) > 1]
    assert multi, "the generator spreads regions over several files"
    values = set(np.unique(cv2.imread(str(multi[0].masks[1]), cv2.IMREAD_UNCHANGED)).tolist())
    assert values - {0, 255}


def test_mvtec3d_uses_rgb_and_gt_and_ignores_xyz(tiny_factory):
    ds = load_dataset(tiny_factory("mvtec3d"))
    assert all(s.image.parent.name == "rgb" for s in ds.samples)
    good_with_gt = [s for s in ds.samples if s.is_good and s.masks]
    assert good_with_gt and all(m.parent.name == "gt" for s in good_with_gt for m in s.masks)
    assert not any(m.suffix == ".tiff" for s in ds.samples for m in s.masks)


def test_visa_split_csv_and_type_names(tiny_factory, tmp_path):
    root = tiny_factory("visa")
    ds = load_dataset(root)
    assert {s.split for s in ds.samples} == {"train", "test"}
    assert ds.defect_types("bottle") == ["broken_large", "broken_small", "contamination"]
    assert all(s.image.suffix == ".JPG" for s in ds.samples)
    # without the official CSV and annotation files: split 'all', type 'anomaly'
    copy = tmp_path / "visa"
    shutil.copytree(root, copy)
    shutil.rmtree(copy / "split_csv")
    for anno in copy.glob("*/image_anno.csv"):
        anno.unlink()
    ds = load_dataset(copy)
    assert {s.split for s in ds.samples} == {"all"}
    assert ds.defect_types() == ["anomaly"]


def test_folder_layout_pairs_masks(tiny_factory):
    ds = load_dataset(tiny_factory("folder"))
    assert {s.split for s in ds.samples} == {"all"}
    assert all(s.masks[0].parent.parent.name == "masks" for s in ds.samples if not s.is_good)


def test_junk_files_are_ignored(tiny_copy):
    for junk in ("Thumbs.db", "license.txt", "readme.txt", ".DS_Store"):
        (tiny_copy / "bottle" / "test" / "broken_large" / junk).write_text("x")
        (tiny_copy / "bottle" / "ground_truth" / "broken_large" / junk).write_text("x")
    assert len(load_dataset(tiny_copy).samples) == TOTAL


def test_defect_image_without_mask(tiny_copy):
    mask = tiny_copy / "bottle/ground_truth/broken_small/001_mask.png"
    mask.unlink()
    with pytest.raises(PairingError) as err:
        load_dataset(tiny_copy)
    assert err.value.path == (tiny_copy / "bottle/test/broken_small/001.png").resolve()
    assert "no mask" in str(err.value)


def test_mask_without_image(tiny_copy):
    (tiny_copy / "bottle/test/contamination/002.png").unlink()
    with pytest.raises(PairingError) as err:
        load_dataset(tiny_copy)
    assert err.value.path.name == "002_mask.png" and "no image" in str(err.value)


def test_mask_size_differs_from_image(tiny_copy):
    path = tiny_copy / "grid/ground_truth/bent/000_mask.png"
    cv2.imwrite(str(path), np.zeros((40, 40), np.uint8))
    with pytest.raises(SizeMismatchError) as err:
        load_dataset(tiny_copy)
    assert err.value.path.name == "000_mask.png" and "40x40" in str(err.value)


def test_truncated_png(tiny_copy):
    path = tiny_copy / "bottle/train/good/003.png"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(BrokenFileError) as err:
        load_dataset(tiny_copy)
    assert err.value.path.name == "003.png" and "truncated" in str(err.value)


def test_unreadable_file(tiny_copy):
    path = tiny_copy / "bottle/train/good/004.png"
    path.write_bytes(b"not an image at all")
    with pytest.raises(BrokenFileError) as err:
        load_dataset(tiny_copy)
    assert err.value.path.name == "004.png"


def test_truncated_jpeg(tiny_factory, tmp_path):
    copy = tmp_path / "visa"
    shutil.copytree(tiny_factory("visa"), copy)
    path = copy / "grid/Data/Images/Normal/0001.JPG"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(BrokenFileError) as err:
        load_dataset(copy)
    assert err.value.path.name == "0001.JPG"


def test_empty_category(tmp_path):
    for part in ("train/good", "test/good"):
        (tmp_path / "widget" / part).mkdir(parents=True)
    with pytest.raises(EmptyCategoryError) as err:
        load_dataset(tmp_path)
    assert err.value.path.name == "widget"


def test_unknown_layout(tmp_path):
    (tmp_path / "random" / "stuff").mkdir(parents=True)
    with pytest.raises(UnknownLayoutError) as err:
        load_dataset(tmp_path)
    assert Path(err.value.path) == tmp_path and "--layout" in str(err.value)


def test_missing_category_name(tiny_mvtec):
    with pytest.raises(Exception, match="no category named cable"):
        load_dataset(tiny_mvtec, categories=["cable"])


@pytest.mark.parametrize("pathlib_child", [True, False])
def test_listing_paths_and_ids_equal_plain_joins(tiny_factory, monkeypatch, pathlib_child):
    """The listing builds children without re-parsing names, and ids from strings: both must
    give what ``/`` and ``sample_id`` give (also where pathlib lacks its private helper)."""
    from mvtec2coco.datasets import common

    if not pathlib_child:
        monkeypatch.setattr(common, "_CHILD", None)
    for layout in ("mvtec", "btad", "mpdd"):
        ds = load_dataset(tiny_factory(layout))
        for s in ds.samples:
            assert s.image == s.image.parent / s.image.name and str(s.image) == str(Path(str(s.image)))
            assert s.id == common.sample_id(ds.root, Path(str(s.image)))
            assert s.id.endswith(s.image.stem)
            for mask in s.masks:
                assert mask.is_file() and mask.parent.name == s.label and mask.stem.startswith(s.image.stem)
    assert sum(len(s.masks) for s in ds.samples) > 0
    names = ["a.png", "b c.png", "d.e.png"]
    assert common.children(ds.root, names) == [ds.root / n for n in names]


def test_split_csv_quotes_fields_as_csv_does(tiny_mvtec):
    """``split.csv`` is written without the csv module when no field needs quoting; any field
    that does (a comma, a quote, a line break in an id or a label) gets csv's own quoting, and
    the file reads back to the same rows."""
    import csv
    import dataclasses
    import io

    from mvtec2coco.split import Split, manifest_text

    samples = sorted(load_dataset(tiny_mvtec).samples, key=lambda s: s.id)
    plain = Split({s.id: "train" for s in samples})
    text = manifest_text(samples, plain)
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + len(samples) and [r[0] for r in rows[1:]] == [s.id for s in samples]
    odd = [dataclasses.replace(samples[0], id='a,b"c', label="x,y"), dataclasses.replace(samples[1], id="n\nl", label=None)]
    text = manifest_text(odd, Split({'a,b"c': "train", "n\nl": "test"}))
    rows = list(csv.reader(io.StringIO(text)))
    assert [r[:4] for r in rows[1:]] == [["a,b\"c", odd[0].relpath, "train", "x,y"], ["n\nl", odd[1].relpath, "test", ""]]
