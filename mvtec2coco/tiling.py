"""``convert --tile SIZE``: every image cut into tiles at full resolution, instances from the cut masks.

A 1024 px image shrunk to 640 px for training loses its small defects; tiles of SIZE px at full
resolution keep them. Each tile's instances come from the tile of the mask by the same geometry
as whole images (``masks.instances_of_masks``: holes kept, one instance per region), so they are
exact by construction; an instance whose region the tile's border cuts is marked (``truncated``)
and counted, and ``min_visible`` drops slivers below that fraction of their region, counted too.

Two passes of forked workers. The first decodes each mask once and computes every tile's label
texts and COCO annotation text. The main process keeps every tile that holds a written instance,
samples the tiles without defect pixels (``empty``: as many as the defect tiles of the subset by
default, seeded), and skips, counting them, tiles whose only defect pixels were dropped. The
second pass decodes each image once and writes its kept tiles (PNG, lossless whatever the
source format) and their label files. The split is made per source image before tiling, so no
image has tiles in two subsets; ``meta/tiles.csv`` maps every tile back to its image.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from .datasets.imageio import load_mask, opencv_single_threaded, read_header
from .errors import BrokenFileError, OptionError
from .formats import coco, yolo
from .formats.yolo import polygon_texts
from .geometry.masks import Instance, instances_of_masks, yolo_polygons
from .geometry.tiles import cut, first_pixels, tile_grid
from .runtime.allocator import keep_freed_memory
from .runtime.parallel import fork_map

EMPTY_MODES = ("match", "all", "none")  # or a number of empty tiles per subset
MIN_TILE, MAX_TILE = 32, 8192  # px; a larger tile of a smaller image is padded: 8192 px is 200 MB a tile
TILES_MANIFEST = Path("meta", "tiles.csv")
TILES_COLUMNS = ("tile", "sample_id", "subset", "x", "y", "w", "h", "file_name")
PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1]


@dataclass(frozen=True)
class TileOptions:
    """``--tile``, ``--overlap``, ``--tile-empty``, ``--min-visible``; recorded in ``report.json``."""

    size: int
    overlap: float = 0.0
    empty: str = "match"
    min_visible: float = 0.0
    imgsz: int = 640  # the training size the report counts small instances at
    seed: int = 0  # of the empty-tile sample (convert's --seed)

    def check(self) -> None:
        if not MIN_TILE <= self.size <= MAX_TILE:
            raise OptionError(f"--tile {self.size} is not between {MIN_TILE} and {MAX_TILE} px")
        if not 0.0 <= self.overlap < 1.0:
            raise OptionError(f"--overlap {self.overlap} is not in [0, 1)")
        if self.imgsz < 1:
            raise OptionError(f"--imgsz {self.imgsz} must be at least 1")
        if not 0.0 <= self.min_visible <= 1.0:
            raise OptionError(f"--min-visible {self.min_visible} is not in [0, 1]")
        if self.empty not in EMPTY_MODES and not (self.empty.isascii() and self.empty.isdigit()):
            raise OptionError(f"--tile-empty '{self.empty}' is not a count nor one of {', '.join(EMPTY_MODES)}")


class TilePlan(NamedTuple):
    """One tile's geometry, as the first pass computes it."""

    x: int
    y: int
    defect_pixels: bool
    boxes: tuple[str, ...]  # YOLO box rows
    polygons: tuple[str, ...]  # YOLO-seg rows
    coco: tuple[str, ...]  # annotation texts from "segmentation" on
    areas: tuple[int, ...]
    holes: int  # instances with holes
    truncated: int
    below_visible: int  # dropped: less than min_visible of their region is in the tile
    below_area: int  # dropped: fewer pixels in the tile than min_area


SMALL_PX = 4  # an instance whose box's shorter side is below this at training size is nearly lost


class ImagePlan(NamedTuple):
    """All tiles of one image, and how many of its regions (of at least ``min_area`` px) are
    small at training size: their box's shorter side below ``SMALL_PX`` once the whole image is
    resized to ``imgsz``, and once each tile is (the region's best piece; a region no tile holds
    counts as small)."""

    tiles: list[TilePlan]
    small_untiled: int
    small_tiled: int


class TileJob(NamedTuple):
    image: str
    masks: tuple[str, ...]
    width: int
    height: int
    class_id: int | None
    stem: str  # the image's output name without suffix: tiles are <stem>__x<X>_y<Y>.png


def tile_name(stem: str, x: int, y: int) -> str:
    return f"{stem}__x{x}_y{y}.png"


class TileRegions(NamedTuple):
    """The instances of one tile of a mask, after ``min_area`` and ``min_visible``."""

    kept: list[Instance]
    truncated: list[bool]  # per kept instance: the tile's border cuts its region
    sources: list[int]  # per kept instance: its region's label in the whole mask (8-connected, from 1)
    below_area: int
    below_visible: int
    defect_pixels: bool


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mask's 8-connected regions: a label image (0 background) and per label its
    ``cv2.connectedComponentsWithStats`` row (x, y, w, h, area)."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    return labels, stats


def tile_regions(mask: np.ndarray, origins: list[tuple[int, int]], size: int, min_area: int,
                 min_visible: float, regions_of_mask: tuple[np.ndarray, np.ndarray] | None = None) -> list[TileRegions]:
    """Every tile's instances, by the same geometry as whole images; ``verify`` recomputes them
    from the source mask with this function too. ``regions_of_mask``: ``label_regions(mask)``
    when the caller has it already."""
    labels, stats = regions_of_mask if regions_of_mask is not None else label_regions(mask)
    region_areas = stats[:, cv2.CC_STAT_AREA]
    found = instances_of_masks(cut(mask, x, y, size) for x, y in origins)
    tiles = []
    for (x, y), regions in zip(origins, found):
        if not regions:
            tiles.append(TileRegions([], [], [], 0, 0, False))
            continue
        firsts = first_pixels([r.outer for r in regions])
        owners = cut(labels, x, y, size)[firsts[:, 0], firsts[:, 1]]
        whole = region_areas[owners]  # each piece's whole region
        small = [r.area < min_area for r in regions]
        sliver = [not s and r.area < min_visible * a for r, a, s in zip(regions, whole, small)]
        keep = [not (s or v) for s, v in zip(small, sliver)]
        tiles.append(TileRegions([r for r, k in zip(regions, keep) if k],
                                 [bool(r.area < a) for r, a, k in zip(regions, whole, keep) if k],
                                 [int(o) for o, k in zip(owners, keep) if k], int(sum(small)), int(sum(sliver)), True))
    return tiles


def plan_image(options: TileOptions, formats: set[str], coco_masks: str, min_area: int, job: TileJob) -> ImagePlan:
    """Every tile of one image with its instances (first pass, worker side)."""
    width, height = (job.width, job.height) if job.width else _size(job.image)
    origins = tile_grid(width, height, options.size, options.overlap)
    if job.class_id is None or not job.masks:
        return ImagePlan([TilePlan(x, y, False, (), (), (), (), 0, 0, 0, 0) for x, y in origins], 0, 0)
    mask = load_mask(job.masks, height, width, zero_one=False)
    regions_of_mask = label_regions(mask)
    stats = regions_of_mask[1]
    scale = options.imgsz / max(width, height)
    boxes_of_regions = stats[1:, [cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT, cv2.CC_STAT_AREA]].tolist()
    small_untiled = sum(1 for w, h, a in boxes_of_regions if a >= min_area and min(w, h) * scale < SMALL_PX)
    best = np.zeros(len(boxes_of_regions) + 1)  # per region label: its largest shorter side over the tiles, in px
    size = options.size
    plans = []
    for (x, y), tile in zip(origins, tile_regions(mask, origins, size, min_area, options.min_visible, regions_of_mask)):
        keep, cut_flags = tile.kept, tile.truncated
        for r, owner in zip(keep, tile.sources):
            best[owner] = max(best[owner], min(r.bbox[2], r.bbox[3]))
        if not tile.defect_pixels:
            plans.append(TilePlan(x, y, False, (), (), (), (), 0, 0, 0, 0))
            continue
        boxes = tuple(yolo.box_line(job.class_id, r.bbox, size, size) for r in keep) if "yolo" in formats else ()
        polygons = tuple(f"{job.class_id} {t}" for t in polygon_texts(yolo_polygons(keep), [(size, size)] * len(keep))) \
            if "yolo-seg" in formats and keep else ()
        tails = tuple(coco.instance_tails(keep, coco_masks, cut_flags)) if "coco" in formats else ()
        plans.append(TilePlan(x, y, True, boxes, polygons, tails, tuple(r.area for r in keep),
                              sum(1 for r in keep if r.hole_pixels), sum(cut_flags), tile.below_visible, tile.below_area))
    small_tiled = sum(1 for (w, h, a), side in zip(boxes_of_regions, best[1:].tolist())
                      if a >= min_area and side * options.imgsz / size < SMALL_PX)
    return ImagePlan(plans, small_untiled, small_tiled)


def _size(image: str) -> tuple[int, int]:
    header = read_header(Path(image))
    return header.width, header.height


def choose_tiles(plans: list[list[TilePlan]], subsets: list[str], options: TileOptions) -> tuple[list[list[int]], dict]:
    """Indices of the tiles to write per image, and the counts the report gives.

    Tiles holding a written instance are all kept. Tiles without defect pixels are sampled per
    subset (seeded); tiles whose defect pixels were all dropped (``--min-visible``, ``--min-area``)
    are never written: they would show defects without labels."""
    kept: list[list[int]] = [[] for _ in plans]
    empty: dict[str, list[tuple[int, int]]] = defaultdict(list)
    defect_tiles: Counter = Counter()
    unlabelled = 0
    for i, (tiles, subset) in enumerate(zip(plans, subsets)):
        for k, tile in enumerate(tiles):
            if tile.areas:
                kept[i].append(k)
                defect_tiles[subset] += 1
            elif tile.defect_pixels:
                unlabelled += 1
            else:
                empty[subset].append((i, k))
    written_empty: Counter = Counter()
    rng = np.random.default_rng(options.seed)
    for subset in sorted(empty):
        pool = empty[subset]
        n = {"all": len(pool), "none": 0, "match": defect_tiles[subset]}.get(options.empty)
        n = min(len(pool), int(options.empty) if n is None else n)
        picks = sorted(rng.choice(len(pool), size=n, replace=False).tolist()) if n else []
        for p in picks:
            i, k = pool[p]
            kept[i].append(k)
        written_empty[subset] = n
    for tiles in kept:
        tiles.sort()
    counts = {"tiles_total": sum(len(t) for t in plans),
              "tiles_with_instances": dict(sorted(defect_tiles.items())),
              "empty_tiles_available": {s: len(p) for s, p in sorted(empty.items())},
              "empty_tiles_written": dict(sorted(written_empty.items())),
              "tiles_skipped_defects_dropped": unlabelled}
    return kept, counts


class WriteJob(NamedTuple):
    image: str
    tiles: tuple[tuple[int, int, str, tuple[str, ...], tuple[str, ...]], ...]  # x, y, name, boxes, polygons
    subset: str


def write_image_tiles(roots: tuple[tuple[str, str], ...], size: int, job: WriteJob) -> int:
    """Decode the image once, write its kept tiles in the first format's folder, hardlink them into
    the others, and write their label files (second pass, worker side)."""
    image = cv2.imread(job.image, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise BrokenFileError("image cannot be decoded", job.image)
    for x, y, name, boxes, polygons in job.tiles:
        first = None
        for fmt, root in roots:
            path = f"{root}/images/{job.subset}/{name}"
            if first is None:
                ok, png = cv2.imencode(".png", cut(image, x, y, size), PNG_FAST)
                if not ok:
                    raise BrokenFileError("a tile of this image cannot be encoded as PNG", job.image)
                with open(path, "wb") as fh:  # Python's I/O: a full disk is an OSError with its errno
                    fh.write(png.tobytes())
                first = path
            else:
                os.link(first, path)
            if fmt != "coco":
                yolo.write_labels(f"{root}/labels/{job.subset}/{name[:-4]}.txt",
                                  list(boxes if fmt == "yolo" else polygons))
    return len(job.tiles)


def run_tiled(jobs: list[TileJob], subsets: list[str], roots: dict[str, Path], options: TileOptions,
              formats: tuple[str, ...], coco_masks: str, min_area: int, workers: int | None,
              progress: bool) -> tuple[list[list[TilePlan]], list[list[int]], dict]:
    """Both passes; returns every image's tile plans, the kept tile indices and the counts."""
    plan = partial(plan_image, options, set(formats), coco_masks, min_area)
    with opencv_single_threaded():
        image_plans = fork_map(plan, jobs, workers, "Cutting masks into tiles" if progress else None,
                               sizes=[1 + 8 * len(j.masks) for j in jobs], initializer=keep_freed_memory)
    plans = [p.tiles for p in image_plans]
    kept, counts = choose_tiles(plans, subsets, options)
    if not any(kept):
        raise OptionError("nothing to write: no tile holds an instance, and no empty tile was asked for",
                          hint="check --min-area and --min-visible, or pass --tile-empty all; nothing was written")
    counts["small_instances"] = {
        "imgsz": options.imgsz, "shorter_box_side_below_px": SMALL_PX,
        "whole_images": sum(p.small_untiled for p in image_plans),
        "tiles": sum(p.small_tiled for p in image_plans)}
    for root in roots.values():
        for subset in set(subsets):
            (root / "images" / subset).mkdir(parents=True, exist_ok=True)
    for fmt, root in roots.items():
        if fmt != "coco":
            for subset in set(subsets):
                (root / "labels" / subset).mkdir(parents=True, exist_ok=True)
    writes = [WriteJob(job.image, tuple((plans[i][k].x, plans[i][k].y, tile_name(job.stem, plans[i][k].x, plans[i][k].y),
                                         plans[i][k].boxes, plans[i][k].polygons) for k in kept[i]), subsets[i])
              for i, job in enumerate(jobs) if kept[i]]
    ordered = tuple((fmt, str(root)) for fmt, root in roots.items())
    with opencv_single_threaded():
        fork_map(partial(write_image_tiles, ordered, options.size), writes, workers,
                 "Writing tiles" if progress else None, sizes=[len(w.tiles) for w in writes],
                 initializer=keep_freed_memory)
    return plans, kept, counts


def tiles_manifest(sample_ids: list[str], jobs: list[TileJob], subsets: list[str], plans: list[list[TilePlan]],
                   kept: list[list[int]], size: int) -> str:
    """``meta/tiles.csv``: every written tile, its source sample, subset and place in the image."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TILES_COLUMNS)
    for sample_id, job, subset, tiles, keep in zip(sample_ids, jobs, subsets, plans, kept):
        for k in keep:
            t = tiles[k]
            name = tile_name(job.stem, t.x, t.y)
            writer.writerow([name[:-4], sample_id, subset, t.x, t.y, size, size, name])
    return buffer.getvalue()


def read_tiles_manifest(folder: Path) -> list[dict]:
    """The rows of an output's ``meta/tiles.csv`` (empty when the output is not tiled)."""
    path = Path(folder) / TILES_MANIFEST
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def tile_options_dict(options: TileOptions) -> dict:
    return {k: v for k, v in asdict(options).items() if k != "seed"}
