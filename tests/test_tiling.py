"""``convert --tile``: tile grids, tile instances against their source regions, tiled outputs verified."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mvtec2coco.convert import ConvertOptions, convert
from mvtec2coco.datasets import load_dataset
from mvtec2coco.formats import FORMATS
from mvtec2coco.geometry.masks import decode_rle
from mvtec2coco.geometry.tiles import cut, tile_grid, tile_starts
from mvtec2coco.tiling import TileOptions, tile_regions
from mvtec2coco.verify import verify

from .geometry.test_masks import random_mask


@given(st.integers(1, 300), st.integers(1, 80), st.floats(0, 0.9))
def test_tiles_cover_the_axis_and_end_on_its_edge(length, size, overlap):
    starts = tile_starts(length, size, overlap)
    assert starts[0] == 0 and starts == sorted(set(starts))
    if length <= size:
        assert starts == [0]
    else:
        assert starts[-1] + size == length  # the last tile shifted inwards, never padded
        assert all(b - a <= size for a, b in zip(starts, starts[1:]))  # no gap between tiles


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(st.integers(1, 40), st.integers(1, 40), st.floats(0.05, 0.8), st.integers(0, 2**32 - 1)),
       st.integers(3, 24), st.sampled_from([0.0, 0.25, 0.5]))
def test_property_tile_pieces_give_back_each_region(spec, size, overlap):
    """Each source region is exactly the union of its pieces over all tiles, shifted back; each
    piece lies inside its region and is marked truncated exactly when it is smaller; in every
    tile the pieces' areas add up to the tile's defect pixels."""
    mask = random_mask(spec)
    h, w = mask.shape
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    origins = tile_grid(w, h, size, overlap)
    union = {k: np.zeros((h, w), bool) for k in range(1, count)}
    for (x, y), tile in zip(origins, tile_regions(mask, origins, size, 0, 0.0)):
        for inst, owner, truncated in zip(tile.kept, tile.sources, tile.truncated):
            piece = np.zeros((h + size, w + size), bool)
            piece[y : y + size, x : x + size] = decode_rle(inst.rle) > 0
            piece = piece[:h, :w]
            region = labels == owner
            assert inst.area == piece.sum() and not (piece & ~region).any()
            assert truncated == (inst.area < region.sum())
            union[owner] |= piece
        assert sum(i.area for i in tile.kept) == int((cut(mask, x, y, size) > 0).sum())
        assert tile.defect_pixels == bool(cut(mask, x, y, size).any())
    for k, got in union.items():
        assert np.array_equal(got, labels == k)


def test_min_visible_drops_slivers_and_counts_them():
    mask = np.zeros((20, 20), np.uint8)
    mask[2:12, 7:10] = 1  # 30 px; tiles of 10 split it 24 / 6 at row 10
    origins = tile_grid(20, 20, 10, 0.0)
    tiles = tile_regions(mask, origins, 10, 0, 0.25)
    by_origin = dict(zip(origins, tiles))
    assert [i.area for i in by_origin[(0, 0)].kept] == [24] and by_origin[(0, 0)].truncated == [True]
    assert by_origin[(0, 10)].kept == [] and by_origin[(0, 10)].below_visible == 1


@pytest.fixture(scope="module")
def tiled(tiny_mvtec, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiled") / "out"
    report = convert(load_dataset(tiny_mvtec), out, ConvertOptions(formats=FORMATS), tiles=TileOptions(40, 0.25))
    return out, report


def test_tiled_output_verifies_and_maps_back(tiled, tiny_mvtec):
    out, report = tiled
    assert verify(out)["passed"]
    with open(out / "coco" / "meta" / "tiles.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(out / "coco" / "meta" / "split.csv", newline="") as fh:
        subset_of = {r["sample_id"]: r["subset"] for r in csv.DictReader(fh)}
    assert rows and all(r["subset"] == subset_of[r["sample_id"]] for r in rows)  # split per image, before tiling
    on_disk = sorted(p.name for p in (out / "coco" / "images").rglob("*.png"))
    assert sorted(r["file_name"] for r in rows) == on_disk
    data = json.loads((out / "coco" / "annotations" / "instances_test.json").read_text())
    image = next(i for i in data["images"] if any(a["image_id"] == i["id"] for a in data["annotations"]))
    x, y, w, h = image["tile"]
    source = cv2.imread(str(tiny_mvtec / image["source_file"]), cv2.IMREAD_UNCHANGED)
    tile = cv2.imread(str(out / "coco" / "images" / "test" / image["file_name"]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(tile, cut(source, x, y, w))
    assert all("truncated" in a for a in data["annotations"])
    t = report["tiling"]
    for subset, n in t["tiles_with_instances"].items():  # --tile-empty match
        assert t["empty_tiles_written"][subset] == min(n, t["empty_tiles_available"][subset])


def test_tiled_outputs_are_deterministic(tiled, tiny_mvtec, tmp_path):
    from .helpers import tree_digest

    out, _ = tiled
    again = tmp_path / "again"
    convert(load_dataset(tiny_mvtec), again, ConvertOptions(formats=FORMATS), tiles=TileOptions(40, 0.25))
    strip = lambda d: {k: v for k, v in d.items() if not k.endswith(("report.json", "verify.json"))}  # noqa: E731
    assert strip(tree_digest(again)) == strip(tree_digest(out))


@pytest.mark.parametrize("mode,expected", [("none", lambda t: 0), ("all", lambda t: t["empty_tiles_available"]),
                                           ("3", lambda t: 3)])
def test_empty_tile_modes(tiny_mvtec, tmp_path, mode, expected):
    report = convert(load_dataset(tiny_mvtec), tmp_path / "o", ConvertOptions(formats=("yolo",)),
                     tiles=TileOptions(40, 0.25, mode))
    t = report["tiling"]
    for subset, available in t["empty_tiles_available"].items():
        want = expected(t)
        assert t["empty_tiles_written"][subset] == (want[subset] if isinstance(want, dict) else min(want, available))


def test_verify_catches_a_missing_and_a_changed_tile(tiled, tmp_path):
    import shutil

    out, _ = tiled
    broken = tmp_path / "broken"
    shutil.copytree(out / "coco", broken)
    data = json.loads((broken / "annotations" / "instances_test.json").read_text())
    with_defect = {a["image_id"] for a in data["annotations"]}
    victim = next(i for i in data["images"] if i["id"] in with_defect)
    manifest = broken / "meta" / "tiles.csv"
    manifest.write_text("".join(line for line in manifest.read_text().splitlines(keepends=True)
                                if victim["file_name"] not in line))
    other = next(i for i in data["images"] if i["id"] not in with_defect)
    path = broken / "images" / "test" / other["file_name"]
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    pixels[0, 0] = pixels[0, 0] + 1
    path.unlink()  # a hardlink of the other formats' tile: write a new file
    cv2.imwrite(str(path), pixels)
    result = verify(broken)
    assert not result["passed"]
    problems = " ".join(result["formats"]["coco"]["problems"])
    assert f"{victim['file_name']}: tile with" in problems and "is not in the output" in problems
    assert f"{other['file_name']}: tile differs from the source image" in problems


@pytest.mark.slow
def test_bottle_tiles_verify_count_small_regions_and_train(tmp_path):
    """The bottle preset at 900 px in tiles of 320 px (overlap 0.2): verify passes, the report's
    counts of regions below 4 px at 640 px equal a direct computation from the masks, and
    ultralytics trains one epoch on the tiles."""
    from mvtec2coco.synth import generate

    data = generate(tmp_path / "bottle", "bottle")
    out = tmp_path / "out"
    report = convert(load_dataset(data), out, ConvertOptions(formats=("yolo-seg", "coco")), tiles=TileOptions(320, 0.2))
    assert verify(out)["passed"]
    whole = tiles = 0
    for sample in load_dataset(data).samples:
        if sample.is_good or not sample.masks:
            continue
        mask = np.zeros((sample.height, sample.width), np.uint8)
        for path in sample.masks:
            mask |= (cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        origins = tile_grid(sample.width, sample.height, 320, 0.2)
        for k in range(1, count):
            whole += min(stats[k, 2], stats[k, 3]) * 640 / max(sample.width, sample.height) < 4
            best = 0
            for x, y in origins:  # the region's largest piece in any tile, at 640 / 320
                piece = cut((labels == k).astype(np.uint8), x, y, 320)
                n, _, s, _ = cv2.connectedComponentsWithStats(piece, connectivity=8)
                best = max([best, *(min(s[j, 2], s[j, 3]) for j in range(1, n))])
            tiles += best * 640 / 320 < 4
    small = report["tiling"]["small_instances"]
    assert (small["whole_images"], small["tiles"]) == (whole, tiles)
    assert tiles < whole
    pytest.importorskip("ultralytics")
    from ultralytics import YOLO

    YOLO("yolov8n-seg.yaml").train(data=str(out / "yolo-seg" / "data.yaml"), epochs=1, imgsz=64, batch=16, device="cpu",
                                   amp=False, workers=0, plots=False, project=str(tmp_path), name="run", exist_ok=True,
                                   verbose=False, val=True, fraction=0.25)  # one CPU epoch on a quarter of the tiles
    assert len((tmp_path / "run" / "results.csv").read_text().splitlines()) == 2


def test_verify_reads_tile_metadata_as_findings(tiled, tmp_path):
    """Tiles.csv rows that lie (twice, wrong subset, size or name, not numbers), COCO tile records
    and truncated flags that were changed: each is a finding, never a crash or a pass."""
    import shutil

    out, _ = tiled
    broken = tmp_path / "b"
    shutil.copytree(out / "coco", broken)
    manifest = broken / "meta" / "tiles.csv"
    lines = manifest.read_text().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    first = rows[0].split(",")
    twice = rows[0]
    bad_size = ",".join([*first[:5], "99", first[6], *first[7:]])
    bad_number = ",".join([*first[:3], "abc", *first[4:]])
    manifest.write_text(header + "".join(rows) + twice + bad_size + bad_number)
    path = broken / "annotations" / "instances_test.json"
    data = json.loads(path.read_text())
    data["images"][0]["tile"] = [1, 2, 3, 4]
    flipped = next(a for a in data["annotations"] if "truncated" in a)
    flipped["truncated"] = not flipped["truncated"]
    path.write_text(json.dumps(data))
    result = verify(broken)
    assert not result["passed"]
    problems = " ".join(result["formats"]["coco"]["problems"])
    for text in ("listed twice", "is not 40x40", "are not integers", "COCO tile [1, 2, 3, 4]", "says truncated"):
        assert text in problems, text
    manifest.unlink()
    result = verify(broken)
    assert not result["passed"] and "tiles.csv is missing" in " ".join(result["formats"]["coco"]["problems"])


def test_nothing_to_tile_is_refused_and_tiles_do_not_import(tiny_mvtec, tiled, tmp_path):
    from mvtec2coco.errors import OptionError
    from mvtec2coco.import_labels import import_labels

    with pytest.raises(OptionError, match="nothing to write"):
        convert(load_dataset(tiny_mvtec), tmp_path / "o", ConvertOptions(formats=("coco",), min_area=100000),
                tiles=TileOptions(40, 0.25, "none"))
    assert not (tmp_path / "o").exists()
    out, _ = tiled
    for source in (out / "coco", out / "yolo-seg"):
        with pytest.raises(OptionError, match="tiles of `convert --tile`"):
            import_labels([source], tmp_path / "imported")
