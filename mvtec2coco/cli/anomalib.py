"""``mvtec2coco anomalib train|predict``: anomalib's image models on our data, on our one table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import OptionError
from ..runtime.staging import run_folder
from .base import DataSubsetOpt, ImagesArg, LayoutOpt, PredictOutOpt, SplitOpt, out_console, run_predict

app = typer.Typer(help="anomalib's image models (PaDiM, PatchCore, EfficientAD, ...) trained on good images of our "
                       "dataset and split, predicting our predictions.json (extra: mvtec2coco[anomalib]).",
                  no_args_is_help=True)


def _args(pairs: list[str] | None) -> dict:
    found = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"--arg '{pair}' is not KEY=VALUE", hint="e.g. --arg backbone=resnet18")
        try:
            found[key.strip()] = json.loads(value)
        except ValueError:
            found[key.strip()] = value
    return found


@app.command("train")
def train(
    model: Annotated[str, typer.Option("--model", help="anomalib model name: padim, patchcore, efficient_ad, ...")],
    data: Annotated[Path, typer.Option("--data", help="Dataset root.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to create.")],
    category: Annotated[str | None, typer.Option("--category", "-c", help="Category to train on.")] = None,
    layout: LayoutOpt = None,
    split: Annotated[str, typer.Option(help="official (the dataset's train/good) or a conversion's meta/split.csv "
                                       "(its train subset's good images).")] = "official",
    arg: Annotated[list[str] | None, typer.Option("--arg", help="anomalib model argument KEY=VALUE (JSON values), "
                                                  "repeatable; defaults run offline (random backbone).")] = None,
    max_epochs: Annotated[int, typer.Option(min=1, help="Training epochs (padim and patchcore need one).")] = 1,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    accelerator: Annotated[str, typer.Option(help="lightning's accelerator: cpu, gpu or auto.")] = "cpu",
    backbone_weights: Annotated[Path | None, typer.Option(
        "--backbone-weights", help="A torchvision-format state dict (torch.save) loaded into the backbone before "
                                   "fitting, e.g. the network `patchcore train --set model.weights=FILE` uses.")] = None,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Seed of every random generator while fitting (PatchCore's "
                                      "coreset).")] = 0,
) -> None:
    """Fit an anomalib model on a category's good training images through anomalib's own Engine.

    Example: mvtec2coco anomalib train --model padim --data demo/bottle --category bottle --out runs/anomalib/padim
    """
    from ..models.anomalib_bridge.run import AnomalibRunConfig, fit
    from ..models.patchcore.config import DataConfig

    cfg = AnomalibRunConfig(DataConfig(str(data), category or "", layout, split), model, _args(arg), max_epochs,
                            batch_size, accelerator=accelerator,
                            backbone_weights=str(backbone_weights) if backbone_weights else None, seed=seed)
    with run_folder(out, [data]):
        info = fit(cfg, out)
    out_console.print(f"anomalib {model} fitted on {info['train_images']} good images ({info['fit_seconds']} s); "
                      f"run: {out}")


@app.command("predict")
def predict(
    run: Annotated[Path, typer.Argument(help="Run folder of `anomalib train`.")],
    out: PredictOutOpt,
    images: ImagesArg = None,
    data: DataSubsetOpt = None,
    split: SplitOpt = None,
) -> None:
    """Image scores, anomaly maps and anomalib's thresholded regions as predictions.json.

    Example: mvtec2coco anomalib predict runs/anomalib/padim --data demo/all --split test --out pred/anomalib_padim
    """
    from ..models.anomalib_bridge.run import predict as score

    run_predict(out, data, split, images, [run], lambda inputs: score(run, inputs, out))
