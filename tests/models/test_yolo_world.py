"""YOLO-World offline: text embeddings, training with ultralytics' WorldTrainer, eval, predict, baseline."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ultralytics")
pytest.importorskip("open_clip")

from mvtec2coco.models.yolo_world.text_embeddings import (  # noqa: E402
    ClipTextEncoder,
    ClipWeightsError,
    class_embeddings,
    class_words,
    save_table,
)

from ..helpers import run_cli  # noqa: E402

TRAIN = ["--set", "epochs=1", "--set", "imgsz=128", "--set", "batch=8", "--device", "cpu", "--set", "workers=0"]
WORLD = ["--set", "model=yolov8s-worldv2.yaml"]


@pytest.fixture(scope="module")
def converted(tiny_mvtec, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("yw") / "all"
    run_cli("convert", tiny_mvtec, "--format", "yolo,coco", "--out", out, check=True)
    return out


@pytest.fixture(scope="module")
def world_run(converted, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ywrun") / "run"
    result = run_cli("yolo-world", "train", "--data", converted, *WORLD, "--set", "text_encoder=random", "--out", run,
                     *TRAIN)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "smoke tests only" in result.stderr  # the random encoder is announced
    return run


def test_open_clip_encoder_gives_cached_unit_vectors(tmp_path):
    encoder = ClipTextEncoder(None)  # the real open_clip ViT-B-32 code path, random weights
    table = class_embeddings(["broken_large", "contamination"], encoder, category="bottle")
    assert set(table) == {"broken_large", "contamination"}
    for v in table.values():
        assert v.shape == (512,) and torch.isclose(v.norm(), torch.tensor(1.0), atol=1e-5)
    assert not torch.allclose(table["broken_large"], table["contamination"])
    path = save_table(table, tmp_path / "text_embeddings_clip_ViT-B_32.pt")
    loaded = torch.load(path, weights_only=True)  # the format ultralytics' WorldTrainer caches
    assert all(torch.equal(loaded[k], table[k]) for k in table)
    assert class_words("broken_large") == "large break" and class_words("bottle/glue_strip") == "glue strip"
    assert class_words("broken_large", {"broken_large": "shattered glass"}) == "shattered glass"


def test_missing_clip_weights_message(tmp_path):
    with pytest.raises(ClipWeightsError) as err:
        ClipTextEncoder(tmp_path / "ViT-B-32.pt")
    assert "ViT-B-32.pt" in str(err.value) and "--set clip_weights=" in str(err.value)
    assert "--set text_encoder=random" in str(err.value)


@pytest.mark.slow
def test_world_training_writes_best_and_summary(world_run):
    assert (world_run / "weights" / "best.pt").is_file()
    assert (world_run / "text_embeddings_clip_ViT-B_32.pt").is_file()
    summary = json.loads((world_run / "summary.json").read_text())
    assert summary["world"] is True
    for split in ("val", "test"):
        assert {"map50", "map50_95", "precision", "recall", "per_class"} <= set(summary[split])


@pytest.mark.slow
def test_world_training_with_open_clip_encoder(converted, tmp_path):
    run = tmp_path / "clip"
    result = run_cli("yolo-world", "train", "--data", converted / "yolo" / "data.yaml", *WORLD, "--set",
                     "text_encoder=clip-random", "--out", run, *TRAIN)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run / "weights" / "best.pt").is_file()
    table = torch.load(run / "text_embeddings_clip_ViT-B_32.pt", weights_only=True)
    assert set(table) == {"bent", "broken_large", "broken_small", "contamination", "thread"}


@pytest.mark.slow
def test_saved_model_predicts_in_a_fresh_process_without_text_encoder(world_run, converted, tmp_path):
    script = f"""
import sys
sys.modules["open_clip"] = None  # importing a text encoder would fail ...
sys.modules["clip"] = None
sys.modules["ultralytics.nn.text_model"] = None
from ultralytics.nn import tasks
def refuse(*a, **k):
    raise SystemExit("a text encoder was requested")
tasks.WorldModel.get_text_pe = refuse  # ... and so would asking for text features
from mvtec2coco.cli import main
sys.argv = ["mvtec2coco", "yolo-world", "predict", r"{world_run}", "--data", r"{converted}", "--split", "test",
            "--out", r"{tmp_path / 'pred'}", "--conf", "0.0", "--imgsz", "128", "--device", "auto"]
main()
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    pred = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    gt_file = converted / "coco" / "annotations" / "instances_test.json"
    gt = json.loads(gt_file.read_text())
    assert [{k: i[k] for k in ("id", "file_name", "width", "height", "source_file")} for i in pred["images"]] == gt["images"]
    assert all(0 <= i["score"] <= 1 for i in pred["images"])  # each image's best box, 0 without one
    assert pred["categories"] == gt["categories"] and pred["annotations"]
    assert len(list((tmp_path / "pred" / "images").glob("*.png"))) == len(gt["images"])
    # the results load against the subset's ground truth, boxes in the edge convention (w = x1 - x0)
    import contextlib
    import io

    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        dt = COCO(str(gt_file)).loadRes(str(tmp_path / "pred" / "results.json"))
    assert len(dt.getAnnIds()) == len(pred["annotations"])
    sizes = {i["id"]: (i["width"], i["height"]) for i in gt["images"]}
    for a in pred["annotations"]:
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and x + w <= sizes[a["image_id"]][0] + 1e-3 and y + h <= sizes[a["image_id"]][1] + 1e-3
        assert a["area"] == pytest.approx(w * h)


@pytest.mark.slow
def test_sliced_predict_merges_tile_boxes_into_image_coordinates(world_run, converted, tmp_path):
    out = tmp_path / "sliced"
    result = run_cli("yolo-world", "predict", world_run, "--data", converted, "--split", "test", "--out", out,
                     "--conf", "0.0", "--imgsz", "64", "--tile", "64", "--overlap", "0.25", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    pred = json.loads((out / "predictions.json").read_text())
    assert pred["info"]["sliced"] == {"tile": 64, "overlap": 0.25}
    sizes = {i["id"]: (i["width"], i["height"]) for i in pred["images"]}
    assert pred["annotations"]
    for a in pred["annotations"]:
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and w > 0 and h > 0
        assert x + w <= sizes[a["image_id"]][0] + 1e-6 and y + h <= sizes[a["image_id"]][1] + 1e-6
    assert len(list((out / "images").glob("*.png"))) == len(pred["images"])


@pytest.mark.slow
def test_eval_writes_metrics(world_run, converted):
    result = run_cli("yolo-world", "eval", world_run, "--data", converted, "--split", "val", "--device", "auto")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((world_run / "eval_val.json").read_text())
    assert set(metrics["per_class"]) <= {"bent", "broken_large", "broken_small", "contamination", "thread"}


@pytest.mark.slow
def test_plain_yolo_baseline_through_the_same_command(converted, tmp_path):
    run = tmp_path / "plain"
    result = run_cli("yolo-world", "train", "--data", converted, "--set", "model=yolov8n.yaml", "--out", run, *TRAIN)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world"] is False and (run / "weights" / "best.pt").is_file()
    assert summary["train_images"] == len(list((converted / "yolo" / "images" / "train").rglob("*.png")))
    assert not list(converted.rglob("*.cache"))  # ultralytics' label caches never land in the input


@pytest.mark.slow
def test_missing_weights_messages(converted, tmp_path):
    run = tmp_path / "run"  # never the default runs/ of the current directory: that is the checkout
    result = run_cli("yolo-world", "train", "--data", converted, "--set", f"model={tmp_path / 'yolov8s-worldv2.pt'}",
                     "--out", run)
    assert result.returncode == 2
    assert "yolov8s-worldv2.pt" in result.stderr and "nothing is downloaded for it" in result.stderr
    result = run_cli("yolo-world", "train", "--data", converted, *WORLD, "--out", run)
    assert result.returncode == 2 and "--set clip_weights=" in result.stderr
    assert not run.exists()


@pytest.mark.slow
def test_resume_continues_through_ultralytics(converted, tmp_path):
    """A run stopped after its first epoch continues from weights/last.pt to its last epoch."""
    run = tmp_path / "resumable"
    args = ["--data", converted, "--set", "model=yolov8n.yaml", *TRAIN]
    args[args.index("epochs=1")] = "epochs=2"
    script = f"""
import sys
from ultralytics.utils import callbacks

def stop(trainer):  # the first checkpoint is on disk: stop as Ctrl-C would
    raise KeyboardInterrupt

callbacks.default_callbacks["on_model_save"].append(stop)
from mvtec2coco.cli import main
sys.argv = ["mvtec2coco", "yolo-world", "train", *{[str(a) for a in args]!r}, "--out", r"{run}"]
main()
"""
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert first.returncode == 130, first.stderr[-3000:]
    assert (run / "weights" / "last.pt").is_file()
    assert len((run / "results.csv").read_text().strip().splitlines()) == 2
    resumed = run_cli("yolo-world", "train", "--resume", run)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = (run / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header + two epochs, the first not trained twice
    assert json.loads((run / "summary.json").read_text())["world"] is False


def test_the_suite_refuses_non_loopback_sockets(tmp_path):
    """Offline is enforced: pytest-socket here, tests/offline_guard in subprocesses."""
    assert socket.socket.connect.__name__ == "guarded_connect", "pytest-socket is not active"
    with socket.socket() as s, pytest.warns(UserWarning), pytest.raises(Exception, match="192.0.2.1"):
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: refused before any packet is sent
    probe = ("import socket\ns = socket.socket()\n"
             "try:\n    s.connect(('192.0.2.1', 9))\nexcept ConnectionRefusedError as e:\n    print('refused', e)\n")
    import os

    log = tmp_path / "attempts.log"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={**os.environ, "MVTEC2COCO_SOCKET_LOG": str(log)})
    assert "refused" in result.stdout and "192.0.2.1" in log.read_text()
