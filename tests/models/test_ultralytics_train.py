"""ultralytics trains on our output: yolov8n (boxes) and yolov8n-seg (polygons), one epoch, 128 px, CPU."""

from __future__ import annotations

import pytest

from ..helpers import run_cli

pytest.importorskip("ultralytics")


@pytest.fixture(scope="module")
def converted(tiny_mvtec, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "out"
    run_cli("convert", tiny_mvtec, "--format", "all", "--out", out, check=True)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("fmt,model", [("yolo", "yolov8n.yaml"), ("yolo-seg", "yolov8n-seg.yaml")])
def test_one_epoch_trains(converted, tmp_path, fmt, model):
    from ultralytics import YOLO

    yolo = YOLO(model)
    yolo.train(data=str(converted / fmt / "data.yaml"), epochs=1, imgsz=128, batch=8, device="cpu", amp=False,
               workers=0, plots=False, project=str(tmp_path), name="run", exist_ok=True, verbose=False, val=True)
    weights = tmp_path / "run" / "weights"
    assert (weights / "last.pt").is_file()
    results = (tmp_path / "run" / "results.csv").read_text().splitlines()
    assert len(results) == 2  # header + one epoch
    header = results[0].split(",")
    assert any("box_loss" in h for h in header)
    if fmt == "yolo-seg":
        assert any("seg_loss" in h for h in header)
