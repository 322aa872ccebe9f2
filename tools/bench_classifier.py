#!/usr/bin/env python3
"""Train the original study's config 01 (ResNet18, batch 32, lr 1e-3) from scratch at 64 px on
`synth --preset bottle` for a few epochs on CPU and report balanced accuracy against chance.

Usage: python tools/bench_classifier.py [--epochs 12] [--size 64] [--data bench_out/bottle]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mvtec2coco.models.classifier.config import load_config
from mvtec2coco.models.classifier.train import train
from mvtec2coco.synth import generate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("bench_out/bottle"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--config", type=Path, default=ROOT / "configs/classifier/01_resnet18_baseline.yaml")
    args = parser.parse_args()
    if not (args.data / ".complete").is_file():
        generate(args.data, "bottle", "mvtec", seed=0, overwrite=True)
        (args.data / ".complete").write_text("ok\n")
    cfg = load_config(args.config, [f"data.root={args.data}", "model.weights=none", f"data.image_size={args.size}",
                                    f"train.epochs={args.epochs}", "train.device=cpu"])
    start = time.perf_counter()
    run = train(cfg, args.data.parent / "classifier_runs" / cfg.name, progress=False)
    seconds = time.perf_counter() - start
    summary = json.loads((run / "summary.json").read_text())
    chance = 1.0 / len(summary["classes"])
    curve = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    data_share = max(c["data_fraction"] for c in curve[1:]) if len(curve) > 1 else curve[0]["data_fraction"]
    print(f"{cfg.name} from scratch, {args.size} px, {args.epochs} epochs on CPU ({seconds:.0f} s)")
    print(f"classes: {summary['classes']} (chance balanced accuracy {chance:.3f})")
    for subset in ("val", "test"):
        m = summary[subset]
        print(f"{subset}: accuracy {m['accuracy']:.3f}, balanced accuracy {m['balanced_accuracy']:.3f}, "
              f"macro F1 {m['macro_f1']:.3f}, AUROC good vs defect {m['auroc_good_vs_defect']:.3f}")
    print(f"data loading share of step time after epoch 1: at most {100 * data_share:.1f}%")


if __name__ == "__main__":
    main()
