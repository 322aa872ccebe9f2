#!/usr/bin/env python3
"""Our PatchCore against anomalib's, whole processes side by side, scored by the one `evaluate`.

Same data (`synth --preset bottle`, converted once with a 0.6/0.2/0.2 split; both fit on the
train subset's good images), same backbone (ResNet-18 with random weights, no download: one
network drawn once with --backbone-seed, saved, and loaded by both sides), each side's coreset drawn with
each of --coreset-seeds (image AUROC on this small test set swings with the draws: the means are
compared), same layers (2 and 3), same image size, same coreset ratio, same image
score (the paper's reweighting), CPU. Ours runs twice: with anomalib's feature (both layers'
channels side by side, `model.aggregate=concat`: like for like) and with the paper's (each layer
pooled to `model.dim`, the default). Each side trains (`patchcore train` / `anomalib train
--model patchcore`) and predicts the test subset (`... predict`), and `mvtec2coco evaluate` scores
every prediction against the same ground truth. Prints wall time and peak memory (largest
process) of train and predict, their ratios (ours / anomalib's), and image and pixel AUROC of
each. anomalib runs in its own environment (`make anomalib`, or MVTEC2COCO_ANOMALIB_PYTHON).

Usage: python tools/bench_patchcore_vs_anomalib.py [--data bench_out/bottle] [--size 256] [--coreset-ratio 0.01]
                                                  [--backbone-seed 0] [--coreset-seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB of the command's largest process) of one whole command."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "mvtec2coco", *args], stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(args)} failed: {err.read().decode(errors='replace').strip()[-600:]}")
    return wall, usage.ru_maxrss / 1024


def _save_random_resnet18(path: Path, seed: int) -> None:
    """One random ResNet-18, as torchvision initialises it under ``seed``, for both sides to load."""
    import torch
    import torchvision

    torch.manual_seed(seed)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("bench_out/bottle"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--coreset-ratio", type=float, default=0.01)
    parser.add_argument("--backbone-seed", type=int, default=0, help="the draw of the shared random backbone")
    parser.add_argument("--coreset-seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="each side fits once per seed of its coreset draw")
    args = parser.parse_args()
    from mvtec2coco.models.anomalib_bridge.run import interpreter
    from mvtec2coco.synth import generate

    root = Path(__file__).resolve().parents[1]
    if not os.environ.get("MVTEC2COCO_ANOMALIB_PYTHON") and (root / ".venv-anomalib" / "bin" / "python").is_file():
        os.environ["MVTEC2COCO_ANOMALIB_PYTHON"] = str(root / ".venv-anomalib" / "bin" / "python")
    interpreter()
    if not (args.data / ".complete").is_file():
        generate(args.data, "bottle", "mvtec", seed=0, overwrite=True)
        (args.data / ".complete").write_text("ok\n")
    work = Path(tempfile.mkdtemp(prefix="m2c_pc_vs_", dir=args.data.parent))
    try:
        conv = work / "conv"
        _run(["convert", str(args.data), "--format", "coco", "--split", "0.6,0.2,0.2", "--out", str(conv)])
        split = str(conv / "meta" / "split.csv")
        backbone = work / "resnet18_random.pt"
        _save_random_resnet18(backbone, args.backbone_seed)
        ours = ["--set", "model.backbone=resnet18", "--set", f"model.weights={backbone}", "--set",
                f"model.image_size={args.size}", "--set", f"model.coreset_ratio={args.coreset_ratio}",
                "--set", "model.dim=384",  # anomalib keeps layer 2's 128 and layer 3's 256 channels: 384
                "--set", "model.image_score=reweighted",  # the paper's Eq. 7, as anomalib scores images
                "--set", f"data.split={split}", "--device", "cpu"]
        theirs = ["--arg", f"coreset_sampling_ratio={args.coreset_ratio}", "--arg", "backbone=resnet18",
                  "--arg", "pre_trained=false", "--arg", 'layers=["layer2", "layer3"]', "--backbone-weights",
                  str(backbone)]
        rows: dict[str, list[tuple]] = {}
        for k in args.coreset_seeds:
            sides = [(f"ours, {how}",
                      ["patchcore", "train", "--data", str(args.data), "--category", "bottle", *ours, "--set",
                       f"model.aggregate={how}", "--set", f"model.seed={k}", "--out", str(work / f"ours_{how}_{k}")],
                      ["patchcore", "predict", str(work / f"ours_{how}_{k}"), "--data", str(conv), "--split", "test",
                       "--device", "cpu", "--out", str(work / f"pred_ours_{how}_{k}")]) for how in ("concat", "pool")]
            sides.append(("anomalib", ["anomalib", "train", "--model", "patchcore", "--data", str(args.data), "--category",
                                       "bottle", "--split", split, *theirs, "--seed", str(k), "--out",
                                       str(work / f"theirs_{k}")],
                          ["anomalib", "predict", str(work / f"theirs_{k}"), "--data", str(conv), "--split", "test",
                           "--out", str(work / f"pred_anomalib_{k}")]))
            for name, train, predict in sides:
                t_train, m_train = _run(train)
                t_pred, m_pred = _run(predict)
                pred = Path(predict[predict.index("--out") + 1])
                _run(["evaluate", str(pred), "--gt", str(conv), "--split", "test"])
                metrics = json.loads((pred / "metrics.json").read_text())
                rows.setdefault(name, []).append((t_train, m_train, t_pred, m_pred, metrics["image"]["auroc"],
                                                  metrics["pixel"]["auroc"]))
        print(f"PatchCore, ResNet-18 random weights (one draw, seed {args.backbone_seed}, shared), layers 2+3, "
              f"{args.size} px, coreset {args.coreset_ratio:g} drawn with seeds {args.coreset_seeds}, CPU, synth --preset "
              "bottle (train subset's good images; test subset scored by mvtec2coco evaluate)")
        print("| | coreset seed | train s | train peak MB | predict s | predict peak MB | image AUROC | pixel AUROC |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, runs in rows.items():
            for k, (tt, mt, tp, mp, ia, pa) in zip(args.coreset_seeds, runs):
                print(f"| {name} | {k} | {tt:.1f} | {mt:.0f} | {tp:.1f} | {mp:.0f} | {ia:.3f} | {pa:.3f} |")
        summary = {name: [statistics.median(col) for col in zip(*runs)] for name, runs in rows.items()}
        means = {name: [statistics.mean(r[4] for r in runs), statistics.mean(r[5] for r in runs)]
                 for name, runs in rows.items()}
        a = summary["anomalib"]
        for name in (n for n in rows if n != "anomalib"):
            o = summary[name]
            print(f"{name} / anomalib (medians over the seeds): train time {o[0] / a[0]:.2f}, train memory "
                  f"{o[1] / a[1]:.2f}, predict time {o[2] / a[2]:.2f}, predict memory {o[3] / a[3]:.2f}; mean AUROC "
                  f"image {means[name][0]:.3f} vs {means['anomalib'][0]:.3f} ({means[name][0] - means['anomalib'][0]:+.3f}), "
                  f"pixel {means[name][1]:.3f} vs {means['anomalib'][1]:.3f} ({means[name][1] - means['anomalib'][1]:+.3f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
