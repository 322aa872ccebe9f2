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

from mvtec2coco.models.sam.train import SamTrainConfig, jitter_boxes, low_res_target, mask_losses, train_sam  # noqa: E402

from .helpers import run_cli  # noqa: E402


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
    cfg = SamTrainConfig(model_type="tiny", checkpoint="none", epochs=8, images_per_step=2, lr=3e-3, warmup_steps=3,
                         device="cpu", box_jitter=0.05)
    summary = train_sam(blob_coco / "instances_train.json", blob_coco / "instances_val.json", run, cfg,
                        test_file=blob_coco / "instances_test.json", progress=False)
    return run, summary


def test_training_iou_rises(trained):
    run, summary = trained
    curve = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert summary["steps"] >= 30
    assert curve[-1]["train_iou"] > curve[0]["train_iou"] + 0.15
    assert summary["after"]["val"]["all"]["iou"] > summary["before"]["val"]["all"]["iou"] + 0.1
    assert set(summary["after"]) == {"val", "test"} and "dent" in summary["after"]["test"]
    for name in ("decoder.pt", "summary.json", "overlay_val.png", "overlay_test.png"):
        assert (run / name).is_file()


def test_embedding_cache_is_reused(trained):
    run, summary = trained
    curve = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    images = len(list((run / "embeddings").glob("*.pt")))
    assert curve[0]["encoder_calls"] == curve[-1]["encoder_calls"] == summary["encoder_calls"] == images
    assert all(torch.load(p, weights_only=True).dtype == torch.float16 for p in (run / "embeddings").glob("*.pt"))


def test_checkpoint_holds_trained_parts_and_loads_on_cpu(trained):
    run, _ = trained
    state = torch.load(run / "decoder.pt", map_location="cpu", weights_only=False)
    assert set(state) == {"model_type", "config", "mask_decoder"}
    from mvtec2coco.models.sam.network import build_sam
    from mvtec2coco.models.sam.train import load_trained

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


def test_predict_from_coco_and_from_a_detector(trained, blob_coco, tmp_path):
    from pycocotools.coco import COCO

    run, _ = trained
    out = tmp_path / "pred"
    result = run_cli("predict", "sam", "--checkpoint", "none", "--model-type", "tiny", "--trained", run / "decoder.pt",
                     "--coco", blob_coco / "instances_test.json", "--out", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out / "predictions.json"))
    assert len(coco.getAnnIds()) == len(json.loads((blob_coco / "instances_test.json").read_text())["annotations"])
    assert all(coco.annToMask(a).sum() == a["area"] for a in coco.loadAnns(coco.getAnnIds()))
    # detector boxes: a (barely trained) YOLO proposes boxes, SAM turns them into masks
    pytest.importorskip("ultralytics")
    from ultralytics import YOLO

    yolo_out = tmp_path / "yolo"
    run_cli("convert", blob_coco.parent.parent / "data", "--format", "yolo", "--out", yolo_out,
            "--split", "0.6,0.2,0.2", check=True)
    YOLO("yolov8n.yaml").train(data=str(yolo_out / "data.yaml"), epochs=1, imgsz=128, batch=4, device="cpu", amp=False,
                               workers=0, plots=False, project=str(tmp_path), name="det", verbose=False, val=False)
    weights = tmp_path / "det" / "weights" / "last.pt"
    images = sorted((yolo_out / "images" / "test").rglob("*.png"))[:3]
    out2 = tmp_path / "pred2"
    result = run_cli("predict", "sam", "--checkpoint", "none", "--model-type", "tiny", "--boxes-from-yolo", weights,
                     "--conf", "0.0001", "--max-det", "3", "--out", out2, "--device", "cpu", *images)
    assert result.returncode == 0, result.stderr[-2000:]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out2 / "predictions.json"))
    assert len(coco.getImgIds()) == 3 and len(coco.getAnnIds()) >= 1
    assert len(list((out2 / "overlays").glob("*.png"))) == 3


def test_missing_checkpoint_names_the_official_files(blob_coco, tmp_path):
    result = run_cli("train", "sam", "--train", blob_coco / "instances_train.json", "--checkpoint",
                     tmp_path / "sam_vit_b_01ec64.pth", "--model-type", "vit_b")
    assert result.returncode == 2
    for name in ("sam_vit_b_01ec64.pth", "sam_vit_l_0b3195.pth", "sam_vit_h_4b8939.pth", "--checkpoint"):
        assert name in result.stderr
