"""Fine-tune YOLO-World (or plain YOLO, as the baseline) on converted YOLO data with ultralytics' own
``YOLOWorld``/``WorldTrainer``, offline: text features come from ``text_embeddings``.

The run folder (``OUT``) is ultralytics' own (``weights/best.pt``, ``results.csv``, plots) plus
``data_world.yaml`` (the dataset with class names the trainer reads as texts), the text-embedding
table ``text_embeddings_clip_ViT-B_32.pt`` and our ``summary.json`` (box mAP50, mAP50-95,
per-class AP, precision and recall on val and test).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import yaml

from ...errors import Mvtec2CocoError, OptionError
from ...formats.yolo import class_names, find_data_yaml, names_list, read_data_yaml
from ...runtime.ultralytics_env import no_label_caches, quiet_offline_ultralytics
from ..common.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, UNIT
from ..common.devices import ultralytics_device
from .predict import world_text
from .text_embeddings import (
    DEFAULT_TEMPLATES,
    ClipTextEncoder,
    class_embeddings,
    class_words,
    offline_text_features,
    save_table,
)

TABLE_NAME = "text_embeddings_clip_ViT-B_32.pt"
ASSETS = "https://github.com/ultralytics/assets/releases"


class DetectorWeightsError(Mvtec2CocoError):
    """A detector weight file is not on this machine (nothing is downloaded at run time)."""


@dataclass(frozen=True)
class DetectorConfig:
    """Training settings; every key maps to an ultralytics train argument except data and the text ones."""

    LIMITS: ClassVar[dict] = {"epochs": AT_LEAST_ONE, "imgsz": (32, None, True, False), "batch": AT_LEAST_ONE,
                              "lr0": POSITIVE, "warmup_epochs": NON_NEGATIVE, "mosaic": UNIT, "close_mosaic": NON_NEGATIVE,
                              "freeze": NON_NEGATIVE, "patience": NON_NEGATIVE, "workers": NON_NEGATIVE,
                              "seed": NON_NEGATIVE}


    data: str = ""  # data.yaml of a YOLO conversion, or the conversion's folder
    model: str = "yolov8s-worldv2.yaml"  # a .yaml (random init) or a local .pt; plain YOLO (yolov8n.pt) is the baseline
    epochs: int = 80  # a few dozen defect images in train: many short epochs; patience stops early
    imgsz: int = 640  # keep resolution: smaller sizes erase 1-3 px specks
    batch: int = 8  # fits an 8 GB GPU at 640 px with the s model
    device: str = "auto"  # auto | cpu | cuda | cuda:N | N | 0,1,2,3 (several GPUs: ultralytics' DDP)
    lr0: float = 0.0005  # fine-tuning a pretrained detector: 4x below ultralytics' AdamW default
    optimizer: str = "AdamW"
    cos_lr: bool = True  # smooth decay suits the short schedule
    warmup_epochs: float = 3.0
    mosaic: float = 1.0  # mosaic multiplies the few defect examples per batch ...
    close_mosaic: int = 15  # ... and is switched off for the last epochs so that boxes see real image statistics
    freeze: int | None = 10  # freeze the backbone's first modules: too few images to retrain them
    patience: int = 25  # stop when val mAP has not improved for this many epochs
    workers: int = 4  # data-loader processes
    seed: int = 0
    plots: bool = True
    amp: bool = True  # forced off on CPU
    text_encoder: str = "clip"  # clip (needs clip_weights) | random | clip-random (both: smoke tests only)
    clip_weights: str | None = None  # local CLIP ViT-B-32 weights (OpenAI ViT-B-32.pt or an open_clip checkpoint)
    templates: tuple[str, ...] = DEFAULT_TEMPLATES  # prompt templates averaged per class
    category: str = "product"  # fills {category} in the templates
    class_words: dict = field(default_factory=dict)  # class name -> words for the text encoder

    def train_args(self) -> dict:
        keys = ("epochs", "imgsz", "batch", "lr0", "optimizer", "cos_lr", "warmup_epochs", "mosaic", "close_mosaic",
                "freeze", "patience", "workers", "seed", "plots")
        args = {k: getattr(self, k) for k in keys if getattr(self, k) is not None}
        args["device"] = ultralytics_device(self.device)
        args["amp"] = self.amp and args["device"] != "cpu"
        return args


def load_detector_config(path: Path | None, overrides: list[str] | None = None, extra: dict | None = None) -> DetectorConfig:
    from ..common import config as configs

    return configs.load(DetectorConfig, path, overrides, extra)


def is_world(model: str) -> bool:
    return "world" in Path(model).name.lower()


def resolve_model(model: str) -> str:
    """A ``.yaml`` ultralytics knows, an existing local ``.pt`` (never downloaded), or a known
    weights name (``yolov8s-worldv2.pt``): fetched on first use and verified (``common.fetch``)."""
    if model.endswith((".yaml", ".yml")):
        return model
    path = Path(model)
    if not path.is_file():
        from ..common.fetch import fetch_if_named

        fetched = fetch_if_named(model)
        if fetched is not None:
            return str(fetched)
        raise DetectorWeightsError(
            "detector weights not found (a path is used as given: nothing is downloaded for it)", path,
            f"pass a known name (`mvtec2coco weights list`, e.g. --set model=yolov8s-worldv2.pt: fetched on first "
            f"use), or download {path.name} from the ultralytics assets releases ({ASSETS}), copy it here and pass "
            f"its path; or train from {path.stem}.yaml (random initialisation)")
    return str(path)


def _names(data_yaml: Path) -> list[str]:
    return class_names(read_data_yaml(data_yaml))


def world_dataset(data_yaml: Path, out: Path) -> tuple[Path, list[str]]:
    """A copy of ``data.yaml`` whose class names contain no '/' (ultralytics reads '/' as synonyms)."""
    data = read_data_yaml(data_yaml)
    names = _names(data_yaml)
    texts = [world_text(n) for n in names]
    root = Path(data.get("path") or Path(data_yaml).parent)
    if not root.is_absolute():
        root = (Path(data_yaml).parent / root).resolve()
    derived = {**data, "path": str(root), "names": dict(enumerate(texts))}
    out.mkdir(parents=True, exist_ok=True)
    path = out / "data_world.yaml"
    path.write_text(yaml.safe_dump(derived, sort_keys=False))
    return path, texts


def text_table(names: list[str], texts: list[str], cfg: DetectorConfig) -> dict:
    """Embeddings keyed by the texts the trainer will look up, computed from each class's words."""
    if cfg.text_encoder == "random":
        from rich.console import Console

        Console(stderr=True).print("warning: text_encoder random: class embeddings are random unit vectors; "
                                   "the model cannot use the class names (smoke tests only)", markup=False)
        encoder = None
    elif cfg.text_encoder == "clip-random":  # open_clip's real code path with random weights: tests only
        encoder = ClipTextEncoder(None)
    elif cfg.text_encoder == "clip":
        if not cfg.clip_weights:
            raise OptionError("YOLO-World needs CLIP ViT-B-32 weights for the class-name embeddings",
                              hint="pass --set clip_weights=PATH (OpenAI ViT-B-32.pt or an open_clip ViT-B-32 "
                                   "checkpoint), or --set text_encoder=random for a smoke test")
        encoder = ClipTextEncoder(cfg.clip_weights)
    else:
        raise OptionError(f"unknown text encoder '{cfg.text_encoder}'", hint="use clip, random or clip-random")
    words = {n: class_words(n, cfg.class_words) for n in names}
    by_name = class_embeddings(names, encoder, cfg.templates, cfg.category, words, cfg.seed)
    return {t: by_name[n] for n, t in zip(names, texts)}


def train_detector(cfg: DetectorConfig, out: Path, resume: bool = False) -> dict:
    """Train YOLO-World (``*world*`` models) or plain YOLO; returns ``summary.json``'s content.
    ``resume`` continues the stopped run in ``out`` through ultralytics' own resume (its
    ``weights/last.pt`` holds model, optimizer, EMA and epoch)."""
    quiet_offline_ultralytics()
    from ultralytics import YOLO, YOLOWorld
    from ultralytics.models.yolo.world.train import WorldTrainer

    no_label_caches()

    from ..common import config as configs
    from ..common.files import load_weights

    out = Path(out).absolute()
    if not cfg.data:
        raise OptionError("no data: pass --data OUT/yolo/data.yaml (or the conversion's folder)")
    data_yaml = find_data_yaml(cfg.data)
    model_src = str(out / "weights" / "last.pt") if resume else resolve_model(cfg.model)
    read_data_yaml(data_yaml)
    if Path(model_src).suffix == ".pt":  # fail on a broken file here, not after ultralytics made the run folder
        from ultralytics.nn.tasks import load_checkpoint

        load_weights(model_src, "detector weights", load_checkpoint)
    args = {**cfg.train_args(), "project": str(out.parent), "name": out.name, "exist_ok": True, "verbose": False}
    if resume:
        args = {"resume": model_src}
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(configs.dump(cfg))
    if not is_world(cfg.model):
        YOLO(model_src).train(data=str(data_yaml), **args)
        return _summarize(out, data_yaml, world=False, device=cfg.device)
    derived, texts = world_dataset(data_yaml, out)
    if resume:
        from .text_embeddings import load_table

        table = load_table(out / TABLE_NAME)
    else:
        table = text_table(_names(data_yaml), texts, cfg)
        save_table(table, out / TABLE_NAME)

    class OfflineWorldTrainer(WorldTrainer):
        """ultralytics' WorldTrainer, reading class-text embeddings from our table."""

        def generate_text_embeddings(self, texts, batch, cache_dir):  # noqa: ARG002 - ultralytics' signature
            return {t: table[t].to(self.device) for t in texts}

    with offline_text_features(table):
        YOLOWorld(model_src).train(data=str(derived), trainer=OfflineWorldTrainer, **args)
        return _summarize(out, derived, world=True, device=cfg.device)


def _metrics(model, data_yaml: Path, split: str, run: Path, device: str = "auto") -> dict | None:
    """Box metrics on ``split``; ultralytics' validation folder goes inside ``run``, not into
    ``runs/detect/`` under the current directory."""
    data = read_data_yaml(data_yaml)
    if split not in data:
        return None
    r = model.val(data=str(data_yaml), split=split, plots=False, verbose=False, project=str(Path(run).absolute()),
                  name=f"val_{split}", exist_ok=True, device=ultralytics_device(device))
    names = dict(enumerate(names_list(r.names)))
    per_class = {}
    for i, c in enumerate(r.box.ap_class_index):
        per_class[names[int(c)]] = {"ap50": float(r.box.ap50[i]), "ap50_95": float(r.box.ap[i]),
                                    "precision": float(r.box.p[i]), "recall": float(r.box.r[i])}
    return {"map50": float(r.box.map50), "map50_95": float(r.box.map), "precision": float(r.box.mp),
            "recall": float(r.box.mr), "per_class": per_class}


def _train_images(data_yaml: Path) -> int | None:
    """How many images the train subset of a data.yaml holds (a folder of images, as convert writes)."""
    from ...datasets.imageio import is_image_file

    data = read_data_yaml(data_yaml)
    root = Path(data.get("path") or Path(data_yaml).parent)
    folder = root / str(data.get("train", ""))
    return sum(1 for f in folder.rglob("*") if is_image_file(f)) if data.get("train") and folder.is_dir() else None


def _summarize(out: Path, data_yaml: Path, world: bool, device: str = "auto") -> dict:
    from ultralytics import YOLO, YOLOWorld

    best = out / "weights" / "best.pt"
    if not best.is_file():
        raise Mvtec2CocoError("training wrote no best.pt", out)
    model = (YOLOWorld if world else YOLO)(str(best))
    summary = {"weights": str(best), "world": world, "data": str(data_yaml), "train_images": _train_images(data_yaml)}
    for split in ("val", "test"):
        summary[split] = _metrics(model, data_yaml, split, out, device)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def load_detector(weights: Path):
    """YOLOWorld or YOLO, whichever network the checkpoint holds."""
    quiet_offline_ultralytics()
    from ultralytics import YOLO, YOLOWorld
    from ultralytics.nn.tasks import WorldModel, load_checkpoint

    no_label_caches()

    from ..common.files import load_weights

    weights = Path(resolve_model(str(weights)))
    network, _ = load_weights(weights, "detector weights", load_checkpoint)
    return (YOLOWorld if isinstance(network, WorldModel) else YOLO)(str(weights)), isinstance(network, WorldModel)


def evaluate_detector(weights: Path, data_yaml: Path, split: str = "test", out: Path | None = None,
                      device: str = "auto") -> dict:
    """Box metrics of ``weights`` on ``split``; no text encoder is needed (the checkpoint holds the
    class embeddings, and the class names are matched through the same renaming as training)."""
    data_yaml = find_data_yaml(data_yaml)
    model, world = load_detector(weights)
    data = data_yaml
    run = Path(out or Path(weights).parent.parent)
    if split not in read_data_yaml(data_yaml):
        raise OptionError(f"data.yaml has no '{split}' subset", data_yaml)
    if world:
        texts = [world_text(n) for n in _names(data_yaml)]
        model_names = names_list(model.names)
        if model_names != texts:
            raise OptionError(f"the model was trained on classes {model_names}, the data has {texts}", data_yaml,
                              "evaluate on the data the model was trained on")
        data, _ = world_dataset(data_yaml, run)
    result = _metrics(model, Path(data), split, run, device)
    if result is None:
        raise OptionError(f"data.yaml has no '{split}' subset", data_yaml)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"eval_{split}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


__all__ = ["DetectorConfig", "evaluate_detector", "load_detector", "train_detector"]
