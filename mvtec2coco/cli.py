"""Command line: parse, call the library, render with rich. Errors become one line and exit 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .errors import Mvtec2CocoError, OptionError
from .runtime.paths import check_output_file
from .runtime.staging import run_folder

app = typer.Typer(
    help="Turn anomaly-detection datasets (MVTec AD and relatives) into verified YOLO and COCO labels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# piped output (logs, CI) gets a wide table instead of rich's 80-column default
out_console = Console(highlight=False) if sys.stdout.isatty() else Console(highlight=False, width=160)
err_console = Console(stderr=True, highlight=False)
STATE = {"debug": False}

LayoutOpt = Annotated[str | None, typer.Option("--layout", help="Dataset layout; detected when omitted: "
                                                  "mvtec, mvtec2, loco, mvtec3d, visa, folder.")]
CategoryOpt = Annotated[list[str] | None, typer.Option("--category", "-c", help="Only this category (repeatable).")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", "-j", min=1, help="Processes (default: all cores).")]


def _version(value: bool) -> None:
    if value:
        out_console.print(f"mvtec2coco {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """mvtec2coco: know the dataset, convert it, verify the result."""
    STATE["debug"] = debug


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to create.")],
    preset: Annotated[str, typer.Option(help="tiny (tests), bottle (MVTec AD bottle counts, 900x900), "
                                        "mvtec-full (all 15 categories, 5,354 images).")] = "tiny",
    layout: Annotated[str, typer.Option(help="mvtec, mvtec2, loco, mvtec3d, visa or folder.")] = "mvtec",
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    workers: WorkersOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty OUT.")] = False,
) -> None:
    """Write a synthetic dataset with realistic defects (holes, cracks, specks, border regions).

    Example: mvtec2coco synth demo/bottle --preset bottle
    """
    from .synth import generate

    generate(out, preset, layout, seed, workers, overwrite)
    out_console.print(f"wrote {preset} dataset ({layout} layout) to {out}")


@app.command()
def summary(
    root: Annotated[Path, typer.Argument(help="Dataset root or one category folder.")],
    category: CategoryOpt = None,
    layout: LayoutOpt = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the facts as JSON.")] = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Also draw images per split and class (PNG).")] = None,
    workers: WorkersOpt = None,
) -> None:
    """Per category: defect classes, image counts per split, image sizes, mask coverage.

    Example: mvtec2coco summary demo/bottle --json summary.json --plot summary.png
    """
    from .datasets import load_dataset
    from .runtime.staging import write_file
    from .summary import plot, summarize, to_json

    for given in (json_path, plot_path):
        if given is not None:
            check_output_file(given, [root])  # before the work, not after it
    dataset = load_dataset(root, layout, category)
    summaries = summarize(dataset, workers, progress=True)
    for s in summaries:
        sys.stdout.write(s.block() + "\n")
        sys.stdout.flush()
        out_console.print(_summary_table(s))
    if json_path:
        path = write_file(json_path, json.dumps(to_json(dataset, summaries), indent=2) + "\n", dataset.sources)
        out_console.print(f"facts written to {path}")
    if plot_path:
        path = plot(summaries, plot_path)
        out_console.print(f"plot written to {path}")


def _summary_table(s) -> Table:
    table = Table(title=f"{s.name}: images per split and class")
    for col in ("split", "class", "images", "masks", "defect px mean", "min", "max", "regions/img mean", "min-max"):
        table.add_column(col, justify="left" if col in ("split", "class") else "right")
    for r in s.rows:
        table.add_row(r.split, r.label, str(r.images), str(r.masks), f"{100 * r.coverage_mean:.3f}%",
                      f"{100 * r.coverage_min:.3f}%", f"{100 * r.coverage_max:.3f}%", f"{r.regions_mean:.2f}",
                      f"{r.regions_min}-{r.regions_max}")
    return table


@app.command()
def convert(
    root: Annotated[Path, typer.Argument(help="Dataset root or one category folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (written atomically).")],
    fmt: Annotated[list[str] | None, typer.Option("--format", "-f", help="yolo (boxes), yolo-seg (polygons), coco, "
                                                  "or all; comma-separated or repeated for several.")] = None,
    split: Annotated[str | None, typer.Option(help="Ratios train,val,test (stratified by category and class), or "
                                              "official. Default 0.7,0.15,0.15.")] = None,
    split_file: Annotated[Path | None, typer.Option(help="Reuse the split.csv of an earlier conversion "
                                                    "(instead of --split).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    classes: Annotated[str, typer.Option(help="type (one class per defect type), single (one class 'defect'), "
                                         "category-type ('bottle/broken_large').")] = "type",
    category: CategoryOpt = None,
    layout: LayoutOpt = None,
    images: Annotated[str, typer.Option(help="link (hardlink, copy across filesystems), copy, or symlink.")] = "link",
    good: Annotated[str, typer.Option(help="include good images with empty labels, or exclude them.")] = "include",
    min_area: Annotated[int, typer.Option(help="Skip (and count) regions smaller than this many pixels.")] = 0,
    simplify: Annotated[float, typer.Option(help="Douglas-Peucker tolerance in px for polygons (0 = exact).")] = 0.0,
    coco_masks: Annotated[str, typer.Option(help="auto (RLE only for regions with holes), rle, or polygon "
                                            "(holes lost, pixels counted).")] = "auto",
    strict: Annotated[bool, typer.Option(help="Treat every warning as an error (nothing is written).")] = False,
    workers: WorkersOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it is an earlier output of mvtec2coco.")] = False,
) -> None:
    """Convert defect masks into YOLO box labels, YOLO polygons and/or COCO JSON, one instance per region.

    Example: mvtec2coco convert demo/bottle --format all --out demo/out
    """
    from .convert import ConvertOptions, parse_formats
    from .convert import convert as run_convert
    from .datasets import load_dataset

    if split_file is not None and split is not None:
        raise OptionError("--split and --split-file both given", hint="pass one of them")
    options = ConvertOptions(formats=parse_formats(fmt or ["yolo"]), split=str(split_file) if split_file else
                             (split or "0.7,0.15,0.15"), seed=seed, classes=classes, images=images, good=good,
                             min_area=min_area, simplify=simplify, coco_masks=coco_masks, strict=strict,
                             workers=workers)
    options.check()
    dataset = load_dataset(root, layout, category, sizes=False)  # convert's workers read the headers
    report = run_convert(dataset, out, options, overwrite=overwrite, progress=True)
    _print_report(report)


def _print_report(report: dict) -> None:
    table = Table(title="written: images (instances) per subset and class")
    subsets = list(report["images"])
    table.add_column("class")
    for s in subsets:
        table.add_column(s, justify="right")
    names = ["good", *report["classes"]]
    for name in names:
        cells = [f"{report['images'][s].get(name, 0)} ({report['instances'].get(s, {}).get(name, 0)})" for s in subsets]
        table.add_row(name, *cells)
    out_console.print(table)
    out_console.print(f"instances written: {report['instances_total']} "
                      f"({report['instances_with_holes']} with holes, {report['coco']['rle_instances']} as COCO RLE)")
    for reason, value in report["skipped"].items():
        out_console.print(f"skipped {reason.replace('_', ' ')}: {value}")
    if "simplify" in report:
        s = report["simplify"]
        out_console.print(f"simplify {s['tolerance_px']} px: polygon IoU mean {s['polygon_iou_mean']}, "
                          f"min {s['polygon_iou_min']}")
    for warning in report["warnings"]:
        err_console.print(f"warning: {warning}")
    out_console.print(f"output: {report['output']}")


@app.command()
def verify(
    out: Annotated[Path, typer.Argument(help="Output folder of `convert`.")],
    dataset: Annotated[Path | None, typer.Option(help="Source dataset, if it moved since conversion.")] = None,
    min_iou: Annotated[float, typer.Option(help="Lowest acceptable IoU of an instance with its source region.")]
    = 0.95,
    workers: WorkersOpt = None,
) -> None:
    """Read outputs back with pycocotools and ultralytics and compare them with the source masks.

    Exit code 0 only if every check passes; the details go to OUT/verify.json.
    Example: mvtec2coco verify demo/out
    """
    from .verify import verify as run_verify

    if not 0.0 <= min_iou <= 1.0:  # also refuses NaN
        raise OptionError(f"--min-iou {min_iou} is not a number in [0, 1]")
    result = run_verify(out, dataset, min_iou, workers, progress=True)
    table = Table(title=f"verify {out}")
    for col in ("format", "images", "instances", "matched", "missing", "extra", "class err", f"IoU<{min_iou}",
                "IoU mean", "IoU min", "unpaired", "problems", "result"):
        table.add_column(col, justify="left" if col in ("format", "result") else "right")
    for fmt, f in result["formats"].items():
        table.add_row(fmt, str(f["images"]), str(f["instances_expected"]), str(f["matched"]), str(f["missing"]),
                      str(f["extra"]), str(f["class_mismatch"]), str(f["low_iou"]), str(f["instance_iou_mean"]),
                      str(f["instance_iou_min"]), str(len(f["unpaired"])), str(f["problems_total"]),
                      "PASS" if f["passed"] else "FAIL")
    out_console.print(table)
    for fmt, f in result["formats"].items():
        yaml_problem = [f["dataset_yaml"]] if f.get("dataset_yaml", "ok") != "ok" else []
        for problem in f["problems"][:10] + f["unpaired"][:10] + yaml_problem:
            err_console.print(f"{fmt}: {problem}", markup=False)
    out_console.print(f"details: {Path(out) / 'verify.json'}")
    if not result["passed"]:
        raise typer.Exit(1)


@app.command()
def validate(
    root: Annotated[Path, typer.Argument(help="Dataset root or one category folder.")],
    category: CategoryOpt = None,
    layout: LayoutOpt = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the findings as JSON.")] = None,
    tiny: Annotated[int, typer.Option(help="Report regions of at most this many pixels.")] = 3,
    workers: WorkersOpt = None,
) -> None:
    """Check source masks: sizes, channels, non-binary values, empty masks, masks on good images, tiny and
    border regions. Exit code 1 if any error (not warning) is found.

    Example: mvtec2coco validate demo/bottle --json findings.json
    """
    from .runtime.staging import write_file
    from .validate import validate_dataset

    if json_path is not None:
        check_output_file(json_path, [root])
    result = validate_dataset(root, layout, category, tiny, workers, progress=True)
    table = Table(title=f"validate {root}")
    for col in ("check", "level", "count", "first file"):
        table.add_column(col)
    for check, f in result["checks"].items():
        table.add_row(check, f["level"], str(f["count"]), f["examples"][0] if f["examples"] else "")
    out_console.print(table)
    out_console.print(f"{result['masks']} masks in {result['images']} images: {result['errors']} error(s), "
                      f"{result['warnings']} warning(s)")
    if json_path:
        write_file(json_path, json.dumps(result, indent=2) + "\n", [root])
    if result["errors"]:
        raise typer.Exit(1)


@app.command()
def preview(
    out: Annotated[Path, typer.Argument(help="Output folder of `convert` (YOLO or COCO, or --format all).")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many images (defect images first).")] = 16,
    image_path: Annotated[Path | None, typer.Option("--out", help="PNG to write (default OUT/preview.png).")]
    = None,
    subset: Annotated[str | None, typer.Option(help="Only this subset (train, val, test).")] = None,
) -> None:
    """Draw a grid of images with boxes, translucent filled polygons and class names.

    Example: mvtec2coco preview demo/out --n 16 --out grid.png
    """
    from .preview import render_preview

    path = render_preview(out, n, image_path, subset)
    out_console.print(f"preview written to {path}")


classify_app = typer.Typer(help="Baseline classifiers (torchvision) with class-imbalance remedies.",
                           no_args_is_help=True)
app.add_typer(classify_app, name="classify")
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a config key, e.g. --set optim.lr=1e-4 "
                                                     "(repeatable).")]


@classify_app.command("train")
def classify_train(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (see configs/classifier/).")],
    overrides: SetOpt = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="Run folder (default OUT/NAME from the config).")]
    = None,
) -> None:
    """Train a classifier as configured; writes checkpoints, metrics.jsonl, confusion matrices, summary.json.

    Runs under `torchrun --nproc_per_node N` with DistributedDataParallel.
    Example: mvtec2coco classify train configs/classifier/01_resnet18_baseline.yaml --set data.root=demo/bottle
    """
    from .models.classifier.config import load_config
    from .models.classifier.train import train

    cfg = load_config(config, overrides or [])
    target = run_dir or Path(cfg.out) / cfg.name
    with run_folder(target, [Path(cfg.data.root), config], keep=["*.pt"]):
        run = train(cfg, run_dir)
    if os.environ.get("RANK", "0") == "0":  # under torchrun only the first process reports
        _print_runs([run])


@classify_app.command("eval")
def classify_eval(
    run_dir: Annotated[Path, typer.Argument(help="Run folder of `classify train`.")],
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Evaluate a run's best checkpoint on its validation and test images (writes eval.json).

    Example: mvtec2coco classify eval runs/classifier/01_resnet18_baseline
    """
    from .models.classifier.train import evaluate

    result = evaluate(run_dir, device)
    for name, m in result.items():
        auroc = m["auroc_good_vs_defect"]
        out_console.print(f"{name}: accuracy {m['accuracy']:.4f}, balanced accuracy {m['balanced_accuracy']:.4f}, "
                          f"macro F1 {m['macro_f1']:.4f}, AUROC good vs defect "
                          f"{'-' if auroc is None else f'{auroc:.4f}'}")


@classify_app.command("compare")
def classify_compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders.")],
    markdown_path: Annotated[Path | None, typer.Option("--markdown", help="Write the table as Markdown.")] = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Validation curves PNG.")] = None,
) -> None:
    """Table of runs (model, batch, lr, epochs, optimizer, method, metrics), best row marked, and curves.

    Example: mvtec2coco classify compare runs/classifier/* --markdown compare.md --plot curves.png
    """
    _print_runs(run_dirs, markdown_path, plot_path)


@classify_app.command("sweep")
def classify_sweep(
    configs: Annotated[list[Path], typer.Argument(help="Experiment YAML files.")],
    overrides: SetOpt = None,
    markdown_path: Annotated[Path | None, typer.Option("--markdown", help="Write the table as Markdown.")] = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Validation curves PNG.")] = None,
) -> None:
    """Train several configs one after the other, then compare them.

    Example: mvtec2coco classify sweep configs/classifier/*.yaml --set train.epochs=5 --markdown sweep.md
    """
    from .models.classifier.config import load_config
    from .models.classifier.train import train

    loaded = [load_config(c, overrides or []) for c in configs]  # every config checked before the first trains
    for given in (markdown_path, plot_path):
        if given is not None:
            check_output_file(given)
    runs = []
    for cfg, path in zip(loaded, configs):
        with run_folder(Path(cfg.out) / cfg.name, [Path(cfg.data.root), path], keep=["*.pt"]):
            runs.append(train(cfg))
    _print_runs(runs, markdown_path, plot_path)


def _print_runs(run_dirs: list[Path], markdown_path: Path | None = None, plot_path: Path | None = None) -> None:
    from .models.classifier.compare import COLUMNS, load_run, markdown, plot_curves, rows

    runs = [load_run(r) for r in run_dirs]
    table_rows, best = rows(runs)
    table = Table(title="classifier runs (best: highest validation balanced accuracy)")
    for col in COLUMNS:
        table.add_column(col)
    for i, row in enumerate(table_rows):
        table.add_row(*row, style="bold green" if i == best else None)
    out_console.print(table)
    if markdown_path:
        markdown_path.write_text(markdown(runs))
        out_console.print(f"markdown written to {markdown_path}")
    if plot_path:
        plot_curves(runs, plot_path)
        out_console.print(f"curves written to {plot_path}")


anomaly_app = typer.Typer(help="Unsupervised baseline (PatchCore) trained on good images only, and draft annotations.",
                          no_args_is_help=True)
app.add_typer(anomaly_app, name="anomaly")


@anomaly_app.command("fit")
def anomaly_fit(
    root: Annotated[Path, typer.Argument(help="Dataset root or category folder.")],
    category: Annotated[str, typer.Option("--category", "-c", help="Category to fit (its train/good images).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    backbone: Annotated[str, typer.Option(help="resnet18, resnet34, resnet50 or wide_resnet50_2.")] = "wide_resnet50_2",
    weights: Annotated[str, typer.Option(help="imagenet (from $TORCH_HOME, never downloaded), none, or a .pth path.")]
    = "imagenet",
    image_size: Annotated[int, typer.Option(help="Images are resized to this square size.")] = 224,
    coreset_ratio: Annotated[float, typer.Option(help="Fraction of patch features kept in the memory bank.")] = 0.1,
    dim: Annotated[int, typer.Option(help="Feature dimension after pooling.")] = 1024,
    batch_size: Annotated[int, typer.Option(help="Images per feature-extraction batch.")] = 8,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    layout: LayoutOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the coreset selection.")] = 0,
) -> None:
    """Fit PatchCore (memory bank of locally aware patch features, greedy coreset) on good images.

    Example: mvtec2coco anomaly fit demo/bottle --category bottle --out runs/patchcore_bottle
    """
    from .models.patchcore.model import PatchCoreConfig
    from .models.patchcore.run import fit

    config = PatchCoreConfig(backbone=backbone, weights=weights, image_size=image_size, dim=dim,
                             coreset_ratio=coreset_ratio, seed=seed)
    with run_folder(out, [root]):
        info = fit(root, category, out, config, layout, batch_size, device, progress=True)
    out_console.print(f"fitted on {info['train_images']} images: {info['patches']} patches -> memory bank of "
                      f"{info['bank']} ({info['fit_seconds']} s, peak memory {info['peak_rss_mb']} MB); run: {out}")


@anomaly_app.command("eval")
def anomaly_eval(
    run: Annotated[Path, typer.Argument(help="Run folder of `anomaly fit`.")],
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 8,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Image AUROC, pixel AUROC and PRO (to FPR 0.3) per defect type; thresholds; heat-map overlays.

    Example: mvtec2coco anomaly eval runs/patchcore_bottle
    """
    from .models.patchcore.run import evaluate

    result = evaluate(run, batch_size, device, progress=True)
    table = Table(title=f"PatchCore on {result['category']} (test images)")
    for col in ("defect type", "images", "image AUROC", "pixel AUROC", "PRO (FPR<=0.3)"):
        table.add_column(col, justify="left" if col == "defect type" else "right")

    def fmt(v):
        return "-" if v is None else f"{v:.4f}"

    for name, m in [*result["per_type"].items(), ("overall", result["overall"])]:
        table.add_row(name, str(m["images"]), fmt(m["image_auroc"]), fmt(m["pixel_auroc"]), fmt(m["pro"]))
    out_console.print(table)
    t = result["thresholds"]
    out_console.print(f"thresholds: image {t['image']:.4f}, pixel {t['pixel']:.4f} ({t['chosen_by']})")
    out_console.print(f"details: {run / 'eval.json'}, heat maps: {run / 'heatmaps.png'}")


@anomaly_app.command("annotate")
def anomaly_annotate(
    run: Annotated[Path, typer.Argument(help="Run folder of `anomaly fit` (and `eval`, for its threshold).")],
    images: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="coco, yolo or yolo-seg.")] = "coco",
    threshold: Annotated[float | None, typer.Option(help="Pixel threshold (default: the one `eval` chose).")] = None,
    min_area: Annotated[int, typer.Option(help="Drop draft regions smaller than this many pixels.")] = 16,
    opening: Annotated[int, typer.Option(help="Morphological opening kernel size (1 = none).")] = 3,
    refine_with_sam: Annotated[Path | None, typer.Option(help="SAM checkpoint: each region's box prompts SAM.")]
    = None,
    sam_model_type: Annotated[str, typer.Option(help="vit_b, vit_l, vit_h or tiny.")] = "vit_b",
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out.")] = False,
) -> None:
    """Draft defect annotations for unlabeled images, in the same formats as `convert`, marked as drafts.

    Example: mvtec2coco anomaly annotate runs/patchcore_bottle new_images/ --out drafts --format coco
    """
    from .models.patchcore.run import annotate

    report = annotate(run, images, out, fmt, threshold, min_area, opening, device=device,
                      refine_with_sam=refine_with_sam, sam_model_type=sam_model_type, overwrite=overwrite)
    counts = report["images"]["train"]
    out_console.print(f"{sum(counts.values())} images: {counts.get('anomaly', 0)} with draft regions "
                      f"({report['instances_total']} instances), {counts.get('good', 0)} without; "
                      f"pixel threshold {report['pixel_threshold']:.4f}")
    out_console.print(f"drafts (check them before training on them): {out}/{fmt}; verify with "
                      f"`mvtec2coco verify {out}/{fmt}`")


train_app = typer.Typer(help="Fine-tune segmenters and detectors on converted data.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate fine-tuned models.", no_args_is_help=True)
predict_app = typer.Typer(help="Predict with fine-tuned models.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(predict_app, name="predict")
SamCheckpointOpt = Annotated[str, typer.Option("--checkpoint", help="Local SAM checkpoint (e.g. sam_vit_b_01ec64.pth), "
                                               "or none for random initialisation.")]
SamTypeOpt = Annotated[str, typer.Option("--model-type", help="vit_b, vit_l, vit_h, or tiny (tests, CPU smoke runs).")]


@train_app.command("sam")
def train_sam_cmd(
    train: Annotated[Path, typer.Option("--train", help="COCO file of the training subset (from `convert`).")],
    checkpoint: SamCheckpointOpt,
    val: Annotated[Path | None, typer.Option("--val", help="COCO file of the validation subset.")] = None,
    test: Annotated[Path | None, typer.Option("--test", help="COCO file of the test subset.")] = None,
    model_type: SamTypeOpt = "vit_b",
    config: Annotated[Path | None, typer.Option("--config", help="YAML with training settings (configs/sam/).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")] = Path("runs/sam"),
    epochs: Annotated[int | None, typer.Option(help="Epochs (overrides the config).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate of AdamW.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache folder (default RUN/embeddings).")] = None,
) -> None:
    """Fine-tune SAM's mask decoder with jittered box prompts; the image encoder stays frozen and its
    embeddings are cached (fp16) so that later epochs run only the decoder.

    Example: mvtec2coco train sam --train out/coco/annotations/instances_train.json
    --val out/coco/annotations/instances_val.json --checkpoint sam_vit_b_01ec64.pth --model-type vit_b
    """
    from .models.sam.train import load_sam_config, train_sam

    cfg = load_sam_config(config, {"model_type": model_type, "checkpoint": checkpoint, "epochs": epochs,
                                   "max_steps": max_steps, "lr": lr, "device": device})
    with run_folder(out, [train, val, test, Path(checkpoint)], keep=["decoder.pt"]):
        summary = train_sam(train, val, out, cfg, cache_dir, test, progress=True)
    _print_sam(summary["before"], summary["after"])
    out_console.print(f"steps {summary['steps']}, encoder calls {summary['encoder_calls']}, "
                      f"median step {summary['seconds_per_step']} s; run: {out}")


def _print_sam(before: dict, after: dict) -> None:
    table = Table(title="SAM mean IoU / Dice per class: checkpoint as given -> fine-tuned")
    for col in ("subset", "class", "instances", "IoU before", "IoU after", "Dice before", "Dice after"):
        table.add_column(col)
    for subset in after:
        for name, m in after[subset].items():
            b = before.get(subset, {}).get(name, {})

            def f(v):
                return "-" if v is None else f"{v:.4f}"

            table.add_row(subset, name, str(m["instances"]), f(b.get("iou")), f(m["iou"]), f(b.get("dice")), f(m["dice"]))
    out_console.print(table)


@eval_app.command("sam")
def eval_sam_cmd(
    checkpoint: SamCheckpointOpt,
    coco: Annotated[Path, typer.Option("--coco", help="COCO file to evaluate on.")],
    model_type: SamTypeOpt = "vit_b",
    trained: Annotated[Path | None, typer.Option(help="RUN/decoder.pt of `train sam` (default: as given).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache folder.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the metrics as JSON.")] = None,
) -> None:
    """Mean IoU and Dice per class with the exact instance boxes as prompts, before and after fine-tuning.

    Example: mvtec2coco eval sam --checkpoint sam_vit_b_01ec64.pth --coco out/coco/annotations/instances_test.json
    --trained runs/sam/decoder.pt
    """
    import copy
    import tempfile

    from segment_anything.utils.transforms import ResizeLongestSide

    from .models.common.devices import pick_device
    from .models.sam.network import build_sam
    from .models.sam.train import EmbeddingCache, encoder_identity, evaluate_sam, load_coco, load_trained
    from .runtime.staging import write_file

    if json_path is not None:
        check_output_file(json_path, [coco])
    sam = build_sam(model_type, checkpoint).to(pick_device(device))
    data = load_coco(coco)
    tuned = load_trained(copy.deepcopy(sam), trained) if trained else None  # checked before any work
    with tempfile.TemporaryDirectory(prefix="mvtec2coco-sam-") as scratch:  # no cache left behind unless asked
        cache = EmbeddingCache(sam, cache_dir or Path(scratch), encoder_identity(model_type, checkpoint, 0))
        transform = ResizeLongestSide(sam.image_encoder.img_size)
        before = evaluate_sam(sam, data, cache, transform)
        after = evaluate_sam(tuned, data, cache, transform) if tuned is not None else before
    _print_sam({"eval": before}, {"eval": after})
    if json_path:
        write_file(json_path, json.dumps({"before": before, "after": after}, indent=2) + "\n", [coco])


@predict_app.command("sam")
def predict_sam_cmd(
    checkpoint: SamCheckpointOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (predictions.json, overlays/).")],
    images: Annotated[list[Path] | None, typer.Argument(help="Images (default: all images of --coco).")] = None,
    coco: Annotated[Path | None, typer.Option("--coco", help="Take the boxes from this COCO file.")] = None,
    boxes_from_yolo: Annotated[Path | None, typer.Option(help="Take the boxes from this YOLO / YOLO-World .pt.")]
    = None,
    model_type: SamTypeOpt = "vit_b",
    trained: Annotated[Path | None, typer.Option(help="RUN/decoder.pt of `train sam`.")] = None,
    conf: Annotated[float, typer.Option(help="Detector confidence threshold.")] = 0.25,
    max_det: Annotated[int, typer.Option(help="Detector boxes per image at most.")] = 100,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Boxes -> SAM masks -> COCO JSON: the path from a trained detector to pixel masks.

    Example: mvtec2coco predict sam --checkpoint sam_vit_b_01ec64.pth --trained runs/sam/decoder.pt
    --boxes-from-yolo runs/yw/weights/best.pt images/*.png --out sam_pred
    """
    from .models.sam.train import predict_sam

    with run_folder(out, [coco, trained, boxes_from_yolo, *(images or [])]):
        path = predict_sam(checkpoint, model_type, list(images or []), out, trained, coco, boxes_from_yolo, conf,
                           max_det, device)
    out_console.print(f"COCO predictions: {path}; overlays in {out / 'overlays'}")


@train_app.command("yolo-world")
def train_yolo_world_cmd(
    data: Annotated[Path, typer.Option("--data", help="data.yaml of a YOLO conversion.")],
    config: Annotated[Path | None, typer.Option("--config", help="YAML of training settings "
                                                "(configs/yolo_world/bottle.yaml).")] = None,
    weights: Annotated[str | None, typer.Option("--weights", help="Local .pt to start from (e.g. yolov8s-worldv2.pt).")]
    = None,
    model: Annotated[str | None, typer.Option("--model", help="Model .yaml (random init) or .pt; plain YOLO "
                                              "(yolov8n.pt, yolo11n.yaml) trains the baseline.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")] = Path("runs/yolo_world"),
    epochs: Annotated[int | None, typer.Option(help="Epochs.")] = None,
    imgsz: Annotated[int | None, typer.Option(help="Training image size.")] = None,
    batch: Annotated[int | None, typer.Option(help="Batch size.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, 0, or 0,1,2,3 for several GPUs (DDP).")] = None,
    lr0: Annotated[float | None, typer.Option(help="Initial learning rate.")] = None,
    workers: Annotated[int | None, typer.Option(help="Data-loader workers.")] = None,
    text_encoder: Annotated[str | None, typer.Option(help="clip (needs --clip-weights), or random / clip-random "
                                                     "for smoke tests.")] = None,
    clip_weights: Annotated[str | None, typer.Option(help="Local CLIP ViT-B-32 weights (OpenAI ViT-B-32.pt or "
                                                     "open_clip checkpoint).")] = None,
) -> None:
    """Fine-tune YOLO-World with ultralytics' WorldTrainer, offline (class texts embedded by a local CLIP);
    `--model yolov8n.pt` or a .yaml trains plain YOLO the same way, as the baseline.

    Example: mvtec2coco train yolo-world --data out/yolo/data.yaml --config configs/yolo_world/bottle.yaml
    --weights yolov8s-worldv2.pt --clip-weights ViT-B-32.pt
    """
    from .models.yolo_world.train import load_detector_config, train_detector

    chosen = weights or model
    cfg = load_detector_config(config, {"model": chosen, "epochs": epochs, "imgsz": imgsz, "batch": batch,
                                        "device": device, "lr0": lr0, "workers": workers, "text_encoder": text_encoder,
                                        "clip_weights": clip_weights})
    with run_folder(out, [data, Path(chosen) if chosen else None], keep=["*.pt"]):
        summary = train_detector(data, out, cfg)
    _print_detector(summary)
    out_console.print(f"run: {out} (weights/best.pt, results.csv, summary.json)")


def _print_detector(summary: dict) -> None:
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


@eval_app.command("yolo-world")
def eval_yolo_world_cmd(
    weights: Annotated[Path, typer.Option("--weights", help="RUN/weights/best.pt")],
    data: Annotated[Path, typer.Option("--data", help="data.yaml of the conversion it was trained on.")],
    split: Annotated[str, typer.Option(help="val or test.")] = "test",
    out: Annotated[Path | None, typer.Option("--out", help="Folder for eval_<split>.json (default: the run).")]
    = None,
) -> None:
    """Box mAP50, mAP50-95, per-class AP, precision and recall; needs no text encoder.

    Example: mvtec2coco eval yolo-world --weights runs/yolo_world/weights/best.pt --data out/yolo/data.yaml
    """
    from .models.yolo_world.train import evaluate_detector

    result = evaluate_detector(weights, data, split, out or weights.parent.parent)
    _print_detector({split: result})


@predict_app.command("yolo-world")
def predict_yolo_world_cmd(
    weights: Annotated[Path, typer.Option("--weights", help="RUN/weights/best.pt (YOLO-World or YOLO).")],
    images: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    conf: Annotated[float, typer.Option(help="Confidence threshold.")] = 0.25,
    imgsz: Annotated[int, typer.Option(help="Inference image size.")] = 640,
    device: Annotated[str, typer.Option(help="cpu or 0.")] = "",
) -> None:
    """Annotated images and a COCO detections JSON; the saved model needs no text encoder.

    Example: mvtec2coco predict yolo-world --weights runs/yolo_world/weights/best.pt images/ --out pred
    """
    from .models.yolo_world.train import predict_detector

    with run_folder(out, [weights, *images]):
        path = predict_detector(weights, images, out, conf, imgsz, device)
    out_console.print(f"detections: {path}; annotated images in {out}")


def main() -> None:
    """Console entry point: a user mistake prints one line and exits with code 2.

    Bad options and arguments (click's errors), our typed errors and unexpected ``OSError`` s
    all become one line on stderr, with no traceback unless ``--debug`` is given. Ctrl-C,
    SIGTERM and SIGHUP stop the command after its clean-up, with 128 + the signal's number.
    """
    import click

    from .runtime.staging import Interrupted, install_signal_handlers, on_notice, translate_os_error

    # typer ships its own copy of click: its errors and click's are caught alike
    click_errors = tuple({click.ClickException, *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")})
    aborts = tuple({click.exceptions.Abort, typer.Abort})
    install_signal_handlers(ctrl_c=True)
    on_notice(lambda text: err_console.print(f"notice: {text}", markup=False, soft_wrap=True))
    try:
        code = app(standalone_mode=False)
    except Interrupted as exc:
        _fail(f"interrupted by {exc}: nothing was written", 128 + exc.signum)
    except (KeyboardInterrupt, *aborts):
        _fail("interrupted: nothing was written", 130)
    except click_errors as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()
            sys.exit(exc.exit_code)
        if STATE["debug"]:
            raise
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        _fail(f"{exc.format_message()}{where}".replace("\n", " "), exc.exit_code)
    except Mvtec2CocoError as exc:
        if STATE["debug"]:
            raise
        _fail(str(exc), 2)
    except OSError as exc:  # an I/O failure no library code expected: still one line
        if STATE["debug"]:
            raise
        _fail(str(translate_os_error(exc, None, Path("."))), 2)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(text: str, code: int) -> None:
    err_console.print(f"error: {text}", markup=False, soft_wrap=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
