"""The metrics of the one evaluation against independent implementations and hand-computed cases:
scikit-learn for AUROC and average precision, a brute-force PRO, tiny cases worked out by hand."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mvtec2coco.metrics.image import at_threshold, auroc, average_precision, best_f1_threshold, roc_curve
from mvtec2coco.metrics.pixel import dice_iou, pro_auc, pro_curve

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def slow_best_f1(scores, labels):
    """Every distinct score tried in turn, ascending; the first best wins."""
    best_t, best_f1 = float(scores.max()), 0.0
    for t in np.unique(scores):
        pred = scores >= t
        f1 = 2 * np.count_nonzero(pred & labels) / max(1, np.count_nonzero(pred) + np.count_nonzero(labels))
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return best_t, best_f1


@pytest.mark.parametrize("seed", range(20))
def test_best_f1_threshold_equals_trying_every_threshold(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(2, 300))
    labels = rng.random(n) < 0.4
    scores = rng.random(n) if seed % 2 else np.round(rng.random(n), 1)
    assert best_f1_threshold(scores, labels) == pytest.approx(slow_best_f1(scores, labels))


@pytest.mark.parametrize("seed", range(20))
def test_auroc_and_ap_equal_scikit_learn_on_random_cases(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    labels = rng.random(n) < rng.uniform(0.1, 0.9)
    labels[0], labels[1] = True, False
    scores = rng.random(n) if seed % 2 else np.round(rng.random(n), 1)  # every other case full of ties
    assert auroc(scores, labels) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores), abs=1e-6)
    assert average_precision(scores, labels) == pytest.approx(
        sklearn_metrics.average_precision_score(labels, scores), abs=1e-6)
    fpr, tpr = roc_curve(scores, labels)
    ref_fpr, ref_tpr, _ = sklearn_metrics.roc_curve(labels, scores, drop_intermediate=False)
    assert np.allclose(fpr, ref_fpr) and np.allclose(tpr, ref_tpr)


def test_image_metrics_by_hand():
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([False, False, True, True])
    assert auroc(scores, labels) == pytest.approx(0.75)
    assert average_precision(scores, labels) == pytest.approx((1 / 2) * 1 + (1 / 2) * (2 / 3))
    m = at_threshold(scores, labels, 0.35)  # predicts 0.4, 0.35, 0.8 defective
    assert m["confusion"] == [[1, 1], [0, 2]]
    assert m["recall"] == 1.0 and m["precision"] == pytest.approx(2 / 3) and m["f1"] == pytest.approx(0.8)
    assert m["balanced_accuracy"] == pytest.approx((1.0 + 0.5) / 2)
    assert best_f1_threshold(scores, labels) == (pytest.approx(0.35), pytest.approx(0.8))
    assert auroc(scores, np.zeros(4, bool)) is None and average_precision(scores, np.zeros(4, bool)) is None


def brute_force_pro(maps: np.ndarray, masks: np.ndarray, max_fpr: float = 0.3) -> float:
    """PRO the slow way: every distinct score a threshold, each region's overlap counted by hand."""
    regions = []
    for i, m in enumerate(masks):
        count, lab = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
        regions += [(i, lab == k) for k in range(1, count)]
    normal = masks == 0
    points = [(0.0, 0.0)]
    for t in sorted(set(maps.ravel().tolist()), reverse=True):
        above = maps >= t
        fpr = np.count_nonzero(above & normal) / np.count_nonzero(normal)
        pro = sum(np.count_nonzero(above[i] & r) / np.count_nonzero(r) for i, r in regions) / len(regions)
        points.append((fpr, pro))
    area, (x0, y0) = 0.0, points[0]
    for x1, y1 in points[1:]:
        if x1 > max_fpr:
            y1 = y0 + (max_fpr - x0) / (x1 - x0) * (y1 - y0) if x1 > x0 else y1
            area += (max_fpr - x0) * (y0 + y1) / 2
            break
        area += (x1 - x0) * (y0 + y1) / 2
        x0, y0 = x1, y1
    return area / max_fpr


@pytest.mark.parametrize("seed", range(10))
def test_pro_equals_brute_force_on_random_small_maps(seed):
    rng = np.random.default_rng(seed)
    masks = np.zeros((3, 12, 14), np.uint8)
    for i in range(3):
        for _ in range(int(rng.integers(1, 4))):
            y, x = rng.integers(0, 10), rng.integers(0, 12)
            masks[i, y : y + rng.integers(1, 4), x : x + rng.integers(1, 4)] = 1
    maps = rng.random(masks.shape) + masks * rng.uniform(0, 0.8)
    if seed % 2:
        maps = np.round(maps, 1)  # ties
    assert pro_auc(maps, masks) == pytest.approx(brute_force_pro(maps, masks), abs=1e-6)


def test_pro_curve_by_hand():
    masks = np.zeros((1, 4, 4), np.uint8)
    masks[0, 0, :2] = 1  # region A: 2 px
    masks[0, 3, 3] = 1  # region B: 1 px
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0], maps[0, 3, 3], maps[0, 2, 2] = 0.9, 0.8, 0.7
    fpr, pro = pro_curve(maps, masks)
    assert fpr.tolist() == pytest.approx([0, 0, 1 / 13, 1]) and pro.tolist() == pytest.approx([0.25, 0.75, 0.75, 1])
    assert pro_auc(masks.astype(float), masks) == pytest.approx(1.0)


def test_dice_and_iou_by_hand():
    p = np.array([[1, 1, 0], [0, 0, 0]], bool)
    t = np.array([[0, 1, 1], [0, 0, 0]], bool)
    assert dice_iou(p, t) == (pytest.approx(0.5), pytest.approx(1 / 3))
    assert dice_iou(np.zeros(3, bool), np.zeros(3, bool)) == (None, None)
