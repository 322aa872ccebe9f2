"""Anomaly-detection metrics as in the MVTec AD paper: image AUROC, pixel AUROC and PRO.

PRO (per-region overlap): for each threshold, the mean over ground-truth regions (8-connected,
per image) of the fraction of the region's pixels above the threshold, plotted against the
false-positive rate on defect-free pixels; the area under that curve up to FPR 0.3, divided by
0.3, so that a perfect detector scores 1.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..common.metrics import auroc


def pro_curve(maps: np.ndarray, masks: np.ndarray, thresholds: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, PRO) arrays over ``thresholds`` levels, ascending FPR. ``maps`` and ``masks``: (N, H, W)."""
    labels = np.zeros(masks.shape, np.int64)
    offset = 0
    for i, m in enumerate(masks):  # number the regions of all images consecutively
        count, lab = cv2.connectedComponents((m > 0).astype(np.uint8), connectivity=8)
        labels[i] = np.where(lab > 0, lab + offset, 0)
        offset += count - 1
    regions = offset
    normal = masks == 0
    sizes = np.bincount(labels.ravel(), minlength=regions + 1)[1:]
    levels = np.quantile(maps, np.linspace(0, 1, thresholds))[::-1]
    fprs, pros = [], []
    flat_labels, flat_maps, flat_normal = labels.ravel(), maps.ravel(), normal.ravel()
    for t in levels:
        above = flat_maps >= t
        fprs.append(np.count_nonzero(above & flat_normal) / max(1, np.count_nonzero(flat_normal)))
        if regions:
            hit = np.bincount(flat_labels[above], minlength=regions + 1)[1:]
            pros.append(float(np.mean(hit / sizes)))
        else:
            pros.append(0.0)
    return np.asarray(fprs), np.asarray(pros)


def pro_auc(maps: np.ndarray, masks: np.ndarray, max_fpr: float = 0.3, thresholds: int = 200) -> float | None:
    """Normalised area under the PRO curve up to ``max_fpr``; None without defect regions."""
    if not np.any(masks):
        return None
    fpr, pro = pro_curve(maps, masks, thresholds)
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


def best_f1_threshold(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of ``scores >= threshold`` against ``positive``."""
    best_t, best_f1 = float(scores.max()) if len(scores) else 0.0, 0.0
    for t in np.unique(scores):
        pred = scores >= t
        tp = np.count_nonzero(pred & positive)
        f1 = 2 * tp / max(1, np.count_nonzero(pred) + np.count_nonzero(positive))
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return best_t, best_f1


__all__ = ["auroc", "best_f1_threshold", "pro_auc", "pro_curve"]
