"""The root command, the consoles, and the option types every command group shares."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .. import __version__

app = typer.Typer(
    help="Turn anomaly-detection datasets (MVTec AD and relatives) into verified YOLO and COCO labels, then train "
         "and compare models on them: mvtec2coco <family> train|eval|predict for the families classifier, "
         "patchcore, yolo-world and sam.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# piped output (logs, CI) gets a wide table instead of rich's 80-column default
out_console = Console(highlight=False) if sys.stdout.isatty() else Console(highlight=False, width=160)
err_console = Console(stderr=True, highlight=False)
STATE = {"debug": False}

LayoutOpt = Annotated[str | None, typer.Option("--layout", help="Dataset layout; detected when omitted: "
                                                  "mvtec, mvtec2, loco, mvtec3d, visa, realiad, btad, kolektor, "
                                                  "ksdd2, dagm, mpdd, eyecandies, folder.")]
CategoryOpt = Annotated[list[str] | None, typer.Option("--category", "-c", help="Only this category (repeatable).")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", "-j", min=1, help="Processes (default: all cores).")]

# model families
DeviceOpt = Annotated[str | None, typer.Option("--device", help="auto (CUDA when available), cpu, cuda, cuda:N or N "
                                               "(default: the config's, auto).")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML settings (see configs/<family>/); the code's "
                                                "defaults fill the rest.")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override one setting, e.g. --set lr=1e-4 or "
                                                  "--set optim.lr=1e-4 (repeatable).")]
RunOutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Run folder to create (default runs/<family>/NAME).")]
ResumeOpt = Annotated[Path | None, typer.Option("--resume", help="Continue the stopped run in this folder, with its "
                                                "own config.yaml.")]
PredictOutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder for predictions.json, results.json and "
                                             "pictures.")]
DataSubsetOpt = Annotated[Path | None, typer.Option("--data", help="A conversion (convert --format coco or all): "
                                                    "predict on its --split subset, keyed by its ground truth.")]
SplitOpt = Annotated[str | None, typer.Option("--split", help="Subset of --data: train, val or test (default test).")]
ImagesArg = Annotated[list[Path] | None, typer.Argument(help="Image files or folders (instead of --data).")]


def _version(value: bool) -> None:
    if value:
        out_console.print(f"mvtec2coco {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Never download weights (as MVTEC2COCO_OFFLINE=1): a "
                                          "missing file stops with where to get it.")] = False,
) -> None:
    """mvtec2coco: know the dataset, convert it, verify the result, train and compare models on it."""
    import os

    STATE["debug"] = debug
    if offline:
        os.environ["MVTEC2COCO_OFFLINE"] = "1"


def fmt(value: float | None, digits: int = 4) -> str:
    """A metric for a table: a dash when it does not exist, never a zero."""
    return "-" if value is None else f"{value:.{digits}f}"


def run_predict(out: Path, data: Path | None, split: str | None, images: list[Path] | None,
                inputs_of_run: list[Path | None], predict) -> None:
    """The part every ``predict`` shares: the images (a converted subset or files), a fresh output
    folder checked against every input, ``predict(inputs)`` inside it, one line at the end."""
    from ..models.common.inputs import prediction_inputs
    from ..runtime.staging import run_folder

    inputs = prediction_inputs(data, split, images)
    with run_folder(out, [*inputs_of_run, data, *(images or [])], fresh=True):
        path = predict(inputs)
    out_console.print(f"predictions of {len(inputs.images)} images: {path}")
