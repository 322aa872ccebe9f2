"""``anomalib train | predict``: any anomalib image model fitted on our dataset and split, its
anomaly maps and scores written as our ``predictions.json`` so that ``evaluate`` and ``compare``
put it on the one table.

anomalib pins its own stack (lightning, ``opencv-python-headless`` beside our ``opencv-python``),
so it usually lives in an environment of its own: ``worker.py`` runs there and never imports this
package; this side chooses the images (the same ``data`` settings as PatchCore: the dataset's
train/good, or a conversion's train subset), starts the worker, and reads its ``.npz`` back. The
interpreter is ``$MVTEC2COCO_ANOMALIB_PYTHON``, else this one if it has anomalib, else
``.venv-anomalib/bin/python`` in the working folder (``make anomalib``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ...errors import Mvtec2CocoError, OptionError
from ..patchcore.config import DataConfig

PYTHON_ENV = "MVTEC2COCO_ANOMALIB_PYTHON"
WORKER = Path(__file__).with_name("worker.py")
# Raw scores and maps (anomalib's post-processor would normalise them by statistics of good
# images, which saturates every test score at 1), no picture writing; and for the models the
# tests run, settings that need no download. ``--arg KEY=VALUE`` overrides any of them.
COMMON_ARGS = {"post_processor": False, "visualizer": False}
OFFLINE_ARGS = {"padim": {"backbone": "resnet18", "pre_trained": False, "layers": ["layer1", "layer2", "layer3"]},
                "patchcore": {"backbone": "resnet18", "pre_trained": False, "layers": ["layer2", "layer3"],
                              "coreset_sampling_ratio": 0.1}}


class AnomalibMissingError(Mvtec2CocoError):
    """No interpreter with anomalib was found."""


@dataclass(frozen=True)
class AnomalibRunConfig:
    """What ``anomalib train`` runs (its CLI options; ``config.json`` in the run)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: str = "padim"  # any anomalib image model name (padim, patchcore, efficient_ad, fastflow, ...)
    model_args: dict = field(default_factory=dict)  # passed to anomalib's get_model over COMMON_ARGS and OFFLINE_ARGS
    max_epochs: int = 1  # padim and patchcore need one pass; trained models need more
    batch_size: int = 8
    image_size: int = 256  # what predict resizes images to (anomalib's own default)
    accelerator: str = "cpu"  # lightning's: cpu, gpu, auto
    backbone_weights: str | None = None  # a torchvision-format state dict for the backbone, loaded before fitting
    seed: int = 0  # of every random generator while fitting


def interpreter() -> str:
    """The Python that has anomalib, or an ``AnomalibMissingError`` saying how to get one."""
    given = os.environ.get(PYTHON_ENV)
    if given:
        if not Path(given).is_file():
            raise AnomalibMissingError(f"{PYTHON_ENV} names no file", given, "point it at a python that has anomalib")
        return given
    if importlib.util.find_spec("anomalib") is not None:
        return sys.executable
    local = Path.cwd() / ".venv-anomalib" / "bin" / "python"
    if local.is_file():
        return str(local)
    raise AnomalibMissingError(
        "anomalib is not installed", None,
        "install the extra: pip install 'mvtec2coco[anomalib]' (or `make anomalib`: its own environment, as anomalib "
        f"pins opencv-python-headless), or set {PYTHON_ENV} to a python that has it")


def _run_worker(command: str, job: dict, work: Path) -> None:
    path = work / f"{command}.json"
    path.write_text(json.dumps(job))
    result = subprocess.run([interpreter(), str(WORKER), command, str(path)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if result.returncode != 0:
        tail = [line for line in result.stderr.strip().splitlines() if line.strip()][-1:] or ["(no message)"]
        raise OptionError(f"anomalib {command} failed: {tail[0][:300]}", work,
                          "see the worker's message; --arg KEY=VALUE passes anomalib's own model arguments")


def fit(cfg: AnomalibRunConfig, out: Path) -> dict:
    """Fit ``cfg.model`` with anomalib on the good training images; the run folder holds its
    checkpoint (``model.ckpt``), ``config.json`` and ``run.json``."""
    from ..patchcore.run import training_goods

    interpreter()  # before any work: anomalib may be missing altogether
    weights = Path(cfg.backbone_weights).resolve() if cfg.backbone_weights else None
    if weights is not None and not weights.is_file():
        raise OptionError("--backbone-weights names no file", weights, "pass a state dict saved with torch.save")
    root, category, train = training_goods(cfg.data, f"anomalib {cfg.model}")
    args = {**COMMON_ARGS, **OFFLINE_ARGS.get(cfg.model, {}), **cfg.model_args}
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    job = {"model": cfg.model, "model_args": args, "max_epochs": cfg.max_epochs, "batch_size": cfg.batch_size,
           "accelerator": cfg.accelerator, "train": [str(s.image) for s in train], "run": str(out.resolve()),
           "backbone_weights": str(weights) if weights else None, "seed": cfg.seed}
    _run_worker("fit", job, out)
    info = {"family": f"anomalib-{cfg.model}", "root": str(Path(root).resolve()), "layout": cfg.data.layout,
            "category": category, "model": cfg.model, "model_args": args,
            "backbone_weights": str(weights) if weights else None, "train_images": len(train),
            "fit_seconds": round(time.perf_counter() - start, 2)}
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    (out / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def predict(run: Path, inputs, out: Path) -> Path:
    """Every input image's anomalib score and map and, when anomalib's post-processor ran (``--arg
    post_processor=true``), each region of its thresholded map as an RLE instance scored by its
    highest value, as ``OUT/predictions.json``."""
    from pycocotools import mask as mask_utils

    from ...formats.coco import write_predictions
    from ...geometry.boxes import coco_bbox, edges_of_mask
    from ..common.inputs import category_ids
    from ..patchcore.run import write_maps

    run = Path(run)
    if not (run / "model.ckpt").is_file():
        raise OptionError("no model.ckpt in the run folder", run, "pass a folder written by `anomalib train`")
    info = json.loads((run / "run.json").read_text())
    cfg = json.loads((run / "config.json").read_text())
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="m2c_anomalib_") as work:
        job = {"model": info["model"], "model_args": info["model_args"], "accelerator": cfg.get("accelerator", "cpu"),
               "image_size_hw": [cfg.get("image_size", 256)] * 2, "run": str(run.resolve()), "work": work,
               "images": [str(i.path) for i in inputs.images], "out": str(Path(work) / "out.npz")}
        _run_worker("predict", job, Path(work))
        found = np.load(Path(work) / "out.npz")
        index, scores, maps, masks = (found[k] for k in ("index", "scores", "maps", "masks"))
    if sorted(index.tolist()) != list(range(len(inputs.images))):
        raise OptionError(f"anomalib returned {len(index)} predictions for {len(inputs.images)} images", run)
    names = [c["name"] for c in inputs.categories] or ["anomaly"]
    categories, ids = category_ids(inputs, names)
    label = "anomaly" if "anomaly" in ids else names[0]
    images, annotations, small = [], [], [None] * len(inputs.images)
    for k, score, amap, pred in zip(index.tolist(), scores.tolist(), maps, masks):
        image = inputs.images[k]
        images.append((k, {**image.record(), "score": round(float(score), 6)}))
        small[k] = amap.astype(np.float32)
        full_map = cv2.resize(amap.astype(np.float32), (image.width, image.height), interpolation=cv2.INTER_LINEAR)
        full = cv2.resize(pred.astype(np.uint8), (image.width, image.height), interpolation=cv2.INTER_NEAREST)
        count, regions = cv2.connectedComponents(full, connectivity=8)
        for r in range(1, count):
            region = regions == r
            rle = mask_utils.encode(np.asfortranarray(region.astype(np.uint8)))
            annotations.append({"image_id": image.id, "category_id": ids[label],
                                "segmentation": {"size": [image.height, image.width], "counts": rle["counts"].decode()},
                                "area": int(region.sum()), "bbox": coco_bbox(edges_of_mask(region)),
                                "score": round(float(full_map[region].max()), 6), "iscrowd": 0})
    images = [record for _, record in sorted(images, key=lambda p: p[0])]
    meta = {"family": info["family"], "run": str(run.resolve()), "model": f"anomalib {info['model']}",
            "config": run.name, "train_images": info.get("train_images"), "train_seconds": info.get("fit_seconds"),
            "predict_seconds": round(time.perf_counter() - began, 2),
            "anomaly_maps": write_maps(Path(out) / "maps", [i.id for i in inputs.images], small), **inputs.meta()}
    return write_predictions(Path(out), images, categories, annotations, meta)
