"""Image-level metrics: is this image defective? Scores against 0/1 labels, with ties handled
the way scikit-learn handles them (tests compare with it)."""

from __future__ import annotations

import numpy as np


def auroc(scores: np.ndarray, positive: np.ndarray, order: np.ndarray | None = None) -> float | None:
    """Area under the ROC curve via the rank statistic (ties count half); None with one class only.

    One sort, tie groups found on the sorted scores: tens of millions of pixel scores take seconds.
    ``order``: ``np.argsort(scores)`` when the caller has it already (any sort: ties are averaged).
    """
    scores, positive = np.asarray(scores).ravel(), np.asarray(positive, bool).ravel()
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    if order is None:
        order = np.argsort(scores)  # ties are averaged below, so the sort need not be stable
    s = scores[order]
    starts = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]
    counts = np.diff(np.r_[starts, len(s)])
    mean_rank = starts + (counts + 1) / 2.0  # 1-based average rank of each tie group
    group_pos = np.add.reduceat(positive[order].astype(np.int64), starts)
    return float((np.dot(mean_rank, group_pos) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the precision-recall curve as a step function (scikit-learn's
    ``average_precision_score``): sum over score levels of (recall gain) x precision."""
    scores, positive = np.asarray(scores, float).ravel(), np.asarray(positive, bool).ravel()
    n_pos = int(positive.sum())
    if n_pos == 0:
        return None
    order = np.argsort(-scores)
    s, y = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # the end of each tie group
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[list[float], list[float]]:
    """(FPR, TPR) points from the highest threshold down, starting at (0, 0)."""
    scores, positive = np.asarray(scores, float).ravel(), np.asarray(positive, bool).ravel()
    n_pos, n_neg = max(1, int(positive.sum())), max(1, int((~positive).sum()))
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1] if len(s) else np.array([], int)
    tp = np.cumsum(y)[last] if len(s) else np.array([])
    fp = (last + 1) - tp
    return [0.0, *(fp / n_neg).tolist()], [0.0, *(tp / n_pos).tolist()]


def best_f1_threshold(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of ``scores >= threshold`` against ``positive``; of equally
    good thresholds the lowest. One sort: F1 at every distinct score at once."""
    scores, positive = np.asarray(scores, float).ravel(), np.asarray(positive, bool).ravel()
    if not len(scores):
        return 0.0, 0.0
    order = np.argsort(-scores)
    s, y = scores[order], positive[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # the end of each tie group
    tp = np.cumsum(y)[last]
    f1 = 2 * tp / np.maximum(1, (last + 1) + int(positive.sum()))
    if f1.max() <= 0:
        return float(s[0]), 0.0
    best = np.flatnonzero(f1 == f1.max())[-1]  # the lowest threshold among the best
    return float(s[last[best]]), float(f1[best])


def at_threshold(scores: np.ndarray, positive: np.ndarray, threshold: float) -> dict:
    """Balanced accuracy, F1, precision, recall and the confusion matrix of ``scores >= threshold``
    (rows: true good, true defect; columns: predicted good, predicted defect)."""
    scores, positive = np.asarray(scores, float).ravel(), np.asarray(positive, bool).ravel()
    pred = scores >= threshold
    tp = int(np.count_nonzero(pred & positive))
    fp = int(np.count_nonzero(pred & ~positive))
    fn = int(np.count_nonzero(~pred & positive))
    tn = int(np.count_nonzero(~pred & ~positive))
    recall = tp / (tp + fn) if tp + fn else None
    specificity = tn / (tn + fp) if tn + fp else None
    precision = tp / (tp + fp) if tp + fp else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    parts = [v for v in (recall, specificity) if v is not None]
    return {"threshold": float(threshold), "balanced_accuracy": float(np.mean(parts)) if parts else None, "f1": f1,
            "precision": precision, "recall": recall, "confusion": [[tn, fp], [fn, tp]]}


__all__ = ["at_threshold", "auroc", "average_precision", "best_f1_threshold", "roc_curve"]
