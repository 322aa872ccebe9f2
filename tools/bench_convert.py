#!/usr/bin/env python3
"""Measure `convert --format all --images link` against the floor no converter can avoid.

The floor, with the same number of worker processes keeping the memory they free (``allocator``):
list the dataset (os.walk), decode every mask PNG (OpenCV), read every image header, and create
as many files and hardlinks as the conversion writes (empty label files, links): (a) in three
flat folders, (a') at the paths the conversion uses, so that its folders are made too, (a'') as
(a) with the masks decoded as convert decodes them (``imageio.read_mask_raw``: libspng for 8-bit
grey PNGs in two thirds of OpenCV's time, checks included), the floor for a converter with that
decoder. The floors and the conversion are timed in this one run on `synth --preset mvtec-full`
(5,354 images, 1,258 masks), alternating, after an untimed warm-up; the best of --repeat runs is reported with
the ratios, the median of each run's own ratio (robust to the machine's drifts between runs), and
CPU seconds (this process and its workers) per run.

With --tile SIZE each run also times (c) `convert --format all --tile SIZE --overlap 0.2` and
prints its ratio to (b), the untiled conversion of the same data, and to (c') the floor of
tiling: decode every image that has a written tile, cut those tiles and write each once as PNG
(the same tiles as (c), read from its meta/tiles.csv), with the same workers.

Usage: python tools/bench_convert.py [--data DIR] [--workers N] [--repeat 3] [--preset mvtec-full] [--work DIR]
                                     [--tile SIZE]
--work copies the dataset to DIR once (e.g. /dev/shm/m2c, RAM-backed: about 5.3 GB) and times there, which
removes this machine's disk noise (its speed swings 2-3x between runs) and leaves CPU and file-system work.
Old outputs are moved aside and deleted only after all timing (see ../shared/BENCHMARKING.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2

from mvtec2coco.convert import ConvertOptions, convert, parse_formats
from mvtec2coco.datasets import load_dataset
from mvtec2coco.datasets.imageio import read_header, read_mask_raw
from mvtec2coco.formats.placement import output_name
from mvtec2coco.geometry.tiles import cut
from mvtec2coco.runtime.allocator import keep_freed_memory
from mvtec2coco.runtime.parallel import default_workers, fork_map
from mvtec2coco.split import make_split
from mvtec2coco.synth import generate
from mvtec2coco.tiling import TileOptions

_MADE: set[str] = set()


def _opencv_decode(mask: str) -> object:
    return cv2.imread(mask, cv2.IMREAD_UNCHANGED)  # faster here than imdecode(np.fromfile(...))


def _floor_one(args: tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]],
               decode: Callable[[str], object] = _opencv_decode) -> int:
    """Read the header, decode the masks, create the links and the empty label files."""
    image, masks, links, labels = args
    read_header(Path(image))
    for mask in masks:
        decode(mask)
    for path in (*links, *labels):
        folder = os.path.dirname(path)
        if folder not in _MADE:  # only the layout floor has more than the three top folders
            os.makedirs(folder, exist_ok=True)
            _MADE.add(folder)
    for path in links:
        os.link(image, path)
    for path in labels:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))  # Path.touch tries os.utime first
    return 1


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _flat_jobs(dataset, out: Path) -> list[tuple]:
    """Every image's files in three flat folders: no layout at all."""
    return [(str(s.image), tuple(map(str, s.masks)), tuple(f"{out}/{fmt}/{i}.png" for fmt in ("yolo", "yolo-seg", "coco")),
             tuple(f"{out}/{fmt}/{i}.txt" for fmt in ("yolo", "yolo-seg"))) for i, s in enumerate(dataset.samples)]


def _layout_jobs(dataset, out: Path) -> list[tuple]:
    """The same files at the paths `convert --format all` uses (images/ and labels/ per subset,
    under the default flat names), so their folders are created too, on demand, by the workers."""
    split = make_split(list(dataset.samples), ConvertOptions().split, 0)
    jobs = []
    for s in dataset.samples:
        subset, name = split.subsets[s.id], output_name(s.relpath)
        stem = os.path.splitext(name)[0]
        jobs.append((str(s.image), tuple(map(str, s.masks)),
                     tuple(f"{out}/{fmt}/images/{subset}/{name}" for fmt in ("yolo", "yolo-seg", "coco")),
                     tuple(f"{out}/{fmt}/labels/{subset}/{stem}.txt" for fmt in ("yolo", "yolo-seg"))))
    return jobs


def floor(dataset, out: Path, workers: int, layout: bool = False,
          decode: Callable[[str], object] = _opencv_decode) -> tuple[float, float]:
    """(wall, cpu) seconds of the floor; ``layout`` puts the files where the conversion puts them,
    ``decode`` decodes each mask."""
    jobs = (_layout_jobs if layout else _flat_jobs)(dataset, out)
    start, cpu = time.perf_counter(), _cpu()
    sum(len(files) for _, _, files in os.walk(dataset.root))  # list the dataset
    for fmt in ("yolo", "yolo-seg", "coco"):
        (out / fmt).mkdir(parents=True)
    sum(fork_map(partial(_floor_one, decode=decode), jobs, workers, initializer=keep_freed_memory))  # as convert spreads work
    return time.perf_counter() - start, _cpu() - cpu


def ours(root: Path, out: Path, workers: int) -> tuple[float, float]:
    start, cpu = time.perf_counter(), _cpu()
    dataset = load_dataset(root, sizes=False)  # the listing is part of the job; workers read the headers
    convert(dataset, out, ConvertOptions(formats=parse_formats("all"), images="link", workers=workers))
    return time.perf_counter() - start, _cpu() - cpu


def tiled(root: Path, out: Path, workers: int, size: int) -> tuple[float, float]:
    start, cpu = time.perf_counter(), _cpu()
    dataset = load_dataset(root, sizes=False)
    convert(dataset, out, ConvertOptions(formats=parse_formats("all"), images="link", workers=workers),
            tiles=TileOptions(size, 0.2))
    return time.perf_counter() - start, _cpu() - cpu


def _tile_floor_one(args: tuple[str, tuple[tuple[int, int, str], ...], int]) -> int:
    image_path, tiles, size = args
    image = cv2.imread(image_path, cv2.IMREAD_UNCHANGED)
    for x, y, out in tiles:
        cv2.imwrite(out, cut(image, x, y, size), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return len(tiles)


def tile_floor(dataset, tiled_out: Path, out: Path, workers: int, size: int) -> tuple[float, float, int, int]:
    """(wall, cpu, images decoded, tiles written) of decoding and cutting what (c) wrote."""
    import csv

    images = {s.id: str(s.image) for s in dataset.samples}
    with open(tiled_out / "coco" / "meta" / "tiles.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_image: dict[str, list[tuple[int, int, str]]] = {}
    out.mkdir(parents=True)
    for r in rows:
        by_image.setdefault(images[r["sample_id"]], []).append((int(r["x"]), int(r["y"]), f"{out}/{r['file_name']}"))
    jobs = [(image, tuple(tiles), size) for image, tiles in by_image.items()]
    start, cpu = time.perf_counter(), _cpu()
    sum(fork_map(_tile_floor_one, jobs, workers, initializer=keep_freed_memory))
    return time.perf_counter() - start, _cpu() - cpu, len(jobs), len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("bench_out/mvtec-full"))
    parser.add_argument("--preset", default="mvtec-full")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, help="copy the dataset here once and time there (e.g. /dev/shm/m2c)")
    parser.add_argument("--tile", type=int, help="also time convert --tile SIZE --overlap 0.2, as a ratio to (b)")
    args = parser.parse_args()
    if not (args.data / ".complete").is_file():
        print(f"generating {args.preset} into {args.data} (once) ...", flush=True)
        t = time.perf_counter()
        generate(args.data, args.preset, "mvtec", seed=0, overwrite=True)
        (args.data / ".complete").write_text("ok\n")
        print(f"  generated in {time.perf_counter() - t:.1f} s")
    if args.work:
        copy = args.work / args.data.name
        if not (copy / ".complete").is_file():
            print(f"copying the dataset to {copy} (once) ...", flush=True)
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(args.data, copy)
        args.data = copy
    work = args.data.parent / "bench_runs"
    trash = args.data.parent / "bench_trash"
    for old in (work, trash):
        if old.exists():
            old.rename(args.data.parent / f"{old.name}.old-{time.time_ns()}")
    work.mkdir(parents=True)
    dataset = load_dataset(args.data)
    n_masks = sum(len(s.masks) for s in dataset.samples)
    print(f"{len(dataset.samples)} images, {n_masks} masks, {args.workers} worker(s)")
    floor(dataset, work / "warm_floor", args.workers)  # warm the page cache, untimed
    ours(args.data, work / "warm_ours", args.workers)
    if args.tile:
        tiled(args.data, work / "warm_tiled", args.workers, args.tile)
    floors, trees, spngs, oursl, tiles, tile_floors = [], [], [], [], [], []
    for k in range(args.repeat):
        floors.append(floor(dataset, work / f"floor{k}", args.workers))
        trees.append(floor(dataset, work / f"tree{k}", args.workers, layout=True))
        spngs.append(floor(dataset, work / f"spng{k}", args.workers, decode=read_mask_raw))
        oursl.append(ours(args.data, work / f"ours{k}", args.workers))
        extra = ""
        if args.tile:
            tiles.append(tiled(args.data, work / f"tiled{k}", args.workers, args.tile))
            tile_floors.append(tile_floor(dataset, work / f"tiled{k}", work / f"tilefloor{k}", args.workers, args.tile))
            extra = (f", tiled {tiles[-1][0]:.2f} s (cpu {tiles[-1][1]:.2f} s), tiling floor {tile_floors[-1][0]:.2f} s "
                     f"(cpu {tile_floors[-1][1]:.2f} s)")
        print(f"  run {k + 1}: floor {floors[-1][0]:.2f} s (cpu {floors[-1][1]:.2f} s), floor in the layout "
              f"{trees[-1][0]:.2f} s, floor with convert's decoder {spngs[-1][0]:.2f} s (cpu {spngs[-1][1]:.2f} s), "
              f"convert {oursl[-1][0]:.2f} s (cpu {oursl[-1][1]:.2f} s){extra}", flush=True)
    best_floor, best_tree, best_spng, best_ours = (min(w for w, _ in runs) for runs in (floors, trees, spngs, oursl))
    n_folders = len({os.path.dirname(p) for job in _layout_jobs(dataset, work) for p in (*job[2], *job[3])})
    print(f"(a) floor: decode masks + read headers + create files/links: best {best_floor:.2f} s")
    print(f"(a') floor, files at the layout's paths ({n_folders} folders): best {best_tree:.2f} s")
    print(f"(a'') floor, masks decoded as convert decodes them:        best {best_spng:.2f} s")
    print(f"(b) convert --format all --images link:                    best {best_ours:.2f} s")
    print(f"ratio (b)/(a): {best_ours / best_floor:.2f} (goal <= 1.5); ratio (b)/(a'): {best_ours / best_tree:.2f}; "
          f"ratio (b)/(a''): {best_ours / best_spng:.2f}")
    paired = sorted(o / f for (o, _), (f, _) in zip(oursl, floors))  # each run's own ratio: robust to drifts
    own_decoder = sorted(o / f for (o, _), (f, _) in zip(oursl, spngs))
    print(f"median of the runs' own ratios (b)/(a): {paired[len(paired) // 2]:.2f}; "
          f"(b)/(a''): {own_decoder[len(own_decoder) // 2]:.2f}")
    if args.tile:
        best_tiled = min(w for w, _ in tiles)
        own = sorted(t / o for (t, _), (o, _) in zip(tiles, oursl))
        print(f"(c) convert --format all --tile {args.tile} --overlap 0.2:       best {best_tiled:.2f} s")
        print(f"ratio (c)/(b): {best_tiled / best_ours:.2f}; median of the runs' own ratios: {own[len(own) // 2]:.2f}")
        best_tile_floor = min(f[0] for f in tile_floors)
        _, _, decoded, written = tile_floors[0]
        print(f"(c') tiling floor: decode {decoded} images, write {written} tiles: best {best_tile_floor:.2f} s")
        own = sorted(t / f[0] for (t, _), f in zip(tiles, tile_floors))
        print(f"ratio (c)/(c'): {best_tiled / best_tile_floor:.2f}; median of the runs' own ratios: {own[len(own) // 2]:.2f}")
    for old in args.data.parent.glob("bench_*.old-*"):
        shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
