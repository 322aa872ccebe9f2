"""Runs inside an environment that has anomalib (never imports mvtec2coco): one job in, files out.

``python worker.py fit JOB.json``: JOB holds ``model`` (an anomalib model name), ``model_args``,
``image_size``, ``max_epochs``, ``batch_size``, ``accelerator``, ``train`` (image paths of good
images), ``run`` (the run folder), ``seed`` (of every random generator: anomalib's PatchCore
draws its coreset's start and projection) and, optionally, ``backbone_weights`` (a torchvision-format state
dict loaded into the model's backbone before fitting); the images are linked into ``run/data/train/good`` and
anomalib's ``Folder`` datamodule and ``Engine`` fit the model, saved as ``run/model.ckpt``.

``python worker.py predict JOB.json``: JOB adds ``images`` (paths) and ``out`` (an ``.npz``); the
images are linked, in order, into a folder that anomalib's ``PredictDataset`` reads, and the npz
holds ``index`` (the order of the images), ``scores``, ``maps`` (H x W at the model's size) and
``masks`` (anomalib's own thresholded maps).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path


def _link(files: list[str], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for k, src in enumerate(files):
        link = folder / f"{k:06d}{Path(src).suffix.lower()}"
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.abspath(src), link)
        links.append(link)
    return links


def _model(job: dict):
    from anomalib.models import get_model

    return get_model(job["model"], **job.get("model_args", {}))


def _load_backbone(model, path: str) -> None:
    """Put a torchvision-format state dict into the model's timm backbone (same tensor names for
    ResNets): then anomalib fits on the very network another run was given."""
    import torch

    net = getattr(getattr(getattr(model, "model", None), "feature_extractor", None), "feature_extractor", None)
    if net is None:
        raise SystemExit(f"backbone_weights: anomalib's {type(model).__name__} has no backbone to load them into")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch's own errors: not a file torch.save wrote
        raise SystemExit(f"backbone_weights: {path} cannot be read as a state dict "
                         f"({type(exc).__name__}: {str(exc).strip().splitlines()[0][:120]})") from None
    if not isinstance(state, dict):
        raise SystemExit(f"backbone_weights: {path} holds a {type(state).__name__}, not a state dict")
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise SystemExit(f"backbone_weights: {path} lacks {len(missing)} of the backbone's {len(own)} tensors, "
                         f"e.g. {missing[0]}")
    try:
        net.load_state_dict({k: state[k] for k in own})
    except RuntimeError as exc:  # a tensor of another shape: weights of another network
        raise SystemExit(f"backbone_weights: {path} does not fit the backbone "
                         f"({str(exc).strip().splitlines()[-1].strip()})") from None


def _engine(job: dict, root: Path):
    from anomalib.engine import Engine

    return Engine(max_epochs=job.get("max_epochs", 1), accelerator=job.get("accelerator", "cpu"), devices=1,
                  default_root_dir=str(root), logger=False, enable_progress_bar=False)


def fit(job: dict) -> None:
    from anomalib.data import Folder

    run = Path(job["run"])
    _link(job["train"], run / "data" / "train" / "good")
    datamodule = Folder(name="train", root=str(run / "data"), normal_dir="train/good", normal_test_dir="train/good",
                        train_batch_size=job.get("batch_size", 8), eval_batch_size=job.get("batch_size", 8),
                        num_workers=0, seed=job.get("seed", 0))
    from lightning.pytorch import seed_everything

    seed_everything(job.get("seed", 0), verbose=False)  # PatchCore's coreset draws from torch's and numpy's generators
    model = _model(job)
    if job.get("backbone_weights"):
        _load_backbone(model, job["backbone_weights"])
    engine = _engine(job, run / "lightning")
    engine.fit(model=model, datamodule=datamodule)
    engine.trainer.save_checkpoint(str(run / "model.ckpt"))


def predict(job: dict) -> None:
    import numpy as np
    from anomalib.data import PredictDataset

    run = Path(job["run"])
    folder = Path(job["work"]) / "images"
    _link(job["images"], folder)
    dataset = PredictDataset(path=folder, image_size=tuple(job.get("image_size_hw", (256, 256))))
    engine = _engine(job, Path(job["work"]) / "lightning")
    batches = engine.predict(model=_model(job), dataset=dataset, ckpt_path=str(run / "model.ckpt"))
    index, scores, maps, masks = [], [], [], []
    for batch in batches or []:
        for k, path in enumerate(batch.image_path):
            index.append(int(Path(path).stem))
            scores.append(float(batch.pred_score[k]))
            maps.append(batch.anomaly_map[k].squeeze().float().cpu().numpy())
            pred = batch.pred_mask  # None without anomalib's post-processor
            masks.append(pred[k].squeeze().cpu().numpy().astype(np.uint8) if pred is not None else
                         np.zeros(maps[-1].shape, np.uint8))
    np.savez_compressed(job["out"], index=np.array(index), scores=np.array(scores, np.float64),
                        maps=np.stack(maps) if maps else np.zeros((0, 1, 1)),
                        masks=np.stack(masks) if masks else np.zeros((0, 1, 1), np.uint8))


def main() -> None:
    warnings.filterwarnings("ignore")
    command, job_path = sys.argv[1], sys.argv[2]
    job = json.loads(Path(job_path).read_text())
    {"fit": fit, "predict": predict}[command](job)


if __name__ == "__main__":
    main()
