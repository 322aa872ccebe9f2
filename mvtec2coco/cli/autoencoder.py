"""``mvtec2coco autoencoder train|eval|predict``: the reconstruction baseline, trained on good images only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    out_console,
    run_predict,
)
from .patchcore import BatchOpt, render_eval

app = typer.Typer(help="Reconstruction baseline (convolutional autoencoder or VAE) trained on good images only, "
                       "scored by its reconstruction error.", no_args_is_help=True)


@app.command("train")
def train(
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    data: Annotated[Path | None, typer.Option("--data", help="Dataset root (sets data.root).")] = None,
    category: Annotated[str | None, typer.Option("--category", "-c", help="Category to train on (sets "
                                                 "data.category).")] = None,
    layout: LayoutOpt = None,
    device: DeviceOpt = None,
    out: RunOutOpt = None,
) -> None:
    """Train the autoencoder on a category's good images (configs/autoencoder/ documents every setting).

    Example: mvtec2coco autoencoder train --data demo/bottle --category bottle --out runs/autoencoder/bottle
    """
    from ..models.autoencoder.config import AutoencoderRunConfig
    from ..models.common.runs import plan_run
    from ..models.patchcore.run import fit

    options = {"data.root": str(data) if data else None, "data.category": category, "data.layout": layout,
               "device": device}
    plan = plan_run(AutoencoderRunConfig, "autoencoder", config, overrides, options, out, None, "autoencoder.pt")
    plan.config.model.check()
    with run_folder(plan.out, [Path(plan.config.data.root), config]):
        info = fit(plan.config, plan.out, progress=True, family="autoencoder")
    out_console.print(f"trained on {info['train_images']} good images, {info['epochs']} epochs: loss "
                      f"{info['loss_first']:.4f} -> {info['loss_last']:.4f} ({info['fit_seconds']} s); run: {plan.out}")


@app.command("eval")
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder of `autoencoder train`.")],
    batch_size: BatchOpt = 8,
    device: DeviceOpt = None,
) -> None:
    """Image AUROC, pixel AUROC and PRO (to FPR 0.3) per defect type; thresholds; heat-map overlays.

    Example: mvtec2coco autoencoder eval runs/autoencoder/bottle
    """
    from ..models.patchcore.run import evaluate as run_eval

    render_eval(run, run_eval(run, batch_size, device or "auto", progress=True), "Autoencoder")


@app.command("predict")
def predict(
    run: Annotated[Path, typer.Argument(help="Run folder of `autoencoder train` (and `eval`, for its threshold).")],
    out: PredictOutOpt,
    images: ImagesArg = None,
    data: DataSubsetOpt = None,
    split: SplitOpt = None,
    batch_size: BatchOpt = 8,
    device: DeviceOpt = None,
) -> None:
    """Image anomaly scores and, with the threshold `eval` chose, anomalous regions as predictions.json.

    Example: mvtec2coco autoencoder predict runs/autoencoder/bottle --data demo/all --split test --out pred/ae
    """
    from ..models.patchcore.run import predict as score

    run_predict(out, data, split, images, [run], lambda inputs: score(run, inputs, out, batch_size, device or "auto"))
