"""Read converted outputs back with the consumers' own code and compare them with the source masks.

COCO files are loaded with pycocotools (``COCO``, ``annToRLE``, ``toBbox``, ``area``); YOLO folders with ultralytics
(``check_det_dataset``, ``verify_image_label``, ``polygon2mask``, ``img2label_paths``). Each
output instance is matched to a source region (8-connected, as in conversion) by IoU: mask IoU
for polygons and COCO, box IoU for YOLO boxes. Conversion is trusted only when every instance
matches above the threshold, none is missing or extra, classes agree and every label pairs; COCO
boxes and areas equal the source region's exactly; categories and names are the ones the source
implies; every output image is the source image (same inode for links, same bytes for copies)
and its data is intact. A broken or tampered file is a finding in the report, never a crash.
"""

from __future__ import annotations

import csv
import filecmp
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from .classes import class_name, class_names, value_classes
from .datasets import load_dataset
from .datasets.common import with_size
from .datasets.imageio import load_mask, opencv_single_threaded, png_header
from .errors import DatasetError, OptionError, VerificationError
from .formats import FORMATS, coco, yolo
from .formats.placement import output_name
from .geometry.masks import Instance, iou, to_binary
from .geometry.rle_window import rle_counts, rle_window
from .geometry.tiles import cut, first_pixels, tile_grid
from .image_integrity import image_data_check, image_data_problem
from .mask_layers import UNMAPPED, sample_layers
from .records import Sample
from .runtime.allocator import keep_freed_memory
from .runtime.collector import cyclic_gc_paused
from .runtime.parallel import fork_map
from .runtime.staging import write_file
from .runtime.ultralytics_env import quiet_offline_ultralytics
from .split import manifest_path

MAX_LISTED = 50


@dataclass
class ImageCheck:
    """The comparison of one output image with its source."""

    image: str
    expected: int = 0
    found: int = 0
    ious: list[float] = field(default_factory=list)
    image_iou: float | None = None
    missing: int = 0
    extra: int = 0
    class_mismatch: int = 0
    problems: list[str] = field(default_factory=list)


def find_outputs(out: Path) -> dict[str, Path]:
    """Format -> folder, for one format's folder or for an ``--format all`` output."""
    out = Path(out)
    if not out.is_dir():
        raise VerificationError("output folder does not exist", out, "pass the --out folder of a conversion")
    if (out / "report.json").is_file() and (out / "annotations").is_dir():
        return {"coco": out}
    if (out / "report.json").is_file() and ((out / "data.yaml").is_file() or (out / "labels").is_dir()):
        return {_yolo_kind(out): out}
    found = {fmt: out / fmt for fmt in FORMATS if (out / fmt / "report.json").is_file()}
    if not found:
        raise VerificationError("no YOLO or COCO output found (no report.json)", out,
                                "pass a folder written by `mvtec2coco convert`")
    return found


def _yolo_kind(folder: Path) -> str:
    """``yolo`` or ``yolo-seg``: from the folder name of an ``all`` output, else the report."""
    if folder.name in ("yolo", "yolo-seg"):
        return folder.name
    formats = _read_report(folder).get("options", {}).get("formats", [])
    kinds = [f for f in formats if f in ("yolo", "yolo-seg")]
    if not kinds:
        raise VerificationError("report.json names no YOLO format", folder / "report.json", "convert again")
    return kinds[0]


def _read_report(folder: Path) -> dict:
    path = folder / "report.json"
    try:
        report = json.loads(path.read_text())
        _ = (report["dataset"]["root"], report["dataset"]["layout"], report["dataset"]["categories"],
             report["options"]["classes"], report["options"]["min_area"], report["options"]["formats"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"report.json is unreadable or incomplete ({type(exc).__name__}: {exc})", path,
                                "convert again") from exc
    return report


_MANIFESTS: dict[bytes, list[dict]] = {}  # split.csv bytes -> its rows: the formats of an --format all output share one


def _read_manifest(folder: Path) -> list[dict]:
    """The rows of ``meta/split.csv`` (read-only: a file with the same bytes as one read before
    gives the same list)."""
    path = manifest_path(folder)
    if not path.is_file():
        raise VerificationError("split.csv is missing", path, "convert again")
    try:
        raw = path.read_bytes()
        if raw not in _MANIFESTS:
            _MANIFESTS[raw] = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
        rows = _MANIFESTS[raw]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise VerificationError(f"split.csv is unreadable ({exc})", path, "convert again") from exc
    if rows and not {"sample_id", "subset"} <= set(rows[0]):
        raise VerificationError("split.csv lacks the columns sample_id and subset", path, "convert again")
    return rows


def verify(out: Path, dataset: Path | None = None, min_iou: float = 0.95, workers: int | None = None,
           progress: bool = False) -> dict:
    """Check every format found in ``out``; returns the result (also written to ``verify.json``).

    Raises ``VerificationError`` only when ``out`` cannot be verified at all (not an output, its
    report or split unreadable, the source gone); everything wrong inside the output is a finding.
    The cyclic garbage collector is paused meanwhile (``cyclic_gc_paused``).
    """
    with cyclic_gc_paused():
        return _verify(out, dataset, min_iou, workers, progress)


def _verify(out: Path, dataset: Path | None, min_iou: float, workers: int | None, progress: bool) -> dict:
    if not 0.0 <= min_iou <= 1.0:  # also refuses NaN
        raise OptionError(f"--min-iou {min_iou} is not a number in [0, 1]")
    quiet_offline_ultralytics()  # imported only when a YOLO output is read: while the workers check, or here for tiles
    _COCO_FILES.clear()  # nothing read by an earlier call in this process is trusted: files may have changed
    _MANIFESTS.clear()
    _SEEN.clear()
    _PNG_CHECKED.clear()
    _PNG_ENDS.clear()
    _INTACT_OUTPUTS.clear()
    out = Path(out).absolute()
    result: dict = {"output": str(out), "min_iou": min_iou, "formats": {}}
    listed: dict[tuple, dict[str, Sample]] = {}  # an --format all output lists one dataset once, not per format
    value_maps: dict[tuple, dict] = {}
    prepared: list[tuple[str, Path, list[str], list[ImageCheck], list[tuple]]] = []  # fmt, folder, problems, checks, jobs
    coco_pending: dict[int, tuple[Path, set[str], list[str], list[str]]] = {}  # prepared index -> _load_coco_files' args
    coco_names: dict[int, list[str]] = {}  # prepared index -> class names by category id - 1, as its COCO files give them
    for fmt, folder in find_outputs(out).items():
        report = _read_report(folder)
        root = Path(dataset) if dataset else Path(report["dataset"]["root"])
        if not root.is_dir():
            raise VerificationError("source dataset not found", root, "pass --dataset with its new location")
        key = (root, report["dataset"]["layout"], tuple(report["dataset"]["categories"]))
        if key not in listed:
            dataset_read = load_dataset(root, key[1], list(key[2]), sizes=False)  # the workers read the headers
            listed[key] = {s.id: s for s in dataset_read.samples}
            value_maps[key] = (dataset_read.value_maps, dataset_read.value_map_problems)
        samples = listed[key]
        rows = _read_manifest(folder)
        missing_sources = [r["sample_id"] for r in rows if r["sample_id"] not in samples]
        if missing_sources:
            raise VerificationError(f"{len(missing_sources)} sample(s) of split.csv are not in the dataset, "
                                    f"e.g. {missing_sources[0]}", root, "pass --dataset with the source dataset")
        options = report["options"]
        try:
            expected = class_names([samples[r["sample_id"]] for r in rows], options["classes"], value_maps[key][0],
                                   value_maps[key][1])
        except (OptionError, DatasetError) as exc:
            raise VerificationError(f"the output's classes cannot be rebuilt: {exc.message}", root,
                                    "restore the dataset's mapping file") from exc
        values = {c: dict(pairs) for c, pairs in value_classes(value_maps[key][0], expected).items()} \
            if options["classes"] == "value" else {}
        problems: list[str] = []
        duplicates = [k for k, n in Counter(r["sample_id"] for r in rows).items() if n > 1]
        problems += [f"split.csv: sample {k} is listed more than once" for k in duplicates]
        if fmt == "coco" and "tiling" not in report:  # loaded while the first pass runs (``list_outputs``)
            coco_pending[len(prepared)] = (folder, {r["subset"] for r in rows}, expected, problems)
            names = list(expected)
        elif fmt == "coco":
            names = _load_coco_files(folder, {r["subset"] for r in rows}, expected, problems)
        else:
            names = _yolo_names(folder, expected, problems)
        if "tiling" in report:
            if fmt != "coco":
                import ultralytics.data.utils  # noqa: F401 - once here, not once in every forked worker
            with opencv_single_threaded():
                checks = _verify_tiles(fmt, folder, samples, rows, options, names, report["tiling"], workers, progress,
                                       problems)
            prepared.append((fmt, folder, problems, checks, []))
        else:
            jobs = [(fmt, str(folder), samples[r["sample_id"]], r["subset"], options, names,
                     values.get(samples[r["sample_id"]].category) if options["classes"] == "value" else None)
                    for r in rows]
            prepared.append((fmt, folder, problems, [], jobs))
    listings: dict[str, tuple[list[str], str | None]] = {}

    def list_outputs() -> None:  # COCO files, ultralytics' import, listings, data.yaml: while the workers check images
        for k, pending in coco_pending.items():
            coco_names[k] = _load_coco_files(*pending)
        if any(fmt != "coco" for fmt, *_ in prepared):
            import ultralytics.data.utils  # noqa: F401 - once here, before the workers that read YOLO labels fork
        for fmt, folder, *_ in prepared:
            listings[fmt] = (_unpaired(folder), _check_yaml(folder)) if fmt != "coco" else (_coco_unlisted(folder), None)

    _check_untiled(prepared, workers, progress, list_outputs, coco_names)
    if not listings:
        list_outputs()
    for fmt, _folder, problems, checks, _ in prepared:
        summary = _summarize(checks, min_iou, problems)
        summary["unpaired"], yaml_check = listings[fmt]
        if yaml_check is not None:
            summary["dataset_yaml"] = yaml_check
        summary["passed"] = (summary["missing"] == 0 and summary["extra"] == 0 and summary["low_iou"] == 0
                             and summary["class_mismatch"] == 0 and not summary["unpaired"]
                             and summary["problems_total"] == 0 and summary.get("dataset_yaml", "ok") == "ok")
        result["formats"][fmt] = summary
    result["passed"] = all(f["passed"] for f in result["formats"].values())
    write_file(out / "verify.json", json.dumps(result, indent=2) + "\n")
    return result


def _verify_tiles(fmt: str, folder: Path, samples: dict[str, Sample], rows: list[dict], options: dict, names: list[str],
                  tiling: dict, workers: int | None, progress: bool, problems: list[str]) -> list[ImageCheck]:
    """The checks of a tiled output, one source image per job (its mask and image decoded once)."""
    from .tiling import read_tiles_manifest

    if not (isinstance(tiling.get("size"), int) and not isinstance(tiling.get("size"), bool) and tiling["size"] >= 1
            and isinstance(tiling.get("overlap"), (int, float)) and 0 <= tiling["overlap"] < 1
            and isinstance(tiling.get("min_visible"), (int, float)) and 0 <= tiling["min_visible"] <= 1):
        raise VerificationError("report.json's tiling (size, overlap, min_visible) is unreadable", folder / "report.json",
                                "convert again")
    try:
        tiles = read_tiles_manifest(folder)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        problems.append(f"meta/tiles.csv cannot be read ({exc})")
        tiles = []
    if not tiles:
        problems.append("meta/tiles.csv is missing or empty: the tiles cannot be mapped to their images")
    by_sample: dict[str, list[dict]] = {}
    for t in tiles:
        by_sample.setdefault(t["sample_id"], []).append(t)
    jobs = [(fmt, str(folder), samples[r["sample_id"]], r["subset"], options, names, tiling, by_sample.get(r["sample_id"], []))
            for r in rows]
    done = fork_map(_check_tiles, jobs, workers, f"Verifying {fmt} tiles" if progress else None,
                    initializer=keep_freed_memory)
    return [check for checks in done for check in checks]


_COCO_FILES: dict[tuple[str, str], tuple] = {}  # (folder, subset) -> (COCO, file_name -> image record, path)


def _load_coco_files(folder: Path, subsets: set[str], expected: list[str], problems: list[str]) -> list[str]:
    """Load each subset's COCO file once (forked workers inherit them) and check what is file-wide:
    the categories must be exactly ``expected`` with ids 1..N, ids unique, references valid.
    Returns the class names by category id - 1 as the files give them."""
    names = list(expected)
    for subset in sorted(subsets):
        path = coco.subset_path(folder, subset)
        rel = path.relative_to(folder).as_posix()
        try:
            if not path.is_file():
                raise FileNotFoundError(path)
            loaded = coco.load(path).coco
            data = loaded.dataset
            categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
            images = {img["file_name"]: img for img in data["images"]}
            for a in data["annotations"]:
                _ = (a["id"], a["image_id"], a["category_id"], a["segmentation"], a["bbox"], a["area"])
        except FileNotFoundError:
            problems.append(f"{rel}: missing")
            continue
        except Exception as exc:  # noqa: BLE001 - json, pycocotools and key errors: a file that cannot be read back
            problems.append(f"{rel}: cannot be read back ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        problems.extend(_coco_file_problems(rel, data, expected))
        _COCO_FILES[(os.fspath(folder), subset)] = (loaded, images, str(path))
        names = [categories.get(i + 1, expected[i] if i < len(expected) else "?") for i in range(len(expected))]
    return names


def _coco_file_problems(rel: str, data: dict, expected: list[str]) -> list[str]:
    found = []
    categories = [(c["id"], c["name"]) for c in data["categories"]]
    wanted = [(i + 1, n) for i, n in enumerate(expected)]
    if categories != wanted:
        found.append(f"{rel}: categories {categories} differ from the source's {wanted}")
    for what, items in (("image", data["images"]), ("annotation", data["annotations"]), ("category", data["categories"])):
        twice = [k for k, n in Counter(i["id"] for i in items).items() if n > 1]
        found += [f"{rel}: {what} id {k} is used more than once" for k in twice[:MAX_LISTED]]
    names = [i["file_name"] for i in data["images"]]
    found += [f"{rel}: image {k} is listed more than once" for k, n in Counter(names).items() if n > 1][:MAX_LISTED]
    image_ids, category_ids = {i["id"] for i in data["images"]}, {c["id"] for c in data["categories"]}
    for a in data["annotations"]:
        if a["image_id"] not in image_ids:
            found.append(f"{rel}: annotation {a['id']} refers to image id {a['image_id']}, which is not listed")
        if a["category_id"] not in category_ids:
            found.append(f"{rel}: annotation {a['id']} has unknown category_id {a['category_id']}")
        if a.get("iscrowd", 0):
            found.append(f"{rel}: annotation {a['id']} has iscrowd=1 (COCOeval would ignore it)")
    return found[:MAX_LISTED]


def _yolo_names(folder: Path, expected: list[str], problems: list[str]) -> list[str]:
    """The class names of ``data.yaml``, which must equal ``expected``; ``expected`` if unreadable."""
    path = folder / "data.yaml"
    try:
        if not path.is_file():
            raise FileNotFoundError(path)
        names = yolo.class_names(yolo.read_data_yaml(path))
    except FileNotFoundError:
        problems.append("data.yaml: missing")
        return list(expected)
    except Exception as exc:  # noqa: BLE001 - yaml errors, a wrong shape: a file that cannot be read back
        problems.append(f"data.yaml: cannot be read back ({type(exc).__name__}: {str(exc)[:200]})")
        return list(expected)
    names = [str(n) for n in names]
    if names != expected:
        problems.append(f"data.yaml: names {names} differ from the source's {expected}")
    return names


class Region(NamedTuple):
    """What matching needs of a source region: its box (x, y, w, h) and pixel count."""

    bbox: tuple[int, int, int, int]
    area: int


def _source_regions(sample: Sample, options: dict, values: dict[int, int] | None,
                    crops: bool) -> tuple[list[Region], list[np.ndarray] | None, list[int] | None]:
    """The regions the conversion had to write (``mask_layers``: merged files or one layer per
    file, split by value), each as its box and pixel count (``layer_regions``); with ``crops``
    their pixels inside their boxes, else None; with ``--classes value`` each one's class id,
    else None, where every region has the sample's class."""
    if not sample.masks or sample.is_good:
        return [], [] if crops else None, [] if values is not None else None
    per_file = not options.get("merge_masks", True)  # outputs without the option merged every file
    found, cut, class_ids = [], [], []
    for layer in sample_layers(sample.masks, sample.height, sample.width, 0, values, per_file):
        if layer.class_id == UNMAPPED:
            continue
        for region, pixels in layer_regions(layer.mask, crops):
            if region.area >= options["min_area"]:
                found.append(region)
                cut.append(pixels)
                class_ids.append(layer.class_id)
    return found, cut if crops else None, class_ids if values is not None else None


_BAND_LABELLING = 8  # boxes holding more than this many times the band's pixels: count regions by one labelling


def layer_regions(mask: np.ndarray, pixels: bool = True) -> list[tuple[Region, np.ndarray | None]]:
    """Every 8-connected region of ``mask`` (non-zero is defect) in raster order of its first
    pixel: its box and pixel count, and with ``pixels`` its pixels inside the box (bool), else
    None.

    Read by OpenCV alone, independently of the converter's outlines: ``findContours`` gives each
    region's outer border (its box, and its first pixel, where the border's trace starts), the
    component labelled in the box at that pixel gives its pixels and count. Only the rows
    between the first and the last defect row are traced, as in conversion. Without ``pixels``,
    where the boxes overlap so much that labelling each would cost several times labelling the
    whole band (many long thin regions across each other's boxes), the band is labelled once
    and each region's count read off its statistics."""
    binary = to_binary(mask)
    busy = np.flatnonzero(cv2.reduce(binary, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S))
    if not busy.size:
        return []
    top, bottom = int(busy[0]), int(busy[-1]) + 1
    band = binary[top:bottom]
    contours, hierarchy = cv2.findContours(band, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE, offset=(0, top))
    outer = [(cv2.boundingRect(c), c[0, 0].tolist()) for c, parent in zip(contours, hierarchy[0][:, 3].tolist())
             if parent < 0]  # not a hole's border
    counted = None
    if not pixels and sum(w * h for (_, _, w, h), _ in outer) > _BAND_LABELLING * band.size:
        _, labels, stats, _ = cv2.connectedComponentsWithStats(band, connectivity=8, ltype=cv2.CV_32S)
        counted = (labels, stats[:, cv2.CC_STAT_AREA])
    found = []
    for (x, y, w, h), (col, row) in outer:
        if counted is not None:
            found.append(((row, col), Region((x, y, w, h), int(counted[1][counted[0][row - top, col]])), None))
            continue
        _, labels = cv2.connectedComponents(np.ascontiguousarray(binary[y : y + h, x : x + w]), connectivity=8)
        inside = labels == labels[row - y, col - x]
        found.append(((row, col), Region((x, y, w, h), int(np.count_nonzero(inside))), inside if pixels else None))
    found.sort(key=lambda f: f[0])
    return [(region, inside) for _, region, inside in found]


def source_crops(found: list[Instance], masks: list[np.ndarray] | np.ndarray | None) -> list[np.ndarray]:
    """Each region as a bool array over its box, cut from the mask (or per region, its layer's
    mask) itself.

    Within its box a region is one 8-connected component (labelled there by OpenCV, not by the
    converter's own tracing); the component is picked by the region's first pixel in raster
    order, whose top-left corner is the smallest (y, x) corner of the exact outline.
    """
    crops = []
    layers = masks if isinstance(masks, list) else [masks] * len(found)
    for inst, mask, (row, col) in zip(found, layers, first_pixels([i.outer for i in found]).tolist()):
        x, y, w, h = inst.bbox
        crop = np.ascontiguousarray(mask[y : y + h, x : x + w] > 0, dtype=np.uint8)
        _, labels = cv2.connectedComponents(crop, connectivity=8)
        crops.append(labels == labels[row - y, col - x])
    return crops


def mask_facts(mask: np.ndarray) -> tuple[tuple[int, int, int, int], int]:
    """(x, y, w, h) and count of the non-zero pixels of a whole mask. pycocotools decodes
    column-major, whose transpose is row-major: OpenCV reads that one, so no full-image copy is made."""
    if mask.flags.c_contiguous:
        return cv2.boundingRect(mask), cv2.countNonZero(mask)
    row_major = np.ascontiguousarray(mask.T)
    y, x, h, w = cv2.boundingRect(row_major)
    return (x, y, w, h), cv2.countNonZero(row_major)


class OutputMask(NamedTuple):
    """One output instance's mask as a consumer reads it: its pixels inside its box, the box
    (x, y, w, h) and its pixel count."""

    window: np.ndarray
    box: tuple[int, int, int, int]
    area: int

    @classmethod
    def of(cls, mask: np.ndarray, facts: tuple[tuple[int, int, int, int], int] | None = None) -> OutputMask:
        """From a full-image mask (and its ``mask_facts``, when known)."""
        box, area = facts or mask_facts(mask)
        x, y, w, h = box
        return cls(mask[y : y + h, x : x + w], box, area)


def polygon_output_mask(points: np.ndarray, height: int, width: int) -> OutputMask:
    """One YOLO-seg polygon (pixel ``points``, as ultralytics scales them) as ultralytics'
    ``polygon2mask`` rasterises it on a ``height`` x ``width`` image, rasterised by that very
    function on the window of the image that can hold it rather than on the whole frame.

    The pixels are the same: ``polygon2mask`` truncates the points to integers and fills them
    with ``cv2.fillPoly``, which draws nothing outside the integer vertices' box and, with
    integer vertices, only shifts with them. The window starts at the smallest truncated vertex
    (at the image's edge where a vertex lies beyond it) and ends past the largest (at the edge
    where the polygon runs out), so clipping happens at the same edges; shifting a point by an
    integer it is not below leaves its truncation the same, exactly. A full frame per polygon
    (zeroed, filled, then copied by its resize) cost more than the rest of reading the label."""
    from ultralytics.data.utils import polygon2mask

    whole = np.asarray(points, dtype=np.int32)  # polygon2mask's own truncation, for the window only
    x0, y0 = (max(int(v), 0) for v in whole.min(0))
    x1, y1 = min(int(whole[:, 0].max()) + 2, width), min(int(whole[:, 1].max()) + 2, height)
    if x1 <= x0 or y1 <= y0:  # wholly outside the image: nothing is drawn
        return OutputMask(np.zeros((0, 0), np.uint8), (0, 0, 0, 0), 0)
    window = polygon2mask((y1 - y0, x1 - x0), [points - (x0, y0)])
    x, y, w, h = cv2.boundingRect(window)
    if not w:
        return OutputMask(np.zeros((0, 0), np.uint8), (0, 0, 0, 0), 0)
    return OutputMask(window[y : y + h, x : x + w], (x + x0, y + y0, w, h), cv2.countNonZero(window))


def mask_ious(found: list[Instance] | list[Region], crops: list[np.ndarray],
              outputs: list[OutputMask]) -> tuple[np.ndarray, float]:
    """IoU of every source region (``found``, its pixels in its box: ``layer_regions`` or
    ``source_crops``) with every output mask, and the
    IoU of their unions. Only box overlaps are compared: full-image operations per pair made
    verification take far longer than conversion."""
    matrix = np.zeros((len(found), len(outputs)))
    inter = 0
    for i, (inst, crop) in enumerate(zip(found, crops)):
        x, y, w, h = inst.bbox
        for j, (window, (ox, oy, ow, oh), area) in enumerate(outputs):
            x0, y0, x1, y1 = max(x, ox), max(y, oy), min(x + w, ox + ow), min(y + h, oy + oh)
            if x0 >= x1 or y0 >= y1:
                continue
            inter = np.count_nonzero(crop[y0 - y : y1 - y, x0 - x : x1 - x] & (window[y0 - oy : y1 - oy, x0 - ox : x1 - ox] != 0))
            matrix[i, j] = inter / (inst.area + area - inter)
    if len(found) == 1 and len(outputs) == 1:  # most images: the unions are the pair itself
        window, (_, _, ow, oh), _ = outputs[0]
        union = int(np.count_nonzero(crops[0])) + (int(np.count_nonzero(window)) if ow and oh else 0) - int(inter)
        return matrix, 1.0 if union == 0 else int(inter) / union
    return matrix, _union_iou(found, crops, outputs)


def _union_iou(found: list[Instance] | list[Region], crops: list[np.ndarray], outputs: list[OutputMask]) -> float:
    """IoU of the union of the source regions with the union of the output masks, over the box
    that holds them all."""
    shown = [o for o in outputs if o.box[2] and o.box[3]]
    boxes = [inst.bbox for inst in found] + [o.box for o in shown]
    if not boxes:
        return 1.0
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    union_src = np.zeros((y1 - y0, x1 - x0), bool)
    for inst, crop in zip(found, crops):
        x, y, w, h = inst.bbox
        union_src[y - y0 : y - y0 + h, x - x0 : x - x0 + w] |= crop
    union_out = np.zeros_like(union_src)
    for window, (x, y, w, h), _ in shown:
        union_out[y - y0 : y - y0 + h, x - x0 : x - x0 + w] |= window != 0
    return iou(union_out, union_src)


@dataclass
class Expected:
    """What one output image must hold: its name, size, the source regions and their class."""

    name: str  # inside images/<subset>/
    size: tuple[int, int]  # width, height
    source: list[Instance] | list[Region]  # Instances where ``crops`` must be cut from ``mask``
    mask: np.ndarray | list[np.ndarray] | None  # what ``source`` was cut from (``source_crops``), unless ``crops`` is given
    label: str | None  # the class of every region ...
    image_problem: str | None
    data_broken: bool
    coco_fields: dict = field(default_factory=dict)  # what the COCO image record must hold besides its size
    truncated: list[bool] | None = None  # per source region of a tile: the tile's border cuts it
    labels: list[str] | None = None  # ... unless each region has its own (``--classes value``)
    crops: list[np.ndarray] | None = None  # the pixels of ``source`` in their boxes, when already cut


class _Source(NamedTuple):
    """A sample's source regions for one way of reading them, as the first pass sends them on."""

    regions: list[Region]
    crops: list[np.ndarray] | None  # each region's pixels in its box (``layer_regions``); None where only boxes are compared
    class_ids: list[int] | None  # per region with ``--classes value`` (named by the format's own names), else None


class _Later(NamedTuple):
    """An output image's check as the first pass leaves it: its image checked, its regions found."""

    size: tuple[int, int]  # of the source image, read by the first pass
    image_problem: str | None
    data_broken: bool
    source: int  # index into the sample's ``_Source`` list


def _check_untiled(prepared: list[tuple[str, Path, list[str], list[ImageCheck], list[tuple]]], workers: int | None,
                   progress: bool, meanwhile: Callable[[], object] | None = None,
                   names_of: dict[int, list[str]] | None = None) -> None:
    """Every untiled format's checks, in two passes over the samples; appends each format's checks
    in its order.

    The first (``_check_sources``) decodes each source mask and finds its regions once for all
    formats and checks each output image's data once per file (the formats of an ``--format all``
    output link one file): what needs no consumer. ``meanwhile`` runs in this process during it
    (``fork_map``; before it, where the pass runs in this process): it loads the COCO files with
    pycocotools and imports ultralytics, which imports torch, beside one forked worker fewer, and
    this process then takes samples of the pass too. The second pass, forked after that, reads every
    output as its consumer does (each COCO image with pycocotools, each YOLO label file with
    ultralytics) against the regions the first pass found; ``names_of`` gives, by index into
    ``prepared``, the class names that ``meanwhile`` read for a format. What the first sends back is
    kept small (boxes, areas, crops; no outlines, no per-image objects): the main process unpickles
    it alone."""
    groups: dict[str, list[tuple[int, tuple]]] = {}
    for k, (_, _, _, _, jobs) in enumerate(prepared):
        for job in jobs:
            groups.setdefault((str(job[2].image), job[2].id), []).append((k, job))
    if not groups:
        return
    formats = [p[0] for p in prepared if p[4]]
    with opencv_single_threaded():
        first = fork_map(_check_sources, list(groups.values()), workers, "Verifying sources, images" if progress else None,
                         initializer=keep_freed_memory, meanwhile=meanwhile)
    names_of = names_of or {}
    slots: list[tuple[int, int]] = []
    later: list[tuple[tuple, _Later, _Source]] = []
    for members, (results, sources, intact_pngs) in zip(groups.values(), first):
        _INTACT_OUTPUTS.update(intact_pngs)
        for (k, args), result in zip(members, results):
            prepared[k][3].append(result if isinstance(result, ImageCheck) else None)
            if not isinstance(result, ImageCheck):
                slots.append((k, len(prepared[k][3]) - 1))
                if k in names_of:  # the names its files give, read meanwhile
                    args = (*args[:5], names_of[k], *args[6:])
                later.append((args, result, sources[result.source]))
    if not later:
        return
    with opencv_single_threaded(), _image_checked_once() if any(f != "coco" for f in formats) else nullcontext():
        second = fork_map(_check_later, later, workers, f"Verifying {'+'.join(formats)}" if progress else None,
                          initializer=keep_freed_memory)
    for (k, at), check in zip(slots, second):
        prepared[k][3][at] = check


def _check_later(job: tuple[tuple, _Later, _Source]) -> ImageCheck:
    args, done, source = job
    fmt, folder, sample, subset, options, names, _values = args
    return _check_image(fmt, folder, subset, _expected(sample, options, done.size, source, names, done.image_problem,
                                                       done.data_broken), names)


def _check_sources(members: list[tuple[int, tuple]]) -> tuple[list[_Later], list[_Source], dict]:
    """One sample in every format that lists it: its source regions found (and cut out) once per
    way of reading them, its source image looked up once, each output image's data checked.
    Returns each format's check as the second pass is to finish it, in the order of ``members``;
    the sources they refer to; and the size of each output PNG found intact that a YOLO format
    reads, by its path."""
    found: dict[tuple, int] = {}
    sources: list[_Source] = []
    results: list[_Later] = []
    intact: dict[str, tuple[int, int]] = {}
    listed = members[0][1][2]
    try:
        source_stat: os.stat_result | OSError = os.stat(listed.image)
    except OSError as exc:
        source_stat = exc
    images = []
    for _, (_fmt, folder, _, subset, options, _names, _values) in members:
        name = output_name(listed.relpath, options.get("names", "mirror"))  # outputs without the option mirrored
        output = _output_image(folder, subset, name)  # as ``_yolo_instances`` names it to ultralytics
        images.append((output, *_image_problem(output, str(listed.image), source_stat, options.get("images", "link"))))
    sample = _sized(listed, source_stat)
    size = (sample.width, sample.height)
    masked = any(args[0] != "yolo" for _, args in members)  # only box outputs need no crops
    for (_, args), (output, problem, data_broken, image) in zip(members, images):
        fmt, folder, _, subset, options, names, values = args
        key = (options["classes"], options["min_area"], options.get("merge_masks", True),
               tuple(sorted(values.items())) if values is not None else None)
        if key not in found:
            found[key] = len(sources)
            sources.append(_Source(*_source_regions(sample, options, values, masked)))
        if image in _PNG_CHECKED and fmt != "coco":  # ultralytics' image check, in the second pass
            intact[output] = _PNG_CHECKED[image]
        results.append(_Later(size, problem, data_broken, found[key]))
    return results, sources, intact


def _sized(sample: Sample, source_stat: os.stat_result | OSError) -> Sample:
    """``with_size(sample)``, its image's header read from the bytes that checking an output
    that is this very file has just read (``_PNG_ENDS``), where there was one: a link, as
    ``--images link`` writes them. The masks' headers are read and checked as ``with_size``
    does (their ends too: a mask with bytes after its IEND is refused before any decoding)."""
    ends = None if isinstance(source_stat, OSError) else _PNG_ENDS.pop((source_stat.st_dev, source_stat.st_ino), None)
    return with_size(sample, png_header(sample.image, *ends) if ends is not None else None)


def _output_image(folder: str, subset: str, name: str) -> str:
    """``os.path.join(folder, "images", subset, name)`` for the strings verify builds (``folder``
    without a trailing separator, ``name`` relative), at a fraction of its cost."""
    return f"{folder}{os.sep}images{os.sep}{subset}{os.sep}{name}"


def _expected(sample: Sample, options: dict, size: tuple[int, int], source: _Source, names: list[str],
              problem: str | None, data_broken: bool) -> Expected:
    """What the output image of ``sample`` must hold, in an untiled output written with ``options``;
    with ``--classes value`` each region is named by ``names``, the format's own (its COCO files'
    categories, its data.yaml), as its instances are."""
    name = output_name(sample.relpath, options.get("names", "mirror"))  # outputs without the option mirrored
    fields = {"source_file": sample.relpath} if "names" in options else {}  # outputs without the option had none
    labels = None if source.class_ids is None else [names[c] if c < len(names) else f"class {c}" for c in source.class_ids]
    return Expected(name, size, source.regions, None, class_name(sample, options["classes"]), problem, data_broken,
                    fields, labels=labels, crops=source.crops)


def _check_tiles(args) -> list[ImageCheck]:
    """Every tile of one source image that the output lists (``meta/tiles.csv``), each against
    the tile of the source mask and of the source image; and every tile that holds a written
    instance must be listed."""
    from .tiling import tile_name, tile_regions

    fmt, folder, sample, subset, options, names, tiles, rows = args
    sample = with_size(sample)
    folder = Path(folder)
    size = tiles["size"]
    checks = []
    seen: set[tuple[int, int]] = set()
    valid = []
    stem = os.path.splitext(output_name(sample.relpath))[0]
    for row in rows:
        where = f"meta/tiles.csv: tile {row.get('tile')}"
        try:
            x, y, w, h = (int(row[k]) for k in ("x", "y", "w", "h"))
        except (KeyError, TypeError, ValueError):
            checks.append(ImageCheck(f"{subset}/{row.get('file_name')}", problems=[f"{where}: x, y, w, h are not integers"]))
            continue
        tests = (("listed twice", (x, y) in seen),
                 (f"subset {row.get('subset')} is not the image's {subset}", row.get("subset") != subset),
                 (f"size {w}x{h} is not {size}x{size}", (w, h) != (size, size)),
                 (f"file_name {row.get('file_name')} is not the tile's name", row.get("file_name") != tile_name(stem, x, y)))
        wrong = [f"{where}: {what}" for what, bad in tests if bad]
        seen.add((x, y))
        if wrong:
            checks.append(ImageCheck(f"{subset}/{row.get('file_name')}", problems=wrong))
        else:
            valid.append((x, y))
    origins = tile_grid(sample.width, sample.height, size, tiles["overlap"])
    mask = load_mask(sample.masks, sample.height, sample.width, zero_one=False) \
        if sample.masks and not sample.is_good else np.zeros((sample.height, sample.width), np.uint8)
    regions = dict(zip(origins, tile_regions(mask, origins, size, options["min_area"], tiles["min_visible"])))
    listed = set(valid)
    checks += [ImageCheck(f"{subset}/{tile_name(stem, x, y)}", expected=len(t.kept), missing=len(t.kept),
                         problems=[f"{subset}/{tile_name(stem, x, y)}: tile with {len(t.kept)} instance(s) is not "
                                   "in the output"])
              for (x, y), t in regions.items() if t.kept and (x, y) not in listed]
    image = cv2.imread(str(sample.image), cv2.IMREAD_UNCHANGED)
    label = class_name(sample, options["classes"])
    for x, y in sorted(listed, key=lambda p: (p[1], p[0])):
        name = tile_name(stem, x, y)
        path = folder / "images" / subset / name
        tile = regions.get((x, y))
        if tile is None:
            checks.append(ImageCheck(f"{subset}/{name}", problems=[f"{subset}/{name}: not a tile of the grid"]))
            continue
        problem = _tile_image_problem(path, None if image is None else cut(image, x, y, size))
        expected = Expected(name, (size, size), tile.kept, cut(mask, x, y, size), label, problem, problem is not None,
                            {"source_file": sample.relpath, "tile": [x, y, size, size]}, tile.truncated)
        checks.append(_check_image(fmt, folder, subset, expected, names))
    return checks


def _tile_image_problem(path: Path, pixels: np.ndarray | None) -> str | None:
    """A tile must hold exactly the source image's pixels there, in an intact file."""
    if not path.is_file():
        return f"image file is missing ({path})"
    if pixels is None:
        return "the source image cannot be decoded"
    problem = image_data_problem(path)[0]
    if problem:
        return problem
    written = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if written is None or written.shape != pixels.shape or not np.array_equal(written, pixels):
        return "tile differs from the source image's pixels there"
    return None


def _check_image(fmt: str, folder: str | Path, subset: str, expected: Expected, names: list[str]) -> ImageCheck:
    """One output image against what it must hold, read with the consumers' own code."""
    source, mask, name = expected.source, expected.mask, expected.name
    crops = expected.crops if expected.crops is not None or fmt == "yolo" else source_crops(source, mask)
    check = ImageCheck(f"{subset}/{name}")
    expected_class = expected.label
    check.expected = len(source)
    if expected.image_problem:
        check.problems.append(f"{check.image}: {expected.image_problem}")
    anns: list[dict] = []
    try:
        if fmt == "coco":
            anns, masks, record = _coco_instances(os.fspath(folder), subset, expected.size, name)
            check.problems += [f"{check.image}: COCO {key} {record.get(key)} is not {want}"
                               for key, want in expected.coco_fields.items() if record.get(key) != want]
            classes = [names[a["category_id"] - 1] if 0 < a["category_id"] <= len(names) else None for a in anns]
            boxes = None
        else:
            ids, masks, boxes = _yolo_instances(os.fspath(folder), subset, expected.size, name, fmt, len(names),
                                                not expected.data_broken)
            classes = [names[c] for c in ids]
    except (VerificationError, OSError, ValueError) as exc:  # a consumer refused the file: that is the finding
        check.problems.append(f"{check.image}: cannot be read back: {exc}")
        check.missing = len(source)
        return check
    wanted = expected.labels if expected.labels is not None else [expected_class] * len(source)
    if fmt != "coco" and len(source) > 1:  # a YOLO file holds one row per distinct (class, box or outline)
        keys = [(w, i.bbox) if fmt == "yolo" else (w, i.bbox, crops[k].tobytes())  # polygons: the same pixels
                for k, (w, i) in enumerate(zip(wanted, source))]
        seen: dict = {}
        keep = [k for k, key in enumerate(keys) if seen.setdefault(key, k) == k]
        if len(keep) < len(source):
            source, wanted = [source[k] for k in keep], [wanted[k] for k in keep]
            crops = [crops[k] for k in keep] if crops is not None else None
            check.expected = len(source)
    check.found = len(classes)
    if not source and not classes:  # nothing expected and nothing found, as on a good image
        return check
    if boxes is not None:
        matrix = _box_iou_matrix([i.bbox for i in source], boxes)
    else:
        matrix, check.image_iou = mask_ious(source, crops, masks)
    same = np.array([[w == c for c in classes] for w in wanted], bool).reshape(matrix.shape)
    pairs = [(r, c, float(matrix[r, c])) for r, c, _ in _match(matrix + same * (matrix > 0))]  # same class first
    check.class_mismatch = sum(wanted[r] != classes[c] for r, c, _ in pairs) + \
        sum(classes[c] not in wanted for c in set(range(len(classes))) - {c for _, c, _ in pairs})
    check.ious = [v for _, _, v in pairs]
    check.missing = len(source) - len(pairs)
    check.extra = len(classes) - len(pairs)
    for kind, n in (("missing", check.missing), ("extra", check.extra), ("class mismatch", check.class_mismatch)):
        if n:
            check.problems.append(f"{check.image}: {n} {kind} instance(s)")
    for r, c, _ in pairs if anns else ():
        check.problems.extend(_exact_problems(subset, check.image, anns[c], source[r]))
        if expected.truncated is not None and anns[c].get("truncated") is not expected.truncated[r]:
            check.problems.append(f"{check.image}: annotation {anns[c].get('id')} says truncated "
                                  f"{anns[c].get('truncated')}, the tile cuts its region: {expected.truncated[r]}")
    return check


def _exact_problems(subset: str, image: str, ann: dict, region: Instance | Region) -> list[str]:
    """A COCO box and area are integers by convention: they must be the source region's."""
    where = f"annotations/instances_{subset}.json: annotation {ann.get('id')} ({image})"
    found = []
    if list(ann.get("bbox", ())) != list(region.bbox):
        found.append(f"{where}: bbox {ann.get('bbox')} differs from the source region's {list(region.bbox)}")
    if ann.get("area") != region.area:
        found.append(f"{where}: area {ann.get('area')} differs from the source region's {region.area}")
    return found


_SEEN: dict[tuple[int, int], str | None] = {}  # (device, inode) -> problem of that image data, per process


def _image_problem(output: str, source: str, source_stat: os.stat_result | OSError,
                   mode: str) -> tuple[str | None, bool, tuple[int, int] | None]:
    """(problem, data broken, the output's (device, inode) if its data was checked): whether the
    output image is the source image (same file for links, same bytes for copies) and its data
    intact (checked once per file and process)."""
    try:
        if isinstance(source_stat, OSError):
            raise source_stat
        out_stat = os.stat(output)
    except FileNotFoundError:
        return f"image file is missing ({output})", True, None
    except OSError as exc:
        return f"image file cannot be read ({exc.strerror})", True, None
    same_file = (out_stat.st_dev, out_stat.st_ino) == (source_stat.st_dev, source_stat.st_ino)
    key = (out_stat.st_dev, out_stat.st_ino)
    try:
        if not same_file:
            if mode == "symlink" or (mode == "link" and out_stat.st_dev == source_stat.st_dev):
                return f"image is not the source image {source} (not the same file)", False, None
            if out_stat.st_size != source_stat.st_size or not filecmp.cmp(output, source, shallow=False):
                return f"image differs from the source image {source}", False, None
        if key not in _SEEN:
            _SEEN[key] = _image_data_problem(output, key, same_file)
    except OSError as exc:  # it can be listed but not read (permissions, an I/O error): a finding, not a crash
        return f"image file cannot be read ({exc.strerror or exc})", True, None
    return _SEEN[key], _SEEN[key] is not None, key


def _image_data_problem(path: str, key: tuple[int, int], source: bool = False) -> str | None:
    """``image_data_check``'s problem of the file whose (device, inode) is ``key``; an intact
    PNG's header size is kept for ``_image_checked_once`` and, where the file is the ``source``
    image itself, a PNG's ends for ``_sized``."""
    problem, png_size, ends = image_data_check(path)
    if png_size is not None:
        _PNG_CHECKED[key] = png_size
    if ends is not None and source:
        _PNG_ENDS[key] = ends
    return problem


_PNG_CHECKED: dict[tuple[int, int], tuple[int, int]] = {}  # (device, inode) -> (width, height) of an intact PNG
_PNG_ENDS: dict[tuple[int, int], tuple[bytes, bytes]] = {}  # (device, inode) -> ``ImageData.png_ends``, until ``_sized``
_INTACT_OUTPUTS: dict[str, tuple[int, int]] = {}  # output image path -> ``_PNG_CHECKED`` of its file, for the second pass


@contextmanager
def _image_checked_once():
    """ultralytics' ``check_image`` (called by its ``verify_image_label`` for every label file)
    repeats PIL's verify, which ``image_data_check`` has just done for this file, at several times the
    cost and once per YOLO format. While this block runs, a PNG that ``image_data_check`` found intact
    (and without EXIF, whose orientation ultralytics would apply) gets ultralytics' own size and
    format checks on its header instead; every other file gets ultralytics' full check. The PNGs are
    known by the paths the first pass checked (``_INTACT_OUTPUTS``), the very strings the second
    pass hands to ultralytics."""
    import ultralytics.data.utils as consumer

    original = consumer.check_image

    def check_image(im_file: str) -> tuple[str, tuple[int, int]]:
        size = _INTACT_OUTPUTS.get(im_file)
        if size is None:
            return original(im_file)
        width, height = size
        assert width > 9 and height > 9, f"image size {(height, width)} <10 pixels"  # as ultralytics asserts
        return "", (height, width)

    consumer.check_image = check_image
    try:
        yield
    finally:
        consumer.check_image = original


def _coco_instances(folder: str, subset: str, size: tuple[int, int],
                    name: str) -> tuple[list[dict], list[OutputMask], dict]:
    """(annotations, their masks, the image record). Each mask is pycocotools' RLE of the
    annotation (``annToRLE``, the first half of ``annToMask``), its box and area pycocotools'
    ``toBbox`` and ``area``, its pixels those runs inside the box (``rle_window``); an RLE whose
    counts cannot be read back exactly is decoded by pycocotools itself."""
    from pycocotools import mask as mask_utils

    if (folder, subset) not in _COCO_FILES:  # a worker that did not inherit the main process's files (no fork)
        _load_coco_files(Path(folder), {subset}, [], [])
        if (folder, subset) not in _COCO_FILES:
            raise VerificationError("its COCO file cannot be read back", coco.subset_path(Path(folder), subset))
    index, by_name, path = _COCO_FILES[(folder, subset)]
    image = by_name.get(name)
    if image is None:
        raise VerificationError("image is not listed in the COCO file", path)
    if (image.get("width"), image.get("height")) != size:
        raise VerificationError(f"COCO size {image.get('width')}x{image.get('height')} differs from the image "
                                f"({size[0]}x{size[1]})", path)
    anns = index.loadAnns(index.getAnnIds(imgIds=[image["id"]]))  # type: ignore[attr-defined]
    masks = []
    for a in anns:
        segmentation = a.get("segmentation")
        if isinstance(segmentation, dict) and list(segmentation.get("size", ())) != [size[1], size[0]]:
            raise VerificationError(f"annotation {a.get('id')}: RLE size {segmentation.get('size')} is not the "
                                    f"image's [{size[1]}, {size[0]}] (height, width)", path)
        try:
            rle = index.annToRLE(a)  # type: ignore[attr-defined]
            box = tuple(int(v) for v in mask_utils.toBbox(rle))
            area = int(mask_utils.area(rle))
            counts = rle_counts(rle)
            window = rle_window(counts, size[1], box) if counts is not None else \
                OutputMask.of(index.annToMask(a), (box, area)).window  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - pycocotools on a malformed segmentation
            raise VerificationError(f"annotation {a.get('id')}: segmentation cannot be decoded "
                                    f"({type(exc).__name__})", path) from exc
        masks.append(OutputMask(window, box, area))
    return anns, masks, image


_DUPLICATES_DROPPED = re.compile(r": (\d+) duplicate labels removed$")  # verify_image_label's message when it drops rows


def _yolo_instances(folder: str, subset: str, size: tuple[int, int], name: str, fmt: str, classes: int,
                    image_ok: bool) -> tuple[list[int], list[OutputMask], list[tuple] | None]:
    """(class ids, masks, boxes) of one label file as ultralytics reads it: boxes for ``yolo``,
    masks rasterised by its ``polygon2mask`` for ``yolo-seg``."""
    from ultralytics.data.utils import img2label_paths, verify_image_label

    image = _output_image(folder, subset, name)
    label = img2label_paths([image])[0]
    if not image_ok:  # ultralytics would rewrite a JPEG without its end marker: read the labels only
        if not os.path.isfile(label):
            raise VerificationError("label file is missing", label)
        raise VerificationError("labels not checked: the image itself is broken", label)
    im_file, lb, shape, segments, _kp, missing, _nf, _ne, nc, msg = verify_image_label(
        (image, label, "", False, max(classes, 1), 0, 0, False))
    if missing or (nc and not os.path.isfile(label)):  # ultralytics checks the image first: a refused image hides it
        raise VerificationError("label file is missing", label)
    if nc or lb is None:
        raise VerificationError(f"ultralytics rejected the label: {msg}", label)
    dropped = _DUPLICATES_DROPPED.search(msg)
    if dropped:
        raise VerificationError(f"{dropped[1]} duplicate row(s) (ultralytics drops them)", label)
    h, w = shape
    if (w, h) != size:
        raise VerificationError(f"ultralytics reads the image as {w}x{h}", image)
    ids = [int(c) for c in lb[:, 0]]
    if fmt == "yolo-seg":
        if len(lb) and not segments:
            raise VerificationError("polygon output holds box rows", label)
        scale = np.array([w, h])
        return ids, [polygon_output_mask(seg * scale, h, w) for seg in segments], None
    if segments:
        raise VerificationError("box output holds polygon rows", label)
    boxes = [(float((x - bw / 2) * w), float((y - bh / 2) * h), float(bw * w), float(bh * h)) for _, x, y, bw, bh in lb]
    return ids, [], boxes


def _box_iou_matrix(source: list[tuple[int, int, int, int]], found: list[tuple[float, ...]]) -> np.ndarray:
    out = np.zeros((len(source), len(found)))
    for i, (x, y, w, h) in enumerate(source):
        for j, (fx, fy, fw, fh) in enumerate(found):
            ix = max(0.0, min(x + w, fx + fw) - max(x, fx))
            iy = max(0.0, min(y + h, fy + fh) - max(y, fy))
            inter = ix * iy
            out[i, j] = inter / (w * h + fw * fh - inter)
    return out


_SMALL_SORT = 64  # entries of a matrix small enough that sorting in Python beats numpy's fixed costs


def _match(matrix: np.ndarray) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching by descending IoU (IoU > 0 only); equal IoUs in row-major order."""
    pairs, used_r, used_c = [], set(), set()
    if matrix.size == 0:
        return pairs
    if matrix.size <= _SMALL_SORT:  # one region and one instance, mostly
        cols = matrix.shape[1]
        values = matrix.ravel().tolist()
        order = [divmod(k, cols) for k in sorted(range(len(values)), key=lambda k: -values[k])]  # stable
    else:
        order = np.dstack(np.unravel_index(np.argsort(-matrix, axis=None, kind="stable"), matrix.shape))[0]
    for r, c in order:
        if matrix[r, c] <= 0:
            break
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((int(r), int(c), float(matrix[r, c])))
    return pairs


def _summarize(checks: list[ImageCheck], min_iou: float, file_problems: list[str]) -> dict:
    ious = [v for c in checks for v in c.ious]
    image_ious = [c.image_iou for c in checks if c.image_iou is not None and c.expected]
    low = [(c.image, v) for c in checks for v in c.ious if v < min_iou]
    problems = [*file_problems, *(p for c in checks for p in c.problems),
                *(f"{img}: instance IoU {v:.4f} < {min_iou}" for img, v in low)]
    return {
        "images": len(checks),
        "instances_expected": sum(c.expected for c in checks),
        "instances_found": sum(c.found for c in checks),
        "matched": len(ious),
        "missing": sum(c.missing for c in checks),
        "extra": sum(c.extra for c in checks),
        "class_mismatch": sum(c.class_mismatch for c in checks),
        "low_iou": len(low),
        "instance_iou_mean": round(float(np.mean(ious)), 6) if ious else None,
        "instance_iou_min": round(float(np.min(ious)), 6) if ious else None,
        "image_iou_mean": round(float(np.mean(image_ious)), 6) if image_ious else None,
        "problems": problems[:MAX_LISTED],
        "problems_total": len(problems),
    }


def _unpaired(folder: Path) -> list[str]:
    """Images without a label file and label files without an image, as ultralytics pairs them."""
    from ultralytics.data.utils import img2label_paths

    images = _files(folder / "images")
    expected = img2label_paths(images)
    labels = set(expected)
    present = {p for p in _files(folder / "labels") if p.endswith(".txt")}
    lonely = [f"no label for {p}" for p, lb in zip(images, expected) if lb not in present]
    lonely += [f"no image for {p}" for p in sorted(present - labels)]
    return lonely[:MAX_LISTED]


def _files(root: Path) -> list[str]:
    """Every file below ``root`` as a path string, sorted. ``os.scandir`` reads each entry's type
    from the directory itself: pathlib's rglob, or a stat per name, costs several times more over
    an output's tens of thousands of files."""
    found: list[str] = []
    pending = [os.fspath(root)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:  # gone or unreadable, as os.walk skips it
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            elif entry.is_file():
                found.append(entry.path)
    return sorted(found)


def _coco_unlisted(folder: Path) -> list[str]:
    mine = {subset: by_name for (where, subset), (_, by_name, _) in _COCO_FILES.items() if where == os.fspath(folder)}
    listed = {f"{subset}/{name}" for subset, by_name in mine.items() for name in by_name}
    loaded = set(mine)
    base = str(folder / "images") + os.sep
    on_disk = {p[len(base):].replace(os.sep, "/") for p in _files(folder / "images")}
    on_disk = {p for p in on_disk if p.split("/", 1)[0] in loaded}  # an unreadable file is reported already
    return [f"image not listed in any COCO file: {p}" for p in sorted(on_disk - listed)][:MAX_LISTED]


def _check_yaml(folder: Path) -> str:
    """ultralytics' own dataset check on ``data.yaml`` (no download is attempted). Its last step,
    ``check_font``, finds or fetches a font for plotting, which says nothing about the data and
    costs more than the check itself (it imports matplotlib and requests): it is skipped here."""
    import ultralytics.data.utils as consumer

    original = consumer.check_font
    consumer.check_font = lambda *_args, **_kwargs: None
    try:
        consumer.check_det_dataset(str(folder / "data.yaml"), autodownload=False)
    except Exception as exc:  # ultralytics raises several types here
        return f"check_det_dataset failed: {exc}"
    finally:
        consumer.check_font = original
    return "ok"
