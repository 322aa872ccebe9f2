#!/usr/bin/env python3
"""PatchCore on `synth --preset bottle`: fit and evaluation time, peak memory, image and pixel AUROC, PRO.

Runs with random backbone weights here (no ImageNet file on CI machines); with ImageNet weights on
the real MVTec AD bottle, published results are image AUROC 1.000 and pixel AUROC about 0.98.
Usage: python tools/bench_patchcore.py [--backbone wide_resnet50_2] [--weights none] [--size 224]
       [--coreset-ratio 0.01] [--data bench_out/bottle]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mvtec2coco.models.patchcore.config import DataConfig, PatchCoreRunConfig
from mvtec2coco.models.patchcore.model import PatchCoreConfig
from mvtec2coco.models.patchcore.run import evaluate, fit
from mvtec2coco.synth import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("bench_out/bottle"))
    parser.add_argument("--backbone", default="wide_resnet50_2")
    parser.add_argument("--weights", default="none")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--coreset-ratio", type=float, default=0.01)
    args = parser.parse_args()
    if not (args.data / ".complete").is_file():
        generate(args.data, "bottle", "mvtec", seed=0, overwrite=True)
        (args.data / ".complete").write_text("ok\n")
    run = args.data.parent / "patchcore_runs" / f"{args.backbone}_{args.weights}_{args.size}"
    config = PatchCoreRunConfig(data=DataConfig(root=str(args.data), category="bottle"),
                                model=PatchCoreConfig(backbone=args.backbone, weights=args.weights,
                                                      image_size=args.size, coreset_ratio=args.coreset_ratio))
    info = fit(config, run)
    start = time.perf_counter()
    result = evaluate(run)
    eval_seconds = time.perf_counter() - start
    o = result["overall"]
    print(f"PatchCore {args.backbone} ({args.weights} weights), {args.size} px, coreset {args.coreset_ratio:g}, CPU")
    print(f"fit: {info['train_images']} images, {info['patches']} patches -> bank {info['bank']}, "
          f"{info['fit_seconds']} s, peak memory {info['peak_rss_mb']} MB")
    print(f"test: {result['images']} images evaluated in {eval_seconds:.1f} s: image AUROC {o['image_auroc']:.3f}, "
          f"pixel AUROC {o['pixel_auroc']:.3f}, PRO {o['pro']:.3f}")
    print(json.dumps({k: {m: round(v, 3) for m, v in r.items() if isinstance(v, float)}
                      for k, r in result["per_type"].items()}))


if __name__ == "__main__":
    main()
