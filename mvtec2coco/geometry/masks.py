"""Mask geometry: binary mask -> one ``Instance`` per 8-connected region, holes kept.

Conventions (see DESIGN.md): pixel (r, c) covers [c, c+1) x [r, r+1). A box is
``[x_min, y_min, x_max - x_min + 1, y_max - y_min + 1]`` over the region's pixels.

Polygons trace pixel *edges*, not pixel centres (``outlines.pixel_edge_rings``: OpenCV's
centre contour turned into pixel corners by a lookup table). The result (``Instance.outer`` /
``holes``) is the exact outline of the pixels: its shoelace area equals the pixel count, and
pycocotools rasterises it back to the same pixels (IoU 1.0 on every generated region, single
pixels included). Centre-traced contours (``cv2.findContours`` on the mask itself) lose half a
pixel all around: IoU 0 for 1-2 pixel regions and ~0.85 for a 10-pixel blob under pycocotools.
RLE and areas are read off the same outlines, so no region is ever rasterised to build them.

COCO polygons are written by the top-left rule (``coco_rings``): the outline's left and top
edges stay on the pixel edges, its right and bottom edges move ``COCO_PULL`` px inwards. That
one polygon is exact under pycocotools (which samples pixel centres at +0.5), under
``cv2.fillPoly`` on truncated points (ultralytics), and under rasterisers that sample centres
at integer coordinates and keep boundary points (``skimage.draw.polygon2mask``, PIL
``ImageDraw.polygon``); ``tools/measure_rasterisers.py`` measures each rasteriser and rule.
No polygon is exact both under pycocotools and under ``fillPoly`` on *rounded* points
(supervision's COCO reader): the first needs the right edge beyond R - 0.5, the second before it.

YOLO-seg polygons are read by ``fillPoly`` alone (ultralytics' ``polygon2mask`` truncates the
points, supervision rounds them) after a trip through 6-decimal normalised text, so they follow
another rule of the same kind (``yolo_polygons``): left and top edges ``YOLO_LEAD`` px in, right
and bottom ``YOLO_PULL`` px in. Each vertex then truncates *and* rounds into the boundary pixel
it belongs to, with room for the text's rounding, and both give back the region's pixels; the
box ultralytics derives from the polygon is ``YOLO_LEAD + YOLO_PULL`` px smaller than the true
box. Holes are joined to the outer ring by a zero-width bridge (a "keyhole") so that one YOLO
polygon carries them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from .outlines import Rings, cyclic_neighbours, pixel_edge_rings

YOLO_INSET = 0.05  # px, every edge of simplified YOLO polygons: more than 6-decimal text rounds off at 10,000 px
YOLO_LEAD = 0.05  # px, left and top edges of YOLO polygons: [L, L + 0.5) truncates and rounds to L
YOLO_PULL = 0.55  # px, right and bottom edges: (R - 1, R - 0.5) truncates and rounds to R - 1
COCO_PULL = 0.25  # px, for right and bottom edges of COCO polygons: all of (0, 0.5) is exact; its middle

Ring = np.ndarray  # (N, 2) float64 vertices (x, y) in pixel-edge coordinates


def _next(a: np.ndarray) -> np.ndarray:
    """``a`` shifted so that row i holds row i + 1 (cyclic); np.roll's overhead dominated here."""
    return np.concatenate((a[1:], a[:1]))


@dataclass(frozen=True)
class Instance:
    """One connected defect region of a mask, in every form the exporters need."""

    bbox: tuple[int, int, int, int]  # x, y, w, h in pixels
    area: int  # pixel count
    rle: dict | None  # COCO compressed RLE over the full image: {"size": [h, w], "counts": str}; None if not asked for
    outer: Ring  # exact outline (or simplified, see ``instances``)
    holes: tuple[Ring, ...]
    hole_pixels: int = 0  # pixels inside the holes (exact, from the unsimplified outlines)

    @property
    def has_holes(self) -> bool:
        return bool(self.holes)

    def coco_polygons(self, keyholes: bool = False) -> list[list[float]]:
        """COCO ``segmentation`` polygons as written (``coco_rings``): the outer ring only, or
        with ``keyholes`` its holes joined in."""
        return [_flat(coco_rings([self], keyholes)[0])]

    def yolo_polygon(self) -> np.ndarray:
        """One (N, 2) polygon in pixels for YOLO-seg: inset outline with holes keyholed in."""
        return yolo_polygons([self])[0]


def to_binary(mask: np.ndarray) -> np.ndarray:
    """A C-contiguous uint8 array whose non-zero pixels are the defect pixels (any channel > 0).

    A 2-D uint8 mask is used as it is: OpenCV's contour tracing treats every non-zero value as
    foreground, and nothing else reads the pixels, so no full-frame threshold is needed.
    """
    if mask.ndim == 2 and mask.dtype == np.uint8:
        return np.ascontiguousarray(mask)
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    return np.ascontiguousarray(mask > 0, dtype=np.uint8)


def instances(mask: np.ndarray, simplify: float = 0.0) -> list[Instance]:
    """All 8-connected regions of ``mask`` as instances, in raster order of their first pixel.

    ``simplify`` > 0 applies Douglas-Peucker with that tolerance (px) to the polygons; boxes,
    areas and RLE stay exact. See ``instances_of_masks``.
    """
    return instances_of_masks([mask], simplify)[0]


def instances_of_masks(masks: Iterable[np.ndarray], simplify: float = 0.0, rle: bool = True) -> list[list[Instance]]:
    """``instances`` of several masks, with the array work done once for all of them.

    ``rle=False`` leaves ``Instance.rle`` None, for readers that need only boxes, areas and
    outlines: the RLE's compression was a third of the cost of finding the regions.

    Each mask is only traced by ``cv2.findContours`` (one pass finds every region and hole) and
    can be freed right after, so ``masks`` may be a generator that decodes them one by one.
    ``outlines.pixel_edge_rings`` then turns every contour of every mask into exact outlines at
    once, and areas and RLE are read off those outlines, so no region is ever rasterised. Batching
    matters because the arrays per mask are small: numpy's fixed cost per call dominated.
    """
    traced = [_trace(m) for m in masks]
    contours = [c for cs, _, _ in traced for c in cs]
    if not contours:
        return [[] for _ in traced]
    rings = pixel_edge_rings(contours)
    owner: list[int] = [0] * len(contours)  # region index of every contour (outer ring or hole)
    tops_of: list[list[int]] = []
    holes_of: list[list[int]] = []
    sizes: list[tuple[int, int]] = []
    base = 0
    for cs, parents, size in traced:
        tops = sorted((i for i, p in enumerate(parents) if p < 0), key=lambda i: (int(cs[i][0, 0, 1]), int(cs[i][0, 0, 0])))
        rank = {i: r for r, i in enumerate(tops)}
        holes: list[list[int]] = [[] for _ in tops]
        for i, p in enumerate(parents):
            r = rank[i] if p < 0 else rank[p]
            owner[base + i] = len(sizes) + r
            if p >= 0:
                holes[r].append(base + i)
        tops_of.append([base + i for i in tops])
        holes_of.extend(holes)
        sizes.extend([size] * len(tops))
        base += len(cs)
    region_of = np.array(owner, np.int64)
    following = rings.following()
    twice_areas = _twice_areas(rings, following)
    outer_rings = [t for tops in tops_of for t in tops]  # region order
    is_hole = np.ones(len(contours), bool)
    is_hole[outer_rings] = False
    hole_areas = np.abs(twice_areas[is_hole]) // 2  # a ring's shoelace area is the pixel count it encloses
    hole_pixels = np.bincount(region_of[is_hole], weights=hole_areas, minlength=len(sizes)).astype(np.int64).tolist()
    if rle:
        rles, areas = _region_rles(rings, following, region_of, np.array(sizes, np.int64).reshape(-1, 2))
    else:
        outer_areas = np.abs(twice_areas[outer_rings]) // 2
        rles, areas = [None] * len(sizes), (outer_areas - np.array(hole_pixels, np.int64)).tolist()
    starts = rings.starts
    lows = np.minimum.reduceat(rings.vertices, starts).tolist()
    highs = np.maximum.reduceat(rings.vertices, starts).tolist()
    as_float = np.split(rings.vertices.astype(np.float64), np.cumsum(rings.lengths)[:-1])
    found: list[list[Instance]] = []
    region = 0
    for tops in tops_of:
        mine = []
        for top in tops:
            outer, holes = as_float[top], [as_float[i] for i in holes_of[region]]
            if simplify > 0:
                outer = simplify_ring(outer, simplify)
                holes = [simplify_ring(h, simplify) for h in holes]
            (x0, y0), (x1, y1) = lows[top], highs[top]
            mine.append(Instance(bbox=(x0, y0, x1 - x0, y1 - y0), area=areas[region], rle=rles[region], outer=outer,
                                 holes=tuple(holes), hole_pixels=hole_pixels[region]))
            region += 1
        found.append(mine)
    return found


def _twice_areas(rings: Rings, following: np.ndarray) -> np.ndarray:
    """Twice the signed (shoelace) area of every ring, exact in integers."""
    here, there = rings.vertices.astype(np.int64), following.astype(np.int64)  # int32 products overflow
    return np.add.reduceat(here[:, 0] * there[:, 1] - there[:, 0] * here[:, 1], rings.starts)


def _trace(mask: np.ndarray) -> tuple[tuple[np.ndarray, ...], list[int], tuple[int, int]]:
    """OpenCV contours (outer borders and holes), their parent indices, and the mask's (h, w).

    Only the rows between the first and the last defect row are traced: OpenCV copies the whole
    image before tracing, and defects usually span a small part of it. One row-sum pass (about a
    third of a full trace) finds those rows.
    """
    binary = to_binary(mask)
    height, width = binary.shape
    busy = np.flatnonzero(cv2.reduce(binary, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S))
    if not busy.size:
        return (), [], (height, width)
    top, bottom = int(busy[0]), int(busy[-1]) + 1
    contours, hierarchy = cv2.findContours(binary[top:bottom], cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE, offset=(0, top))
    return contours, hierarchy[0][:, 3].tolist(), (height, width)


def _region_rles(rings: Rings, following: np.ndarray, region_of: np.ndarray,
                 sizes: np.ndarray) -> tuple[list[dict], list[int]]:
    """COCO RLE and pixel count of every region, read off its outline's horizontal edges.

    COCO RLE runs go down the columns. In column x, a region's runs start and end exactly where a
    horizontal edge of its outline (outer ring or hole) crosses that column, so the sorted
    crossings ``x * height + y`` of each region are its run boundaries in RLE order. A run that
    leaves the bottom of one column and enters the top of the next gives the same boundary twice;
    such pairs cancel. ``sizes`` holds each region's image (height, width).
    """
    vertices, lengths = rings
    horizontal = np.flatnonzero(vertices[:, 1] == following[:, 1])
    x0 = np.minimum(vertices[horizontal, 0], following[horizontal, 0])
    span = np.abs(following[horizontal, 0] - vertices[horizontal, 0])
    edge = np.repeat(np.arange(len(horizontal)), span)
    column = x0[edge] + np.arange(len(edge)) - np.repeat(np.cumsum(span) - span, span)
    region = np.repeat(region_of, lengths)[horizontal][edge]
    totals = sizes[:, 0] * sizes[:, 1]
    stride = int(totals.max()) + 1
    keys = np.sort(region * stride + column * sizes[region, 0] + vertices[horizontal, 1][edge])
    twice = keys[1:] == keys[:-1]
    if twice.any():
        drop = np.zeros(len(keys), bool)
        drop[:-1] |= twice
        drop[1:] |= twice
        keys = keys[~drop]
    local = keys % stride
    firsts = np.searchsorted(keys, np.arange(len(sizes) + 1) * stride)
    runs = np.diff(local, prepend=0)
    runs[firsts[:-1]] = local[firsts[:-1]]
    signs = np.where(np.arange(len(keys)) % 2 == 1, 1, -1)  # every region holds an even number of keys
    areas = np.add.reduceat(local * signs, firsts[:-1]).tolist()
    tails = (totals - local[firsts[1:] - 1]).tolist()
    bounds = firsts.tolist()
    uncompressed = []
    for r, (height, width) in enumerate(sizes.tolist()):
        counts = runs[bounds[r] : bounds[r + 1]].tolist()
        if tails[r]:  # no trailing background run when the region ends on the image's last pixel
            counts.append(tails[r])
        uncompressed.append({"size": [height, width], "counts": counts})
    encoded = mask_utils.frPyObjects(uncompressed, 0, 0)  # each dict carries its own size
    rles = [{"size": u["size"], "counts": e["counts"].decode("ascii")} for u, e in zip(uncompressed, encoded)]
    return rles, areas


def decode_rle(rle: dict) -> np.ndarray:
    """Decode a COCO RLE (str or bytes counts) to an H x W uint8 0/1 array."""
    counts = rle["counts"]
    obj = {"size": rle["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(obj)


def signed_area(ring: Ring) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, _next(y)) - np.dot(_next(x), y))


def yolo_polygons(found: list[Instance]) -> list[np.ndarray]:
    """The YOLO-seg polygon of every instance: all rings moved in at once (simplified outlines
    by ``YOLO_INSET`` on every side), then holes keyholed in."""
    rings = [ring for inst in found for ring in (inst.outer, *inst.holes)]
    if not rings:
        return []
    groups = np.repeat(np.arange(len(found)), [1 + len(inst.holes) for inst in found])
    moved = _top_left_if_rectilinear(rings, YOLO_PULL, groups, YOLO_LEAD)
    if moved is None:
        moved = inset_rings(rings, YOLO_INSET, groups)
    polygons, k = [], 0
    for inst in found:
        polygons.append(join_holes(moved[k], moved[k + 1 : k + 1 + len(inst.holes)]) if inst.holes else moved[k])
        k += 1 + len(inst.holes)
    return polygons


def coco_rings(found: list[Instance], keyholes: bool) -> list[np.ndarray]:
    """The COCO polygon of every instance, by the top-left rule (see the module docstring);
    with ``keyholes`` each region's holes are joined in by zero-width bridges. Simplified
    outlines are not rectilinear: they are written as they are."""
    rings = [ring for inst in found for ring in (inst.outer, *(inst.holes if keyholes else ()))]
    if not rings:
        return []
    counts = [1 + (len(inst.holes) if keyholes else 0) for inst in found]
    rings = _top_left_if_rectilinear(rings, COCO_PULL, np.repeat(np.arange(len(found)), counts)) or rings
    polygons, k = [], 0
    for n in counts:
        polygons.append(join_holes(rings[k], rings[k + 1 : k + n]) if n > 1 else rings[k])
        k += n
    return polygons


def top_left_rings(rings: list[Ring], pull: float, groups: np.ndarray, lead: float = 0.0) -> list[Ring]:
    """Exact (rectilinear) outlines with every right and bottom edge moved ``pull`` px inwards and
    every left and top edge ``lead`` px inwards, all rings in one batch; ``groups`` gives each
    ring's region. A ring with a slanted edge (a simplified outline) is a ``ValueError``.

    With the foreground on the left of every ring, an edge going up is a right edge, one going
    down a left edge, one going right a bottom edge and one going left a top edge. A vertex
    takes the shift of its vertical edge in x and of its horizontal edge in y, so its new place
    depends only on the directions of its two edges: one lookup in a table of the 9 x 9 pairs.
    A pinch (a point the region's outline passes twice, where two pixels touch only at a corner)
    belongs to two pixels: it becomes two points, the end of the moved incoming edge and the
    start of the moved outgoing one. Both passages share that segment, so the two pixels stay
    joined by a zero-width bridge instead of overlapping.
    """
    moved = _top_left_if_rectilinear(rings, pull, groups, lead)
    if moved is None:
        raise ValueError("top_left_rings needs exact outlines: every edge horizontal or vertical")
    return moved


def _top_left_if_rectilinear(rings: list[Ring], pull: float, groups: np.ndarray,
                             lead: float = 0.0) -> list[Ring] | None:
    """``top_left_rings``, or None when an edge is neither horizontal nor vertical (checked on
    the same edge directions the rule is read from)."""
    lengths = np.fromiter((len(r) for r in rings), np.int64, len(rings))
    vertices = np.concatenate(rings).astype(np.float64, copy=False)
    starts = np.cumsum(lengths) - lengths
    nxt, prv = cyclic_neighbours(starts, lengths, len(vertices))
    step = np.sign(vertices[nxt] - vertices).astype(np.intp)
    if np.any(step[:, 0] * step[:, 1]):
        return None
    code_out = (step[:, 1] + 1) * 3 + step[:, 0] + 1  # direction of the edge leaving each vertex
    code_in = code_out[prv]
    across, end_in, start_out = _top_left_tables(pull, lead)
    moved = vertices + (across[:, None, :] + across[None, :, :]).reshape(-1, 2)[code_in * 9 + code_out]
    pinch = _twice_in_group(vertices, np.repeat(groups, lengths))
    if not pinch.any():
        return np.split(moved, np.cumsum(lengths)[:-1])
    # At a pinch the incoming edge ends at a corner of the pixel before the vertex and the
    # outgoing one starts at a corner of the pixel after it; each takes that pixel's shift.
    at = np.flatnonzero(pinch)
    before, after = code_in[at], code_out[at]
    moved[at] = vertices[at] + across[before] + end_in[before]
    place = np.arange(len(vertices)) + np.cumsum(pinch) - pinch  # each vertex after the points added before it
    out = np.empty((len(vertices) + len(at), 2))
    out[place] = moved
    out[place[at] + 1] = vertices[at] + across[after] + start_out[after]
    lengths = lengths + np.add.reduceat(pinch, starts)
    return np.split(out, np.cumsum(lengths)[:-1])


def _top_left_tables(pull: float, lead: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shifts by edge direction ``(sign(dy) + 1) * 3 + sign(dx) + 1`` (rows 1 up, 3 left,
    5 right, 7 down; 4 is no edge): an edge's own shift along its normal (a right edge -pull in
    x, a left edge +lead, a bottom edge -pull in y, a top edge +lead), and at a pinch the shift
    of the pixel an incoming edge ends at, and of the pixel an outgoing edge starts at."""
    across, end_in, start_out = (np.zeros((9, 2)) for _ in range(3))
    across[1], across[7], across[5], across[3] = (-pull, 0), (lead, 0), (0, -pull), (0, lead)
    end_in[5], end_in[3], end_in[7], end_in[1] = (-pull, 0), (lead, 0), (0, -pull), (0, lead)
    start_out[3], start_out[5], start_out[1], start_out[7] = (-pull, 0), (lead, 0), (0, -pull), (0, lead)
    return across, end_in, start_out


def inset_rings(rings: list[Ring], distance: float, groups: np.ndarray | None = None) -> list[Ring]:
    """Move every edge of every ring by ``distance`` towards the foreground, which lies on the
    left of every ring (``outlines.pixel_edge_rings``; Douglas-Peucker keeps the order), all
    rings in one batch of array operations.

    Convex vertices get a miter point. So does a concave vertex of an exact outline: its miter
    point lands in the pixel diagonal to the background corner, which belongs to the region,
    except at a pinch, where two pixels of the region touch only at that corner and the
    region's outline passes the point twice. A pinch (found as a point that occurs twice among
    the rings of one region, ``groups`` giving each ring's region), and every concave vertex of
    a simplified outline, gets two points instead, one at the end of each moved edge.
    """
    lengths = np.fromiter((len(r) for r in rings), np.int64, len(rings))
    if lengths.min() < 3:
        return [r.copy() if len(r) < 3 else inset_rings([r], distance)[0] for r in rings]
    vertices = np.concatenate(rings).astype(np.float64, copy=False)
    starts = np.cumsum(lengths) - lengths
    nxt, prv = cyclic_neighbours(starts, lengths, len(vertices))
    edges = vertices[nxt] - vertices
    norms = np.hypot(edges[:, 0], edges[:, 1])
    norms[norms == 0] = 1.0
    unit = edges / norms[:, None]
    normal = np.stack([unit[:, 1], -unit[:, 0]], axis=1)  # left of the edge (y points down)
    n_in, u_in = normal[prv], unit[prv]  # edge ending at each vertex
    split = np.einsum("ij,ij->i", n_in, unit) < -1e-9  # concave
    if groups is not None and split.any() and not np.any(edges[:, 0] * edges[:, 1]):  # exact outlines
        split &= _twice_in_group(vertices, np.repeat(groups, lengths))
    dot = np.clip(np.einsum("ij,ij->i", n_in, normal), -0.9, 1.0)
    moved = vertices + distance * (n_in + normal) / (1.0 + dot)[:, None]
    if split.any():
        moved[split] = vertices[split] + distance * (n_in[split] - u_in[split])
        start_out = vertices + distance * (normal + unit)
        pairs = np.stack([moved, start_out], axis=1)
        moved = pairs[np.stack([np.ones_like(split), split], axis=1)]
        lengths = lengths + np.add.reduceat(split, starts)
    return np.split(moved, np.cumsum(lengths)[:-1])


def _twice_in_group(vertices: np.ndarray, group: np.ndarray) -> np.ndarray:
    """True for every vertex whose point occurs more than once among its group's vertices."""
    xy = vertices.astype(np.int64)
    keys = (group.astype(np.int64) << 42) | ((xy[:, 0] + 1) << 21) | (xy[:, 1] + 1)  # points within 2M px
    order = np.argsort(keys, kind="stable")
    ranked = keys[order]
    same = ranked[1:] == ranked[:-1]
    repeated = np.zeros(len(keys), bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    twice = np.empty(len(keys), bool)
    twice[order] = repeated
    return twice


def join_holes(outer: Ring, holes: list[Ring], candidates: int = 32) -> np.ndarray:
    """One polygon: each hole spliced into the ring at a short bridge (keyhole).

    The bridge joins the closest pair between every polygon vertex and up to ``candidates``
    evenly spaced hole vertices: near-shortest, without an all-pairs distance matrix (that cost
    more than all other geometry together on ring-shaped defects).
    """
    polygon = outer
    for hole in sorted(holes, key=lambda r: (float(r[:, 1].min()), float(r[:, 0].min()))):
        step = -(-len(hole) // candidates)  # ceil: at most ``candidates`` picks
        picks = hole[::step]
        d = np.subtract.outer(polygon[:, 0], picks[:, 0]) ** 2 + np.subtract.outer(polygon[:, 1], picks[:, 1]) ** 2
        i, k = divmod(int(np.argmin(d)), len(picks))
        at = k * step
        polygon = np.concatenate([polygon[: i + 1], hole[at:], hole[: at + 1], polygon[i:]], axis=0)
    return polygon


def simplify_ring(ring: Ring, tolerance: float) -> Ring:
    """Douglas-Peucker with ``tolerance`` px; never fewer than 3 vertices."""
    approx = cv2.approxPolyDP(ring.astype(np.float32).reshape(-1, 1, 2), tolerance, True).reshape(-1, 2)
    return approx.astype(np.float64) if len(approx) >= 3 else ring


def _flat(ring: Ring) -> list[float]:
    return ring.reshape(-1).tolist()


def polygon_to_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """Rasterise COCO polygons with pycocotools (the consumers' own code)."""
    rles = mask_utils.frPyObjects(polygons, height, width)
    return mask_utils.decode(mask_utils.merge(rles))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks; 1.0 when both are empty."""
    a, b = (m if m.dtype == bool else m > 0 for m in (a, b))
    inter = int(np.count_nonzero(a & b))
    union = int(np.count_nonzero(a)) + int(np.count_nonzero(b)) - inter
    return 1.0 if union == 0 else inter / union
