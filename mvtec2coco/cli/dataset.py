"""Dataset commands: synth, summary, convert, verify, validate, preview."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import OptionError
from ..runtime.paths import check_output_file
from .base import CategoryOpt, LayoutOpt, WorkersOpt, app, err_console, out_console


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to create.")],
    preset: Annotated[str, typer.Option(help="tiny (tests), bottle (MVTec AD bottle counts, 900x900), cookie "
                                        "(MVTec 3D-AD cookie's types and class_ids.json, with --layout mvtec3d), "
                                        "mvtec-full (all 15 categories, 5,354 images).")] = "tiny",
    layout: Annotated[str, typer.Option(help="mvtec, mvtec2, loco, mvtec3d, visa, realiad, btad, kolektor, ksdd2, "
                                        "dagm, mpdd, eyecandies or folder.")] = "mvtec",
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    workers: WorkersOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty OUT.")] = False,
) -> None:
    """Write a synthetic dataset with realistic defects (holes, cracks, specks, border regions).

    Example: mvtec2coco synth demo/bottle --preset bottle
    """
    from ..synth import generate

    generate(out, preset, layout, seed, workers, overwrite, progress=True)
    out_console.print(f"wrote {preset} dataset ({layout} layout) to {out}")


@app.command()
def summary(
    root: Annotated[Path, typer.Argument(help="Dataset root or one category folder.")],
    category: CategoryOpt = None,
    layout: LayoutOpt = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the facts as JSON.")] = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Also draw images per split and class (PNG).")] = None,
    imgsz: Annotated[int, typer.Option(help="Training size (the longer side) at which region sizes are also given.")] = 640,
    size_plot: Annotated[Path | None, typer.Option("--size-plot", help="Also draw the region sizes at --imgsz per "
                                                   "class (PNG).")] = None,
    workers: WorkersOpt = None,
) -> None:
    """Per category: defect classes, image counts per split, image sizes, mask coverage, region sizes.

    Example: mvtec2coco summary demo/bottle --json summary.json --plot summary.png
    """
    from ..datasets import load_dataset
    from ..runtime.staging import write_file
    from ..summary import plot, plot_sizes, summarize, to_json

    if imgsz < 1:
        raise OptionError(f"--imgsz {imgsz} must be at least 1")
    for given in (json_path, plot_path, size_plot):
        if given is not None:
            check_output_file(given, [root])  # before the work, not after it
    dataset = load_dataset(root, layout, category)
    summaries = summarize(dataset, workers, progress=True, imgsz=imgsz)
    for s in summaries:
        sys.stdout.write(s.block() + "\n")
        sys.stdout.flush()
        out_console.print(_summary_table(s))
        if s.sizes:
            out_console.print(_sizes_table(s))
    if json_path:
        path = write_file(json_path, json.dumps(to_json(dataset, summaries), indent=2) + "\n", dataset.sources)
        out_console.print(f"facts written to {path}")
    if plot_path:
        path = plot(summaries, plot_path)
        out_console.print(f"plot written to {path}")
    if size_plot:
        path = plot_sizes(summaries, size_plot)
        out_console.print(f"size plot written to {path}")


def _sizes_table(s) -> Table:
    row0 = s.sizes[0]
    table = Table(title=f"{s.name}: defect regions per class (min / 10% / median / 90% / max)")
    for col in ("class", "regions", "area px", "shorter side px", f"shorter side at {row0.imgsz}", "below 4 px"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for r in s.sizes:
        table.add_row(r.label, str(r.regions), " / ".join(f"{v:g}" for v in r.area_px),
                      " / ".join(f"{v:g}" for v in r.shorter_side_px), " / ".join(f"{v:g}" for v in r.shorter_side_at_imgsz),
                      str(r.below_small_at_imgsz))
    return table


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
    split_group: Annotated[str, typer.Option(help="none, or sample: every image of one physical part (Real-IAD's "
                                             "camera views, KolektorSDD's commutator) in one subset.")] = "none",
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    classes: Annotated[str, typer.Option(help="type (one class per defect type), single (one class 'defect'), "
                                         "category-type ('bottle/broken_large'), or value (each region named by "
                                         "its mask value through the dataset's mapping file).")] = "type",
    loco_merge: Annotated[bool, typer.Option(help="Merge the mask files of one image (MVTec LOCO) before finding "
                                             "regions, instead of one set of instances per file.")] = False,
    category: CategoryOpt = None,
    layout: LayoutOpt = None,
    images: Annotated[str, typer.Option(help="link (hardlink, copy across filesystems), copy, or symlink.")] = "link",
    names: Annotated[str, typer.Option(help="File names inside images/<subset>/: flat (bottle__test__crack__000.png, "
                                       "read by every consumer) or mirror (the source tree, bottle/test/crack/000.png)."
                                       )] = "flat",
    good: Annotated[str, typer.Option(help="include good images with empty labels, or exclude them.")] = "include",
    min_area: Annotated[int, typer.Option(help="Skip (and count) regions smaller than this many pixels.")] = 0,
    simplify: Annotated[float, typer.Option(help="Douglas-Peucker tolerance in px for polygons (0 = exact).")] = 0.0,
    coco_masks: Annotated[str, typer.Option(help="auto (RLE only for regions with holes), rle, or polygon "
                                            "(holes kept by zero-width bridges, for polygon-only tools).")] = "auto",
    strict: Annotated[bool, typer.Option(help="Treat every warning as an error (nothing is written).")] = False,
    tile: Annotated[int | None, typer.Option(help="Cut every image into tiles of this many px at full resolution, "
                                             "instances from the cut masks.")] = None,
    overlap: Annotated[float, typer.Option(help="With --tile: fraction by which neighbouring tiles overlap.")] = 0.2,
    tile_empty: Annotated[str, typer.Option(help="With --tile: defect-free tiles to write per subset: match (as many "
                                            "as defect tiles), all, none, or a number.")] = "match",
    min_visible: Annotated[float, typer.Option(help="With --tile: drop (and count) pieces holding less than this "
                                               "fraction of their region.")] = 0.0,
    imgsz: Annotated[int, typer.Option(help="With --tile: the training size at which the report counts "
                                       "instances below 4 px.")] = 640,
    workers: WorkersOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it is an earlier output of mvtec2coco.")] = False,
) -> None:
    """Convert defect masks into YOLO box labels, YOLO polygons and/or COCO JSON, one instance per region.

    Example: mvtec2coco convert demo/bottle --format all --out demo/out
    """
    from ..convert import ConvertOptions, parse_formats
    from ..convert import convert as run_convert
    from ..datasets import load_dataset

    if split_file is not None and split is not None:
        raise OptionError("--split and --split-file both given", hint="pass one of them")
    if split_file is not None and not split_file.is_file():
        raise OptionError("split file does not exist", split_file, "pass the meta/split.csv of an earlier conversion")
    options = ConvertOptions(formats=parse_formats(fmt or ["yolo"]), split=str(split_file) if split_file else
                             (split or "0.7,0.15,0.15"), split_group=split_group, seed=seed, classes=classes,
                             merge_masks=loco_merge, images=images, names=names, good=good,
                             min_area=min_area, simplify=simplify, coco_masks=coco_masks, strict=strict,
                             workers=workers)
    options.check()
    tiles = None
    if tile is None and (overlap, tile_empty, min_visible, imgsz) != (0.2, "match", 0.0, 640):
        raise OptionError("--overlap, --tile-empty, --min-visible and --imgsz apply to --tile",
                          hint="add --tile SIZE, or drop them")
    if tile is not None:
        from ..tiling import TileOptions

        tiles = TileOptions(tile, overlap, tile_empty, min_visible, imgsz, seed)
        tiles.check()
    dataset = load_dataset(root, layout, category, sizes=False)  # convert's workers read the headers
    report = run_convert(dataset, out, options, overwrite=overwrite, progress=True, tiles=tiles)
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
    if "tiling" in report:
        t = report["tiling"]
        small = t["small_instances"]
        out_console.print(f"tiles of {t['size']} px: {sum(t['tiles_with_instances'].values())} with instances, "
                          f"{sum(t['empty_tiles_written'].values())} empty of {sum(t['empty_tiles_available'].values())}; "
                          f"{t['instances_truncated']} instances cut by a tile border; regions below "
                          f"{small['shorter_box_side_below_px']} px at {small['imgsz']} px: {small['whole_images']} "
                          f"in whole images, {small['tiles']} in tiles")
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
    from ..verify import verify as run_verify

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
    from ..runtime.staging import write_file
    from ..validate import validate_dataset

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
    from ..preview import render_preview

    path = render_preview(out, n, image_path, subset)
    out_console.print(f"preview written to {path}")


@app.command("evaluate")
def evaluate_cmd(
    predictions: Annotated[Path, typer.Argument(help="predictions.json of `<family> predict` (or its folder).")],
    gt: Annotated[Path, typer.Option("--gt", help="The conversion the predictions were made on.")],
    split: Annotated[str, typer.Option("--split", help="Subset the predictions cover.")] = "test",
    val: Annotated[Path | None, typer.Option("--val", help="predictions.json of the same model on the val subset: "
                                             "it chooses the thresholds.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="metrics.json to write (default: beside the "
                                             "predictions).")] = None,
) -> None:
    """Score any family's predictions with the one evaluation: image AUROC / AP (and thresholded metrics with
    --val), pixel AUROC / AUPRO / Dice, COCOeval box and mask AP, overall and per defect type.

    Example: mvtec2coco evaluate pred/patchcore --gt demo/all --split test --val pred/patchcore_val
    """
    from ..evaluate import evaluate as run_evaluate
    from ..runtime.staging import write_file

    target = out or (predictions if predictions.is_dir() else predictions.parent) / "metrics.json"
    inputs = [gt]
    for given in (predictions, val):
        if given is not None:
            folder = given if given.is_dir() else given.parent
            inputs += [folder / "predictions.json", folder / "results.json", folder / "maps", given]
    check_output_file(target, [p for p in inputs if p != target.parent])
    result = run_evaluate(predictions, gt, split, val)
    write_file(target, json.dumps(result, indent=2) + "\n", [gt])
    from ..compare import COLUMNS, row

    result["_name"] = target.parent.name
    table = Table(title=f"{result['family']} on {split} ({result['image']['images']} images)")
    for col in COLUMNS[1:13]:
        table.add_column(col, justify="left" if col in ("family", "model", "config") else "right")
    table.add_row(*row(result)[1:13])
    out_console.print(table)
    if result["thresholds"]["chosen_on"] is None:
        err_console.print("note: no --val predictions: thresholded metrics (balanced accuracy, F1, Dice) are not "
                          "computed", markup=False)
    out_console.print(f"metrics: {target}")


@app.command("compare")
def compare_cmd(
    runs: Annotated[list[Path], typer.Argument(help="metrics.json files of `evaluate`, or the folders holding them.")],
    markdown_path: Annotated[Path | None, typer.Option("--markdown", help="Also write the table as Markdown.")] = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Also draw the bars and ROC curves (PNG).")] = None,
) -> None:
    """One table (a row per run) and one figure over every approach; a metric a run lacks is a dash.

    Example: mvtec2coco compare pred/* --markdown compare.md --plot compare.png
    """
    from ..compare import COLUMNS, load, markdown, plot, row
    from ..runtime.staging import write_file

    if markdown_path is not None and plot_path is not None and \
            markdown_path.absolute().resolve() == plot_path.absolute().resolve():
        raise OptionError("--markdown and --plot name the same file", markdown_path)
    for given in (markdown_path, plot_path):
        if given is not None:
            check_output_file(given, list(runs))
    loaded = [load(r) for r in runs]
    files = [m["_file"] for m in loaded]
    twice = sorted({f for f in files if files.count(f) > 1})
    if twice:
        raise OptionError("the same metrics.json is given twice", twice[0], "give each run once")
    table = Table(title="which approach finds the defects best")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("run", "family", "model", "config") else "right")
    for m in loaded:
        table.add_row(*row(m))
    out_console.print(table)
    if markdown_path:
        out_console.print(f"markdown written to {write_file(markdown_path, markdown(loaded))}")
    if plot_path:
        out_console.print(f"figure written to {plot(loaded, plot_path)}")


@app.command("import")
def import_cmd(
    annotations: Annotated[list[Path], typer.Argument(help="COCO files, a COCO output (its annotations/), or a "
                                                     "YOLO-seg output.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to create (MVTec AD layout).")],
    images: Annotated[Path | None, typer.Option("--images", help="Folder the COCO file names are relative to "
                                                "(default: images/<subset>/ beside annotations/).")] = None,
    category: Annotated[str, typer.Option("--category", "-c", help="Category of images whose names do not say.")]
    = "product",
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it is an earlier output of mvtec2coco.")] = False,
) -> None:
    """Turn corrected labels (COCO polygons or RLE, YOLO-seg) back into an MVTec AD layout dataset that
    `convert` reads: images in <category>/<split>/<type>/, masks in <category>/ground_truth/<type>/.

    Example: mvtec2coco import fixed/annotations/instances_test.json --images demo/all/coco/images/test --out fixed_ds
    """
    from ..import_labels import import_labels

    report = import_labels(list(annotations), out, images, category, overwrite)
    for cat, labels in report["per_category"].items():
        out_console.print(f"{cat}: " + ", ".join(f"{label} {n}" for label, n in sorted(labels.items())))
    out_console.print(f"{report['images']} images, {report['masks']} masks written to {report['output']}")
