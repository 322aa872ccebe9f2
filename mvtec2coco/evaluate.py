"""One evaluation for every approach: the predictions of any family on a converted subset,
scored against that subset's ground truth with the same metrics.

What a family's predictions allow is computed, nothing else (a missing metric stays missing,
never a zero):

- image level (is this image defective?): AUROC and average precision of the image scores; at a
  threshold chosen on the validation subset's predictions (F1-optimal there, never on the
  subset evaluated): balanced accuracy, F1, precision, recall and the confusion matrix;
- pixel level (where is the defect?): AUROC and AUPRO (to FPR 0.3, normalised) of the pixel
  scores — an anomaly map, or each pixel's highest scoring predicted mask — and Dice and IoU of
  the map thresholded at the validation-chosen pixel threshold;
- instance level (how many defects of which kind?): COCOeval box and mask AP, AP50, AP75, AP per
  class and the recall of small defects.

Each is given overall and per defect type (that type's images with the good images).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import OptionError
from .formats import coco
from .metrics.image import at_threshold, auroc, average_precision, best_f1_threshold, roc_curve
from .metrics.instance import coco_metrics, has_masks
from .metrics.pixel import dice_iou, pro_auc

BOX_FAMILIES = ("yolo-world", "yolo", "sam")  # their predictions are instances, even when there are none
MASK_FAMILIES = ("sam",)


@dataclass
class Scored:
    """One prediction file set against its ground truth, image by image in ground-truth id order."""

    gt: coco.CocoSet
    predictions: dict
    ids: list[int]
    defective: np.ndarray  # (N,) bool
    types: list[str | None]  # defect type of each image, None for good ones
    scores: np.ndarray  # (N,) image scores

    def pixel_maps(self, root: Path) -> list[np.ndarray] | None:
        """Per image a float map at the image's size, or None when the family gives no pixels."""
        return _pixel_maps(self, root)

    def truth(self) -> list[np.ndarray]:
        out = []
        for image_id in self.ids:
            img = self.gt.coco.imgs[image_id]
            mask = np.zeros((img["height"], img["width"]), bool)
            for m in self.gt.masks(image_id):
                mask |= m > 0
            out.append(mask)
        return out


def _number(v) -> bool:
    import math

    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_records(data: dict, gt_images: dict[int, dict], where: Path, gt_categories: set[int] | None = None) -> None:
    """Every image and annotation of a predictions file as the evaluation reads it, or one typed
    error naming the first that is not: ids, names and sizes of the ground truth, finite scores,
    boxes of finite non-negative size, masks that are RLE of the image's size or polygons of
    points near the image (a coordinate of 1e9 would make pycocotools allocate without end)."""
    def bad(what: str) -> OptionError:
        return OptionError(what, where, "pass a predictions.json written by `mvtec2coco <family> predict`")

    seen = set()
    for img in data["images"]:
        if not isinstance(img, dict) or not isinstance(img.get("id"), int) or not isinstance(img.get("file_name"), str):
            raise bad(f"image record {str(img)[:80]} lacks an integer id or a file_name")
        if img["id"] in seen:
            raise bad(f"image id {img['id']} is listed twice")
        seen.add(img["id"])
        gt = gt_images.get(img["id"])
        if gt is not None and (img.get("width"), img.get("height")) != (gt["width"], gt["height"]):
            raise bad(f"image {img['id']} is {img.get('width')}x{img.get('height')}, the ground truth's "
                      f"{gt['width']}x{gt['height']}")
        if img.get("score") is not None and not _number(img["score"]):
            raise bad(f"image {img['id']} has score {img['score']!r}, not a finite number")
    for a in data["annotations"]:
        if not isinstance(a, dict):
            raise bad(f"annotation {str(a)[:80]} is not a record")
        name = f"annotation {a.get('id')}"
        img = gt_images.get(a.get("image_id")) if a.get("image_id") in seen else None
        if img is None:
            raise bad(f"{name} refers to image id {a.get('image_id')!r}, which is not predicted")
        if not _number(a.get("score")):
            raise bad(f"{name} has score {a.get('score')!r}, not a finite number")
        if gt_categories is not None and a.get("category_id") not in gt_categories:
            raise bad(f"{name} has category_id {a.get('category_id')!r}, not a category of the ground truth")
        box = a.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box) and box[2] >= 0 and box[3] >= 0):
            raise bad(f"{name} has bbox {box!r}, not [x, y, w, h] with w, h >= 0")
        seg = a.get("segmentation")
        h, w = img["height"], img["width"]
        if seg is None:
            continue
        if isinstance(seg, dict):
            if seg.get("size") != [h, w] or not isinstance(seg.get("counts"), str):
                raise bad(f"{name}: RLE needs size [{h}, {w}] and counts as text")
        elif isinstance(seg, list):
            for ring in seg:
                if not (isinstance(ring, list) and len(ring) >= 6 and len(ring) % 2 == 0 and all(_number(v) for v in ring)):
                    raise bad(f"{name}: a polygon is a list of at least 3 x, y pairs")
                xs, ys = ring[0::2], ring[1::2]
                if min(xs) < -1 or min(ys) < -1 or max(xs) > w + 1 or max(ys) > h + 1:
                    raise bad(f"{name}: polygon points lie outside the {w}x{h} image")
        else:
            raise bad(f"{name}: segmentation is neither RLE nor polygons")


def score_against(predictions_path: Path, gt_file: Path) -> Scored:
    """Read predictions and check they belong to ``gt_file``: the same image ids with the same
    file names, every image of the subset present, categories by the same ids and names."""
    data = coco.read_predictions(predictions_path)
    gt = coco.load(gt_file)
    where = Path(data["info"]["path"])
    gt_images = {img["id"]: img for img in gt.images}
    check_records(data, gt_images, where, {int(c["id"]) for c in gt.coco.dataset["categories"]})
    predicted = {img["id"]: img for img in data["images"]}
    wrong = [i for i, img in predicted.items() if i not in gt_images or gt_images[i]["file_name"] != img["file_name"]]
    if wrong:
        raise OptionError(f"{len(wrong)} predicted image(s) are not images of this ground truth (first: id {wrong[0]})",
                          where, f"predict with --data on the conversion of {gt_file}")
    missing = sorted(set(gt_images) - set(predicted))
    if missing:
        raise OptionError(f"the predictions lack {len(missing)} of the subset's {len(gt_images)} images", where,
                          "predict the whole subset with --data OUT --split SUBSET")
    gt_names = {c["id"]: c["name"] for c in gt.coco.dataset["categories"]}
    unknown = {c["id"] for c in data["categories"] if gt_names.get(c["id"]) != c["name"]}
    if any(a["category_id"] in unknown for a in data["annotations"]):
        raise OptionError("the predictions' categories differ from the ground truth's", where)
    ids = sorted(gt_images)
    best: dict[int, float] = {}
    for a in data["annotations"]:
        best[a["image_id"]] = max(best.get(a["image_id"], 0.0), float(a["score"]))
    scores = np.array([float(predicted[i]["score"]) if predicted[i].get("score") is not None else best.get(i, 0.0)
                       for i in ids])
    types = []
    for i in ids:
        anns = gt.annotations(i)
        types.append(gt_names[anns[0]["category_id"]] if anns else None)
    return Scored(gt, data, ids, np.array([t is not None for t in types]), types, scores)


def _pixel_maps(s: Scored, root: Path) -> list[np.ndarray] | None:
    info = s.predictions["info"]
    sizes = [(s.gt.coco.imgs[i]["height"], s.gt.coco.imgs[i]["width"]) for i in s.ids]
    maps_info = info.get("anomaly_maps")
    if maps_info:
        lo, hi = maps_info["scale"]
        out = []
        for i, (h, w) in zip(s.ids, sizes):
            path = root / maps_info["folder"] / f"{i:05d}.png"
            small = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if small is None:
                raise OptionError("anomaly map is missing or broken", path)
            values = lo + small.astype(np.float32) / float(np.iinfo(small.dtype).max) * (hi - lo)
            out.append(cv2.resize(values, (w, h), interpolation=cv2.INTER_LINEAR))
        return out
    anns = s.predictions["annotations"]
    if not has_masks(anns) and not (not anns and info.get("family") in MASK_FAMILIES):
        return None
    from pycocotools import mask as mask_utils

    by_image: dict[int, list[dict]] = {}
    for a in anns:
        by_image.setdefault(a["image_id"], []).append(a)
    out = []
    for i, (h, w) in zip(s.ids, sizes):
        m = np.zeros((h, w), np.float32)
        for a in by_image.get(i, []):
            seg = a["segmentation"]
            try:
                rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w)) if isinstance(seg, list) else seg
                region = mask_utils.decode(rle)
            except (ValueError, TypeError) as exc:
                raise OptionError(f"annotation {a.get('id')}: its mask cannot be decoded ({exc})",
                                  Path(info["path"])) from exc
            m = np.maximum(m, region.astype(np.float32) * float(a["score"]))
        out.append(m)
    return out


def _image_block(scores: np.ndarray, defective: np.ndarray, threshold: float | None) -> dict:
    block = {"images": int(len(scores)), "defective": int(defective.sum()), "auroc": auroc(scores, defective),
             "ap": average_precision(scores, defective)}
    if threshold is not None:
        block.update({k: v for k, v in at_threshold(scores, defective, threshold).items() if k != "threshold"})
    return block


def _pixel_block(maps: list[np.ndarray], truth: list[np.ndarray], threshold: float | None,
                 order: np.ndarray | None = None) -> dict:
    """Pixel AUROC, AUPRO and (with a threshold) Dice and IoU over ``maps`` against ``truth``.
    ``order``: ``np.argsort`` of the maps flattened one after another, when known (``_suborder``):
    the sort of tens of millions of pixel scores is most of an evaluation's time."""
    flat_maps = np.concatenate([m.ravel() for m in maps])
    flat_truth = np.concatenate([t.ravel() for t in truth])
    if order is None:
        order = np.argsort(flat_maps)  # shared by AUROC and PRO, which both take tie groups whole
    block = {"auroc": auroc(flat_maps, flat_truth, order)}
    same_size = len({m.shape for m in maps}) == 1
    if same_size:
        block["aupro"] = pro_auc(np.stack(maps), np.stack(truth).astype(np.uint8), order=order)
    else:  # PRO per region needs one stack: pad to the largest image, padding counts as good, never scored
        h = max(m.shape[0] for m in maps)
        w = max(m.shape[1] for m in maps)
        low = float(flat_maps.min()) - 1.0
        stack = np.full((len(maps), h, w), low, np.float32)
        gts = np.zeros((len(maps), h, w), np.uint8)
        for k, (m, t) in enumerate(zip(maps, truth)):
            stack[k, : m.shape[0], : m.shape[1]] = m
            gts[k, : t.shape[0], : t.shape[1]] = t
        block["aupro"] = pro_auc(stack, gts)
    if threshold is not None:
        block["dice"], block["iou"] = dice_iou(flat_maps >= threshold, flat_truth)
    return block


def _suborder(order: np.ndarray, sizes: list[int], keep: np.ndarray) -> np.ndarray:
    """The sort order of the maps kept by ``keep`` (flattened in the same order), read off the
    order of all of them (``sizes``: pixels per map) in one pass instead of another sort."""
    kept = np.repeat(keep, sizes)
    position = np.cumsum(kept) - 1  # a kept pixel's index among the kept ones
    chosen = order[kept[order]]
    return position[chosen]


def _subsample(a: np.ndarray, n: int = 500_000) -> np.ndarray:
    return a[:: max(1, len(a) // n)]


def choose_thresholds(val: Scored, val_root: Path) -> dict:
    """Image and pixel thresholds, each F1-optimal on the validation predictions."""
    image_t, _ = best_f1_threshold(val.scores, val.defective)
    pixel_t = None
    maps = val.pixel_maps(val_root)
    if maps is not None:
        flat = np.concatenate([m.ravel() for m in maps])
        truth = np.concatenate([t.ravel() for t in val.truth()])
        pixel_t, _ = best_f1_threshold(_subsample(flat), _subsample(truth))
    return {"image": image_t, "pixel": pixel_t, "chosen_on": "validation", "rule": "F1-optimal on the validation "
            "subset's predictions"}


def evaluate(predictions: Path, gt: Path, split: str = "test", val_predictions: Path | None = None) -> dict:
    """Every metric the predictions allow, overall and per defect type; the content of ``metrics.json``."""
    gt_file = coco.subset_file(gt, split)
    s = score_against(predictions, gt_file)
    root = Path(s.predictions["info"]["path"]).parent
    if val_predictions is not None:
        val = score_against(val_predictions, coco.subset_file(gt, "val"))
        thresholds = choose_thresholds(val, Path(val.predictions["info"]["path"]).parent)
    else:
        thresholds = {"image": None, "pixel": None, "chosen_on": None,
                      "rule": "no validation predictions given (--val): thresholded metrics are not computed, "
                              "since a threshold chosen on the evaluated images would flatter them"}
    types = sorted({t for t in s.types if t})
    result = {"predictions": str(Path(s.predictions["info"]["path"]).resolve()), "ground_truth": str(gt_file.resolve()),
              "split": split, "family": s.predictions["info"].get("family"), "meta": s.predictions["info"],
              "thresholds": thresholds, "image": _image_block(s.scores, s.defective, thresholds["image"]),
              "pixel": None, "instance": {}, "per_type": {}}
    fpr, tpr = roc_curve(s.scores, s.defective)
    result["image"]["roc"] = {"fpr": fpr, "tpr": tpr}
    maps = s.pixel_maps(root)
    if maps is not None and not all(np.isfinite(m).all() for m in maps):
        raise OptionError("pixel scores hold NaN or infinity: no ranking of them is meaningful", root,
                          "check the model's anomaly maps and scores")
    truth = s.truth() if maps is not None else None
    order = np.argsort(np.concatenate([m.ravel() for m in maps])) if maps is not None else None
    if maps is not None:
        result["pixel"] = _pixel_block(maps, truth, thresholds["pixel"], order)
    anns = s.predictions["annotations"]
    family = s.predictions["info"].get("family")
    if anns or family in BOX_FAMILIES:  # a detector that found nothing scores 0; a classifier has no instances
        try:
            result["instance"]["bbox"] = coco_metrics(s.gt.coco, anns, "bbox")
            if has_masks(anns) or (not anns and family in MASK_FAMILIES):
                result["instance"]["segm"] = coco_metrics(s.gt.coco, anns, "segm")
        except (ValueError, TypeError, AssertionError, KeyError, IndexError) as exc:  # pycocotools on what it rejects
            raise OptionError(f"COCOeval cannot read the predictions ({type(exc).__name__}: {exc})", root) from exc
    for t in types:
        keep = np.array([tt is None or tt == t for tt in s.types])
        block = {"image": _image_block(s.scores[keep], s.defective[keep], thresholds["image"])}
        if maps is not None:
            block["pixel"] = _pixel_block([m for m, k in zip(maps, keep) if k], [g for g, k in zip(truth, keep) if k],
                                          thresholds["pixel"], _suborder(order, [m.size for m in maps], keep))
        for kind, m in result["instance"].items():
            block.setdefault("instance", {})[kind] = {"ap": m["per_class"].get(t)}
        result["per_type"][t] = block
    return result


__all__ = ["evaluate", "score_against"]
