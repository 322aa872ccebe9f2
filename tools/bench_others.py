#!/usr/bin/env python3
"""`convert --format all` against the converters users have today, whole processes side by side.

On `synth --preset mvtec-full` (5,354 images, 1,258 masks; generated if missing), alternating
within each run after an untimed warm-up, each a whole process (start-up and imports included):

- `mvtec2coco convert ROOT --format all --images link` (YOLO boxes, YOLO-seg and COCO);
- ultralytics' `convert_segment_masks_to_yolo_seg` over every `ground_truth` folder (YOLO-seg
  label files only), in one process;
- Datumaro's `mvtec_segmentation` to `coco_instances` and `mvtec_detection` to `coco_instances`
  (no media copied), one process over all categories each, in the consumers' environment
  (`make interop`, or --datumaro-python; skipped where Datumaro is not installed there).

Prints each run's wall times, each tool's ratio to the conversion, and the median of the runs'
own ratios. Outputs go to fresh folders under --work and are deleted only after all timing (see
../shared/BENCHMARKING.md).

Usage: python tools/bench_others.py [--data DIR] [--work DIR] [--workers N] [--repeat 3]
                                    [--datumaro-python .venv-interop/bin/python]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mvtec2coco.runtime.parallel import default_workers
from mvtec2coco.synth import generate

ULTRALYTICS = """
import sys
from pathlib import Path
from ultralytics.data.converter import convert_segment_masks_to_yolo_seg
root, out = Path(sys.argv[1]), Path(sys.argv[2])
for folder in sorted(root.glob("*/ground_truth/*")):
    convert_segment_masks_to_yolo_seg(str(folder), str(out / folder.relative_to(root)), classes=255)
"""

DATUMARO = """
import sys
from pathlib import Path
from datumaro.components.dataset import Dataset
root, out, task = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
for category in sorted(p for p in root.iterdir() if (p / "ground_truth").is_dir()):
    Dataset.import_from(str(category), task).export(str(out / category.name), "coco_instances", save_media=False)
"""


def _timed(command: list[str]) -> float:
    """Wall seconds of one whole command, which must succeed."""
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command[:4])} ... failed: {done.stderr.strip()[-400:]}")
    return wall


def _has_datumaro(python: Path) -> bool:
    return python.is_file() and subprocess.run([str(python), "-c", "import datumaro"], capture_output=True).returncode == 0


def one_run(root: Path, out: Path, workers: int, datumaro: Path | None) -> dict[str, float]:
    """Each tool once, in a fresh folder of ``out``."""
    times = {"convert": _timed([sys.executable, "-m", "mvtec2coco", "convert", str(root), "--format", "all",
                                "--images", "link", "--out", str(out / "convert"), "--workers", str(workers)])}
    times["ultralytics"] = _timed([sys.executable, "-c", ULTRALYTICS, str(root), str(out / "ultralytics")])
    if datumaro is not None:
        for task in ("mvtec_segmentation", "mvtec_detection"):
            times[f"datumaro {task}"] = _timed([str(datumaro), "-c", DATUMARO, str(root), str(out / task), task])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("bench_out/mvtec-full"))
    parser.add_argument("--work", type=Path, default=Path("bench_out"), help="where the outputs go (e.g. /dev/shm/m2c)")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--datumaro-python", type=Path, default=Path(".venv-interop/bin/python"))
    args = parser.parse_args()
    if not (args.data / ".complete").is_file():
        generate(args.data, "mvtec-full", "mvtec", seed=0, overwrite=True, workers=args.workers)
        (args.data / ".complete").touch()
    datumaro = args.datumaro_python if _has_datumaro(args.datumaro_python) else None
    if datumaro is None:
        print(f"Datumaro not found in {args.datumaro_python}: its rows are skipped (make interop)")
    outs = [args.work / f"others_out_{k}" for k in range(args.repeat + 1)]
    for out in outs:
        shutil.rmtree(out, ignore_errors=True)
    one_run(args.data, outs[0], args.workers, datumaro)  # warm-up: page cache, imports
    runs = [one_run(args.data, out, args.workers, datumaro) for out in outs[1:]]
    print(f"data {args.data}, {args.workers} workers for convert, whole processes; ratios to convert --format all")
    for k, times in enumerate(runs, 1):
        cells = [f"{name} {t:.2f} s ({t / times['convert']:.2f}x)" for name, t in times.items() if name != "convert"]
        print(f"run {k}: convert {times['convert']:.2f} s, " + ", ".join(cells))
    for name in runs[0]:
        if name != "convert":
            print(f"median ratio {name} / convert: {statistics.median(t[name] / t['convert'] for t in runs):.2f}")
    for out in outs:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
