"""Geometry: hand-drawn masks with exact answers, and property tests over random masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from mvtec2coco.datasets.imageio import load_mask
from mvtec2coco.geometry.masks import decode_rle, instances, instances_of_masks, iou, polygon_to_mask, signed_area

from .reference_outline import canonical, reference_rings

ultralytics_utils = pytest.importorskip("ultralytics.data.utils")
polygon2mask = ultralytics_utils.polygon2mask


def ring(poly: list[float]) -> list[tuple[float, float]]:
    return [(poly[i], poly[i + 1]) for i in range(0, len(poly), 2)]


def yolo_raster(inst, h: int, w: int) -> np.ndarray:
    """The YOLO polygon as ultralytics rasterises it, after normalising to 6 decimals like the files."""
    norm = np.round(inst.yolo_polygon() / [w, h], 6)
    return polygon2mask((h, w), [(norm * [w, h]).reshape(-1)])


def test_single_pixel():
    m = np.zeros((5, 6), np.uint8)
    m[2, 3] = 1
    (inst,) = instances(m)
    assert inst.bbox == (3, 2, 1, 1)
    assert inst.area == 1
    assert {tuple(v) for v in inst.outer.tolist()} == {(3, 2), (4, 2), (4, 3), (3, 3)}  # the exact outline
    assert set(ring(inst.coco_polygons()[0])) == {(3, 2), (3.75, 2), (3.75, 2.75), (3, 2.75)}  # top-left rule
    assert np.array_equal(decode_rle(inst.rle), m)
    assert np.array_equal(polygon_to_mask(inst.coco_polygons(), 5, 6), m)
    assert np.array_equal(yolo_raster(inst, 5, 6), m)


def test_two_diagonal_pixels_are_one_instance():
    m = np.zeros((4, 4), np.uint8)
    m[1, 1] = m[2, 2] = 1
    (inst,) = instances(m)
    assert inst.bbox == (1, 1, 2, 2)
    assert inst.area == 2
    assert abs(signed_area(inst.outer)) == 2
    assert np.array_equal(polygon_to_mask(inst.coco_polygons(), 4, 4), m)
    assert np.array_equal(yolo_raster(inst, 4, 4), m)


def test_ring_keeps_its_hole():
    m = np.zeros((9, 9), np.uint8)
    m[1:8, 1:8] = 1
    m[3:6, 3:6] = 0
    (inst,) = instances(m)
    assert inst.bbox == (1, 1, 7, 7)
    assert inst.area == 49 - 9
    assert inst.has_holes and len(inst.holes) == 1
    assert set(map(tuple, inst.holes[0])) == {(3.0, 3.0), (6.0, 3.0), (6.0, 6.0), (3.0, 6.0)}
    assert np.array_equal(decode_rle(inst.rle), m)
    raster = yolo_raster(inst, 9, 9)
    assert raster[3:6, 3:6].sum() == 0  # the hole stays empty in YOLO-seg
    assert np.array_equal(raster, m)


def test_two_regions_in_raster_order():
    m = np.zeros((10, 10), np.uint8)
    m[6:8, 1:4] = 1
    m[1:3, 5:9] = 1
    a, b = instances(m)
    assert a.bbox == (5, 1, 4, 2) and a.area == 8
    assert b.bbox == (1, 6, 3, 2) and b.area == 6


@pytest.mark.parametrize("where", ["top", "bottom", "left", "right"])
def test_region_on_each_border(where):
    m = np.zeros((8, 12), np.uint8)
    cells = {"top": (slice(0, 2), slice(4, 7)), "bottom": (slice(6, 8), slice(4, 7)),
             "left": (slice(3, 5), slice(0, 3)), "right": (slice(3, 5), slice(9, 12))}[where]
    m[cells] = 1
    (inst,) = instances(m)
    ys, xs = np.nonzero(m)
    assert inst.bbox == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    assert np.array_equal(polygon_to_mask(inst.coco_polygons(), 8, 12), m)
    assert np.array_equal(yolo_raster(inst, 8, 12), m)
    poly = inst.yolo_polygon() / [12, 8]
    assert poly.min() >= 0 and poly.max() <= 1


def test_full_mask():
    m = np.ones((7, 5), np.uint8)
    (inst,) = instances(m)
    assert inst.bbox == (0, 0, 5, 7) and inst.area == 35
    assert sorted(ring(inst.coco_polygons()[0])) == [(0, 0), (0, 6.75), (4.75, 0), (4.75, 6.75)]
    assert np.array_equal(decode_rle(inst.rle), m)


def test_empty_mask():
    assert instances(np.zeros((6, 6), np.uint8)) == []


def test_non_binary_values_are_defect():
    m = np.zeros((6, 6), np.uint8)
    m[1, 1], m[1, 2], m[4, 4] = 1, 254, 37
    found = instances(m)
    assert [i.area for i in found] == [2, 1]


def test_island_inside_a_hole_is_its_own_instance():
    m = np.zeros((11, 11), np.uint8)
    m[1:10, 1:10] = 1
    m[3:8, 3:8] = 0
    m[5, 5] = 1
    outer, island = instances(m)
    assert outer.area == 81 - 25 and outer.has_holes
    assert island.bbox == (5, 5, 1, 1) and island.area == 1
    assert decode_rle(outer.rle)[5, 5] == 0


def test_several_mask_files_are_merged(tmp_path):
    import cv2

    a = np.zeros((8, 8), np.uint8)
    b = np.zeros((8, 8), np.uint8)
    a[1:3, 1:3] = 255
    b[5:7, 5:7] = 237  # LOCO stores values other than 255
    cv2.imwrite(str(tmp_path / "000.png"), a)
    cv2.imwrite(str(tmp_path / "001.png"), b)
    merged = load_mask([tmp_path / "000.png", tmp_path / "001.png"], 8, 8)
    assert merged.sum() == 8
    assert len(instances(merged)) == 2


def test_simplify_trades_points_for_accuracy():
    import cv2

    m = np.zeros((60, 60), np.uint8)
    cv2.circle(m, (30, 30), 20, 1, -1)
    exact, simple = instances(m)[0], instances(m, simplify=1.5)[0]
    assert len(simple.outer) < len(exact.outer) / 3
    assert exact.area == simple.area and exact.rle == simple.rle  # only polygons change
    assert 0.9 < iou(polygon_to_mask(simple.coco_polygons(), 60, 60), m) < 1.0


masks_strategy = st.tuples(st.integers(1, 40), st.integers(1, 40), st.floats(0.05, 0.8), st.integers(0, 2**32 - 1))


def random_mask(spec) -> np.ndarray:
    import cv2

    h, w, density, seed = spec
    rng = np.random.default_rng(seed)
    m = (rng.random((h, w)) < density).astype(np.uint8)
    if seed % 3 == 0:  # blobbier masks, with holes
        m = cv2.dilate(m, np.ones((3, 3), np.uint8))
    return m


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masks_strategy)
def test_property_rle_exact_and_areas_sum(spec):
    m = random_mask(spec)
    found = instances(m)
    total = np.zeros_like(m)
    for inst in found:
        decoded = decode_rle(inst.rle)
        reference = mask_utils.encode(np.asfortranarray(decoded))
        assert reference["counts"].decode() == inst.rle["counts"]  # same bytes as pycocotools' own encoder
        assert decoded.sum() == inst.area
        assert (total & decoded).sum() == 0
        total |= decoded
    assert sum(i.area for i in found) == int(m.sum())
    assert np.array_equal(total, m)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masks_strategy)
@example((5, 15, 0.78125, 14976437))  # 62 pixels, 5 holes: one bridge pixel is IoU 0.984
def test_property_polygons_reproduce_pixels(spec):
    """Documented bounds: COCO polygons IoU 1.0 (exact outline), YOLO polygons IoU 1.0 without
    holes; with holes no defect pixel lost and at most one background pixel gained per hole (a
    keyhole bridge may touch one)."""
    m = random_mask(spec)
    h, w = m.shape
    for inst in instances(m):
        exact = decode_rle(inst.rle)
        area_from_rings = abs(signed_area(inst.outer)) - sum(abs(signed_area(r)) for r in inst.holes)
        assert area_from_rings == pytest.approx(inst.area)
        if not inst.has_holes:
            assert iou(polygon_to_mask(inst.coco_polygons(), h, w), exact) == 1.0
            assert iou(yolo_raster(inst, h, w), exact) == 1.0
        else:
            drawn = yolo_raster(inst, h, w).astype(bool)
            assert not (exact.astype(bool) & ~drawn).any()
            assert int((drawn & ~exact.astype(bool)).sum()) <= len(inst.holes)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masks_strategy)
def test_property_yolo_holes_stay_empty(spec):
    m = random_mask(spec)
    h, w = m.shape
    for inst in instances(m):
        if not inst.has_holes:
            continue
        exact = decode_rle(inst.rle)
        outline = polygon_to_mask(inst.coco_polygons(), h, w)  # outer ring only, holes filled
        holes = (outline > 0) & (exact == 0)
        raster = yolo_raster(inst, h, w)
        # the keyhole bridge is a zero-width line between two vertices: it may clip a hole pixel at a corner
        assert int(raster[holes].sum()) <= 2 * len(inst.holes)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masks_strategy)
def test_property_outlines_match_the_reference_tracer(spec):
    """The lookup-table outlines equal an independent doubled-grid tracer's, ring for ring, and
    keep the orientation the YOLO inset relies on (foreground on the left: outer rings negative)."""
    m = random_mask(spec)
    found = instances(m)
    assert sorted(canonical(r) for i in found for r in (i.outer, *i.holes)) == reference_rings(m)
    for inst in found:
        assert signed_area(inst.outer) == -(inst.area + inst.hole_pixels)
        assert all(signed_area(h) > 0 for h in inst.holes)
        assert inst.hole_pixels == sum(signed_area(h) for h in inst.holes)


def test_batch_of_masks_equals_one_by_one():
    """``instances_of_masks`` over masks of different sizes gives what ``instances`` gives alone."""
    masks = [random_mask((h, w, 0.4, seed)) for h, w, seed in ((7, 30, 3), (40, 9, 4), (1, 1, 5), (25, 25, 6))]
    masks.append(np.zeros((5, 5), np.uint8))
    for one, batch in zip([instances(m) for m in masks], instances_of_masks(masks)):
        assert [(i.bbox, i.area, i.rle, i.hole_pixels) for i in one] == [(i.bbox, i.area, i.rle, i.hole_pixels) for i in batch]
        assert all(np.array_equal(a.outer, b.outer) for a, b in zip(one, batch))


def _flood_regions(mask: np.ndarray) -> list[tuple[tuple[int, int, int, int], int, bytes]]:
    """Every 8-connected region by a plain flood fill, in raster order of its first pixel: its
    box, pixel count and pixels inside the box. The oracle for verify's own region reading."""
    h, w = mask.shape
    seen = np.zeros(mask.shape, bool)
    found = []
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        pixels, todo = [], [(y0, x0)]
        seen[y0, x0] = True
        while todo:
            y, x = todo.pop()
            pixels.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    v, u = y + dy, x + dx
                    if 0 <= v < h and 0 <= u < w and mask[v, u] and not seen[v, u]:
                        seen[v, u] = True
                        todo.append((v, u))
        ys, xs = np.array(pixels).T
        box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        inside = np.zeros((box[3], box[2]), bool)
        inside[ys - box[1], xs - box[0]] = True
        found.append((box, len(pixels), inside.tobytes()))
    return found


def test_verify_reads_the_source_regions_as_a_flood_fill_does():
    """verify finds the regions a conversion had to write by OpenCV alone (``layer_regions``):
    the same regions, boxes, pixel counts and pixels as a flood fill, in the same order, on
    random masks dense and sparse (holes, islands in holes, regions touching at corners and the
    image's edges), a full frame, values other than 255, and an empty mask."""
    from mvtec2coco.verify import layer_regions

    rng = np.random.default_rng(11)
    masks = [(rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40)))) < rng.uniform(0.05, 0.7)).astype(np.uint8)
             * int(rng.integers(1, 256)) for _ in range(150)]
    ring_with_island = np.zeros((9, 9), np.uint8)
    ring_with_island[1:8, 1:8] = 255
    ring_with_island[2:7, 2:7] = 0
    ring_with_island[4, 4] = 255
    masks += [ring_with_island, np.full((6, 5), 7, np.uint8), np.zeros((4, 4), np.uint8), np.eye(5, dtype=np.uint8)[::-1]]
    regions = 0
    for k, mask in enumerate(masks):
        found = [(r.bbox, r.area, pixels.tobytes()) for r, pixels in layer_regions(mask)]
        assert found == _flood_regions(mask), k
        assert [(r.bbox, r.area, p) for r, p in layer_regions(mask, pixels=False)] == [(b, a, None) for b, a, _ in found], k
        regions += len(found)
    assert [r.area for r, _ in layer_regions(ring_with_island)] == [24, 1]
    assert regions > 1000


def test_verify_counts_regions_with_crossing_boxes_by_one_labelling(monkeypatch):
    """Long thin regions across each other's boxes (diagonal stripes): without their pixels,
    the band is labelled once instead of every box, with the same boxes and counts as a flood
    fill; with their pixels, and with that labelling forced on any mask, the same again."""
    import mvtec2coco.verify as verify_module

    y, x = np.mgrid[:60, :70]
    stripes = ((x + y) % 4 == 0).astype(np.uint8) * 255  # 8-connected diagonals, each box spans much of the frame
    rng = np.random.default_rng(5)
    noisy = (rng.random((50, 60)) < 0.45).astype(np.uint8)
    calls = []
    real = cv2.connectedComponentsWithStats
    monkeypatch.setattr(verify_module.cv2, "connectedComponentsWithStats", lambda *a, **k: calls.append(1) or real(*a, **k))
    for mask in (stripes, noisy):
        flood = [(b, a) for b, a, _ in _flood_regions(mask)]
        assert [(r.bbox, r.area) for r, _ in verify_module.layer_regions(mask, pixels=False)] == flood
        assert [(r.bbox, r.area) for r, _ in verify_module.layer_regions(mask)] == flood
    assert len(calls) == 1  # the stripes, without pixels; the noisy mask's boxes are small
    assert len(_flood_regions(stripes)) > 30
    monkeypatch.setattr(verify_module, "_BAND_LABELLING", 0)
    for mask in (stripes, noisy, np.eye(7, dtype=np.uint8)):
        assert [(r.bbox, r.area) for r, _ in verify_module.layer_regions(mask, pixels=False)] == \
            [(b, a) for b, a, _ in _flood_regions(mask)]


def test_verify_compares_crops_exactly_as_full_images():
    """verify's box-limited IoUs equal full-image IoUs, for shifted, merged and missing outputs."""
    from mvtec2coco.verify import OutputMask, mask_ious, source_crops

    rng = np.random.default_rng(7)
    for _ in range(40):
        mask = (rng.random((60, 70)) < rng.uniform(0.02, 0.4)).astype(np.uint8) * 255
        found = instances(mask)
        fulls = [decode_rle(i.rle).astype(bool) for i in found]
        outputs = [np.asfortranarray(np.roll(m, int(rng.integers(-2, 3)), axis=1)).astype(np.uint8) for m in fulls[:5]]
        if len(fulls) > 6:
            outputs.append((fulls[5] | fulls[6]).astype(np.uint8))  # two regions written as one
        matrix, image_iou = mask_ious(found, source_crops(found, mask), [OutputMask.of(m) for m in outputs])
        expected = np.array([[iou(a, b) for b in outputs] for a in fulls]).reshape(len(fulls), len(outputs))
        assert np.allclose(matrix, expected)
        union_src = np.any(fulls, axis=0) if fulls else np.zeros(mask.shape, bool)
        union_out = np.any(outputs, axis=0) if outputs else np.zeros(mask.shape, bool)
        assert image_iou == pytest.approx(iou(union_out, union_src))


def test_verify_reads_each_output_masks_box_and_area_exactly():
    """A YOLO-seg polygon rasterised on its window holds exactly the pixels, box and count of
    ultralytics' polygon2mask on the whole frame, and pycocotools' RLE box and area equal a
    search of its decoded mask: polygons inside, across and outside the image, collapsed ones,
    and points a hair off integers on either side of zero."""
    from pycocotools import mask as mask_utils
    from ultralytics.data.utils import polygon2mask

    from mvtec2coco.verify import OutputMask, mask_facts, polygon_output_mask

    rng = np.random.default_rng(3)
    h, w = 50, 64
    drawn = outside = 0
    for k in range(600):
        points = rng.uniform(-15, 80, size=(int(rng.integers(3, 9)), 2))
        if k % 4 == 0:
            points = points[:, :1].repeat(2, 1) * 0 + rng.uniform(-5, 70)  # collapsed to one point
        if k % 5 == 1:  # near integers, where truncation toward zero and the window's shift meet
            points = np.round(points) + rng.choice([-1e-9, 1e-9, -0.5, 0.0], size=points.shape)
        if k % 7 == 2:  # small polygons hugging an edge or a corner
            points = rng.uniform(-2, 3, size=(int(rng.integers(3, 6)), 2)) + rng.choice([0, w - 1, h - 1], size=2)
        mask = polygon2mask((h, w), [points])
        whole = OutputMask.of(mask)
        window = polygon_output_mask(points, h, w)
        assert (window.box, window.area) == (whole.box, whole.area), k
        assert window.window.shape == whole.window.shape and np.array_equal(window.window, whole.window), k
        drawn, outside = drawn + (whole.area > 0), outside + (whole.area == 0)
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        decoded = mask_utils.decode(rle)
        x, y, bw, bh = (int(v) for v in mask_utils.toBbox(rle))
        assert ((x, y, bw, bh), int(mask_utils.area(rle))) == mask_facts(decoded), k
    assert drawn > 300 and outside > 20  # both kinds were really tried


def test_keyhole_polygons_are_exact_under_pycocotools():
    """A region's holes joined to its outline by zero-width bridges: pycocotools fills the one
    polygon back to exactly the region's pixels (the COCO ``polygon`` mode relies on it)."""

    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(300):
        mask = np.zeros((40, 40), np.uint8)
        cv2.circle(mask, (int(rng.integers(10, 30)), int(rng.integers(10, 30))), int(rng.integers(5, 12)), 1, -1)
        for _ in range(int(rng.integers(1, 4))):
            y, x = (int(v) for v in rng.integers(5, 35, 2))
            mask[y : y + int(rng.integers(1, 4)), x : x + int(rng.integers(1, 4))] = 0
        mask[rng.random((40, 40)) < 0.02] ^= 1
        for inst in instances(mask):
            if inst.holes:
                assert np.array_equal(polygon_to_mask(inst.coco_polygons(keyholes=True), 40, 40), decode_rle(inst.rle))
                checked += 1
    assert checked > 200


def fill_truncated(polygon: np.ndarray, h: int, w: int) -> np.ndarray:
    """supervision's and ultralytics' rasteriser: points truncated to int, then ``cv2.fillPoly``."""
    return cv2.fillPoly(np.zeros((h, w), np.uint8), [polygon.astype(np.int32)], 1)


def fill_pil(polygon: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    image = Image.new("L", (w, h))
    ImageDraw.Draw(image).polygon([tuple(p) for p in polygon.tolist()], fill=1)
    return np.asarray(image)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masks_strategy)
def test_property_coco_polygons_exact_under_common_rasterisers(spec):
    """The top-left rule: the written COCO polygon of every region without holes is exact under
    pycocotools, under fillPoly on truncated points and under PIL; with keyholes pycocotools
    stays exact and fillPoly clips at most a hole pixel or two where a bridge crosses a corner
    (``tests/interop`` adds scikit-image, ``tools/measure_rasterisers.py`` measures them all)."""
    m = random_mask(spec)
    h, w = m.shape
    for inst in instances(m):
        exact = decode_rle(inst.rle)
        (flat,) = inst.coco_polygons(keyholes=True)
        polygon = np.reshape(flat, (-1, 2))
        assert np.array_equal(polygon_to_mask([flat], h, w), exact)
        if inst.has_holes:  # PIL's scanline fill loses runs along some bridges: measured, not exact
            got = fill_truncated(polygon, h, w)
            assert np.all(got >= exact) and int((got > exact).sum()) <= 2 * len(inst.holes)
            continue
        for fill in (fill_truncated, fill_pil):
            assert np.array_equal(fill(polygon, h, w), exact), fill.__name__


def test_pinch_keeps_diagonal_pixels_apart_under_truncation():
    """Two pixels touching at a corner: the pulled-in right/bottom edges meet the other pixel's
    unmoved edges in a zero-width bridge, so no background pixel at the pinch is filled."""
    m = np.zeros((4, 4), np.uint8)
    m[1, 2] = m[2, 1] = 1
    (inst,) = instances(m)
    polygon = np.reshape(inst.coco_polygons()[0], (-1, 2))
    assert np.array_equal(fill_truncated(polygon, 4, 4), m)
    assert np.array_equal(fill_pil(polygon, 4, 4), m)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masks_strategy)
def test_property_yolo_polygons_exact_truncated_and_rounded(spec):
    """YOLO-seg text is filled by fillPoly on truncated points (ultralytics) or on rounded ones
    (supervision): after the 6-decimal normalised text, both give back every region without holes."""
    m = random_mask(spec)
    h, w = m.shape
    for inst in instances(m):
        if inst.has_holes:
            continue
        exact = decode_rle(inst.rle)
        points = np.round(inst.yolo_polygon() / [w, h], 6) * [w, h]
        assert np.array_equal(fill_truncated(points, h, w), exact)
        rounded = cv2.fillPoly(np.zeros((h, w), np.uint8), [np.round(points).astype(np.int32)], 1)
        assert np.array_equal(rounded, exact)


def test_rle_window_is_pycocotools_decode_inside_any_box():
    """The runs of a box's columns give exactly pycocotools' decoded pixels there, for random
    masks, single pixels, masks touching every border and boxes anywhere; counts that
    pycocotools would not write back the same way are refused (then pycocotools decodes)."""
    from pycocotools import mask as mask_utils

    from mvtec2coco.geometry.rle_window import rle_counts, rle_window

    rng = np.random.default_rng(11)
    for k in range(300):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        mask = (rng.random((h, w)) < rng.uniform(0, 1)).astype(np.uint8)
        if k % 3 == 0:
            mask[:] = 0
            mask[rng.integers(0, h), rng.integers(0, w)] = 1
        if k % 7 == 0:
            mask[:] = 1
        rle = mask_utils.encode(np.asfortranarray(mask))
        counts = rle_counts(rle)
        assert counts is not None and counts.sum() == h * w, k
        decoded = mask_utils.decode(rle)
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        for x, y, bw, bh in [tuple(int(v) for v in mask_utils.toBbox(rle)),
                             (x0, y0, int(rng.integers(0, w - x0 + 1)), int(rng.integers(0, h - y0 + 1))), (0, 0, w, h)]:
            assert np.array_equal(rle_window(counts, h, (x, y, bw, bh)), decoded[y : y + bh, x : x + bw]), k
    good = mask_utils.encode(np.asfortranarray(np.eye(9, dtype=np.uint8)))
    assert rle_counts({"size": [9, 9], "counts": good["counts"].decode()}) is not None  # str counts, as JSON holds
    for bad in (b"", b"0", good["counts"] + b"1", good["counts"][:-1] + b"\x7f", good["counts"][:-1] + b"o"):
        assert rle_counts({"size": [9, 9], "counts": bad}) is None, bad


def test_top_left_rule_moves_right_and_bottom_edges_and_refuses_slanted_rings():
    """One pixel at column 2, row 1: the rule keeps its left and top edges (COCO) or moves them
    ``lead`` px in, and moves its right and bottom edges ``pull`` px in; a simplified outline
    (slanted edges) has no right or bottom edge, so the rule refuses it."""
    from mvtec2coco.geometry.masks import COCO_PULL, top_left_rings

    m = np.zeros((4, 5), np.uint8)
    m[1, 2] = 1
    (inst,) = instances(m)
    (coco,) = top_left_rings([inst.outer], COCO_PULL, np.zeros(1, np.int64))
    assert sorted(map(tuple, coco.tolist())) == [(2, 1), (2, 1.75), (2.75, 1), (2.75, 1.75)]
    (yolo,) = top_left_rings([inst.outer], 0.5, np.zeros(1, np.int64), lead=0.125)
    assert sorted(map(tuple, yolo.tolist())) == [(2.125, 1.125), (2.125, 1.5), (2.5, 1.125), (2.5, 1.5)]
    with pytest.raises(ValueError, match="exact outlines"):
        top_left_rings([np.array([[0.0, 0.0], [2.0, 1.0], [0.0, 2.0]])], COCO_PULL, np.zeros(1, np.int64))
