"""Read converted outputs back with the consumers' own code and compare them with the source masks.

COCO files are loaded with pycocotools (``COCO``, ``annToMask``); YOLO folders with ultralytics
(``check_det_dataset``, ``verify_image_label``, ``polygon2mask``, ``img2label_paths``). Each
output instance is matched to a source region (8-connected, as in conversion) by IoU: mask IoU
for polygons and COCO, box IoU for YOLO boxes. Conversion is trusted only when every instance
matches above the threshold, none is missing or extra, classes agree and every label pairs.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .allocator import keep_freed_memory
from .classes import class_name
from .datasets import load_dataset
from .errors import VerificationError
from .export import FORMATS
from .imageio import load_mask, opencv_single_threaded
from .masks import Instance, instances, iou
from .parallel import fork_map
from .records import Sample
from .ultra import quiet_offline_ultralytics

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
    if (out / "report.json").is_file() and (out / "data.yaml").is_file():
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
    formats = _read_report(folder)["options"]["formats"]
    return next(f for f in formats if f != "coco")


def _read_report(folder: Path) -> dict:
    try:
        return json.loads((folder / "report.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise VerificationError(f"report.json is unreadable ({exc})", folder / "report.json") from exc


def _read_manifest(folder: Path) -> list[dict]:
    path = folder / "split.csv"
    if not path.is_file():
        raise VerificationError("split.csv is missing", path, "convert again")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def verify(out: Path, dataset: Path | None = None, min_iou: float = 0.95, workers: int | None = None,
           progress: bool = False) -> dict:
    """Check every format found in ``out``; returns the result (also written to ``verify.json``)."""
    quiet_offline_ultralytics()
    out = Path(out).absolute()
    result: dict = {"output": str(out), "min_iou": min_iou, "formats": {}}
    listed: dict[tuple, dict[str, Sample]] = {}  # an --format all output lists one dataset once, not per format
    for fmt, folder in find_outputs(out).items():
        report = _read_report(folder)
        root = Path(dataset) if dataset else Path(report["dataset"]["root"])
        if not root.is_dir():
            raise VerificationError("source dataset not found", root, "pass --dataset with its new location")
        key = (root, report["dataset"]["layout"], tuple(report["dataset"]["categories"]))
        if key not in listed:
            listed[key] = {s.id: s for s in load_dataset(root, key[1], list(key[2])).samples}
        samples = listed[key]
        rows = _read_manifest(folder)
        missing_sources = [r["sample_id"] for r in rows if r["sample_id"] not in samples]
        if missing_sources:
            raise VerificationError(f"{len(missing_sources)} sample(s) of split.csv are not in the dataset, "
                                    f"e.g. {missing_sources[0]}", root, "pass --dataset with the source dataset")
        options = report["options"]
        jobs = [(fmt, str(folder), samples[r["sample_id"]], r["subset"], options) for r in rows]
        names = _class_names(folder, fmt)
        with opencv_single_threaded():
            checks = fork_map(_check_one, [(*j, names) for j in jobs], workers,
                              f"Verifying {fmt}" if progress else None, initializer=keep_freed_memory)
        summary = _summarize(checks, min_iou)
        summary["unpaired"] = _unpaired(folder) if fmt != "coco" else _coco_unlisted(folder)
        if fmt != "coco":
            summary["dataset_yaml"] = _check_yaml(folder)
        summary["passed"] = (summary["missing"] == 0 and summary["extra"] == 0 and summary["low_iou"] == 0
                             and summary["class_mismatch"] == 0 and not summary["unpaired"]
                             and summary.get("dataset_yaml", "ok") == "ok")
        result["formats"][fmt] = summary
    result["passed"] = all(f["passed"] for f in result["formats"].values())
    (out / "verify.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _class_names(folder: Path, fmt: str) -> list[str]:
    if fmt == "coco":
        files = sorted((folder / "annotations").glob("instances_*.json"))
        if not files:
            raise VerificationError("no instances_<subset>.json", folder / "annotations")
        cats = json.loads(files[0].read_text())["categories"]
        return [c["name"] for c in sorted(cats, key=lambda c: c["id"])]
    import yaml

    names = yaml.safe_load((folder / "data.yaml").read_text())["names"]
    return [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)


def _source_instances(sample: Sample, options: dict) -> tuple[list[Instance], np.ndarray | None]:
    """The regions the conversion had to write, and the merged mask they come from."""
    if not sample.masks or sample.is_good:
        return [], None
    mask = load_mask(sample.masks, sample.height, sample.width, zero_one=False)
    return [i for i in instances(mask) if i.area >= options["min_area"]], mask


def source_crops(found: list[Instance], mask: np.ndarray | None) -> list[np.ndarray]:
    """Each region as a bool array over its box, cut from the mask itself.

    Within its box a region is one 8-connected component (labelled there by OpenCV, not by the
    converter's own tracing); the component is picked by the region's first pixel in raster
    order, whose top-left corner is the smallest (y, x) corner of the exact outline.
    """
    crops = []
    for inst in found:
        x, y, w, h = inst.bbox
        crop = np.ascontiguousarray(mask[y : y + h, x : x + w] > 0, dtype=np.uint8)
        corner = inst.outer[np.lexsort((inst.outer[:, 0], inst.outer[:, 1]))[0]]
        _, labels = cv2.connectedComponents(crop, connectivity=8)
        crops.append(labels == labels[int(corner[1]) - y, int(corner[0]) - x])
    return crops


def _box_and_area(mask: np.ndarray) -> tuple[tuple[int, int, int, int], int]:
    """(x, y, w, h) and count of the non-zero pixels. pycocotools decodes column-major, whose
    transpose is row-major: OpenCV reads that one, so no full-image copy is made."""
    if mask.flags.c_contiguous:
        return cv2.boundingRect(mask), cv2.countNonZero(mask)
    row_major = np.ascontiguousarray(mask.T)
    y, x, h, w = cv2.boundingRect(row_major)
    return (x, y, w, h), cv2.countNonZero(row_major)


def mask_ious(found: list[Instance], crops: list[np.ndarray], outputs: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """IoU of every source region (``found``, ``source_crops``) with every full-image output mask,
    and the IoU of their unions. Only box overlaps are compared: full-image operations per pair
    made verification take far longer than conversion."""
    views = [m.astype(np.uint8, copy=False) for m in outputs]
    out_boxes, out_areas = zip(*map(_box_and_area, views)) if views else ((), ())
    matrix = np.zeros((len(found), len(views)))
    for i, (inst, crop) in enumerate(zip(found, crops)):
        x, y, w, h = inst.bbox
        for j, (view, (ox, oy, ow, oh)) in enumerate(zip(views, out_boxes)):
            x0, y0, x1, y1 = max(x, ox), max(y, oy), min(x + w, ox + ow), min(y + h, oy + oh)
            if x0 >= x1 or y0 >= y1:
                continue
            inter = np.count_nonzero(crop[y0 - y : y1 - y, x0 - x : x1 - x] & (view[y0:y1, x0:x1] != 0))
            matrix[i, j] = inter / (inst.area + out_areas[j] - inter)
    boxes = [inst.bbox for inst in found] + [b for b in out_boxes if b[2] and b[3]]
    if not boxes:
        return matrix, 1.0
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    union_src = np.zeros((y1 - y0, x1 - x0), bool)
    for inst, crop in zip(found, crops):
        x, y, w, h = inst.bbox
        union_src[y - y0 : y - y0 + h, x - x0 : x - x0 + w] |= crop
    union_out = np.zeros_like(union_src)
    for view in views:
        union_out |= view[y0:y1, x0:x1] != 0
    return matrix, iou(union_out, union_src)


def _check_one(args) -> ImageCheck:
    fmt, folder, sample, subset, options, names = args
    folder = Path(folder)
    check = ImageCheck(f"{subset}/{sample.relpath}")
    source, mask = _source_instances(sample, options)
    expected_class = class_name(sample, options["classes"])
    check.expected = len(source)
    try:
        if fmt == "coco":
            classes, masks = _coco_instances(folder, subset, sample)
            boxes = None
        else:
            classes, masks, boxes = _yolo_instances(folder, subset, sample, fmt)
    except Exception as exc:  # a consumer refused the file: that is the finding
        check.problems.append(f"{check.image}: cannot be read back: {exc}")
        check.missing = len(source)
        return check
    check.found = len(classes)
    check.class_mismatch = sum(names[c] != expected_class for c in classes)
    if boxes is not None:
        pairs = _match(_box_iou_matrix([i.bbox for i in source], boxes))
    else:
        matrix, check.image_iou = mask_ious(source, source_crops(source, mask), masks)
        pairs = _match(matrix)
    check.ious = [v for _, _, v in pairs]
    check.missing = len(source) - len(pairs)
    check.extra = len(classes) - len(pairs)
    for kind, n in (("missing", check.missing), ("extra", check.extra), ("class mismatch", check.class_mismatch)):
        if n:
            check.problems.append(f"{check.image}: {n} {kind} instance(s)")
    return check


_COCO_CACHE: dict[str, tuple] = {}  # path -> (COCO, file_name -> image record)


def _coco_instances(folder: Path, subset: str, sample: Sample) -> tuple[list[int], list[np.ndarray]]:
    from pycocotools.coco import COCO

    path = str(folder / "annotations" / f"instances_{subset}.json")
    if path not in _COCO_CACHE:  # load each file once per process, with its file-name index
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress lines
            loaded = COCO(path)
        _COCO_CACHE[path] = (loaded, {img["file_name"]: img for img in loaded.dataset["images"]})
    coco, by_name = _COCO_CACHE[path]
    image = by_name.get(sample.relpath)
    if image is None:
        raise VerificationError("image is not listed in the COCO file", path)
    if (image["width"], image["height"]) != (sample.width, sample.height):
        raise VerificationError(f"COCO size {image['width']}x{image['height']} differs from the image", path)
    if not (folder / "images" / subset / sample.relpath).is_file():
        raise VerificationError("image file is missing", folder / "images" / subset / sample.relpath)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))  # type: ignore[attr-defined]
    if any(a.get("iscrowd", 0) for a in anns):
        raise VerificationError("annotation stored with iscrowd=1 (COCOeval would ignore it)", path)
    return [a["category_id"] - 1 for a in anns], [coco.annToMask(a) for a in anns]  # type: ignore[attr-defined]


def _yolo_instances(folder: Path, subset: str, sample: Sample, fmt: str):
    from ultralytics.data.utils import img2label_paths, polygon2mask, verify_image_label

    image = folder / "images" / subset / sample.relpath
    label = img2label_paths([str(image)])[0]
    if not os.path.isfile(label):
        raise VerificationError("label file is missing", label)
    im_file, lb, shape, segments, _kp, _nm, _nf, _ne, nc, msg = verify_image_label(
        (str(image), label, "", False, 10**6, 0, 0, False))
    if nc or lb is None:
        raise VerificationError(f"ultralytics rejected the label: {msg}", label)
    h, w = shape
    if (w, h) != (sample.width, sample.height):
        raise VerificationError(f"ultralytics reads the image as {w}x{h}", image)
    classes = [int(c) for c in lb[:, 0]]
    if fmt == "yolo-seg":
        if len(lb) and not segments:
            raise VerificationError("polygon output holds box rows", label)
        masks = [polygon2mask((h, w), [seg * np.array([w, h])]) for seg in segments]
        return classes, masks, None
    if segments:
        raise VerificationError("box output holds polygon rows", label)
    boxes = [(float((x - bw / 2) * w), float((y - bh / 2) * h), float(bw * w), float(bh * h)) for _, x, y, bw, bh in lb]
    return classes, [], boxes


def _box_iou_matrix(source: list[tuple[int, int, int, int]], found: list[tuple[float, ...]]) -> np.ndarray:
    out = np.zeros((len(source), len(found)))
    for i, (x, y, w, h) in enumerate(source):
        for j, (fx, fy, fw, fh) in enumerate(found):
            ix = max(0.0, min(x + w, fx + fw) - max(x, fx))
            iy = max(0.0, min(y + h, fy + fh) - max(y, fy))
            inter = ix * iy
            out[i, j] = inter / (w * h + fw * fh - inter)
    return out


def _match(matrix: np.ndarray) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching by descending IoU (IoU > 0 only)."""
    pairs, used_r, used_c = [], set(), set()
    if matrix.size == 0:
        return pairs
    order = np.dstack(np.unravel_index(np.argsort(-matrix, axis=None), matrix.shape))[0]
    for r, c in order:
        if matrix[r, c] <= 0:
            break
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((int(r), int(c), float(matrix[r, c])))
    return pairs


def _summarize(checks: list[ImageCheck], min_iou: float) -> dict:
    ious = [v for c in checks for v in c.ious]
    image_ious = [c.image_iou for c in checks if c.image_iou is not None and c.expected]
    low = [(c.image, v) for c in checks for v in c.ious if v < min_iou]
    problems = [p for c in checks for p in c.problems] + [f"{img}: instance IoU {v:.4f} < {min_iou}" for img, v in low]
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

    images = sorted(p for p in (folder / "images").rglob("*") if p.is_file())
    expected = [Path(p) for p in img2label_paths([str(p) for p in images])]
    labels = set(expected)
    present = set((folder / "labels").rglob("*.txt"))
    lonely = [f"no label for {p}" for p, lb in zip(images, expected) if lb not in present]
    lonely += [f"no image for {p}" for p in sorted(present - labels)]
    return lonely[:MAX_LISTED]


def _coco_unlisted(folder: Path) -> list[str]:
    listed = set()
    for path in sorted((folder / "annotations").glob("instances_*.json")):
        subset = path.stem[len("instances_"):]
        listed |= {f"{subset}/{img['file_name']}" for img in json.loads(path.read_text())["images"]}
    on_disk = {p.relative_to(folder / "images").as_posix() for p in (folder / "images").rglob("*") if p.is_file()}
    return [f"image not listed in any COCO file: {p}" for p in sorted(on_disk - listed)][:MAX_LISTED]


def _check_yaml(folder: Path) -> str:
    """ultralytics' own dataset check on ``data.yaml`` (no download is attempted)."""
    from ultralytics.data.utils import check_det_dataset

    try:
        check_det_dataset(str(folder / "data.yaml"), autodownload=False)
    except Exception as exc:  # ultralytics raises several types here
        return f"check_det_dataset failed: {exc}"
    return "ok"
