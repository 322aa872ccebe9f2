"""Classification metrics that do not hide imbalance: balanced accuracy, macro F1, AUROC."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...metrics.image import auroc


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, balanced accuracy, macro F1, per-class precision/recall, confusion, good-vs-defect AUROC.

    Class 0 is ``good``; the defect score is 1 - p(good).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = probs.argmax(axis=1)
    m = confusion(y_true, y_pred, len(classes))
    support = m.sum(axis=1)
    predicted = m.sum(axis=0)
    tp = np.diag(m).astype(float)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    present = support > 0
    return {
        "accuracy": float(tp.sum() / max(1, len(y_true))),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "auroc_good_vs_defect": auroc(1.0 - probs[:, 0], y_true != 0),
        "per_class": {c: {"precision": float(precision[i]), "recall": float(recall[i]), "support": int(support[i])}
                      for i, c in enumerate(classes)},
        "confusion": m.tolist(),
    }


def plot_confusion(matrix: list[list[int]], classes: list[str], path: Path, title: str) -> Path:
    from ...runtime.plotting import pyplot, save

    plt = pyplot()

    m = np.asarray(matrix)
    size = 1.2 + 0.7 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return save(fig, path)
