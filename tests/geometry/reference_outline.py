"""An independent, slow reference for pixel-edge outlines, used only to check ``outlines.py``.

Every region is drawn on a doubled grid where pixel (r, c) becomes the closed square
[2c, 2c+2] x [2r, 2r+2]; OpenCV traces the grid points on the boundary of that union of squares
(pixel corners and edge midpoints). OpenCV cuts concave corners with a diagonal step, so each
diagonal step gets back the corner that is foreground; then collinear points are dropped. This
was the converter's own tracer before the lookup-table version replaced it for speed.
"""

from __future__ import annotations

import cv2
import numpy as np


def reference_rings(mask: np.ndarray) -> list[tuple[tuple[int, int], ...]]:
    """Every outer ring and hole of every 8-connected region, canonical (see ``canonical``)."""
    count, labels = cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)
    rings = []
    for label in range(1, count):
        ys, xs = np.nonzero(labels == label)
        y0, x0 = ys.min(), xs.min()
        crop = (labels[y0 : ys.max() + 1, x0 : xs.max() + 1] == label).astype(np.uint8)
        rings.extend(canonical(r + [x0, y0]) for r in _trace_crop(crop))
    return sorted(rings)


def canonical(ring: np.ndarray) -> tuple[tuple[int, int], ...]:
    """A ring as integer points, counter-clockwise on screen, starting at its smallest point."""
    points = [(int(x), int(y)) for x, y in np.asarray(ring).round().astype(int)]
    x, y = np.array(points, dtype=float).T
    if 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) > 0:
        points = points[::-1]
    start = points.index(min(points))
    return tuple(points[start:] + points[:start])


def _trace_crop(crop: np.ndarray) -> list[np.ndarray]:
    h, w = crop.shape
    grid = np.zeros((2 * h + 3, 2 * w + 3), np.uint8)
    grid[2 : 2 * h + 1 : 2, 2 : 2 * w + 1 : 2] = crop
    grid = cv2.dilate(grid, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(grid, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    return [(_restore_corners(c.reshape(-1, 2), grid) - 1) // 2 for c in contours]


def _restore_corners(points: np.ndarray, grid: np.ndarray) -> np.ndarray:
    nxt = np.roll(points, -1, axis=0)
    diagonal = np.nonzero((points[:, 0] != nxt[:, 0]) & (points[:, 1] != nxt[:, 1]))[0]
    if diagonal.size:
        a, b = points[diagonal], nxt[diagonal]
        first = np.stack([b[:, 0], a[:, 1]], axis=1)
        second = np.stack([a[:, 0], b[:, 1]], axis=1)
        corners = np.where((grid[first[:, 1], first[:, 0]] > 0)[:, None], first, second)
        points = np.insert(points, diagonal + 1, corners, axis=0)
    step = np.roll(points, -1, axis=0) - points
    return points[(step != np.roll(step, 1, axis=0)).any(axis=1)]
