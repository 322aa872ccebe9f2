#!/usr/bin/env python3
"""Checking against converting: `verify`, `validate` and `summary` as ratios to `convert --format all`.

Whole processes (`python -m mvtec2coco ...`, start-up and imports included, as a user runs them)
on the same data with the same workers, alternating within each run after an untimed warm-up:
convert into a fresh folder, verify that output, validate and summarise the dataset. Prints each
run's ratios and their median over --repeat runs, the median of the same ratios in CPU seconds
(the process and its workers: steadier than wall time on a noisy machine), and the peak memory
of each command. Also times PatchCore's greedy coreset, the matrix-vector form against
the plain full-difference update, on random features of the real fit's shape (patches x 384,
projected to 128), and checks that both select the same points.

Usage: python tools/bench_check.py [--data DIR] [--work DIR] [--workers N] [--repeat 3]
                                   [--coreset-patches 164640] [--coreset-points 200]
--work copies the dataset there once (e.g. /dev/shm/m2c, RAM-backed) to remove disk noise
(see ../shared/BENCHMARKING.md). The data is `synth --preset mvtec-full`, generated if missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mvtec2coco.runtime.parallel import default_workers
from mvtec2coco.synth import generate


def _run(args: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MB of its largest process, CPU seconds) of one whole command
    (``wait4`` gives that command's own usage, its workers included)."""
    import tempfile

    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "mvtec2coco", *args], stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 1):  # validate exits 1 on errors in the data; anything else is a failure
            err.seek(0)
            raise SystemExit(f"{' '.join(args)} failed: {err.read().decode(errors='replace').strip()[-400:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def one_run(root: Path, work: Path, workers: int, k: int) -> dict[str, tuple[float, float, float]]:
    out = work / f"check_out_{k}"
    j = ["--workers", str(workers)]
    times = {"convert": _run(["convert", str(root), "--format", "all", "--out", str(out), *j])}
    times["verify"] = _run(["verify", str(out), *j])
    times["validate"] = _run(["validate", str(root), *j])
    times["summary"] = _run(["summary", str(root), *j])
    return times


def coreset(patches: int, points: int) -> tuple[float, float, bool]:
    import torch

    from mvtec2coco.models.patchcore.model import greedy_coreset, greedy_coreset_reference

    features = torch.randn(patches, 384, generator=torch.Generator().manual_seed(0)).abs()
    start = time.perf_counter()
    fast = greedy_coreset(features, points, 128, seed=0)
    t_fast = time.perf_counter() - start
    start = time.perf_counter()
    plain = greedy_coreset_reference(features, points, 128, seed=0)
    t_plain = time.perf_counter() - start
    return t_fast, t_plain, bool(torch.equal(fast, plain))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("bench_out/mvtec-full"))
    parser.add_argument("--work", type=Path, help="copy the dataset here once and time there (e.g. /dev/shm/m2c)")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--coreset-patches", type=int, default=164_640)
    parser.add_argument("--coreset-points", type=int, default=200)
    args = parser.parse_args()
    if not (args.data / ".complete").is_file():
        generate(args.data, "mvtec-full", "mvtec", seed=0, workers=args.workers, overwrite=True)
        (args.data / ".complete").write_text("ok\n")
    root = args.data
    work = args.work or args.data.parent
    if args.work is not None:
        root = args.work / "data"
        if not (root / ".complete").is_file():
            shutil.rmtree(root, ignore_errors=True)
            shutil.copytree(args.data, root)
    work.mkdir(parents=True, exist_ok=True)
    print(f"data {root}, {args.workers} workers, whole processes; ratios to convert --format all")
    one_run(root, work, args.workers, -1)  # warm-up, untimed
    ratios: dict[str, list[float]] = {"verify": [], "validate": [], "summary": []}
    cpu_ratios: dict[str, list[float]] = {name: [] for name in ratios}
    peaks: dict[str, float] = {}
    for k in range(args.repeat):
        times = one_run(root, work, args.workers, k)
        base = times["convert"][0]
        line = [f"run {k + 1}: convert {base:.2f} s"]
        for name in ratios:
            ratios[name].append(times[name][0] / base)
            cpu_ratios[name].append(times[name][2] / times["convert"][2])
            line.append(f"{name} {times[name][0]:.2f} s ({ratios[name][-1]:.2f}x)")
        for name, (_, peak, _) in times.items():
            peaks[name] = max(peaks.get(name, 0.0), peak)
        print(", ".join(line))
    print("median: " + ", ".join(f"{name} {statistics.median(v):.2f}x" for name, v in ratios.items()))
    print("median of CPU-second ratios (the process and its workers): "
          + ", ".join(f"{name} {statistics.median(v):.2f}x" for name, v in cpu_ratios.items()))
    print("peak memory (largest process): " + ", ".join(f"{n} {p:.0f} MB" for n, p in peaks.items()))
    for k in [-1, *range(args.repeat)]:
        shutil.rmtree(work / f"check_out_{k}", ignore_errors=True)
    t_fast, t_plain, same = coreset(args.coreset_patches, args.coreset_points)
    per = 1000 / args.coreset_points
    print(f"coreset over {args.coreset_patches} patches: {t_fast * per:.1f} ms per chosen point, plain update "
          f"{t_plain * per:.1f} ms ({t_plain / t_fast:.1f}x); same selection: {same}")
    os.sync()


if __name__ == "__main__":
    main()
