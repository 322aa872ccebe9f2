"""Fine-tune Segment Anything's mask decoder on COCO instances with box prompts.

``Sam.forward`` and ``SamPredictor`` run under ``torch.no_grad()``, so the loop calls the image
encoder, prompt encoder and mask decoder directly. The image encoder is frozen: each image's
embedding is computed once and cached on disk (fp16), so every epoch after the first runs only
the prompt encoder and the decoder.

Resolution choice: the ground truth is brought to the decoder's resolution the same way the image
was brought to the encoder's — ``ResizeLongestSide`` to the encoder size, zero padding at the
bottom and right, then area-averaged down to the decoder's low-resolution grid (a quarter of the
encoder size), giving soft targets in [0, 1]. The loss is computed there, which is what the
decoder predicts; evaluation upsamples predictions to the original image with
``Sam.postprocess_masks`` and compares them with the full-resolution masks.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...errors import OptionError
from ..common.devices import pick_device, ultralytics_device
from .network import SPECS, build_sam


@dataclass(frozen=True)
class SamTrainConfig:
    model_type: str = "vit_b"
    checkpoint: str = "none"
    epochs: int = 10
    max_steps: int = 0  # 0: no limit; a bounded number of optimizer steps otherwise
    images_per_step: int = 4
    max_prompts: int = 16  # instances per image per step
    lr: float = 1e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    train_prompt_encoder: bool = False
    box_jitter: float = 0.1  # up to this fraction of the box side, per edge
    points_inside: int = 0  # optional point prompts sampled inside the mask ...
    points_outside: int = 0  # ... and outside it, within the box
    mask_loss: str = "focal"  # focal | bce
    focal_weight: float = 20.0  # SAM's 20:1 focal:dice
    dice_weight: float = 1.0
    iou_weight: float = 1.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # CUDA only

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CocoSet:
    """Images of one COCO file with their instances as full-resolution masks (decoded lazily)."""

    path: Path
    images_dir: Path
    images: list[dict]
    anns: dict[int, list[dict]]
    categories: dict[int, str]
    coco: object = field(repr=False, default=None)

    def masks(self, image_id: int) -> list[np.ndarray]:
        return [self.coco.annToMask(a) for a in self.anns.get(image_id, [])]  # type: ignore[attr-defined]


def load_sam_config(path: Path | None, overrides: dict) -> SamTrainConfig:
    """``configs/sam/*.yaml`` settings with command-line overrides on top."""
    from ..classifier.config import settings_from_yaml

    try:
        return SamTrainConfig(**settings_from_yaml(path, overrides))
    except TypeError as exc:
        raise OptionError(f"unknown SAM training setting: {exc}", path) from exc


def load_coco(path: Path, images_dir: Path | None = None) -> CocoSet:
    """A COCO file from `convert`; images sit in ``images/<subset>/`` beside ``annotations/``."""
    from pycocotools.coco import COCO

    from ..common.files import check_coco_json

    path = check_coco_json(path)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    subset = path.stem.replace("instances_", "")
    folder = Path(images_dir) if images_dir else path.parent.parent / "images" / subset
    anns: dict[int, list[dict]] = {}
    for a in coco.dataset["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    cats = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    return CocoSet(path, folder, sorted(coco.dataset["images"], key=lambda i: i["id"]), anns, cats, coco)


class EmbeddingCache:
    """Image embeddings computed once per (image file, encoder) and kept on disk in fp16."""

    def __init__(self, sam, folder: Path, identity: str):
        from segment_anything.utils.transforms import ResizeLongestSide

        self.sam = sam
        self.folder = Path(folder)
        self.identity = identity
        self.transform = ResizeLongestSide(sam.image_encoder.img_size)
        self.encoder_calls = 0
        self.memory: dict[str, torch.Tensor] = {}

    def _key(self, path: Path) -> str:
        stat = path.stat()
        text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.identity}"
        return hashlib.sha1(text.encode()).hexdigest()

    def get(self, path: Path) -> torch.Tensor:
        key = self._key(path)
        if key in self.memory:
            return self.memory[key]
        file = self.folder / f"{key}.pt"
        if file.is_file():
            emb = torch.load(file, map_location="cpu", weights_only=True)
        else:
            emb = self._encode(path).half().cpu()
            self.folder.mkdir(parents=True, exist_ok=True)
            torch.save(emb, file)
        self.memory[key] = emb
        return emb

    @torch.no_grad()
    def _encode(self, path: Path) -> torch.Tensor:
        self.encoder_calls += 1
        image = read_rgb(path)
        x = torch.as_tensor(self.transform.apply_image(image)).permute(2, 0, 1)[None].float()
        device = next(self.sam.parameters()).device
        return self.sam.image_encoder(self.sam.preprocess(x.to(device)))


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        from ...errors import BrokenFileError

        raise BrokenFileError("image cannot be decoded", path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def encoder_identity(model_type: str, checkpoint: str, seed: int) -> str:
    """What makes two encoders produce the same embeddings (checkpoint file, or the random seed)."""
    if checkpoint in ("none", "", None):
        return f"{model_type}|random|{seed}"
    p = Path(checkpoint)
    return f"{model_type}|{p.resolve()}|{p.stat().st_size}|{p.stat().st_mtime_ns}"


def low_res_target(mask: np.ndarray, image_size: int) -> np.ndarray:
    """Full-resolution 0/1 mask -> soft target on the decoder grid (ResizeLongestSide + pad + area)."""
    h, w = mask.shape
    scale = image_size / max(h, w)
    nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
    resized = cv2.resize(mask.astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA)
    padded = np.zeros((image_size, image_size), np.float32)
    padded[:nh, :nw] = resized
    low = image_size // 4
    return cv2.resize(padded, (low, low), interpolation=cv2.INTER_AREA)


def jitter_boxes(boxes: np.ndarray, jitter: float, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """XYXY boxes with each edge moved by up to ``jitter`` x the box side, clipped to the image."""
    boxes = boxes.astype(np.float64).copy()
    if jitter > 0:
        side = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
        boxes += rng.uniform(-jitter, jitter, size=boxes.shape) * np.maximum(side, 1.0)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width - 1)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height - 1)
    x0, x1 = np.minimum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 0], boxes[:, 2])
    y0, y1 = np.minimum(boxes[:, 1], boxes[:, 3]), np.maximum(boxes[:, 1], boxes[:, 3])
    return np.stack([x0, y0, x1, y1], axis=1)


def sample_points(masks: list[np.ndarray], boxes: np.ndarray, inside: int, outside: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """(N, P, 2) xy points and (N, P) labels (1 inside the mask, 0 outside it but inside the box)."""
    if inside + outside == 0:
        return None
    coords, labels = [], []
    for mask, (x0, y0, x1, y1) in zip(masks, boxes):
        ys, xs = np.nonzero(mask)
        pick = rng.integers(0, len(xs), size=inside)
        pts = [(xs[i], ys[i], 1) for i in pick]
        box = np.zeros_like(mask)
        box[int(y0) : int(y1) + 1, int(x0) : int(x1) + 1] = 1
        oys, oxs = np.nonzero(box & (mask == 0))
        for _ in range(outside):
            if len(oxs):
                i = int(rng.integers(len(oxs)))
                pts.append((oxs[i], oys[i], 0))
            else:  # the mask fills its box: repeat an inside point as negative-free padding
                pts.append((xs[pick[0]] if inside else xs[0], ys[pick[0]] if inside else ys[0], 1))
        coords.append([(p[0], p[1]) for p in pts])
        labels.append([p[2] for p in pts])
    return np.asarray(coords, np.float64), np.asarray(labels, np.int64)


def mask_losses(logits: torch.Tensor, target: torch.Tensor, iou_pred: torch.Tensor, kind: str = "focal"
                ) -> dict[str, torch.Tensor]:
    """Focal (or BCE) + dice on (N, H, W) logits vs soft targets, and MSE of predicted vs true IoU."""
    from torchvision.ops import sigmoid_focal_loss

    if kind == "focal":
        mask_loss = sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="mean")
    elif kind == "bce":
        mask_loss = F.binary_cross_entropy_with_logits(logits, target)
    else:
        raise OptionError(f"unknown mask loss '{kind}'", hint="use focal or bce")
    prob = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = 1.0 - (2 * (prob * t).sum(1) + 1.0) / (prob.sum(1) + t.sum(1) + 1.0)
    with torch.no_grad():
        pred = (logits > 0).flatten(1).float()
        hard = (t > 0.5).float()
        inter = (pred * hard).sum(1)
        true_iou = inter / (pred.sum(1) + hard.sum(1) - inter).clamp(min=1.0)
    return {"mask": mask_loss, "dice": dice.mean(), "iou": F.mse_loss(iou_pred.float(), true_iou),
            "true_iou": true_iou}


def decode(sam, embedding: torch.Tensor, boxes: np.ndarray, points, original: tuple[int, int], transform):
    """Prompt encoder + mask decoder for one image's prompts: (N, 1, h, w) low-res logits, (N, 1) IoU."""
    device = embedding.device
    box_t = torch.as_tensor(transform.apply_boxes(boxes, original), dtype=torch.float32, device=device)
    pts = None
    if points is not None:
        coords = torch.as_tensor(transform.apply_coords(points[0], original), dtype=torch.float32, device=device)
        pts = (coords, torch.as_tensor(points[1], device=device))
    sparse, dense = sam.prompt_encoder(points=pts, boxes=box_t, masks=None)
    return sam.mask_decoder(image_embeddings=embedding, image_pe=sam.prompt_encoder.get_dense_pe(),
                            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False)


def _boxes_xyxy(anns: list[dict]) -> np.ndarray:
    return np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2] - 1, a["bbox"][1] + a["bbox"][3] - 1]
                     for a in anns], np.float64)


def train_sam(train_file: Path, val_file: Path | None, out: Path, cfg: SamTrainConfig,
              cache_dir: Path | None = None, test_file: Path | None = None, progress: bool = True) -> dict:
    """Fine-tune; writes ``decoder.pt`` (trained parts), ``metrics.jsonl``, ``summary.json``, overlays."""
    from segment_anything.utils.transforms import ResizeLongestSide

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = pick_device(cfg.device)
    sam = build_sam(cfg.model_type, cfg.checkpoint).to(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = EmbeddingCache(sam, cache_dir or out / "embeddings", encoder_identity(cfg.model_type, cfg.checkpoint,
                                                                                   cfg.seed))
    transform = ResizeLongestSide(sam.image_encoder.img_size)
    size = SPECS[cfg.model_type].image_size
    train_set = load_coco(train_file)
    items = [img for img in train_set.images if train_set.anns.get(img["id"])]
    if not items:
        raise OptionError("the training COCO file has no annotations", train_file)
    targets: dict[int, torch.Tensor] = {}  # image id -> soft low-resolution targets of its instances
    full_masks: dict[int, list[np.ndarray]] = {}  # image id -> full-resolution masks (for point prompts)
    eval_sets = {name: load_coco(f) for name, f in (("val", val_file), ("test", test_file)) if f}
    before = {name: evaluate_sam(sam, s, cache, transform) for name, s in eval_sets.items()}
    for p in sam.parameters():
        p.requires_grad_(False)
    trained = [sam.mask_decoder] + ([sam.prompt_encoder] if cfg.train_prompt_encoder else [])
    params = [p for m in trained for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(items) / cfg.images_per_step)
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps))
                                                  * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    log = open(out / "metrics.jsonl", "w")
    step, t_cache, t_steps = 0, 0.0, []
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(items))
        sam.mask_decoder.train()
        epoch_ious, epoch_losses = [], []
        for start in range(0, len(order), cfg.images_per_step):
            if cfg.max_steps and step >= cfg.max_steps:
                break
            t0 = time.perf_counter()
            loss_total = 0.0
            optimizer.zero_grad(set_to_none=True)
            for idx in order[start : start + cfg.images_per_step]:
                img = items[int(idx)]
                anns = train_set.anns[img["id"]][: cfg.max_prompts]
                tc = time.perf_counter()
                emb = cache.get(train_set.images_dir / img["file_name"]).to(device).float()
                t_cache += time.perf_counter() - tc
                if img["id"] not in targets:
                    full_masks[img["id"]] = train_set.masks(img["id"])
                    targets[img["id"]] = torch.as_tensor(np.stack([low_res_target(m, size)
                                                                   for m in full_masks[img["id"]]]))
                target = targets[img["id"]][: len(anns)].to(device)
                full = full_masks[img["id"]][: len(anns)]
                shape = (img["height"], img["width"])
                boxes = jitter_boxes(_boxes_xyxy(anns), cfg.box_jitter, *shape, rng)
                points = sample_points(full, boxes, cfg.points_inside, cfg.points_outside, rng)
                with torch.autocast(device.type, enabled=use_amp):
                    logits, iou_pred = decode(sam, emb, boxes, points, shape, transform)
                    parts = mask_losses(logits[:, 0].float(), target, iou_pred[:, 0], cfg.mask_loss)
                    loss = (cfg.focal_weight * parts["mask"] + cfg.dice_weight * parts["dice"]
                            + cfg.iou_weight * parts["iou"]) / cfg.images_per_step
                scaler.scale(loss).backward()
                loss_total += float(loss.detach())
                epoch_ious += parts["true_iou"].tolist()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            epoch_losses.append(loss_total)
            t_steps.append(time.perf_counter() - t0)
        record = {"epoch": epoch + 1, "step": step, "loss": float(np.mean(epoch_losses)) if epoch_losses else None,
                  "train_iou": float(np.mean(epoch_ious)) if epoch_ious else None,
                  "encoder_calls": cache.encoder_calls, "lr": scheduler.get_last_lr()[0]}
        log.write(json.dumps(record) + "\n")
        log.flush()
        if progress:
            from rich.console import Console

            Console(stderr=True).print(f"epoch {epoch + 1}: loss {record['loss']:.4f}, train IoU "
                                       f"{record['train_iou']:.3f}, encoder calls {cache.encoder_calls}")
        if cfg.max_steps and step >= cfg.max_steps:
            break
    log.close()
    state = {"model_type": cfg.model_type, "config": cfg.to_dict(),
             "mask_decoder": sam.mask_decoder.state_dict()}
    if cfg.train_prompt_encoder:
        state["prompt_encoder"] = sam.prompt_encoder.state_dict()
    torch.save(state, out / "decoder.pt")
    after = {name: evaluate_sam(sam, s, cache, transform, out / f"overlay_{name}.png") for name, s in eval_sets.items()}
    summary = {"steps": step, "encoder_calls": cache.encoder_calls,
               "seconds_per_step": round(float(np.median(t_steps)), 4) if t_steps else None,
               "embedding_cache_seconds": round(t_cache, 2),
               "gpu_max_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.type == "cuda" else None,
               "before": before, "after": after}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def load_trained(sam, path: Path | str | None):
    """Put a ``decoder.pt`` of ``train_sam`` into ``sam`` (CPU or GPU, whatever it was saved on)."""
    if not path:
        return sam
    path = Path(path)
    if not path.is_file():
        raise OptionError("trained decoder file does not exist", path, "pass RUN/decoder.pt of `train sam`")
    from ..common.files import load_weights, torch_file

    state = torch_file(path, "trained SAM decoder", weights_only=False)

    def put(_: str):
        sam.mask_decoder.load_state_dict(state["mask_decoder"])
        if "prompt_encoder" in state:
            sam.prompt_encoder.load_state_dict(state["prompt_encoder"])
        return sam

    return load_weights(path, "trained SAM decoder", put)


@torch.no_grad()
def evaluate_sam(sam, data: CocoSet, cache: EmbeddingCache, transform, overlay: Path | None = None) -> dict:
    """Mean IoU and Dice per class at full resolution, prompts = the exact instance boxes."""
    sam.eval()
    per_class: dict[str, list[tuple[float, float]]] = {}
    cases = []
    device = next(sam.parameters()).device
    for img in data.images:
        anns = data.anns.get(img["id"], [])
        if not anns:
            continue
        emb = cache.get(data.images_dir / img["file_name"]).to(device).float()
        shape = (img["height"], img["width"])
        logits, _ = decode(sam, emb, _boxes_xyxy(anns), None, shape, transform)
        masks = sam.postprocess_masks(logits, transform.get_preprocess_shape(*shape, transform.target_length),
                                      shape)[:, 0] > 0
        for ann, pred, truth in zip(anns, masks.cpu().numpy(), data.masks(img["id"])):
            inter = np.count_nonzero(pred & (truth > 0))
            union = np.count_nonzero(pred | (truth > 0))
            iou = inter / union if union else 1.0
            dice = 2 * inter / max(1, np.count_nonzero(pred) + np.count_nonzero(truth))
            per_class.setdefault(data.categories[ann["category_id"]], []).append((iou, dice))
            cases.append((iou, img, ann, pred, truth))
    out = {name: {"instances": len(v), "iou": float(np.mean([a for a, _ in v])), "dice": float(np.mean([b for _, b in v]))}
           for name, v in sorted(per_class.items())}
    everything = [x for v in per_class.values() for x in v]
    out["all"] = {"instances": len(everything), "iou": float(np.mean([a for a, _ in everything])) if everything else None,
                  "dice": float(np.mean([b for _, b in everything])) if everything else None}
    if overlay is not None and cases:
        _overlay(sorted(cases, key=lambda c: c[0]), data, overlay)
    return out


def _overlay(cases: list, data: CocoSet, path: Path, n: int = 4) -> None:
    """Worst n (top row) and best n (bottom row) instances: prediction red, ground truth green outline."""
    picks = [cases[: n], cases[-n:][::-1]]
    rows = []
    for row in picks:
        tiles = []
        for iou, img, ann, pred, truth in row:
            image = cv2.cvtColor(read_rgb(data.images_dir / img["file_name"]), cv2.COLOR_RGB2BGR)
            x, y, w, h = (int(v) for v in ann["bbox"])
            pad = max(8, max(w, h) // 2)
            y0, y1 = max(0, y - pad), min(img["height"], y + h + pad)
            x0, x1 = max(0, x - pad), min(img["width"], x + w + pad)
            crop = image[y0:y1, x0:x1].copy()
            red = crop.copy()
            red[pred[y0:y1, x0:x1]] = (0, 0, 255)
            crop = cv2.addWeighted(red, 0.45, crop, 0.55, 0)
            contours, _ = cv2.findContours((truth[y0:y1, x0:x1] > 0).astype(np.uint8), cv2.RETR_LIST,
                                           cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(crop, contours, -1, (0, 255, 0), 1)
            tile = cv2.resize(crop, (160, 160), interpolation=cv2.INTER_NEAREST)
            cv2.putText(tile, f"IoU {iou:.2f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
        while len(tiles) < n:
            tiles.append(np.zeros((160, 160, 3), np.uint8))
        rows.append(np.concatenate(tiles, axis=1))
    cv2.imwrite(str(path), np.concatenate(rows, axis=0))


def boxes_from_coco(data: CocoSet, image: Path) -> tuple[np.ndarray, list[str], list[float]]:
    """The COCO file's boxes for ``image`` (matched by path relative to the images folder, else name)."""
    for img in data.images:
        if (data.images_dir / img["file_name"]).resolve() == image.resolve() or Path(img["file_name"]).name == image.name:
            anns = data.anns.get(img["id"], [])
            return _boxes_xyxy(anns).reshape(-1, 4), [data.categories[a["category_id"]] for a in anns], [1.0] * len(anns)
    return np.zeros((0, 4)), [], []


def boxes_from_yolo(weights: Path, images: list[Path], conf: float, max_det: int, device: str) -> dict:
    """Detector boxes per image from an ultralytics model (YOLO or YOLO-World) file."""
    from ...runtime.ultralytics_env import quiet_offline_ultralytics

    quiet_offline_ultralytics()
    from ultralytics import YOLO

    if not Path(weights).is_file():
        raise OptionError("detector weights do not exist", weights, "pass RUN/weights/best.pt of a YOLO training")
    from ..common.files import load_weights

    model = load_weights(weights, "detector weights", YOLO)
    out = {}
    for image in images:
        r = model.predict(str(image), conf=conf, max_det=max_det, device=ultralytics_device(device), verbose=False)[0]
        xyxy = r.boxes.xyxy.cpu().numpy().astype(np.float64)
        out[image] = (xyxy, [r.names[int(c)] for c in r.boxes.cls.cpu().numpy()], r.boxes.conf.cpu().numpy().tolist())
    return out


@torch.no_grad()
def predict_sam(checkpoint: str, model_type: str, images: list[Path], out: Path, trained: Path | None = None,
                coco_file: Path | None = None, yolo_weights: Path | None = None, conf: float = 0.25,
                max_det: int = 100, device: str = "auto", cache_dir: Path | None = None) -> Path:
    """Boxes (from a COCO file or a detector) -> SAM masks -> ``OUT/predictions.json`` (COCO) + overlays."""
    from pycocotools import mask as mask_utils
    from segment_anything.utils.transforms import ResizeLongestSide

    if (coco_file is None) == (yolo_weights is None):
        raise OptionError("give exactly one box source: --coco or --boxes-from-yolo")
    torch_device = pick_device(device)
    sam = load_trained(build_sam(model_type, checkpoint).to(torch_device), trained).eval()
    transform = ResizeLongestSide(sam.image_encoder.img_size)
    cache = EmbeddingCache(sam, cache_dir or Path(out) / "embeddings", encoder_identity(model_type, checkpoint, 0))
    coco = load_coco(coco_file) if coco_file else None
    if not images and coco is not None:
        images = [coco.images_dir / img["file_name"] for img in coco.images]
    images = [Path(p) for p in images]
    detections = boxes_from_yolo(yolo_weights, images, conf, max_det, device) if yolo_weights else None
    out = Path(out)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    result = {"info": {"description": "SAM masks from box prompts (mvtec2coco predict sam)"}, "licenses": [],
              "images": [], "annotations": [], "categories": []}
    for image_id, path in enumerate(images, 1):
        rgb = read_rgb(path)
        h, w = rgb.shape[:2]
        boxes, labels, scores = detections[path] if detections else boxes_from_coco(coco, path)
        result["images"].append({"id": image_id, "file_name": path.name, "width": w, "height": h})
        overlay = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if len(boxes):
            emb = cache.get(path).to(torch_device).float()
            logits, iou_pred = decode(sam, emb, boxes, None, (h, w), transform)
            masks = sam.postprocess_masks(logits, transform.get_preprocess_shape(h, w, transform.target_length),
                                          (h, w))[:, 0].cpu().numpy() > 0
            for k, (mask, label, score) in enumerate(zip(masks, labels, scores)):
                if label not in names:
                    names.append(label)
                rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                x0, y0, x1, y1 = boxes[k]
                result["annotations"].append({
                    "id": len(result["annotations"]) + 1, "image_id": image_id, "category_id": names.index(label) + 1,
                    "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
                    "area": int(mask.sum()), "bbox": [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)],
                    "iscrowd": 0, "score": round(float(score) * float(iou_pred[k, 0]), 6)})
                colour = (0, 0, 255)
                tinted = overlay.copy()
                tinted[mask] = colour
                overlay = cv2.addWeighted(tinted, 0.4, overlay, 0.6, 0)
                cv2.rectangle(overlay, (int(x0), int(y0)), (int(x1), int(y1)), (0, 255, 255), 1)
                cv2.putText(overlay, label, (int(x0), max(10, int(y0) - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                            (0, 255, 255), 1, cv2.LINE_AA)
        cv2.imwrite(str(out / "overlays" / f"{image_id:05d}_{path.stem}.png"), overlay)
    result["categories"] = [{"id": i + 1, "name": n, "supercategory": "defect"} for i, n in enumerate(names)]
    (out / "predictions.json").write_text(json.dumps(result))
    return out / "predictions.json"
