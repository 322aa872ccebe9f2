"""Pixel-level metrics: PRO as in the MVTec AD paper, and Dice / IoU of thresholded maps.

PRO (per-region overlap): for each threshold, the mean over ground-truth regions (8-connected,
per image) of the fraction of the region's pixels above the threshold, plotted against the
false-positive rate on defect-free pixels; the area under that curve up to FPR 0.3, divided by
0.3, so that a perfect detector scores 1. The curve is exact: every distinct score is a threshold.
"""

from __future__ import annotations

import cv2
import numpy as np


def pro_curve(maps: np.ndarray, masks: np.ndarray, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, PRO) at every distinct score, ascending FPR, exactly. ``maps`` and ``masks``: (N, H, W).

    PRO at a threshold is the mean over regions r of |r above| / |r|, which is a sum over the
    pixels above of 1 / (R |r(p)|): one sort and one cumulative sum give the whole curve.
    ``order``: ``np.argsort`` of the flattened maps, ascending, when the caller has it already.
    """
    labels = np.zeros(masks.shape, np.int32)
    offset = 0
    for i, m in enumerate(masks):  # number the regions of all images consecutively
        count, lab = cv2.connectedComponents((m > 0).astype(np.uint8), connectivity=8)
        labels[i] = np.where(lab > 0, lab + offset, 0)
        offset += count - 1
    regions = offset
    flat_labels, flat_maps = labels.ravel(), np.asarray(maps).ravel()
    sizes = np.bincount(flat_labels, minlength=regions + 1).astype(np.float64)
    weight = np.where(flat_labels > 0, 1.0 / (max(1, regions) * sizes[flat_labels]), 0.0)
    order = np.argsort(-flat_maps) if order is None else order[::-1]  # tie groups are taken whole: any sort
    s = flat_maps[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # the end of each tie group
    normal_sorted = flat_labels[order] == 0
    fpr = np.cumsum(normal_sorted)[last] / max(1, int(normal_sorted.sum()))
    pro = np.cumsum(weight[order])[last] if regions else np.zeros(len(last))
    return fpr, pro


def pro_auc(maps: np.ndarray, masks: np.ndarray, max_fpr: float = 0.3, order: np.ndarray | None = None) -> float | None:
    """Normalised area under the PRO curve up to ``max_fpr`` (trapezoids, the curve interpolated
    at ``max_fpr``); None without defect regions. ``order`` as for ``pro_curve``."""
    if not np.any(masks):
        return None
    fpr, pro = pro_curve(maps, masks, order)
    fpr, pro = np.concatenate([[0.0], fpr]), np.concatenate([[0.0], pro])
    keep = fpr <= max_fpr
    x, y = fpr[keep], pro[keep]
    if x[-1] < max_fpr:  # interpolate the curve at max_fpr
        j = np.searchsorted(fpr, max_fpr)
        if j < len(fpr):
            t = (max_fpr - fpr[j - 1]) / max(1e-12, fpr[j] - fpr[j - 1])
            x = np.append(x, max_fpr)
            y = np.append(y, pro[j - 1] + t * (pro[j] - pro[j - 1]))
    integrate = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed trapz
    return float(integrate(y, x) / max_fpr)


def dice_iou(predicted: np.ndarray, truth: np.ndarray) -> tuple[float | None, float | None]:
    """Dice and IoU of boolean masks pooled over all images (every pixel counts once); None when
    both are empty."""
    p, t = np.asarray(predicted, bool), np.asarray(truth, bool)
    inter = int(np.count_nonzero(p & t))
    total = int(np.count_nonzero(p)) + int(np.count_nonzero(t))
    if total == 0:
        return None, None
    return 2 * inter / total, inter / (total - inter)


__all__ = ["dice_iou", "pro_auc", "pro_curve"]
