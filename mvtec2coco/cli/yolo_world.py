"""``mvtec2coco yolo-world train|eval|predict``: the open-vocabulary detector (and plain YOLO as its baseline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..runtime.staging import run_folder
from .base import (
    ConfigOpt,
    DataSubsetOpt,
    DeviceOpt,
    ImagesArg,
    PredictOutOpt,
    ResumeOpt,
    RunOutOpt,
    SetOpt,
    SplitOpt,
    out_console,
    run_predict,
)

app = typer.Typer(help="Fine-tune YOLO-World (ultralytics), offline, on a YOLO conversion.", no_args_is_help=True)
WeightsArg = Annotated[Path, typer.Argument(help="Run folder of `yolo-world train` (its weights/best.pt) or a .pt file.")]


def weights_of(run: Path) -> Path:
    return run / "weights" / "best.pt" if run.is_dir() else run


@app.command("train")
def train(
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    data: Annotated[Path | None, typer.Option("--data", help="data.yaml of a YOLO conversion, or its folder "
                                              "(sets data).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N, N, or 0,1,2,3 for several "
                                               "GPUs (ultralytics' DDP).")] = None,
    out: RunOutOpt = None,
    resume: ResumeOpt = None,
) -> None:
    """Fine-tune YOLO-World with ultralytics' WorldTrainer, offline (class texts embedded by a local CLIP);
    `--set model=yolov8n.pt` (or a .yaml) trains plain YOLO the same way, as the baseline.

    Example: mvtec2coco yolo-world train --data demo/all --config configs/yolo_world/bottle.yaml
    --set model=yolov8s-worldv2.pt --set clip_weights=ViT-B-32.pt
    """
    from ..models.common.runs import plan_run
    from ..models.yolo_world.train import DetectorConfig, train_detector

    options = {"data": str(data) if data else None, "device": device}
    plan = plan_run(DetectorConfig, "yolo_world", config, overrides, options, out, resume, "weights/last.pt")
    model = Path(plan.config.model)
    with run_folder(plan.out, [Path(plan.config.data), model if model.suffix == ".pt" else None, config],
                    keep=["*.pt"]):
        summary = train_detector(plan.config, plan.out, resume=plan.resume)
    print_detector(summary)
    out_console.print(f"run: {plan.out} (weights/best.pt, results.csv, summary.json)")


def print_detector(summary: dict) -> None:
    table = Table(title="box metrics of best.pt")
    for col in ("subset", "class", "AP50", "AP50-95", "precision", "recall"):
        table.add_column(col)
    for split in ("val", "test"):
        m = summary.get(split)
        if not m:
            continue
        for name, c in m["per_class"].items():
            table.add_row(split, name, f"{c['ap50']:.4f}", f"{c['ap50_95']:.4f}", f"{c['precision']:.4f}",
                          f"{c['recall']:.4f}")
        table.add_row(split, "all", f"{m['map50']:.4f}", f"{m['map50_95']:.4f}", f"{m['precision']:.4f}",
                      f"{m['recall']:.4f}", style="bold")
    out_console.print(table)


@app.command("eval")
def evaluate(
    run: WeightsArg,
    data: Annotated[Path, typer.Option("--data", help="data.yaml of the conversion it was trained on, or its folder.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    device: DeviceOpt = None,
) -> None:
    """Box mAP50, mAP50-95, per-class AP, precision and recall; needs no text encoder (writes eval_<split>.json).

    Example: mvtec2coco yolo-world eval runs/yolo_world/bottle --data demo/all
    """
    from ..models.yolo_world.train import evaluate_detector

    weights = weights_of(run)
    result = evaluate_detector(weights, data, split, run if run.is_dir() else weights.parent.parent, device or "auto")
    print_detector({split: result})


@app.command("predict")
def predict(
    run: WeightsArg,
    out: PredictOutOpt,
    images: ImagesArg = None,
    data: DataSubsetOpt = None,
    split: SplitOpt = None,
    conf: Annotated[float, typer.Option(min=0.0, max=1.0, help="Confidence threshold.")] = 0.25,
    imgsz: Annotated[int, typer.Option(min=32, help="Inference image size.")] = 640,
    tile: Annotated[int | None, typer.Option(help="Also run on tiles of this many px and merge the boxes back "
                                             "(sliced inference, for small defects).")] = None,
    overlap: Annotated[float, typer.Option(help="With --tile: fraction by which neighbouring tiles overlap.")] = 0.2,
    device: DeviceOpt = None,
) -> None:
    """Boxes with scores as predictions.json (keyed by the ground truth with --data), annotated images.

    Example: mvtec2coco yolo-world predict runs/yolo_world/bottle --data demo/all --split test --out pred/yw
    """
    from ..models.common.sliced import check_slicing
    from ..models.yolo_world.predict import predict_detector

    check_slicing(tile, overlap)
    weights = weights_of(run)
    run_predict(out, data, split, images, [weights],
                lambda inputs: predict_detector(weights, inputs, out, conf, imgsz, device or "auto", tile, overlap))
