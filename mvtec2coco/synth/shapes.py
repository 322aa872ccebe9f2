"""Drawing synthetic products and defects: textured backgrounds, blobs, cracks, rings, specks.

Every defect mask mixes the shapes that trip converters up: several connected regions, thin
8-connected cracks, blobs with holes, regions of 1 to 3 pixels and regions touching the border.
All randomness comes from the ``numpy.random.Generator`` passed in, so output is deterministic.
"""

from __future__ import annotations

import cv2
import numpy as np

STYLES = ("blob", "crack", "ring", "border", "speck")


def texture(rng: np.random.Generator, size: int, channels: int, base: np.ndarray) -> np.ndarray:
    """A textured background: low-frequency shading plus fine grain around ``base`` colour."""
    low = rng.integers(0, 40, size=(max(2, size // 48), max(2, size // 48), channels), dtype=np.uint8)
    shade = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC).reshape(size, size, channels)
    grain = rng.integers(0, 16, size=(size, size, channels), dtype=np.uint8)
    image = np.empty((size, size, channels), dtype=np.uint8)
    image[:] = base[:channels]
    image = cv2.subtract(cv2.add(image, shade), grain).reshape(size, size, channels)
    return image


def product(rng: np.random.Generator, image: np.ndarray, colour: np.ndarray) -> None:
    """Draw the inspected object (a shaded disc with a rim) in place."""
    size = image.shape[0]
    centre = (size // 2 + int(rng.integers(-size // 40, size // 40 + 1)),) * 2
    radius = int(size * 0.33)
    col = tuple(int(v) for v in colour[: image.shape[2]])
    cv2.circle(image, centre, radius, col, thickness=-1, lineType=cv2.LINE_AA)
    rim = tuple(int(v) // 2 for v in col)
    cv2.circle(image, centre, radius, rim, thickness=max(2, size // 100), lineType=cv2.LINE_AA)


def defect_mask(rng: np.random.Generator, size: int, style: str) -> np.ndarray:
    """A 0/1 mask with the style's main shape plus, often, a second region of another kind."""
    mask = np.zeros((size, size), dtype=np.uint8)
    DRAW[style](rng, mask)
    if rng.random() < 0.6:
        extra = STYLES[int(rng.integers(len(STYLES)))]
        DRAW[extra](rng, mask)
    if not mask.any():  # degenerate draw: never emit an empty defect mask
        _blob(rng, mask)
    return mask


def _scale(mask: np.ndarray) -> int:
    return mask.shape[0]


def _blob(rng: np.random.Generator, mask: np.ndarray, centre: tuple[int, int] | None = None) -> None:
    size = _scale(mask)
    r = max(2.0, size * float(rng.uniform(0.02, 0.07)))
    if centre is None:
        centre = tuple(int(v) for v in rng.integers(int(size * 0.15), int(size * 0.85), size=2))
    angles = np.sort(rng.uniform(0, 2 * np.pi, size=int(rng.integers(6, 12))))
    radii = r * rng.uniform(0.5, 1.3, size=angles.size)
    pts = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], axis=1)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)


def _crack(rng: np.random.Generator, mask: np.ndarray) -> None:
    size = _scale(mask)
    steps = int(size * rng.uniform(0.08, 0.25))
    start = rng.integers(int(size * 0.2), int(size * 0.8), size=2).astype(float)
    heading = rng.uniform(0, 2 * np.pi)
    pts = [start.copy()]
    for _ in range(max(3, steps // 3)):
        heading += rng.normal(0, 0.5)
        start += 3 * np.array([np.cos(heading), np.sin(heading)])
        pts.append(start.copy())
    thickness = 1 if rng.random() < 0.7 else 2
    cv2.polylines(mask, [np.round(np.array(pts)).astype(np.int32)], False, 1, thickness=thickness,
                  lineType=cv2.LINE_8)


def _ring(rng: np.random.Generator, mask: np.ndarray) -> None:
    size = _scale(mask)
    centre = tuple(int(v) for v in rng.integers(int(size * 0.2), int(size * 0.8), size=2))
    outer = max(4, int(size * rng.uniform(0.03, 0.08)))
    inner = max(1, int(outer * rng.uniform(0.3, 0.6)))
    cv2.circle(mask, centre, outer, 1, thickness=-1)
    cv2.circle(mask, centre, inner, 0, thickness=-1)
    if rng.random() < 0.5:  # a second, one-pixel hole
        mask[centre[1] + (outer + inner) // 2, centre[0]] = 0


def _border(rng: np.random.Generator, mask: np.ndarray) -> None:
    size = _scale(mask)
    side = int(rng.integers(4))
    along = int(rng.integers(int(size * 0.1), int(size * 0.9)))
    centre = [(along, 0), (size - 1, along), (along, size - 1), (0, along)][side]
    _blob(rng, mask, centre)


def _speck(rng: np.random.Generator, mask: np.ndarray) -> None:
    """One to three regions of 1 to 3 pixels, away from everything already drawn."""
    size = _scale(mask)
    for _ in range(int(rng.integers(1, 4))):
        y, x = (int(v) for v in rng.integers(2, size - 4, size=2))
        if mask[y - 2 : y + 4, x - 2 : x + 4].any():
            continue
        n = int(rng.integers(1, 4))
        cells = [(0, 0), (0, 1), (1, 1)][:n]
        for dy, dx in cells:
            mask[y + dy, x + dx] = 1


DRAW = {"blob": _blob, "crack": _crack, "ring": _ring, "border": _border, "speck": _speck}


def paint_defect(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    """Paint the defect pixels with the defect type's colour and some noise, in place."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return
    noise = rng.integers(-20, 21, size=(ys.size, image.shape[2]))
    values = np.clip(colour[: image.shape[2]].astype(int) + noise, 0, 255).astype(np.uint8)
    image[ys, xs] = values
