"""``mvtec2coco patchcore train|eval|predict|annotate``: the unsupervised baseline, fitted on good images only."""

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
    LayoutOpt,
    PredictOutOpt,
    RunOutOpt,
    SetOpt,
    SplitOpt,
    fmt,
    out_console,
    run_predict,
)

app = typer.Typer(help="Unsupervised baseline (PatchCore) trained on good images only, and draft annotations.",
                  no_args_is_help=True)
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")]


@app.command("train")
def train(
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    data: Annotated[Path | None, typer.Option("--data", help="Dataset root (sets data.root).")] = None,
    category: Annotated[str | None, typer.Option("--category", "-c", help="Category to fit (sets data.category).")]
    = None,
    layout: LayoutOpt = None,
    device: DeviceOpt = None,
    out: RunOutOpt = None,
) -> None:
    """Fit PatchCore (memory bank of locally aware patch features, greedy coreset) on a category's good images.

    Example: mvtec2coco patchcore train --data demo/bottle --category bottle --out runs/patchcore/bottle
    """
    from ..models.common.runs import plan_run
    from ..models.patchcore.config import PatchCoreRunConfig
    from ..models.patchcore.run import fit

    options = {"data.root": str(data) if data else None, "data.category": category, "data.layout": layout,
               "device": device}
    plan = plan_run(PatchCoreRunConfig, "patchcore", config, overrides, options, out, None, "patchcore.pt")
    with run_folder(plan.out, [Path(plan.config.data.root), config]):
        info = fit(plan.config, plan.out, progress=True)
    out_console.print(f"fitted on {info['train_images']} images: {info['patches']} patches -> memory bank of "
                      f"{info['bank']} ({info['fit_seconds']} s, peak memory {info['peak_rss_mb']} MB); run: {plan.out}")


@app.command("eval")
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder of `patchcore train`.")],
    batch_size: BatchOpt = 8,
    device: DeviceOpt = None,
) -> None:
    """Image AUROC, pixel AUROC and PRO (to FPR 0.3) per defect type; thresholds; heat-map overlays.

    Example: mvtec2coco patchcore eval runs/patchcore/bottle
    """
    from ..models.patchcore.run import evaluate as run_eval

    render_eval(run, run_eval(run, batch_size, device or "auto", progress=True), "PatchCore")


def render_eval(run: Path, result: dict, title: str) -> None:
    """The per-type table and the thresholds of a good-only model's ``eval``."""
    table = Table(title=f"{title} on {result['category']} (test images)")
    for col in ("defect type", "images", "image AUROC", "pixel AUROC", "PRO (FPR<=0.3)"):
        table.add_column(col, justify="left" if col == "defect type" else "right")
    for name, m in [*result["per_type"].items(), ("overall", result["overall"])]:
        table.add_row(name, str(m["images"]), fmt(m["image_auroc"]), fmt(m["pixel_auroc"]), fmt(m["pro"]))
    out_console.print(table)
    t = result["thresholds"]
    out_console.print(f"thresholds: image {t['image']:.4f}, pixel {t['pixel']:.4f} ({t['chosen_by']})")
    out_console.print(f"details: {run / 'eval.json'}, heat maps: {run / 'heatmaps.png'}")


@app.command("predict")
def predict(
    run: Annotated[Path, typer.Argument(help="Run folder of `patchcore train` (and `eval`, for its threshold).")],
    out: PredictOutOpt,
    images: ImagesArg = None,
    data: DataSubsetOpt = None,
    split: SplitOpt = None,
    batch_size: BatchOpt = 8,
    device: DeviceOpt = None,
) -> None:
    """Image anomaly scores and, with the threshold `eval` chose, anomalous regions as predictions.json.

    Example: mvtec2coco patchcore predict runs/patchcore/bottle --data demo/all --split test --out pred/patchcore
    """
    from ..models.patchcore.run import predict as score

    run_predict(out, data, split, images, [run], lambda inputs: score(run, inputs, out, batch_size, device or "auto"))


@app.command("annotate")
def annotate(
    run: Annotated[Path, typer.Argument(help="Run folder of `patchcore train` (and `eval`, for its threshold).")],
    images: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    output_format: Annotated[str, typer.Option("--format", "-f", help="coco, yolo or yolo-seg.")] = "coco",
    threshold: Annotated[float | None, typer.Option(help="Pixel threshold (default: the one `eval` chose).")] = None,
    min_area: Annotated[int, typer.Option(min=0, help="Drop draft regions smaller than this many pixels.")] = 16,
    opening: Annotated[int, typer.Option(min=1, help="Morphological opening kernel size (1 = none).")] = 3,
    refine_with_sam: Annotated[Path | None, typer.Option(help="SAM checkpoint: each region's box prompts SAM.")]
    = None,
    sam_model_type: Annotated[str, typer.Option(help="vit_b, vit_l, vit_h or tiny.")] = "vit_b",
    device: DeviceOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out.")] = False,
) -> None:
    """Draft defect annotations for unlabeled images, in the same formats as `convert`, marked as drafts.

    Example: mvtec2coco patchcore annotate runs/patchcore/bottle new_images/ --out drafts --format coco
    """
    import math

    from ..errors import OptionError
    from ..models.patchcore.run import annotate as run_annotate

    if threshold is not None and not math.isfinite(threshold):
        raise OptionError(f"--threshold {threshold} is not a number")
    report = run_annotate(run, images, out, output_format, threshold, min_area, opening, device=device or "auto",
                          refine_with_sam=refine_with_sam, sam_model_type=sam_model_type, overwrite=overwrite)
    counts = report["images"]["train"]
    out_console.print(f"{sum(counts.values())} images: {counts.get('anomaly', 0)} with draft regions "
                      f"({report['instances_total']} instances), {counts.get('good', 0)} without; "
                      f"pixel threshold {report['pixel_threshold']:.4f}")
    out_console.print(f"drafts (check them before training on them): {out}/{output_format}; verify with "
                      f"`mvtec2coco verify {out}/{output_format}`")
