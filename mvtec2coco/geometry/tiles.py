"""Tile grids over an image, and the tiles' pixels: pure functions, no I/O.

A tile is SIZE x SIZE px at full resolution. Along each axis the tiles start every
``round(SIZE * (1 - overlap))`` px; the last one is shifted inwards to end on the image's edge
(never padded), so an axis shorter than SIZE gets one tile, padded with zeros on the far side.
"""

from __future__ import annotations

import numpy as np


def tile_starts(length: int, size: int, overlap: float) -> list[int]:
    """Where the tiles along one axis of ``length`` px begin."""
    if length <= size:
        return [0]
    stride = max(1, int(round(size * (1.0 - overlap))))
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def tile_grid(width: int, height: int, size: int, overlap: float) -> list[tuple[int, int]]:
    """Every tile's top-left corner (x, y), row by row."""
    xs, ys = tile_starts(width, size, overlap), tile_starts(height, size, overlap)
    return [(x, y) for y in ys for x in xs]


def cut(array: np.ndarray, x: int, y: int, size: int) -> np.ndarray:
    """The SIZE x SIZE tile of ``array`` (H x W or H x W x C) at (x, y), zero-padded where the
    image ends before the tile does."""
    part = array[y : y + size, x : x + size]
    if part.shape[0] == size and part.shape[1] == size:
        return np.ascontiguousarray(part)
    tile = np.zeros((size, size, *array.shape[2:]), array.dtype)
    tile[: part.shape[0], : part.shape[1]] = part
    return tile


def first_pixels(outers: list[np.ndarray]) -> np.ndarray:
    """The first pixel in raster order (row, col) of each region, from its exact outline: the top-left
    corner of that pixel is the outline's smallest (y, x) corner."""
    if not outers:
        return np.zeros((0, 2), np.int64)
    return np.array([ring[np.lexsort((ring[:, 0], ring[:, 1]))[0]][::-1] for ring in outers], np.int64)
