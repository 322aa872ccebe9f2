"""One pass over the masks -> YOLO boxes, YOLO polygons and COCO JSON, written atomically.

Forked worker processes take chunks of samples: for each sample they read the image's header,
decode its masks once, extract the instances, write the YOLO label files and place the image for
every requested format, and hand back each COCO annotation already as JSON text, which the main
process numbers and joins per subset. Meanwhile the main process writes what needs no result
(folders, ``meta/split.csv``, ``data.yaml``). Nothing is dropped silently: every skipped image or
instance is counted, by reason and class, in ``report.json``.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import __version__
from .classes import CLASS_MODES, class_name, class_names, shared_type_warning, supercategories, value_classes
from .datasets.imageio import MASK_NOTES, opencv_single_threaded, quiet_stderr, read_header
from .errors import OptionError
from .formats import FORMATS, coco, yolo
from .formats.placement import IMAGE_MODES, NAME_LAYOUTS, image_relpath, label_relpath, output_name, place_image
from .formats.yolo import polygon_texts
from .geometry.masks import decode_rle, instances_of_masks, iou, polygon_to_mask, yolo_polygons
from .mask_layers import UNMAPPED, sample_layers
from .records import Dataset, Sample
from .runtime.allocator import keep_freed_memory
from .runtime.collector import cyclic_gc_paused
from .runtime.parallel import default_workers, fork_map
from .runtime.staging import staged_output
from .split import MANIFEST, SPLIT_GROUPS, SUBSETS, Split, is_split_file, make_split, manifest_text
from .tiling import TILES_MANIFEST, TileJob, TileOptions, run_tiled, tile_name, tile_options_dict, tiles_manifest

COCO_MASKS = ("auto", "rle", "polygon")
CHUNK = 48  # most samples per worker call: enough masks to batch their geometry, few enough to balance
MASK_COST = 8  # a sample with a mask costs about this many without (decode, geometry), for scheduling
GOOD_MODES = ("include", "exclude")
MAX_EXAMPLES = 20


@dataclass(frozen=True)
class ConvertOptions:
    """Every option of ``convert``; recorded verbatim in ``report.json``."""

    formats: tuple[str, ...] = ("yolo",)
    split: str = "0.7,0.15,0.15"
    split_group: str = "none"  # sample: every image of one physical part in one subset (``split``)
    seed: int = 0
    classes: str = "type"
    images: str = "link"
    names: str = "flat"  # file names inside images/<subset>/: flat (one level) or mirror (the source tree)
    good: str = "include"
    min_area: int = 0
    simplify: float = 0.0
    coco_masks: str = "auto"
    merge_masks: bool = False  # several mask files of one image (LOCO) give merged regions, not one set each
    strict: bool = False  # every warning is an error
    workers: int | None = None

    def check(self) -> None:
        for value, allowed, what in ((self.classes, CLASS_MODES, "--classes"), (self.images, IMAGE_MODES, "--images"),
                                     (self.names, NAME_LAYOUTS, "--names"),
                                     (self.good, GOOD_MODES, "--good"), (self.coco_masks, COCO_MASKS, "--coco-masks")):
            if value not in allowed:
                raise OptionError(f"{what} '{value}' is not one of {', '.join(allowed)}")
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise OptionError(f"unknown format {bad}", hint=f"use {', '.join(FORMATS)} or all")
        if self.min_area < 0 or not (self.simplify >= 0 and math.isfinite(self.simplify)):
            raise OptionError("--min-area and --simplify must be finite numbers >= 0")
        if self.split_group not in SPLIT_GROUPS:
            raise OptionError(f"--split-group '{self.split_group}' is not one of {', '.join(SPLIT_GROUPS)}")
        if self.seed < 0:
            raise OptionError(f"--seed {self.seed} is negative", hint="use a seed >= 0")
        if self.workers is not None and self.workers < 1:
            raise OptionError("--workers must be at least 1")


def parse_formats(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``all`` or comma-separated formats, given once or repeated (``-f yolo -f coco``): all of
    them, in the order given, each once."""
    parts = [p.strip() for item in ([text] if isinstance(text, str) else text) for p in item.split(",") if p.strip()]
    if "all" in parts:
        return FORMATS
    return tuple(dict.fromkeys(parts))


class Job(NamedTuple):
    """One sample as a worker needs it: plain strings and numbers, cheap to send to a process."""

    image: str
    masks: tuple[str, ...]
    width: int  # 0: not read yet (a listing without headers); the worker reads the header
    height: int
    image_rel: str  # images/<subset>/<name> (``placement.output_name``)
    label_rel: str  # labels/<subset>/<same, .txt>
    class_id: int | None  # None: a good image (its mask, if any, should be empty)
    values: tuple[tuple[int, int], ...] | None = None  # mask value -> class id (``--classes value``)
    per_file: bool = False  # each mask file gives its own instances (``mask_layers``)
    source_file: str = ""  # the image relative to the dataset's root: COCO's ``source_file``


@dataclass(frozen=True)
class Context:
    """What every job of one conversion shares."""

    roots: tuple[tuple[str, str], ...]  # (format, staging folder), in the order of ``--format``
    options: ConvertOptions


class SampleResult(NamedTuple):
    """What the main process needs back: the image size, COCO annotation text, report numbers."""

    width: int
    height: int
    coco: tuple[str, ...]  # each annotation's JSON from "segmentation" to its closing brace
    areas: tuple[int, ...]
    hole_pixels: tuple[int, ...]
    skipped_small: int
    skipped_on_good: int
    polygon_ious: tuple[float, ...]
    notes: tuple[tuple[str, str], ...] = ()  # (finding, file): what a user must hear about
    classes: tuple[int, ...] = ()  # class id of each written instance (``coco``, ``areas`` order)
    skipped_unmapped: int = 0  # regions of a mask value the dataset's mapping does not name
    yolo_repeated: tuple[int, int] = (0, 0)  # rows identical to another of the image's (yolo, yolo-seg)
    coco_image: str = ""  # the COCO image record after its id (``coco.image_text``), when COCO is written


def process_chunk(context: Context, jobs: list[Job]) -> list[SampleResult]:
    """Decode, extract, write YOLO labels, place images; return COCO text (worker side).

    A chunk of samples at a time: the geometry of all their masks runs as one batch of array
    operations (``masks.instances_of_masks``, ``yolo_polygons``, ``polygon_texts``).
    """
    opts, formats = context.options, {fmt for fmt, _ in context.roots}
    sizes = [(job.width, job.height) if job.width else _image_size(job.image) for job in jobs]
    masked = [k for k, job in enumerate(jobs) if job.masks]
    notes: dict[int, list[tuple[str, str]]] = {k: [] for k in masked}
    layer_owner: list[int] = []
    layer_class: list[int] = []

    def layers():  # decoded one sample at a time; each layer's owner and class recorded as it comes
        for k in masked:
            job = jobs[k]
            for layer in sample_layers(job.masks, sizes[k][1], sizes[k][0], job.class_id,
                                       None if job.values is None else dict(job.values), job.per_file,
                                       notes[k]):
                layer_owner.append(k)
                layer_class.append(layer.class_id)
                yield layer.mask

    found: dict[int, list] = {k: [] for k in masked}
    classes_of: dict[int, list[int]] = {k: [] for k in masked}
    with quiet_stderr():  # once for every mask of the chunk
        per_layer = instances_of_masks(layers(), opts.simplify)
    for j, regions in enumerate(per_layer):
        found[layer_owner[j]].extend(regions)
        classes_of[layer_owner[j]].extend([layer_class[j]] * len(regions))
    for k, regions in found.items():
        if not regions and jobs[k].class_id is not None:
            notes[k].append(("empty_defect_mask", jobs[k].masks[0]))
        elif regions and jobs[k].class_id is None:
            notes[k].append(("mask_on_good_image", jobs[k].masks[0]))
    unmapped = {k: sum(c == UNMAPPED for c in classes_of[k]) if jobs[k].class_id is not None else 0 for k in found}
    for k, n in unmapped.items():
        if n:
            notes[k].append(("mask_value_unmapped", jobs[k].masks[0]))
    kept_pairs = {k: [(i, c) for i, c in zip(regions, classes_of[k]) if i.area >= opts.min_area and c != UNMAPPED]
                  if jobs[k].class_id is not None else [] for k, regions in found.items()}
    kept = {k: [i for i, _ in pairs] for k, pairs in kept_pairs.items()}
    kept_classes = {k: [c for _, c in pairs] for k, pairs in kept_pairs.items()}
    owners = [k for k, regions in kept.items() for _ in regions]
    flat = [i for regions in kept.values() for i in regions]
    flat_classes = [c for k in kept for c in kept_classes[k]]
    seg_lines: dict[int, list[str]] = {k: [] for k in kept}
    if "yolo-seg" in formats:
        texts = polygon_texts(yolo_polygons(flat), [sizes[k] for k in owners])
        for k, c, text in zip(owners, flat_classes, texts):
            seg_lines[k].append(f"{c} {text}")
    tails: dict[int, list[str]] = {k: [] for k in kept}
    if "coco" in formats:
        for k, tail in zip(owners, coco.instance_tails(flat, opts.coco_masks)):
            tails[k].append(tail)
    results = []
    for k, job in enumerate(jobs):
        regions, mine = found.get(k, ()), kept.get(k, ())
        width, height = sizes[k]
        box_lines = [yolo.box_line(c, i.bbox, width, height) for i, c in zip(mine, kept_classes.get(k, ()))]
        # Identical rows (one class, one box or outline: overlapping mask files) are written once,
        # as ultralytics would drop them; the report counts them.
        unique_boxes, unique_polygons = list(dict.fromkeys(box_lines)), list(dict.fromkeys(seg_lines.get(k, ())))
        repeated = (len(box_lines) - len(unique_boxes) if "yolo" in formats else 0,
                    len(seg_lines.get(k, ())) - len(unique_polygons))
        for fmt, root in context.roots:
            _place(job.image, f"{root}/{job.image_rel}", opts.images)
            if fmt != "coco":
                _label(f"{root}/{job.label_rel}", unique_boxes if fmt == "yolo" else unique_polygons)
        image_text = coco.image_text(job.image_rel.split("/", 2)[2], width, height, job.source_file) \
            if "coco" in formats else ""
        if not regions:
            results.append(SampleResult(width, height, (), (), (), 0, 0, (), tuple(notes.get(k, ())),
                                        coco_image=image_text))
            continue
        holes = tuple(i.hole_pixels for i in mine)
        ious: list[float] = []
        if opts.simplify > 0:
            for inst in mine:
                if not inst.has_holes:
                    ious.append(iou(polygon_to_mask(inst.coco_polygons(), height, width), decode_rle(inst.rle)))
        on_good = len(regions) if job.class_id is None else 0  # defect pixels in a good image's mask: no class
        results.append(SampleResult(width, height, tuple(tails.get(k, ())), tuple(i.area for i in mine), holes,
                                    len(regions) - len(mine) - on_good - unmapped[k], on_good, tuple(ious),
                                    tuple(notes[k]), tuple(kept_classes[k]), unmapped[k], repeated, image_text))
    return results


def _image_size(image: str) -> tuple[int, int]:
    header = read_header(image)  # a string: a Path per image costs more than its header read
    return header.width, header.height


def _place(src: str, dst: str, mode: str) -> None:
    _in_existing_folder(dst, place_image, src, dst, mode)


def _label(path: str, lines: list[str] | tuple[()]) -> None:
    _in_existing_folder(path, yolo.write_labels, path, lines)


def _in_existing_folder(path: str, write: Callable[..., None], *args: object) -> None:
    """Run ``write(*args)`` (which creates ``path``), creating the folder first if no one has
    yet: the main process makes them all meanwhile, and asking forgiveness costs nothing per
    file once they exist. Retried once; a missing source fails again and is raised then."""
    try:
        write(*args)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write(*args)


FINDINGS = {
    **MASK_NOTES,
    "empty_defect_mask": "defect image whose mask is empty: written as a background image (no labels)",
    "mask_on_good_image": "defect regions in the mask of a 'good' image: not written (`mvtec2coco validate` "
                          "lists them)",
    "mask_value_unmapped": "mask value that the dataset's mapping file does not name: its regions are not written "
                           "(`mvtec2coco validate` lists the values)",
}


def convert(dataset: Dataset, out: Path, options: ConvertOptions, overwrite: bool = False,
            progress: bool = False, tiles: TileOptions | None = None) -> dict:
    """Convert ``dataset`` into ``out``; returns the report (also written as ``report.json``).

    ``out`` may not be, contain or lie inside any folder of the dataset (nor the split file);
    that is checked, like every option, before any work. With ``options.strict`` every warning
    is an error and nothing is written. ``tiles`` cuts every image into tiles (``tiling``). The
    cyclic garbage collector is paused meanwhile (``cyclic_gc_paused``).
    """
    with cyclic_gc_paused():
        return _convert(dataset, out, options, overwrite, progress, tiles)


def _convert(dataset: Dataset, out: Path, options: ConvertOptions, overwrite: bool, progress: bool,
             tiles: TileOptions | None) -> dict:
    options.check()
    if tiles is not None:
        tiles.check()
        if options.names != "flat":
            raise OptionError("--tile writes flat tile names", hint="drop --names mirror")
        if options.classes == "value":
            raise OptionError("--tile cuts merged masks: it cannot name regions by mask value",
                              hint="use --classes type with --tile")
        if not options.merge_masks and any(len(s.masks) > 1 for s in dataset.samples):
            raise OptionError("--tile cuts merged masks, and this dataset has images with several mask files",
                              hint="add --loco-merge to tile their union")
    split_file = Path(options.split) if is_split_file(options.split) else None
    inputs = [*dataset.sources, *([split_file] if split_file else [])]
    from .runtime.paths import check_output

    out = check_output(out, inputs, overwrite)  # before the split and the work: fail fast
    skipped: dict[str, object] = {}
    samples = [s for s in dataset.samples if s.is_labeled]
    if len(samples) < len(dataset.samples):
        skipped["images_unlabeled"] = len(dataset.samples) - len(samples)
    if options.good == "exclude":
        skipped["images_good_excluded"] = sum(s.is_good for s in samples)
        samples = [s for s in samples if not s.is_good]
    if not samples:
        raise OptionError("nothing to convert: no labeled images", dataset.root)
    samples.sort(key=lambda s: s.id)
    split = make_split(samples, options.split, options.seed, options.split_group)
    names = class_names(samples, options.classes, dataset.value_maps, dataset.value_map_problems)
    warnings = list(split.warnings)
    shared = shared_type_warning(samples, options.classes, dataset.value_maps)
    if shared:
        warnings.append(shared)
    if any(f != "coco" for f in options.formats):
        warnings += _subset_warnings(split)
    _refuse_if_strict(options, warnings, {})
    multi = len(options.formats) > 1
    with staged_output(out, overwrite, inputs, dataset.files()) as tmp:
        roots = {fmt: (tmp / fmt if multi else tmp) for fmt in options.formats}
        context = Context(tuple((fmt, str(root)) for fmt, root in roots.items()), options)
        plan = _job_plan(names, options, dataset)
        pairs = [(s, split.subsets[s.id]) for s in samples]  # the workers make each job (``_job``)
        finals = {fmt: (out / fmt if multi else out) for fmt in options.formats}
        # While the workers run, this process writes what needs no result.
        write_tree = partial(_write_tree, context, pairs, tmp, finals, samples, split, names)
        if tiles is not None:
            write_tree()
            jobs = [_job(s, subset, plan) for s, subset in pairs]
            report = _convert_tiled(dataset, out, options, tiles, samples, split, names, jobs, roots, skipped, warnings,
                                    progress)
            if multi:
                (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
            return report
        results = _run_jobs(context, plan, pairs, options.workers, progress, write_tree)
        findings = _findings(results)
        _refuse_if_strict(options, warnings, findings)
        report = _report(dataset, out, options, samples, split, names, results, skipped, warnings, findings)
        report_text = json.dumps(report, indent=2) + "\n"
        for fmt, root in roots.items():
            if fmt == "coco":
                _write_coco(root, samples, split, names, results, options, dataset)
            (root / "report.json").write_text(report_text)
        if multi:
            (tmp / "report.json").write_text(report_text)
    return report


def _convert_tiled(dataset: Dataset, out: Path, options: ConvertOptions, tile_options: TileOptions, samples: list[Sample],
                   split: Split, names: list[str], jobs: list[Job], roots: dict[str, Path], skipped: dict,
                   warnings: list[str], progress: bool) -> dict:
    """``convert --tile``: both passes of ``tiling.run_tiled``, then COCO, the tile manifest and the report."""
    tile_jobs = [TileJob(j.image, j.masks, j.width, j.height, j.class_id, os.path.splitext(output_name(s.relpath))[0])
                 for s, j in zip(samples, jobs)]
    subsets = [split.subsets[s.id] for s in samples]
    size = tile_options.size
    plans, kept, counts = run_tiled(tile_jobs, subsets, roots, tile_options, options.formats, options.coco_masks,
                                    options.min_area, options.workers, progress)
    manifest = tiles_manifest([s.id for s in samples], tile_jobs, subsets, plans, kept, size)
    for root in roots.values():
        (root / TILES_MANIFEST).write_text(manifest)
    if "coco" in roots:
        supers = supercategories(samples, options.classes)
        members: dict[str, list[coco.CocoImage]] = {subset: [] for subset in SUBSETS}
        for s, job, subset, tiles, keep in zip(samples, tile_jobs, subsets, plans, kept):
            for k in keep:
                t = tiles[k]
                members[subset].append(coco.CocoImage(tile_name(job.stem, t.x, t.y), size, size, (job.class_id or 0) + 1,
                                                      t.coco, s.relpath, (t.x, t.y, size, size)))
        for subset, images in members.items():
            if images:
                coco.write(coco.subset_path(roots["coco"], subset), images, names, supers, subset)
    images: dict[str, Counter] = defaultdict(Counter)
    written: dict[str, Counter] = defaultdict(Counter)
    below: Counter = Counter()
    truncated = holes = slivers = 0
    for s, subset, tiles, keep in zip(samples, subsets, plans, kept):
        name = class_name(s, options.classes)
        for k in keep:
            t = tiles[k]
            images[subset][name if t.areas else "good"] += 1
            if t.areas:
                written[subset][name] += len(t.areas)
            truncated, holes = truncated + t.truncated, holes + t.holes
        for t in tiles:
            slivers += t.below_visible
            if t.below_area:
                below[name] += t.below_area
    if below:
        skipped["instances_below_min_area"] = dict(sorted(below.items()))
    if slivers:
        skipped["instances_below_min_visible"] = slivers
    if counts["tiles_skipped_defects_dropped"]:
        skipped["tiles_whose_defects_were_all_dropped"] = counts["tiles_skipped_defects_dropped"]
    total = sum(len(t.areas) for tiles, keep in zip(plans, kept) for t in (tiles[k] for k in keep))
    report = _report_body(dataset, out, options, samples, names, images, written, total, holes, skipped, warnings, {},
                          {"tiling": {**tile_options_dict(tile_options), **counts, "instances_truncated": truncated}})
    text = json.dumps(report, indent=2) + "\n"
    for root in roots.values():
        (root / "report.json").write_text(text)
    return report


def _report_body(dataset: Dataset, out: Path, options: ConvertOptions, samples: list[Sample], names: list[str],
                 images: dict[str, Counter], written: dict[str, Counter], total: int, holes: int, skipped: dict,
                 warnings: list[str], findings: dict[str, dict], after_options: dict | None = None) -> dict:
    """``report.json``'s keys, whole images or tiles alike (``after_options``: a tiled run's ``tiling``)."""
    coco_rle = total if options.coco_masks == "rle" else (holes if options.coco_masks == "auto" else 0)
    return {
        "tool": "mvtec2coco",
        "version": __version__,
        "dataset": {"root": str(dataset.root), "layout": dataset.layout, "categories": sorted({s.category for s in samples})},
        "output": str(out),
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(options).items() if k != "workers"},
        **(after_options or {}),
        "classes": names,
        "images": {k: dict(sorted(images[k].items())) for k in SUBSETS if k in images},
        "instances": {k: dict(sorted(written[k].items())) for k in SUBSETS if k in written},
        "instances_total": total,
        "instances_with_holes": holes,
        "coco": {"rle_instances": coco_rle, "polygon_instances": total - coco_rle,
                 "polygons_with_keyholes": holes if options.coco_masks == "polygon" else 0},
        "skipped": skipped,
        "warnings": [*warnings, *(f"{f['count']} x {f['what']} (e.g. {f['examples'][0]})" for f in findings.values())],
        "findings": findings,
    }


def _findings(results: list[SampleResult]) -> dict[str, dict]:
    """Notes of the workers per kind: how many, the first few files, and what was done."""
    found: dict[str, list[str]] = defaultdict(list)
    for result in results:
        for kind, path in result.notes:
            found[kind].append(path)
    return {kind: {"count": len(paths), "what": FINDINGS[kind], "examples": paths[:MAX_EXAMPLES]}
            for kind, paths in sorted(found.items())}


def _refuse_if_strict(options: ConvertOptions, warnings: list[str], findings: dict[str, dict]) -> None:
    if not options.strict:
        return
    texts = [*warnings, *(f"{f['count']} x {f['what']} (e.g. {f['examples'][0]})" for f in findings.values())]
    if texts:
        more = f" and {len(texts) - 1} more" if len(texts) > 1 else ""
        raise OptionError(f"--strict: {texts[0]}{more}", hint="fix the dataset or drop --strict; nothing was written")


def _subset_warnings(split: Split) -> list[str]:
    """What data.yaml does about empty subsets (ultralytics needs both train and val)."""
    present = set(split.present())
    paths = _subset_paths(split)
    notes = []
    if "train" not in present:
        notes.append(f"no training subset: data.yaml's train points at {paths['train']} (for evaluation only)")
    if "val" not in present:
        notes.append(f"no validation subset: data.yaml's val points at {paths['val']}, so validation metrics "
                     "are not held out")
    return notes


def _run_jobs(context: Context, plan: JobPlan, pairs: list[tuple[Sample, str]], workers: int | None, progress: bool,
              meanwhile: Callable[[], object]) -> list[SampleResult]:
    """``process_chunk`` over chunks of the samples (with their subsets) in ``workers`` processes
    (this one among them); results in sample order. Each worker makes its chunk's jobs
    (``_job``): done here before the workers start, that was time with one core idle.

    Chunks with masks cost far more than chunks of good images, so they are handed out first
    (longest first): the cheap ones then even out the workers' finishing times. ``meanwhile``
    runs in this process while the forked workers start, before it takes chunks too.
    """
    workers = workers or default_workers()
    size = max(1, min(CHUNK, len(pairs) // (4 * workers)))
    chunks = [pairs[k : k + size] for k in range(0, len(pairs), size)]
    cost = [len(c) + MASK_COST * sum(len(s.masks) for s, _ in c) for c in chunks]
    order = sorted(range(len(chunks)), key=lambda k: -cost[k])
    with opencv_single_threaded():
        done = fork_map(partial(_convert_chunk, context, plan), [chunks[k] for k in order], workers,
                        "Converting" if progress else None, sizes=[len(chunks[k]) for k in order],
                        initializer=keep_freed_memory, meanwhile=meanwhile)
    by_chunk: list[list[SampleResult]] = [[] for _ in chunks]
    for k, results in zip(order, done):
        by_chunk[k] = results
    return [result for results in by_chunk for result in results]


def _convert_chunk(context: Context, plan: JobPlan, pairs: list[tuple[Sample, str]]) -> list[SampleResult]:
    return process_chunk(context, [_job(s, subset, plan) for s, subset in pairs])


def _write_tree(context: Context, pairs: list[tuple[Sample, str]], tmp: Path, finals: dict[str, Path],
                samples: list[Sample], split: Split, names: list[str]) -> None:
    """Everything of the output that needs no worker's result: the folders, parents
    first (workers create any folder they reach first; both sides tolerate the other), then
    ``meta/split.csv`` everywhere and ``data.yaml`` for YOLO. Runs while the workers work."""
    if context.options.names == "mirror":  # the source tree below each subset folder
        subfolders = {(subset, posixpath.dirname(s.relpath)) for s, subset in pairs}  # ``/`` on every system
    else:
        subfolders = {(subset, "") for _, subset in pairs}
    stand_ins = [(subset, posixpath.join(sub, "x.png")) for subset, sub in subfolders]  # a file in each folder
    image_dirs = {image_relpath(subset, name).rpartition("/")[0] for subset, name in stand_ins}
    label_dirs = {label_relpath(subset, name).rpartition("/")[0] for subset, name in stand_ins}
    folders = set()
    for fmt, root in context.roots:
        for rel in image_dirs if fmt == "coco" else image_dirs | label_dirs:
            folders.add(f"{root}/{rel}")
    for folder in sorted(folders, key=lambda f: (f.count("/"), f)):
        os.makedirs(folder, exist_ok=True)
    manifest = manifest_text(samples, split, context.options.names)
    roots = [Path(root) for _, root in context.roots]
    for fmt, root in zip(finals, roots):
        if fmt != "coco":
            yolo.write_data_yaml(root, names, _subset_paths(split))
    for root in dict.fromkeys([*roots, tmp]):
        (root / MANIFEST).parent.mkdir(exist_ok=True)
        (root / MANIFEST).write_text(manifest)


class JobPlan(NamedTuple):
    """What turns a sample and its subset into its ``Job``: the same for every sample."""

    index: dict[str, int]  # class name -> id
    by_value: dict[str, tuple[tuple[int, int], ...]]  # category -> (mask value, class id), ``--classes value``
    classes: str  # ``--classes``
    names: str  # ``--names``: the file-name layout
    per_file: bool


def _job_plan(names: list[str], options: ConvertOptions, dataset: Dataset) -> JobPlan:
    by_value = value_classes(dataset.value_maps, names) if options.classes == "value" else {}
    return JobPlan({n: i for i, n in enumerate(names)}, by_value, options.classes, options.names,
                   not options.merge_masks)


def _job(s: Sample, subset: str, plan: JobPlan) -> Job:
    """The job of one sample in ``subset``."""
    name = class_name(s, plan.classes)
    name_out = output_name(s.relpath, plan.names)
    class_id = None if name is None else (0 if plan.by_value else plan.index[name])
    return Job(str(s.image), tuple(map(str, s.masks)) if s.masks else (), s.width, s.height,
               image_relpath(subset, name_out), label_relpath(subset, name_out), class_id,
               plan.by_value.get(s.category) if plan.by_value else None, plan.per_file, s.relpath)


def _subset_paths(split: Split) -> dict[str, str]:
    """data.yaml entries; ultralytics requires ``train`` and ``val``, so an empty val reuses
    test, else train, and an empty train reuses val, else test (``_subset_warnings`` says so)."""
    present = split.present()
    paths = {s: f"images/{s}" for s in present}
    if "val" not in paths:
        paths["val"] = paths.get("test", paths.get("train", "images/train"))
    if "train" not in paths:
        paths["train"] = paths["val"]
    return {k: paths[k] for k in SUBSETS if k in paths}


def _write_coco(root: Path, samples: list[Sample], split: Split, names: list[str], results: list[SampleResult],
                options: ConvertOptions, dataset: Dataset) -> None:
    """One COCO file per subset, from the image records and annotations the workers rendered."""
    supers = supercategories(samples, options.classes, dataset.value_maps)
    members: dict[str, list[tuple[str, tuple[str, ...], tuple[int, ...]]]] = {subset: [] for subset in SUBSETS}
    subsets = split.subsets
    for s, result in zip(samples, results):  # every written instance has its class (``SampleResult.classes``)
        members[subsets[s.id]].append((result.coco_image, result.coco, tuple(c + 1 for c in result.classes)))
    for subset, images in members.items():
        if images:
            coco.write_rendered(coco.subset_path(root, subset), images, names, supers, subset)


def _report(dataset: Dataset, out: Path, options: ConvertOptions, samples: list[Sample], split: Split,
            names: list[str], results: list[SampleResult], skipped: dict, warnings: list[str],
            findings: dict[str, dict]) -> dict:
    images: dict[str, Counter] = defaultdict(Counter)
    written: dict[str, Counter] = defaultdict(Counter)
    small: Counter = Counter()
    holes = hole_pixels = on_good = unmapped = 0
    repeated = [0, 0]
    for s, r in zip(samples, results):
        subset, name = split.subsets[s.id], class_name(s, options.classes)
        if not r.areas and not (r.skipped_small or r.skipped_on_good or r.skipped_unmapped or any(r.yolo_repeated)):
            images[subset][name if name is not None and options.classes != "value" else "good"] += 1
            continue  # most images: nothing written, nothing skipped
        if options.classes == "value":  # an image counts under every class it holds (a combined image: several)
            for held in sorted({names[c] for c in r.classes}) or ["good"]:
                images[subset][held] += 1
        else:
            images[subset][name or "good"] += 1
        for c in r.classes:
            written[subset][names[c]] += 1
        if r.skipped_small:
            small[name] += r.skipped_small
        on_good += r.skipped_on_good
        unmapped += r.skipped_unmapped
        repeated = [a + b for a, b in zip(repeated, r.yolo_repeated)]
        holes += sum(1 for p in r.hole_pixels if p > 0)
        hole_pixels += sum(r.hole_pixels)
    if small:
        skipped["instances_below_min_area"] = dict(sorted(small.items()))
    if on_good:
        skipped["instances_in_masks_of_good_images"] = on_good
    if unmapped:
        skipped["instances_of_unmapped_mask_values"] = unmapped
    for fmt, n in zip(("yolo", "yolo-seg"), repeated):
        if n and fmt in options.formats:
            skipped[f"{fmt}_rows_identical_to_another"] = n
    total = sum(len(r.areas) for r in results)
    report = _report_body(dataset, out, options, samples, names, images, written, total, holes, skipped, warnings,
                          findings)
    ious = [v for r in results for v in r.polygon_ious]
    if options.simplify > 0 and ious:
        report["simplify"] = {"tolerance_px": options.simplify, "polygon_iou_mean": round(float(np.mean(ious)), 6),
                              "polygon_iou_min": round(float(np.min(ious)), 6)}
    return report
