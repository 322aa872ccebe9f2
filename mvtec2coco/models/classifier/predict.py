"""``classifier predict``: class probabilities of every input image from a run's ``best.pt``,
as ``predictions.json`` keyed by the ground truth. The image-level anomaly score is 1 - P(good)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ...errors import OptionError
from ...formats.coco import write_predictions
from ...records import GOOD
from ..common.devices import pick_device
from ..common.files import load_weights, torch_file
from ..common.inputs import PredictInputs, parameters, run_facts
from .data import ImageCache, normalize
from .network import build_model


def load_best(run: Path, device: torch.device):
    """The run's best model (its own weights; no download) with its config and class names."""
    from ..common.config import build
    from .config import ExperimentConfig

    path = Path(run) / "best.pt"
    if not path.is_file():
        raise OptionError("no best.pt in the run folder", run, "pass a folder written by `classifier train`")
    state = torch_file(path, "classifier checkpoint", weights_only=False)
    cfg = load_weights(path, "classifier checkpoint", lambda _: build(ExperimentConfig, state["config"]))
    model_cfg = cfg.model.__class__(**{**cfg.model.__dict__, "weights": "none"})
    model = load_weights(path, "classifier checkpoint",
                         lambda _: _loaded(build_model(model_cfg, len(state["classes"])), state["model"]))
    return model.to(device).eval(), cfg, list(state["classes"])


def _loaded(model, weights):
    model.load_state_dict(weights)
    return model


@torch.no_grad()
def predict(run: Path, inputs: PredictInputs, out: Path, device: str = "auto", batch_size: int = 32) -> Path:
    torch_device = pick_device(device)
    model, cfg, classes = load_best(run, torch_device)
    began = time.perf_counter()
    cache = ImageCache(cfg.data.image_size)
    images = []
    good = classes.index(GOOD) if GOOD in classes else None
    for start in range(0, len(inputs.images), batch_size):
        chunk = inputs.images[start : start + batch_size]
        x = normalize(torch.stack([torch.from_numpy(cache.get(i.path)).permute(2, 0, 1) for i in chunk]))
        probs = torch.softmax(model(x.to(torch_device)).float(), dim=1).cpu().numpy()
        for image, p in zip(chunk, probs):
            images.append({**image.record(), "label": classes[int(np.argmax(p))],
                           "score": round(float(1.0 - p[good]), 6) if good is not None else None,
                           "probabilities": {c: round(float(v), 6) for c, v in zip(classes, p)}})
    categories = inputs.categories or [{"id": i, "name": c, "supercategory": "defect"}
                                       for i, c in enumerate((c for c in classes if c != GOOD), 1)]
    meta = {"family": "classifier", "run": str(Path(run).resolve()), "model": cfg.model.arch, "config": cfg.name,
            "classes": classes, "parameters": parameters(model), "predict_seconds": round(time.perf_counter() - began, 2),
            **run_facts(run, "summary.json", "train_images", "train_seconds"), **inputs.meta()}
    return write_predictions(Path(out), images, categories, [], meta)
