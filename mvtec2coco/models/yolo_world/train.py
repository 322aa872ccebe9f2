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

import yaml

from ...errors import Mvtec2CocoError, OptionError
from ...runtime.ultralytics_env import quiet_offline_ultralytics
from ..classifier.config import settings_from_yaml
from ..common.devices import ultralytics_device
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
    """Training settings; every key maps to an ultralytics train argument except the text ones."""

    model: str = "yolov8s-worldv2.yaml"  # a .yaml (random init) or a local .pt; plain YOLO works too
    epochs: int = 50
    imgsz: int = 640
    batch: int = 8
    device: str = ""  # "" = ultralytics' choice; "cpu", "0", "0,1,2,3" (DDP)
    lr0: float = 0.002
    optimizer: str = "AdamW"
    cos_lr: bool = True
    warmup_epochs: float = 3.0
    mosaic: float = 1.0
    close_mosaic: int = 10
    freeze: int | None = None
    patience: int = 30
    workers: int = 4
    seed: int = 0
    plots: bool = True
    amp: bool = True  # forced off on CPU
    text_encoder: str = "clip"  # clip (needs clip_weights) | random | clip-random (both: smoke tests only)
    clip_weights: str | None = None
    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    category: str = "product"  # fills {category} in the templates
    class_words: dict = field(default_factory=dict)  # class name -> words for the text encoder

    def train_args(self) -> dict:
        keys = ("epochs", "imgsz", "batch", "lr0", "optimizer", "cos_lr", "warmup_epochs", "mosaic", "close_mosaic",
                "freeze", "patience", "workers", "seed", "plots")
        args = {k: getattr(self, k) for k in keys if getattr(self, k) is not None}
        if self.device not in ("", None):
            args["device"] = ultralytics_device(self.device)
        args["amp"] = self.amp and args.get("device") not in ("cpu",)
        return args


def load_detector_config(path: Path | None, overrides: dict) -> DetectorConfig:
    values = settings_from_yaml(path, overrides)
    if "templates" in values:
        values["templates"] = tuple(values["templates"])
    try:
        return DetectorConfig(**values)
    except TypeError as exc:
        raise OptionError(f"unknown detector setting: {exc}", path) from exc


def is_world(model: str) -> bool:
    return "world" in Path(model).name.lower()


def resolve_model(model: str) -> str:
    """A ``.yaml`` ultralytics knows, or an existing local ``.pt``; never a download."""
    if model.endswith((".yaml", ".yml")):
        return model
    path = Path(model)
    if not path.is_file():
        raise DetectorWeightsError(
            "detector weights not found (nothing is downloaded at run time)", path,
            f"download {path.name} from the ultralytics assets releases ({ASSETS}) on a machine with internet "
            f"access, copy it here and pass its path with --weights; or train from {path.stem}.yaml "
            "(random initialisation)")
    return str(path)


def _names(data_yaml: Path) -> list[str]:
    from ..common.files import read_data_yaml

    names = read_data_yaml(data_yaml)["names"]
    return [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)


def world_dataset(data_yaml: Path, out: Path) -> tuple[Path, list[str]]:
    """A copy of ``data.yaml`` whose class names contain no '/' (ultralytics reads '/' as synonyms)."""
    from ..common.files import read_data_yaml

    data = read_data_yaml(data_yaml)
    names = _names(data_yaml)
    texts = [n.replace("/", " ") for n in names]
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

        Console(stderr=True).print("warning: --text-encoder random: class embeddings are random unit vectors; "
                                   "the model cannot use the class names (smoke tests only)", markup=False)
        encoder = None
    elif cfg.text_encoder == "clip-random":  # open_clip's real code path with random weights: tests only
        encoder = ClipTextEncoder(None)
    elif cfg.text_encoder == "clip":
        if not cfg.clip_weights:
            raise OptionError("YOLO-World needs CLIP ViT-B-32 weights for the class-name embeddings",
                              hint="pass --clip-weights PATH (OpenAI ViT-B-32.pt or an open_clip ViT-B-32 "
                                   "checkpoint), or --text-encoder random for a smoke test")
        encoder = ClipTextEncoder(cfg.clip_weights)
    else:
        raise OptionError(f"unknown text encoder '{cfg.text_encoder}'", hint="use clip, random or clip-random")
    words = {n: class_words(n, cfg.class_words) for n in names}
    by_name = class_embeddings(names, encoder, cfg.templates, cfg.category, words, cfg.seed)
    return {t: by_name[n] for n, t in zip(names, texts)}


def train_detector(data_yaml: Path, out: Path, cfg: DetectorConfig) -> dict:
    """Train YOLO-World (``*world*`` models) or plain YOLO; returns ``summary.json``'s content."""
    quiet_offline_ultralytics()
    from ultralytics import YOLO, YOLOWorld
    from ultralytics.models.yolo.world.train import WorldTrainer

    out = Path(out).absolute()
    model_src = resolve_model(cfg.model)
    from ..common.files import load_weights, read_data_yaml

    read_data_yaml(data_yaml)
    if Path(model_src).suffix == ".pt":  # fail on a broken file here, not after ultralytics made the run folder
        from ultralytics.nn.tasks import load_checkpoint

        load_weights(model_src, "detector weights", load_checkpoint)
    args = {**cfg.train_args(), "project": str(out.parent), "name": out.name, "exist_ok": True, "verbose": False}
    if not is_world(model_src):
        YOLO(model_src).train(data=str(data_yaml), **args)
        return _summarize(out, data_yaml, world=False)
    derived, texts = world_dataset(data_yaml, out)
    table = text_table(_names(data_yaml), texts, cfg)
    save_table(table, out / TABLE_NAME)

    class OfflineWorldTrainer(WorldTrainer):
        """ultralytics' WorldTrainer, reading class-text embeddings from our table."""

        def generate_text_embeddings(self, texts, batch, cache_dir):  # noqa: ARG002 - ultralytics' signature
            return {t: table[t].to(self.device) for t in texts}

    with offline_text_features(table):
        YOLOWorld(model_src).train(data=str(derived), trainer=OfflineWorldTrainer, **args)
        return _summarize(out, derived, world=True)


def _metrics(model, data_yaml: Path, split: str, run: Path) -> dict | None:
    """Box metrics on ``split``; ultralytics' validation folder goes inside ``run``, not into
    ``runs/detect/`` under the current directory."""
    data = yaml.safe_load(Path(data_yaml).read_text())
    if split not in data:
        return None
    r = model.val(data=str(data_yaml), split=split, plots=False, verbose=False, project=str(Path(run).absolute()),
                  name=f"val_{split}", exist_ok=True)
    names = r.names if isinstance(r.names, dict) else dict(enumerate(r.names))
    per_class = {}
    for i, c in enumerate(r.box.ap_class_index):
        per_class[names[int(c)]] = {"ap50": float(r.box.ap50[i]), "ap50_95": float(r.box.ap[i]),
                                    "precision": float(r.box.p[i]), "recall": float(r.box.r[i])}
    return {"map50": float(r.box.map50), "map50_95": float(r.box.map), "precision": float(r.box.mp),
            "recall": float(r.box.mr), "per_class": per_class}


def _summarize(out: Path, data_yaml: Path, world: bool) -> dict:
    from ultralytics import YOLO, YOLOWorld

    best = out / "weights" / "best.pt"
    if not best.is_file():
        raise Mvtec2CocoError("training wrote no best.pt", out)
    model = (YOLOWorld if world else YOLO)(str(best))
    summary = {"weights": str(best), "world": world, "data": str(data_yaml)}
    for split in ("val", "test"):
        summary[split] = _metrics(model, data_yaml, split, out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _load(weights: Path):
    """YOLOWorld or YOLO, whichever network the checkpoint holds."""
    quiet_offline_ultralytics()
    from ultralytics import YOLO, YOLOWorld
    from ultralytics.nn.tasks import WorldModel, load_checkpoint

    from ..common.files import load_weights

    weights = Path(resolve_model(str(weights)))
    network, _ = load_weights(weights, "detector weights", load_checkpoint)
    return (YOLOWorld if isinstance(network, WorldModel) else YOLO)(str(weights)), isinstance(network, WorldModel)


def evaluate_detector(weights: Path, data_yaml: Path, split: str = "test", out: Path | None = None) -> dict:
    """Box metrics of ``weights`` on ``split``; no text encoder is needed (the checkpoint holds the
    class embeddings, and the class names are matched through the same renaming as training)."""
    model, world = _load(weights)
    data = data_yaml
    run = Path(out or Path(weights).parent.parent)
    if world:
        data, texts = world_dataset(data_yaml, run)
        model_names = list(model.names.values()) if isinstance(model.names, dict) else list(model.names)
        if model_names != texts:
            raise OptionError(f"the model was trained on classes {model_names}, the data has {texts}", data_yaml,
                              "evaluate on the data the model was trained on")
    result = _metrics(model, Path(data), split, run)
    if result is None:
        raise OptionError(f"data.yaml has no '{split}' subset", data_yaml)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"eval_{split}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def predict_detector(weights: Path, images: list[Path], out: Path, conf: float = 0.25, imgsz: int = 640,
                     device: str = "") -> Path:
    """Annotated images and ``detections.json`` (COCO: images, categories, annotations with score)."""
    import cv2

    from ...datasets.imageio import is_image_file

    model, _ = _load(weights)
    files: list[Path] = []
    for p in map(Path, images):
        files += sorted(f for f in p.rglob("*") if is_image_file(f)) if p.is_dir() else [p]
    if not files:
        raise OptionError("no images given")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = model.names if isinstance(model.names, dict) else dict(enumerate(model.names))
    coco = {"images": [], "annotations": [], "licenses": [], "info": {"description": "mvtec2coco predict"},
            "categories": [{"id": i + 1, "name": n, "supercategory": "defect"} for i, n in sorted(names.items())]}
    for image_id, path in enumerate(files, 1):
        if not path.is_file():
            raise OptionError("image does not exist", path)
        kwargs = {"conf": conf, "imgsz": imgsz, "verbose": False,
                  **({"device": ultralytics_device(device)} if device else {})}
        r = model.predict(str(path), **kwargs)[0]
        h, w = r.orig_shape
        coco["images"].append({"id": image_id, "file_name": path.name, "width": int(w), "height": int(h)})
        for (x0, y0, x1, y1), c, s in zip(r.boxes.xyxy.tolist(), r.boxes.cls.tolist(), r.boxes.conf.tolist()):
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": image_id,
                                        "category_id": int(c) + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                                        "area": (x1 - x0) * (y1 - y0), "score": round(float(s), 6), "iscrowd": 0})
        cv2.imwrite(str(out / f"{image_id:05d}_{path.stem}.png"), r.plot())
    path = out / "detections.json"
    path.write_text(json.dumps(coco))
    return path


__all__ = ["DetectorConfig", "evaluate_detector", "predict_detector", "train_detector"]
