"""``mvtec2coco sam train|eval|predict``: Segment Anything, its mask decoder fine-tuned on box prompts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..runtime.paths import check_inputs, check_output_file, resolve
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

app = typer.Typer(help="Fine-tune Segment Anything's mask decoder on a COCO conversion.", no_args_is_help=True)
ModelArg = Annotated[str, typer.Argument(help="Run folder of `sam train`, a local SAM checkpoint as given "
                                         "(sam_vit_b_01ec64.pth), or none (random weights, with --model-type tiny).")]
ModelTypeOpt = Annotated[str, typer.Option("--model-type", help="vit_b, vit_l, vit_h, or tiny (tests); for a "
                                           "checkpoint given as MODEL.")]
CacheOpt = Annotated[Path | None, typer.Option("--cache-dir", help="Keep image embeddings here (default: the run "
                                               "folder when training, a temporary folder otherwise).")]


def resolve_model(model: str, model_type: str) -> tuple[str, str, Path | None, int]:
    """(model type, checkpoint, trained decoder or None, seed of random weights) of a run folder
    or of a checkpoint as given."""
    from ..errors import OptionError
    from ..models.common import config as configs
    from ..models.sam.config import SamConfig

    path = Path(model)
    if path.is_dir():
        if not (path / "config.yaml").is_file() or not (path / "decoder.pt").is_file():
            raise OptionError("not a finished run of `sam train` (needs config.yaml and decoder.pt)", path)
        cfg = configs.load(SamConfig, path / "config.yaml")
        return cfg.model_type, cfg.checkpoint, path / "decoder.pt", cfg.seed
    if model != "none" and not path.is_file():
        raise OptionError("SAM model does not exist", path, "pass a run folder of `sam train`, a checkpoint file, or none")
    return model_type, model, None, 0


@app.command("train")
def train(
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    data: Annotated[Path | None, typer.Option("--data", help="A conversion with COCO ground truth (OUT or OUT/coco; "
                                              "sets data).")] = None,
    device: DeviceOpt = None,
    out: RunOutOpt = None,
    resume: ResumeOpt = None,
    cache_dir: CacheOpt = None,
) -> None:
    """Fine-tune SAM's mask decoder with jittered box prompts; the image encoder stays frozen and its
    embeddings are cached (fp16) so that later epochs run only the decoder.

    Example: mvtec2coco sam train --data demo/all --set checkpoint=sam_vit_b_01ec64.pth --out runs/sam/bottle
    """
    from ..models.common.runs import plan_run
    from ..models.sam.config import SamConfig
    from ..models.sam.train import main

    options = {"data": str(data) if data else None, "device": device}
    plan = plan_run(SamConfig, "sam", config, overrides, options, out, resume, "last.pt")
    checkpoint = Path(plan.config.checkpoint) if plan.config.checkpoint != "none" else None
    if cache_dir is not None:
        check_inputs(resolve(cache_dir), [Path(plan.config.data), checkpoint], "embedding cache")
    with run_folder(plan.out, [Path(plan.config.data), checkpoint, config], keep=["last.pt"]):
        summary = main(plan.config, plan.out, plan.resume, cache_dir, progress=True)
    if not summary:  # another rank of torchrun: the first reports
        return
    print_sam(summary["before"], summary["after"])
    out_console.print(f"steps {summary['steps']}, encoder calls {summary['encoder_calls']}, "
                      f"median step {summary['seconds_per_step']} s; run: {plan.out}")


def print_sam(before: dict, after: dict) -> None:
    table = Table(title="SAM mean IoU / Dice per class: checkpoint as given -> fine-tuned")
    for col in ("subset", "class", "instances", "IoU before", "IoU after", "Dice before", "Dice after"):
        table.add_column(col)
    for subset in after:
        for name, m in after[subset].items():
            b = before.get(subset, {}).get(name, {})
            table.add_row(subset, name, str(m["instances"]), fmt(b.get("iou")), fmt(m["iou"]), fmt(b.get("dice")),
                          fmt(m["dice"]))
    out_console.print(table)


@app.command("eval")
def evaluate(
    model: ModelArg,
    data: Annotated[Path, typer.Option("--data", help="A conversion with COCO ground truth.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    model_type: ModelTypeOpt = "vit_b",
    device: DeviceOpt = None,
    cache_dir: CacheOpt = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the metrics as JSON.")] = None,
) -> None:
    """Mean IoU and Dice per class with the exact instance boxes as prompts, before and after fine-tuning.

    Example: mvtec2coco sam eval runs/sam/bottle --data demo/all --split test
    """
    import copy
    import tempfile

    from segment_anything.utils.transforms import ResizeLongestSide

    from ..formats import coco
    from ..models.common.devices import pick_device
    from ..models.sam.data import EmbeddingCache, encoder_identity, load_trained
    from ..models.sam.network import build_sam
    from ..models.sam.train import evaluate as run_eval
    from ..runtime.staging import write_file

    model_type, checkpoint, trained, seed = resolve_model(model, model_type)
    gt_file = coco.subset_file(data, split)
    if json_path is not None:
        check_output_file(json_path, [gt_file])
    subset = coco.load(gt_file)
    if cache_dir is not None:
        check_inputs(resolve(cache_dir), [data], "embedding cache")
    sam = build_sam(model_type, checkpoint, seed).to(pick_device(device or "auto"))
    tuned = load_trained(copy.deepcopy(sam), trained) if trained else None  # checked before any work
    with tempfile.TemporaryDirectory(prefix="mvtec2coco-sam-") as scratch:  # no cache left behind unless asked
        cache = EmbeddingCache(sam, cache_dir or Path(scratch), encoder_identity(model_type, checkpoint, seed))
        transform = ResizeLongestSide(sam.image_encoder.img_size)
        before = run_eval(sam, subset, cache, transform)
        after = run_eval(tuned, subset, cache, transform) if tuned is not None else before
    print_sam({split: before}, {split: after})
    if json_path:
        write_file(json_path, json.dumps({"before": before, "after": after}, indent=2) + "\n", [gt_file])


@app.command("predict")
def predict(
    model: ModelArg,
    out: PredictOutOpt,
    images: ImagesArg = None,
    data: DataSubsetOpt = None,
    split: SplitOpt = None,
    prompts: Annotated[str | None, typer.Option("--prompts", help="ground-truth: the exact boxes of --data's subset "
                                                "(SAM judged as a segmenter).")] = None,
    boxes: Annotated[Path | None, typer.Option("--boxes", help="predictions.json of a detector (or a COCO file): its "
                                               "boxes prompt SAM.")] = None,
    detector: Annotated[Path | None, typer.Option("--detector", help="A YOLO / YOLO-World run or .pt: its boxes "
                                                  "prompt SAM.")] = None,
    model_type: ModelTypeOpt = "vit_b",
    conf: Annotated[float, typer.Option(min=0.0, max=1.0, help="Detector confidence threshold.")] = 0.25,
    max_det: Annotated[int, typer.Option(min=1, help="Detector boxes per image at most.")] = 100,
    tile: Annotated[int | None, typer.Option(help="With --detector: also run it on tiles of this many px and merge "
                                             "the boxes back (sliced inference).")] = None,
    overlap: Annotated[float, typer.Option(help="With --tile: fraction by which neighbouring tiles overlap.")] = 0.2,
    device: DeviceOpt = None,
) -> None:
    """Boxes -> SAM masks -> predictions.json (RLE masks, scores): the path from a detector to pixel masks.

    Example: mvtec2coco sam predict runs/sam/bottle --data demo/all --split test --boxes pred/yw/predictions.json
    --out pred/sam
    """
    from ..errors import OptionError
    from ..models.sam import predict as sam_predict
    from .yolo_world import weights_of

    sources = [s for s in (prompts, boxes, detector) if s is not None]
    if len(sources) != 1:
        raise OptionError("give exactly one box source: --prompts ground-truth, --boxes FILE or --detector WEIGHTS")
    if prompts is not None and prompts != "ground-truth":
        raise OptionError(f"unknown --prompts '{prompts}'", hint="use ground-truth")
    if tile is not None and detector is None:
        raise OptionError("--tile slices the detector's inference", hint="give --detector WEIGHTS, or drop --tile")
    from ..models.common.sliced import check_slicing

    check_slicing(tile, overlap)
    model_type, checkpoint, trained, seed = resolve_model(model, model_type)

    def segment(inputs):
        if prompts is not None:
            found = sam_predict.boxes_from_ground_truth(inputs)
        elif boxes is not None:
            found = sam_predict.boxes_from_file(boxes, inputs)
        else:
            found = sam_predict.boxes_from_detector(weights_of(detector), inputs, conf, max_det, device or "auto",
                                                    tile, overlap)
        return sam_predict.predict_sam(checkpoint, model_type, inputs, found, out, trained, device or "auto", seed=seed)

    run_predict(out, data, split, images, [boxes, detector, trained], segment)
