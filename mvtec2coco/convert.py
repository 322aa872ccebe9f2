"""One pass over the masks -> YOLO boxes, YOLO polygons and COCO JSON, written atomically.

Each worker process takes one sample: it decodes the mask once, extracts the instances, writes
the YOLO label files and places the image for every requested format, and hands back the COCO
annotations, which the main process assembles per subset. Nothing is dropped silently: every
skipped image or instance is counted, by reason and class, in ``report.json``.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .classes import CLASS_MODES, class_name, class_names, shared_type_warning, supercategories
from .errors import OptionError
from .export import FORMATS, coco, yolo
from .export.writer import IMAGE_MODES, image_relpath, label_relpath, place_image
from .imageio import load_mask
from .masks import decode_rle, instances, iou, polygon_to_mask, signed_area
from .parallel import pmap
from .records import Dataset, Sample
from .split import SUBSETS, Split, make_split, write_manifest
from .staging import staged_output

COCO_MASKS = ("auto", "rle", "polygon")
GOOD_MODES = ("include", "exclude")


@dataclass(frozen=True)
class ConvertOptions:
    """Every option of ``convert``; recorded verbatim in ``report.json``."""

    formats: tuple[str, ...] = ("yolo",)
    split: str = "0.7,0.15,0.15"
    seed: int = 0
    classes: str = "type"
    images: str = "link"
    good: str = "include"
    min_area: int = 0
    simplify: float = 0.0
    coco_masks: str = "auto"
    workers: int | None = None

    def check(self) -> None:
        for value, allowed, what in ((self.classes, CLASS_MODES, "--classes"), (self.images, IMAGE_MODES, "--images"),
                                     (self.good, GOOD_MODES, "--good"), (self.coco_masks, COCO_MASKS, "--coco-masks")):
            if value not in allowed:
                raise OptionError(f"{what} '{value}' is not one of {', '.join(allowed)}")
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise OptionError(f"unknown format {bad}", hint=f"use {', '.join(FORMATS)} or all")
        if self.min_area < 0 or self.simplify < 0:
            raise OptionError("--min-area and --simplify must be >= 0")


def parse_formats(text: str) -> tuple[str, ...]:
    """``all`` or a comma-separated list of formats."""
    if text == "all":
        return FORMATS
    return tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))


@dataclass(frozen=True)
class Task:
    """What a worker does for one sample."""

    sample: Sample
    subset: str
    class_id: int | None
    roots: dict[str, str]  # format -> staging folder
    options: ConvertOptions


@dataclass
class SampleResult:
    sample_id: str
    annotations: list[dict] = field(default_factory=list)  # bbox, area, rle, polygon, hole_pixels
    skipped_small: int = 0
    skipped_on_good: int = 0
    polygon_ious: list[float] = field(default_factory=list)


def process_sample(task: Task) -> SampleResult:
    """Decode, extract, write YOLO labels, place images; return COCO material (worker side)."""
    s, opts = task.sample, task.options
    result = SampleResult(s.id)
    found = instances(load_mask(s.masks, s.height, s.width), opts.simplify) if s.masks else []
    box_lines, seg_lines = [], []
    for inst in found:
        if task.class_id is None:  # defect pixels in a "good" image's mask: no class to give them
            result.skipped_on_good += 1
            continue
        if inst.area < opts.min_area:
            result.skipped_small += 1
            continue
        polygon = inst.coco_polygons()
        if opts.simplify > 0 and not inst.has_holes:
            exact = decode_rle(inst.rle)
            result.polygon_ious.append(iou(polygon_to_mask(polygon, s.height, s.width), exact))
        hole_pixels = int(round(sum(abs(signed_area(h)) for h in inst.holes)))
        result.annotations.append({"bbox": inst.bbox, "area": inst.area, "rle": inst.rle,
                                   "polygon": polygon, "hole_pixels": hole_pixels})
        box_lines.append(yolo.box_line(task.class_id, inst.bbox, s.width, s.height))
        if "yolo-seg" in task.roots:
            seg_lines.append(yolo.polygon_line(task.class_id, inst.yolo_polygon(), s.width, s.height))
    image_rel, label_rel = image_relpath(task.subset, s.relpath), label_relpath(task.subset, s.relpath)
    for fmt, root in task.roots.items():
        place_image(s.image, _in_folder(root, image_rel), opts.images)
        if fmt in ("yolo", "yolo-seg"):
            yolo.write_labels(_in_folder(root, label_rel), box_lines if fmt == "yolo" else seg_lines)
    return result


_MADE: set[str] = set()  # folders this process has created (or seen) in the staging tree


def _in_folder(root: str, rel: str) -> str:
    """``root/rel``, creating its folder on first use; folders are made by the workers, in parallel."""
    path = os.path.join(root, rel)
    folder = os.path.dirname(path)
    if folder not in _MADE:
        os.makedirs(folder, exist_ok=True)
        _MADE.add(folder)
    return path


def convert(dataset: Dataset, out: Path, options: ConvertOptions, overwrite: bool = False,
            progress: bool = False) -> dict:
    """Convert ``dataset`` into ``out``; returns the report (also written as ``report.json``)."""
    options.check()
    out = Path(out).absolute()
    skipped: dict[str, object] = {}
    samples = [s for s in dataset.samples if s.is_labeled]
    if len(samples) < len(dataset.samples):
        skipped["images_unlabeled"] = len(dataset.samples) - len(samples)
    if options.good == "exclude":
        skipped["images_good_excluded"] = sum(s.is_good for s in samples)
        samples = [s for s in samples if not s.is_good]
    if not samples:
        raise OptionError("nothing to convert: no labeled images", dataset.root)
    split = make_split(samples, options.split, options.seed)
    names = class_names(samples, options.classes)
    warnings = list(split.warnings)
    shared = shared_type_warning(samples, options.classes)
    if shared:
        warnings.append(shared)
    multi = len(options.formats) > 1
    with staged_output(out, overwrite) as tmp:
        roots = {fmt: (tmp / fmt if multi else tmp) for fmt in options.formats}
        tasks = _tasks(samples, split, names, roots, options)
        # The main process is idle while workers run: let it create the mirrored folders meanwhile
        # (workers create any folder they reach first; both sides tolerate the other).
        maker = threading.Thread(target=_make_folders, args=(tasks,), daemon=True)
        maker.start()
        results = {r.sample_id: r for r in pmap(process_sample, tasks, options.workers,
                                                "Converting" if progress else None)}
        maker.join()
        report = _report(dataset, out, options, samples, split, names, results, skipped, warnings)
        finals = {fmt: (out / fmt if multi else out) for fmt in options.formats}
        for fmt, root in roots.items():
            if fmt == "coco":
                _write_coco(root, samples, split, names, results, options)
            else:
                _write_yaml(root, finals[fmt], names, split)
            write_manifest(root / "split.csv", samples, split)
            _write_json(root / "report.json", report)
        if multi:
            write_manifest(tmp / "split.csv", samples, split)
            _write_json(tmp / "report.json", report)
    return report


def _make_folders(tasks: list[Task]) -> None:
    folders = set()
    for t in tasks:
        rels = [image_relpath(t.subset, t.sample.relpath), label_relpath(t.subset, t.sample.relpath)]
        for fmt, root in t.roots.items():
            for rel in rels[: 1 if fmt == "coco" else 2]:
                folders.add(os.path.dirname(os.path.join(root, rel)))
    for folder in sorted(folders, key=lambda f: (f.count(os.sep), f)):
        os.makedirs(folder, exist_ok=True)


def _tasks(samples: list[Sample], split: Split, names: list[str], roots: dict[str, Path],
           options: ConvertOptions) -> list[Task]:
    index = {n: i for i, n in enumerate(names)}
    folders = {fmt: str(root) for fmt, root in roots.items()}
    tasks = []
    for s in sorted(samples, key=lambda s: s.id):
        name = class_name(s, options.classes)
        tasks.append(Task(s, split.subsets[s.id], index[name] if name is not None else None, folders, options))
    return tasks


def _subset_paths(split: Split) -> dict[str, str]:
    """data.yaml entries; ultralytics requires ``val``, so an empty val reuses test, else train."""
    present = [s for s in SUBSETS if split.of(s)]
    paths = {s: f"images/{s}" for s in present}
    if "val" not in paths:
        paths["val"] = paths.get("test", paths.get("train", "images/train"))
    return {k: paths[k] for k in SUBSETS if k in paths}


def _write_yaml(root: Path, final_root: Path, names: list[str], split: Split) -> None:
    yolo.write_data_yaml(root, final_root, names, _subset_paths(split))


def _write_coco(root: Path, samples: list[Sample], split: Split, names: list[str],
                results: dict[str, SampleResult], options: ConvertOptions) -> None:
    supers = supercategories(samples, options.classes)
    ids = {n: i + 1 for i, n in enumerate(names)}
    for subset in SUBSETS:
        members = [s for s in sorted(samples, key=lambda s: s.id) if split.subsets[s.id] == subset]
        if not members:
            continue
        images = []
        for s in members:
            name = class_name(s, options.classes)
            anns = tuple(
                {"category_id": ids[name], "area": a["area"], "bbox": a["bbox"],
                 "segmentation": _segmentation(a, options.coco_masks)}
                for a in results[s.id].annotations
            )
            images.append(coco.CocoImage(s.relpath, s.width, s.height, anns))
        coco.write(root / "annotations" / f"instances_{subset}.json", coco.build(images, names, supers, subset))


def _segmentation(annotation: dict, mode: str):
    """RLE for holes (a COCO polygon cannot hold one) or when asked; polygons otherwise."""
    if mode == "rle" or (mode == "auto" and annotation["hole_pixels"] > 0):
        return annotation["rle"]
    return annotation["polygon"]


def _report(dataset: Dataset, out: Path, options: ConvertOptions, samples: list[Sample], split: Split,
            names: list[str], results: dict[str, SampleResult], skipped: dict, warnings: list[str]) -> dict:
    images: dict[str, Counter] = defaultdict(Counter)
    written: dict[str, Counter] = defaultdict(Counter)
    small: Counter = Counter()
    holes = hole_pixels = on_good = 0
    for s in samples:
        subset, name = split.subsets[s.id], class_name(s, options.classes)
        images[subset][name or "good"] += 1
        r = results[s.id]
        if r.annotations:
            written[subset][name] += len(r.annotations)
        if r.skipped_small:
            small[name] += r.skipped_small
        on_good += r.skipped_on_good
        holed = [a for a in r.annotations if a["hole_pixels"] > 0]
        holes += len(holed)
        hole_pixels += sum(a["hole_pixels"] for a in holed)
    if small:
        skipped["instances_below_min_area"] = dict(sorted(small.items()))
    if on_good:
        skipped["instances_in_masks_of_good_images"] = on_good
        warnings = [*warnings, f"{on_good} defect region(s) found in masks of 'good' images were not written; "
                    "run `mvtec2coco validate` to list them"]
    total = sum(len(r.annotations) for r in results.values())
    coco_rle = total if options.coco_masks == "rle" else (holes if options.coco_masks == "auto" else 0)
    report = {
        "tool": "mvtec2coco",
        "version": __version__,
        "dataset": {"root": str(dataset.root), "layout": dataset.layout, "categories": sorted({s.category for s in samples})},
        "output": str(out),
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(options).items() if k != "workers"},
        "classes": names,
        "images": {k: dict(sorted(images[k].items())) for k in SUBSETS if k in images},
        "instances": {k: dict(sorted(written[k].items())) for k in SUBSETS if k in written},
        "instances_total": total,
        "instances_with_holes": holes,
        "coco": {"rle_instances": coco_rle, "polygon_instances": total - coco_rle,
                 "hole_pixels_lost_as_polygons": hole_pixels if options.coco_masks == "polygon" else 0},
        "skipped": skipped,
        "warnings": warnings,
    }
    ious = [v for r in results.values() for v in r.polygon_ious]
    if options.simplify > 0 and ious:
        report["simplify"] = {"tolerance_px": options.simplify, "polygon_iou_mean": round(float(np.mean(ious)), 6),
                              "polygon_iou_min": round(float(np.min(ious)), 6)}
    return report


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
