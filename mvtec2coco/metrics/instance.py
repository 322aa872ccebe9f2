"""Instance-level metrics: how many defects of which kind, and where — pycocotools' COCOeval on
the ground truth of a converted subset, for boxes and for masks."""

from __future__ import annotations

import contextlib
import copy
import io


def coco_metrics(gt, results: list[dict], iou_type: str) -> dict:
    """AP (0.5:0.95), AP50, AP75, recall of small defects (area < 32², 100 detections) and AP per
    class of ``results`` against ``gt`` (a pycocotools ``COCO``). No results at all is an AP of 0
    for a family that predicts instances, not a missing value."""
    from pycocotools.cocoeval import COCOeval

    names = {c["id"]: c["name"] for c in gt.dataset["categories"]}
    if not results:
        return {"ap": 0.0, "ap50": 0.0, "ap75": 0.0, "recall_small": 0.0, "per_class": {n: 0.0 for n in names.values()},
                "detections": 0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        dt = gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # (iou thresholds, recall levels, classes, areas, max dets)
    per_class = {}
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        per_class[names[cat_id]] = float(p.mean()) if p.size else None

    def stat(i: int) -> float | None:
        v = float(ev.stats[i])
        return None if v < 0 else v  # COCOeval's -1: nothing of that kind in the ground truth

    return {"ap": stat(0), "ap50": stat(1), "ap75": stat(2), "recall_small": stat(9), "per_class": per_class,
            "detections": len(results)}


def has_masks(results: list[dict]) -> bool:
    return bool(results) and all(isinstance(a.get("segmentation"), (dict, list)) for a in results)


__all__ = ["coco_metrics", "has_masks"]
