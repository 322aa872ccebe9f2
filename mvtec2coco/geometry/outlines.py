"""Exact pixel-edge outlines of every region and hole of a mask, from one OpenCV contour pass.

``cv2.findContours`` traces the *centres* of boundary pixels (8-connected foreground, holes
4-connected), always with the foreground on the left of the direction of travel. Each traced
pixel is turned into the pixel *corners* the true outline passes while going round that pixel:
the corners depend only on the step into the pixel and the step out of it, so one 9 x 9 lookup
table gives how many corners a pixel contributes and which corner comes first. Collinear corners
are then dropped. This is the crack code of the region, computed for all contours of a mask in a
few array operations instead of a loop per pixel or a doubled raster per region.

Corner indices: 0 top-left (c, r), 1 top-right (c + 1, r), 2 bottom-right, 3 bottom-left.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Step codes: (dy + 1) * 3 + (dx + 1); 4 is "no step" (a contour of a single pixel).
_STEPS = {(1, 0): "right", (1, 1): "down-right", (0, 1): "down", (-1, 1): "down-left",
          (-1, 0): "left", (-1, -1): "up-left", (0, -1): "up", (1, -1): "up-right"}
# With the foreground on the left: the corner where the outline reaches a pixel entered by a step,
# and the corner of the pixel left by a step where the next pixel's outline begins (not emitted).
_FIRST = {"right": 3, "down-right": 0, "down": 0, "down-left": 1, "left": 1, "up-left": 2, "up": 2, "up-right": 3}
_LAST = {"right": 2, "down-right": 2, "down": 3, "down-left": 3, "left": 0, "up-left": 0, "up": 1, "up-right": 1}
CORNER_OFFSETS = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.int32)


def _code(dx: int, dy: int) -> int:
    return (dy + 1) * 3 + (dx + 1)


def _tables() -> tuple[np.ndarray, np.ndarray]:
    first = np.zeros(9, np.int64)
    count = np.zeros((9, 9), np.int64)
    for (dx, dy), name in _STEPS.items():
        first[_code(dx, dy)] = _FIRST[name]
    for (ix, iy), into in _STEPS.items():
        for (ox, oy), out in _STEPS.items():
            n = (_FIRST[into] - _LAST[out]) % 4  # corners walked counter-clockwise round the pixel
            if n == 0 and (ox, oy) == (-ix, -iy):  # the tip of a diagonal line: all the way round
                n = 4
            count[_code(ix, iy), _code(ox, oy)] = n
    count[4, 4] = 4  # a single pixel: its four corners
    return first, count


FIRST_CORNER, CORNER_COUNT = _tables()


def cyclic_neighbours(starts: np.ndarray, lengths: np.ndarray, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Index of the next and previous element of every element of rings stored back to back."""
    index = np.arange(total)
    ends = starts + lengths - 1
    nxt, prv = index + 1, index - 1
    nxt[ends] = starts
    prv[starts] = ends
    return nxt, prv


class Rings(NamedTuple):
    """Rings stored back to back: ring k is ``vertices[starts[k] : starts[k] + lengths[k]]``."""

    vertices: np.ndarray  # (N, 2) int32 corner points (x, y)
    lengths: np.ndarray  # (R,) int64

    @property
    def starts(self) -> np.ndarray:
        return np.cumsum(self.lengths) - self.lengths

    def following(self) -> np.ndarray:
        """The vertex after each vertex of its own ring (the edge each vertex starts)."""
        nxt, _ = cyclic_neighbours(self.starts, self.lengths, len(self.vertices))
        return self.vertices[nxt]


def pixel_edge_rings(contours: tuple[np.ndarray, ...] | list[np.ndarray]) -> Rings:
    """The exact outline of each OpenCV contour traced with ``CHAIN_APPROX_NONE``, as corner
    points where the outline turns. Outer rings and holes keep OpenCV's orientation (foreground on
    the left), so in image coordinates an outer ring's shoelace area is negative, a hole's positive.
    """
    if not len(contours):
        return Rings(np.zeros((0, 2), np.int32), np.zeros(0, np.int64))
    lengths = np.fromiter((len(c) for c in contours), np.int64, len(contours))
    points = np.concatenate(contours).reshape(-1, 2)
    starts = np.cumsum(lengths) - lengths
    nxt, prv = cyclic_neighbours(starts, lengths, len(points))
    step = points[nxt] - points
    code_out = (step[:, 1] + 1) * 3 + step[:, 0] + 1
    code_in = code_out[prv]
    emitted = CORNER_COUNT[code_in, code_out]
    first_emitted = np.cumsum(emitted) - emitted
    # Corner j of a pixel is (first - j) & 3; the outline leaves every corner of a pixel in the
    # direction fixed by that corner (counter-clockwise round the pixel), so it turns exactly where
    # the corner index differs from the previous one's.
    corner = (np.repeat(FIRST_CORNER[code_in] + first_emitted, emitted) - np.arange(int(emitted.sum()))) & 3
    ring_lengths = np.add.reduceat(emitted, starts)
    ring_starts = np.cumsum(ring_lengths) - ring_lengths
    previous = np.empty_like(corner)
    previous[1:] = corner[:-1]
    previous[ring_starts] = corner[ring_starts + ring_lengths - 1]
    turn = corner != previous
    owner = np.repeat(np.arange(len(points)), emitted)[turn]
    return Rings(points[owner] + CORNER_OFFSETS[corner[turn]], np.add.reduceat(turn, ring_starts).astype(np.int64))
