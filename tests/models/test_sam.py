"""SAM fine-tuning with the tiny model: training IoU rises, cache reuse, prompts, losses, predict."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")

from mvtec2coco.models.sam.config import SamConfig  # noqa: E402
from mvtec2coco.models.sam.data import jitter_boxes, low_res_target, mask_losses  # noqa: E402
from mvtec2coco.models.sam.train import main as train_sam  # noqa: E402

from ..helpers import run_cli, stop_after  # noqa: E402


def make_blob_dataset(root: Path, defects: int = 16) -> Path:
    """An MVTec-layout dataset with large elliptic defects (the tiny SAM sees them on its 64x64 grid)."""
    rng = np.random.default_rng(0)
    base = root / "widget"
    for split, label, n in (("train", "good", 4), ("test", "good", 2), ("test", "dent", defects)):
        (base / split / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(60, 90, (128, 128, 3)).astype(np.uint8)
            if label != "good":
                m = np.zeros((128, 128), np.uint8)
                for _ in range(int(rng.integers(1, 3))):
                    centre = tuple(int(v) for v in rng.integers(30, 98, 2))
                    axes = (int(rng.integers(10, 25)), int(rng.integers(10, 25)))
                    cv2.ellipse(m, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
                img[m > 0] = rng.integers(150, 200, 3).astype(np.uint8)
                (base / "ground_truth" / label).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(base / "ground_truth" / label / f"{i:03d}_mask.png"), m * 255)
            cv2.imwrite(str(base / split / label / f"{i:03d}.png"), img)
    return root


@pytest.fixture(scope="module")
def blob_coco(tmp_path_factory) -> Path:
    root = make_blob_dataset(tmp_path_factory.mktemp("blob") / "data")
    out = root.parent / "coco"
    run_cli("convert", root, "--format", "coco", "--out", out, "--split", "0.6,0.2,0.2", check=True)
    return out / "annotations"


@pytest.fixture(scope="module")
def trained(blob_coco, tmp_path_factory):
    run = tmp_path_factory.mktemp("samrun") / "run"
    cfg = SamConfig(data=str(blob_coco.parent), model_type="tiny", checkpoint="none", epochs=8, images_per_step=2,
                    lr=3e-3, warmup_steps=3, device="cpu", box_jitter=0.05)
    summary = train_sam(cfg, run, progress=False)
    return run, summary


@pytest.mark.slow
def test_training_iou_rises(trained):
    run, summary = trained
    curve = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert summary["steps"] >= 30
    assert curve[-1]["train_iou"] > curve[0]["train_iou"] + 0.15
    assert summary["after"]["val"]["all"]["iou"] > summary["before"]["val"]["all"]["iou"] + 0.1
    assert set(summary["after"]) == {"val", "test"} and "dent" in summary["after"]["test"]
    for name in ("decoder.pt", "summary.json", "overlay_val.png", "overlay_test.png"):
        assert (run / name).is_file()


@pytest.mark.slow
def test_embedding_cache_is_reused(trained):
    run, summary = trained
    curve = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    images = len(list((run / "embeddings").glob("*.pt")))
    assert curve[0]["encoder_calls"] == curve[-1]["encoder_calls"] == summary["encoder_calls"] == images
    assert all(torch.load(p, weights_only=True).dtype == torch.float16 for p in (run / "embeddings").glob("*.pt"))


@pytest.mark.slow
def test_checkpoint_holds_trained_parts_and_loads_on_cpu(trained):
    run, _ = trained
    state = torch.load(run / "decoder.pt", map_location="cpu", weights_only=False)
    assert set(state) == {"model_type", "config", "mask_decoder"}
    from mvtec2coco.models.sam.data import load_trained
    from mvtec2coco.models.sam.network import build_sam

    sam = load_trained(build_sam("tiny", None), run / "decoder.pt")
    assert torch.equal(sam.mask_decoder.state_dict()["iou_token.weight"], state["mask_decoder"]["iou_token.weight"])


def test_jittered_boxes_stay_inside_the_image():
    rng = np.random.default_rng(0)
    boxes = np.array([[0, 0, 10, 10], [90, 40, 99, 79], [30, 30, 31, 31]], np.float64)
    for _ in range(200):
        out = jitter_boxes(boxes, 0.5, 80, 100, rng)
        assert (out[:, 0] >= 0).all() and (out[:, 2] <= 99).all() and (out[:, 1] >= 0).all() and (out[:, 3] <= 79).all()
        assert (out[:, 2] >= out[:, 0]).all() and (out[:, 3] >= out[:, 1]).all()
    assert np.array_equal(jitter_boxes(boxes[:1], 0.0, 80, 100, rng), boxes[:1])


def test_losses_match_hand_computation():
    logits = torch.tensor([[[2.0, -1.0], [0.5, -3.0]]])
    target = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    iou_pred = torch.tensor([0.3])
    parts = mask_losses(logits, target, iou_pred, "bce")
    p = torch.sigmoid(logits)
    bce = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    assert torch.isclose(parts["mask"], bce) and torch.isclose(parts["dice"], dice)
    assert parts["true_iou"].item() == pytest.approx(2 / 3)  # predicted {a, c}, true {a, c, d}
    assert parts["iou"].item() == pytest.approx((0.3 - 2 / 3) ** 2)
    focal = mask_losses(logits, target, iou_pred, "focal")["mask"]
    pt = p * target + (1 - p) * (1 - target)
    alpha = 0.25 * target + 0.75 * (1 - target)
    assert torch.isclose(focal, (alpha * (1 - pt) ** 2 * -torch.log(pt)).mean(), atol=1e-6)


def test_low_res_target_follows_the_image_transform():
    mask = np.zeros((100, 200), np.uint8)
    mask[:, :100] = 1  # left half of a wide image
    target = low_res_target(mask, 256)  # resized to 256 x 128, padded to 256 x 256, grid 64 x 64
    assert target.shape == (64, 64)
    assert target[:32, :32].min() > 0.99 and target[:32, 33:].max() < 0.01 and target[33:].max() < 0.01


def _load_results(gt_file: Path, out: Path):
    """The ground truth and ``results.json`` loaded as COCOeval would load them."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        return gt, gt.loadRes(str(out / "results.json"))


@pytest.mark.slow
def test_predict_with_ground_truth_prompts_is_keyed_by_the_ground_truth(trained, blob_coco, tmp_path):
    run, _ = trained
    out = tmp_path / "pred"
    result = run_cli("sam", "predict", run, "--data", blob_coco.parent, "--split", "test", "--prompts", "ground-truth",
                     "--out", out, "--device", "auto")
    assert result.returncode == 0, result.stderr[-2000:]
    gt_file = blob_coco / "instances_test.json"
    gt, dt = _load_results(gt_file, out)
    data = json.loads((out / "predictions.json").read_text())
    assert [{k: i[k] for k in ("id", "file_name", "width", "height", "source_file")} for i in data["images"]] == \
        json.loads(gt_file.read_text())["images"]
    assert len(dt.getAnnIds()) == len(gt.getAnnIds())
    for a in data["annotations"]:  # each mask's own box, exactly, in the edge convention; area = its pixels
        ys, xs = np.nonzero(dt.annToMask(a))
        assert a["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
        assert a["area"] == len(xs)
    assert not (out / "embeddings").exists()


def two_folders_with_the_same_names(root: Path) -> Path:
    """Two defect types whose images share file names (every MVTec defect folder has a 000.png);
    the first type's defects lie in the top half, the second's in the bottom half."""
    base = root / "widget"
    for split, label in (("train", "good"), ("test", "good"), ("test", "top"), ("test", "bottom")):
        (base / split / label).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            img = np.full((64, 64, 3), 80, np.uint8)
            if label in ("top", "bottom"):
                m = np.zeros((64, 64), np.uint8)
                y = 4 + 4 * i if label == "top" else 44 + 4 * i
                m[y : y + 10, 10 + 5 * i : 30 + 5 * i] = 255
                img[m > 0] = 200
                (base / "ground_truth" / label).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(base / "ground_truth" / label / f"{i:03d}_mask.png"), m)
            cv2.imwrite(str(base / split / label / f"{i:03d}.png"), img)
    return root


def test_boxes_are_found_by_relative_path_never_by_bare_file_name(tmp_path):
    """Boxes of ``test/top/000.png`` must never prompt SAM on ``test/bottom/000.png``."""
    from mvtec2coco.models.common.inputs import prediction_inputs
    from mvtec2coco.models.sam.predict import boxes_from_file

    data = two_folders_with_the_same_names(tmp_path / "data")
    out = tmp_path / "out"
    run_cli("convert", data, "--format", "coco", "--out", out, "--split", "official", "--names", "mirror", check=True)
    gt_file = out / "annotations" / "instances_test.json"
    gt = json.loads(gt_file.read_text())
    names = [i["file_name"] for i in gt["images"]]
    assert "widget/test/top/000.png" in names and "widget/test/bottom/000.png" in names
    # a box file that is not keyed by this ground truth: matched by relative file name
    foreign = {"images": [{"id": 7, "file_name": "widget/test/top/000.png", "width": 64, "height": 64}],
               "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "bbox": [10, 4, 20, 10], "score": 0.9}],
               "categories": [{"id": 1, "name": "top"}]}
    box_file = tmp_path / "boxes.json"
    box_file.write_text(json.dumps(foreign))
    inputs = prediction_inputs(out, "test", None)
    found = boxes_from_file(box_file, inputs)
    by_name = {i.file_name: found[i.id] for i in inputs.images}
    assert len(by_name["widget/test/top/000.png"]) == 1
    assert by_name["widget/test/bottom/000.png"] == [] and by_name["widget/test/good/000.png"] == []
    # the same images given as a folder keep their relative names, not bare ones
    folder = prediction_inputs(None, None, [data / "widget" / "test"])
    assert sorted(i.file_name for i in folder.images)[:2] == ["bottom/000.png", "bottom/001.png"]
    assert len({i.file_name for i in folder.images}) == 9


@pytest.mark.slow
def test_predict_from_a_detector_results_file(trained, blob_coco, tmp_path):
    run, _ = trained
    gt_file = blob_coco / "instances_test.json"
    gt = json.loads(gt_file.read_text())
    detections = tmp_path / "det"
    detections.mkdir()
    # a detector's predictions.json keyed by the same ground truth: its boxes are the true ones
    from mvtec2coco.formats.coco import write_predictions

    anns = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.5, "iscrowd": 0}
            for a in gt["annotations"]]
    write_predictions(detections, gt["images"], gt["categories"], anns, {"ground_truth": str(gt_file.resolve())})
    out = tmp_path / "pred"
    result = run_cli("sam", "predict", run, "--data", blob_coco.parent, "--boxes", detections / "predictions.json",
                     "--out", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    gt_coco, dt = _load_results(gt_file, out)
    assert len(dt.getAnnIds()) == len(anns)
    assert all(0 < a["score"] <= 0.5 + 1e-6 for a in dt.loadAnns(dt.getAnnIds()))
    assert len(list((out / "overlays").glob("*.png"))) == len(gt["images"])


@pytest.mark.slow
def test_predict_from_a_detector_run(blob_coco, tmp_path):
    pytest.importorskip("ultralytics")
    from ultralytics import YOLO

    yolo_out = tmp_path / "yolo"
    run_cli("convert", blob_coco.parent.parent / "data", "--format", "yolo", "--out", yolo_out,
            "--split", "0.6,0.2,0.2", check=True)
    YOLO("yolov8n.yaml").train(data=str(yolo_out / "data.yaml"), epochs=1, imgsz=128, batch=4, device="cpu", amp=False,
                               workers=0, plots=False, project=str(tmp_path), name="det", verbose=False, val=False)
    weights = tmp_path / "det" / "weights" / "last.pt"
    out = tmp_path / "pred2"
    result = run_cli("sam", "predict", "none", "--model-type", "tiny", "--detector", weights, "--conf", "0.0001",
                     "--max-det", "3", "--out", out, "--device", "cpu", "--data", blob_coco.parent, "--split", "test")
    assert result.returncode == 0, result.stderr[-2000:]
    gt, dt = _load_results(blob_coco / "instances_test.json", out)
    assert len(dt.getAnnIds()) >= 1 and set(dt.getImgIds()) <= set(gt.getImgIds())


@pytest.mark.slow
def test_resume_reaches_the_same_weights(blob_coco, tmp_path, monkeypatch):
    """A run stopped after its second epoch and resumed ends with the weights of an unstopped run."""
    from mvtec2coco.models.sam import train as sam_train

    cfg = SamConfig(data=str(blob_coco.parent), model_type="tiny", checkpoint="none", epochs=4, images_per_step=3,
                    lr=3e-3, warmup_steps=2, device="cpu", box_jitter=0.1, points_inside=1, points_outside=1)
    whole = tmp_path / "whole"
    train_sam(cfg, whole, progress=False)
    stopped = tmp_path / "stopped"
    real = sam_train.train_one_epoch
    monkeypatch.setattr(sam_train, "train_one_epoch", stop_after(2, real))
    with pytest.raises(KeyboardInterrupt):
        train_sam(cfg, stopped, progress=False)
    monkeypatch.setattr(sam_train, "train_one_epoch", real)
    assert torch.load(stopped / "last.pt", weights_only=False)["epoch"] == 2 and not (stopped / "decoder.pt").exists()
    result = run_cli("sam", "train", "--resume", stopped, "--cache-dir", stopped / "embeddings")
    assert result.returncode == 0, result.stderr[-2000:]
    a = torch.load(whole / "decoder.pt", weights_only=False)["mask_decoder"]
    b = torch.load(stopped / "decoder.pt", weights_only=False)["mask_decoder"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (whole / "metrics.jsonl").read_text() != "" and len((stopped / "metrics.jsonl").read_text().splitlines()) == 4


@pytest.mark.slow
def test_missing_checkpoint_names_the_official_files(blob_coco, tmp_path):
    result = run_cli("sam", "train", "--data", blob_coco.parent, "--set", f"checkpoint={tmp_path / 'sam_vit_b_01ec64.pth'}",
                     "--set", "model_type=vit_b", "--out", tmp_path / "run")
    assert result.returncode == 2
    assert not (tmp_path / "run").exists()
    for name in ("sam_vit_b_01ec64.pth", "sam_vit_l_0b3195.pth", "sam_vit_h_4b8939.pth", "--set checkpoint="):
        assert name in result.stderr


@pytest.mark.slow
def test_two_processes_share_the_work_and_the_cache(blob_coco, tmp_path):
    """torchrun with 2 CPU processes: each image is encoded by one rank and written once, each
    step's images are split between the ranks, rank 0 alone writes the run."""
    import os
    import subprocess
    import sys

    run = tmp_path / "ddp"
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", "29613",
           "-m", "mvtec2coco", "sam", "train", "--data", str(blob_coco.parent), "--device", "cpu", "--out", str(run)]
    for s in ("model_type=tiny", "checkpoint=none", "epochs=3", "images_per_step=2", "lr=3e-3", "warmup_steps=2"):
        cmd += ["--set", s]
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("SAM mean IoU") == 1  # one process reports
    summary = json.loads((run / "summary.json").read_text())
    annotated = sum(1 for name in ("train", "val", "test")
                    for img in json.loads((blob_coco / f"instances_{name}.json").read_text())["images"]
                    if any(a["image_id"] == img["id"] for a in json.loads(
                        (blob_coco / f"instances_{name}.json").read_text())["annotations"]))
    assert summary["processes"] == 2 and summary["encoder_calls"] == annotated
    assert len(list((run / "embeddings").glob("*.pt"))) == annotated and not list((run / "embeddings").glob(".*"))
    train_images = sum(1 for _ in json.loads((blob_coco / "instances_train.json").read_text())["images"])
    assert summary["steps"] <= 3 * -(-train_images // 4)  # 2 images per rank per step: half the steps of one process
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3 and (run / "decoder.pt").is_file()
    assert torch.load(run / "last.pt", weights_only=False)["random"]["prompts"][0] != \
        torch.load(run / "last.pt", weights_only=False)["random"]["prompts"][1]
