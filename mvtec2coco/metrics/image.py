"""Image-level metrics: is this image defective? Scores against 0/1 labels, with ties handled
the way scikit-learn handles them (tests compare with it)."""

from __future__ import annotations

import numpy as np


def auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve via the rank statistic (ties count half); None with one class only.

    Vectorised (sort + tie groups), so millions of pixel scores take well under a second.
    """
    scores, positive = np.asarray(scores, float).ravel(), np.asarray(positive, bool).ravel()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat(mean_rank, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the precision-recall curve as a step function (scikit-learn's
    ``average_precision_score``): sum over score levels of (recall gain) x precision."""
    scores, positive = np.asarray(scores, float).ravel(), np.asarray(positive, bool).ravel()
    n_pos = int(positive.sum())
    if n_pos == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
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
    """(threshold, F1) maximising F1 of ``scores >= threshold`` against ``positive``."""
    best_t, best_f1 = float(scores.max()) if len(scores) else 0.0, 0.0
    for t in np.unique(scores):
        pred = scores >= t
        tp = np.count_nonzero(pred & positive)
        f1 = 2 * tp / max(1, np.count_nonzero(pred) + np.count_nonzero(positive))
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return best_t, best_f1


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
