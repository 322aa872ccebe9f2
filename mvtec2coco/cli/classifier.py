"""``mvtec2coco classifier train|eval|predict|sweep|compare``: torchvision classifiers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..runtime.paths import check_output_file
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
    fmt,
    out_console,
    run_predict,
)

app = typer.Typer(help="Baseline classifiers (torchvision) with class-imbalance remedies.", no_args_is_help=True)
DataRootOpt = Annotated[Path | None, typer.Option("--data", help="Dataset root (sets data.root).")]


@app.command("train")
def train(
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    data: DataRootOpt = None,
    device: DeviceOpt = None,
    out: RunOutOpt = None,
    resume: ResumeOpt = None,
) -> None:
    """Train as configured; writes config.yaml, last.pt (resumable), best.pt, metrics.jsonl, confusion matrices,
    summary.json. Runs under `torchrun --nproc_per_node N` with DistributedDataParallel.

    Example: mvtec2coco classifier train --config configs/classifier/01_resnet18_baseline.yaml --data demo/bottle
    """
    from ..models.classifier.config import ExperimentConfig, load_config
    from ..models.classifier.train import train as run_train
    from ..models.common.runs import new_run, resume_run

    options = {"data.root": str(data) if data else None, "train.device": device}
    if resume is not None:
        plan = resume_run(ExperimentConfig, resume, "last.pt", {"--config": config, "--set": overrides, "--data": data,
                                                                 "--out": out}, {"train.device": device})
    else:
        cfg = load_config(config, overrides or [], options)  # the file's stem names the run unless the file does
        plan = new_run(cfg, out or Path(cfg.out) / cfg.name)
    inputs = [Path(plan.config.data.root), config]
    with run_folder(plan.out, inputs, keep=["last.pt"]):
        run = run_train(plan.config, plan.out, resume=plan.resume)
    if os.environ.get("RANK", "0") == "0":  # under torchrun only the first process reports
        print_runs([run])


@app.command("eval")
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder of `classifier train`.")],
    device: DeviceOpt = None,
) -> None:
    """Evaluate a run's best checkpoint on its validation and test images (writes eval.json).

    Example: mvtec2coco classifier eval runs/classifier/01_resnet18_baseline
    """
    from ..models.classifier.train import evaluate as run_eval

    result = run_eval(run, device or "auto")
    for name, m in result.items():
        out_console.print(f"{name}: accuracy {m['accuracy']:.4f}, balanced accuracy {m['balanced_accuracy']:.4f}, "
                          f"macro F1 {m['macro_f1']:.4f}, AUROC good vs defect {fmt(m['auroc_good_vs_defect'])}")


@app.command("predict")
def predict(
    run: Annotated[Path, typer.Argument(help="Run folder of `classifier train`.")],
    out: PredictOutOpt,
    images: ImagesArg = None,
    data: DataSubsetOpt = None,
    split: SplitOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Class probabilities per image, image anomaly score 1 - P(good), as predictions.json.

    Example: mvtec2coco classifier predict runs/classifier/01_resnet18_baseline --data demo/all --split test --out pred/cls
    """
    from ..models.classifier.predict import predict as classify

    run_predict(out, data, split, images, [run], lambda inputs: classify(run, inputs, out, device or "auto"))


@app.command("compare")
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders.")],
    markdown_path: Annotated[Path | None, typer.Option("--markdown", help="Write the table as Markdown.")] = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Validation curves PNG.")] = None,
) -> None:
    """Table of runs (model, batch, lr, epochs, optimizer, method, metrics), best row marked, and curves.

    Example: mvtec2coco classifier compare runs/classifier/* --markdown compare.md --plot curves.png
    """
    for given in (markdown_path, plot_path):
        if given is not None:
            check_output_file(given, run_dirs)
    print_runs(run_dirs, markdown_path, plot_path)


@app.command("sweep")
def sweep(
    configs: Annotated[list[Path], typer.Argument(help="Experiment YAML files.")],
    overrides: SetOpt = None,
    data: DataRootOpt = None,
    device: DeviceOpt = None,
    markdown_path: Annotated[Path | None, typer.Option("--markdown", help="Write the table as Markdown.")] = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Validation curves PNG.")] = None,
) -> None:
    """Train several configs one after the other, then compare them.

    Example: mvtec2coco classifier sweep configs/classifier/0*.yaml --data demo/bottle --set train.epochs=5
    """
    from ..models.classifier.config import load_config
    from ..models.classifier.train import train as run_train
    from ..models.common.runs import new_run

    options = {"data.root": str(data) if data else None, "train.device": device}
    loaded = [load_config(c, overrides or [], options) for c in configs]  # every config checked before the first trains
    plans = [new_run(c, Path(c.out) / c.name) for c in loaded]
    for given in (markdown_path, plot_path):
        if given is not None:
            check_output_file(given, [*configs, *(Path(c.data.root) for c in loaded), *(p.out for p in plans)])
    runs = []
    for cfg, plan, path in zip(loaded, plans, configs):
        with run_folder(plan.out, [Path(cfg.data.root), path], keep=["last.pt"]):
            runs.append(run_train(cfg, plan.out))
    print_runs(runs, markdown_path, plot_path)


def print_runs(run_dirs: list[Path], markdown_path: Path | None = None, plot_path: Path | None = None) -> None:
    from ..models.classifier.compare import COLUMNS, load_run, markdown, plot_curves, rows

    runs = [load_run(r) for r in run_dirs]
    table_rows, best = rows(runs)
    table = Table(title="classifier runs (best: highest validation balanced accuracy)")
    for col in COLUMNS:
        table.add_column(col)
    for i, row in enumerate(table_rows):
        table.add_row(*row, style="bold green" if i == best else None)
    out_console.print(table)
    if markdown_path:
        from ..runtime.staging import write_file

        out_console.print(f"markdown written to {write_file(markdown_path, markdown(runs), run_dirs)}")
    if plot_path:
        plot_curves(runs, plot_path)
        out_console.print(f"curves written to {plot_path}")
