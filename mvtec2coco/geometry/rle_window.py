"""The pixels of a COCO RLE inside a box, without expanding the whole image.

pycocotools decodes an RLE into a full H x W array, one byte at a time: on a 1024 px image that
costs more than everything else verify does with an annotation. A region's pixels all lie in its
box, and COCO runs go down the columns, so the box's columns are one contiguous stretch of the
runs. ``rle_counts`` reads pycocotools' compressed counts (the inverse of its ``rleToString``)
and accepts them only if pycocotools encodes them back to the very same string; ``rle_window``
expands the runs of the box's columns alone.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils


def rle_counts(rle: dict) -> np.ndarray | None:
    """The run lengths of a pycocotools RLE (``size`` and compressed ``counts``), or None where
    they cannot be read back exactly (then only pycocotools' own ``decode`` says what it holds).

    Each count is a signed number in 5-bit groups, least significant first, each group a
    character ``48 + group`` with 0x20 set while more follow; from the fourth count on, each is
    stored as its difference to the count two before (pycocotools' ``rleFrString``)."""
    text = rle.get("counts")
    if isinstance(text, str):
        text = text.encode("ascii", "replace")
    if not isinstance(text, bytes) or not text:
        return None
    chars = np.frombuffer(text, np.uint8).astype(np.int64) - 48
    if chars.min() < 0 or chars.max() > 63 or chars[-1] & 0x20:
        return None
    ends = np.flatnonzero((chars & 0x20) == 0)  # the last character of each count
    starts = np.concatenate(([0], ends[:-1] + 1))
    groups = ends - starts + 1
    if groups.max() > 7:  # beyond 35 bits: not a count pycocotools writes
        return None
    place = np.arange(len(chars)) - np.repeat(starts, groups)
    values = np.add.reduceat((chars & 0x1F) << (5 * place), starts)
    negative = (chars[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * groups[negative])
    counts = values.copy()
    counts[1::2] = np.cumsum(values[1::2])
    counts[2::2] = np.cumsum(values[2::2])
    if counts.min() < 0:
        return None
    height, width = (int(v) for v in rle["size"])
    again = mask_utils.frPyObjects({"size": [height, width], "counts": counts.tolist()}, height, width)
    if again["counts"] != text or int(counts.sum()) != height * width:
        return None
    return counts


def rle_window(counts: np.ndarray, height: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """The (h, w) uint8 0/1 pixels of the RLE ``counts`` (of an image ``height`` rows high) inside
    ``box`` (x, y, w, h): only the runs of the box's columns are expanded."""
    x, y, w, h = box
    if not w or not h:
        return np.zeros((h, w), np.uint8)
    ends = np.cumsum(counts)
    first, last = x * height, (x + w) * height
    lo = np.clip(ends - counts, first, last)
    hi = np.clip(ends, first, last)
    values = (np.arange(len(counts)) % 2).astype(np.uint8)  # runs alternate, background first
    band = np.repeat(values, hi - lo)  # exactly the box's columns, top to bottom, left to right
    return np.ascontiguousarray(band.reshape(w, height).T[y : y + h])
