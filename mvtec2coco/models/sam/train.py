"""Fine-tune Segment Anything's mask decoder on a conversion's COCO instances with box prompts.

Laid out like torchvision's references: ``SamConfig`` (config.py) holds every hyperparameter,
``load_subsets`` the data, ``train_one_epoch`` and ``evaluate`` one pass each, ``main`` the run.
A run folder holds ``config.yaml`` (resolved settings), ``last.pt`` (everything needed to resume:
trained parts, optimizer, scheduler, scaler, epoch, step and random states), ``decoder.pt`` (the
trained parts, what ``sam eval`` / ``sam predict`` load), ``metrics.jsonl``, ``summary.json``,
overlays and the embedding cache ``embeddings/``.

How prompts, targets and losses are built: ``data.py``.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ...errors import OptionError
from ...formats import coco
from ...geometry.boxes import edges_of_bbox, sam_prompts
from ..common import config as configs
from ..common import distributed
from ..common.devices import pick_device
from ..common.files import torch_file
from .config import SamConfig
from .data import (
    EmbeddingCache,
    decode,
    encoder_identity,
    jitter_boxes,
    low_res_target,
    mask_losses,
    read_rgb,
    sample_points,
    upsample,
)
from .network import SPECS, build_sam

SUBSETS = ("train", "val", "test")


def load_subsets(data: Path | str) -> dict[str, coco.CocoSet]:
    """The conversion's COCO subsets that exist (train is required)."""
    if not str(data):
        raise OptionError("no data: pass --data OUT (a conversion with COCO ground truth)")
    found = {}
    for name in SUBSETS:
        try:
            found[name] = coco.load(coco.subset_file(data, name))
        except coco.CocoFileError:
            if name == "train" or not Path(data).is_dir():
                raise
    return found


def prompts_of(anns: list[dict]) -> np.ndarray:
    """SAM box prompts of ground-truth annotations (COCO boxes are pixel edges)."""
    return sam_prompts(edges_of_bbox([a["bbox"] for a in anns]))


@dataclass
class Targets:
    """Per training image, its instances as soft decoder-grid targets and full-resolution masks."""

    size: int
    low: dict[int, torch.Tensor] = field(default_factory=dict)
    full: dict[int, list[np.ndarray]] = field(default_factory=dict)

    def get(self, data: coco.CocoSet, image_id: int) -> tuple[torch.Tensor, list[np.ndarray]]:
        if image_id not in self.low:
            self.full[image_id] = data.masks(image_id)
            self.low[image_id] = torch.as_tensor(np.stack([low_res_target(m, self.size) for m in self.full[image_id]]))
        return self.low[image_id], self.full[image_id]


def build_optimizer(cfg: SamConfig, params: list, total_steps: int):
    """AdamW with stock schedulers: LinearLR warm-up, then CosineAnnealingLR to zero."""
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = max(1, min(cfg.warmup_steps, total_steps))
    schedulers = [torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / warmup, total_iters=warmup),
                  torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup))]
    scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, schedulers, milestones=[warmup])
    return optimizer, scheduler


def shard(order: np.ndarray, per_step: int, d: distributed.Dist) -> list[np.ndarray]:
    """This rank's images of each optimizer step: every step takes ``per_step`` images per rank
    from the shared order, padded by wrapping around so that all ranks take the same steps."""
    block = per_step * d.world
    steps = math.ceil(len(order) / block)
    padded = np.resize(order, steps * block)
    return [padded[s * block + d.rank * per_step : s * block + (d.rank + 1) * per_step] for s in range(steps)]


def train_one_epoch(sam, data: coco.CocoSet, items: list[dict], cache: EmbeddingCache, targets: Targets, optimizer,
                    scheduler, scaler, cfg: SamConfig, order_rng: np.random.Generator, prompt_rng: np.random.Generator,
                    transform, step: int, d: distributed.Dist | None = None) -> dict:
    """One pass over the training images in a seeded order (this rank's shard of it under
    ``torchrun``, gradients averaged over ranks as DistributedDataParallel does); returns the
    epoch's record."""
    d = d or distributed.Dist()
    device = next(sam.parameters()).device
    use_amp = scaler.is_enabled()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    sam.mask_decoder.train()
    ious, losses, seconds, cache_s = [], [], [], 0.0
    for chunk in shard(order_rng.permutation(len(items)), cfg.images_per_step, d):
        if cfg.max_steps and step >= cfg.max_steps:
            break
        t0 = time.perf_counter()
        loss_total = 0.0
        optimizer.zero_grad(set_to_none=True)
        for idx in chunk:
            img = items[int(idx)]
            anns = data.annotations(img["id"])[: cfg.max_prompts]
            tc = time.perf_counter()
            emb = cache.get(data.images_dir / img["file_name"]).to(device).float()
            cache_s += time.perf_counter() - tc
            low, full = targets.get(data, img["id"])
            target, full = low[: len(anns)].to(device), full[: len(anns)]
            shape = (img["height"], img["width"])
            boxes = jitter_boxes(prompts_of(anns), cfg.box_jitter, *shape, prompt_rng)
            points = sample_points(full, boxes, cfg.points_inside, cfg.points_outside, prompt_rng)
            with torch.autocast(device.type, enabled=use_amp):
                logits, iou_pred = decode(sam, emb, boxes, points, shape, transform)
                parts = mask_losses(logits[:, 0].float(), target, iou_pred[:, 0], cfg.mask_loss)
                loss = (cfg.focal_weight * parts["mask"] + cfg.dice_weight * parts["dice"]
                        + cfg.iou_weight * parts["iou"]) / cfg.images_per_step
            scaler.scale(loss).backward()
            loss_total += float(loss.detach())
            ious += parts["true_iou"].tolist()
        if d.enabled:  # what DistributedDataParallel does, for a step of several forward passes
            distributed.average_gradients(params, d)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        step += 1
        losses.append(loss_total)
        seconds.append(time.perf_counter() - t0)
    loss = distributed.mean(float(np.mean(losses)), d) if losses else None
    iou = distributed.mean(float(np.mean(ious)), d) if ious else None
    return {"step": step, "loss": loss, "train_iou": iou, "encoder_calls": cache.encoder_calls,
            "lr": scheduler.get_last_lr()[0], "seconds_per_step": seconds, "cache_seconds": cache_s}


@torch.no_grad()
def evaluate(sam, data: coco.CocoSet, cache: EmbeddingCache, transform, overlay: Path | None = None) -> dict:
    """Mean IoU and Dice per class at full resolution, prompts = the exact instance boxes."""
    sam.eval()
    per_class: dict[str, list[tuple[float, float]]] = {}
    cases = []
    device = next(sam.parameters()).device
    names = data.categories
    for img in data.images:
        anns = data.annotations(img["id"])
        if not anns:
            continue
        emb = cache.get(data.images_dir / img["file_name"]).to(device).float()
        shape = (img["height"], img["width"])
        logits, _ = decode(sam, emb, prompts_of(anns), None, shape, transform)
        for ann, pred, truth in zip(anns, upsample(sam, logits, shape, transform), data.masks(img["id"])):
            inter = np.count_nonzero(pred & (truth > 0))
            union = np.count_nonzero(pred | (truth > 0))
            iou = inter / union if union else 1.0
            dice = 2 * inter / max(1, np.count_nonzero(pred) + np.count_nonzero(truth))
            per_class.setdefault(names[ann["category_id"]], []).append((iou, dice))
            cases.append((iou, img, ann, pred, truth))
    out = {name: {"instances": len(v), "iou": float(np.mean([a for a, _ in v])), "dice": float(np.mean([b for _, b in v]))}
           for name, v in sorted(per_class.items())}
    everything = [x for v in per_class.values() for x in v]
    out["all"] = {"instances": len(everything), "iou": float(np.mean([a for a, _ in everything])) if everything else None,
                  "dice": float(np.mean([b for _, b in everything])) if everything else None}
    if overlay is not None and cases:
        _overlay(sorted(cases, key=lambda c: c[0]), data, overlay)
    return out


def trained_parts(sam, cfg: SamConfig) -> list[torch.nn.Module]:
    return [sam.mask_decoder] + ([sam.prompt_encoder] if cfg.train_prompt_encoder else [])


def _decoder_state(sam, cfg: SamConfig) -> dict:
    state = {"model_type": cfg.model_type, "config": configs.to_dict(cfg), "mask_decoder": sam.mask_decoder.state_dict()}
    if cfg.train_prompt_encoder:
        state["prompt_encoder"] = sam.prompt_encoder.state_dict()
    return state


def _random_states(order_rng: np.random.Generator, prompt_rng: np.random.Generator, d: distributed.Dist) -> dict:
    """Random states to resume from: the shared order, and each rank's prompt jitter."""
    return {"numpy": order_rng.bit_generator.state, "torch": torch.get_rng_state(), "python": random.getstate(),
            "prompts": distributed.gather(prompt_rng.bit_generator.state, d)}


def main(cfg: SamConfig, out: Path, resume: bool = False, cache_dir: Path | None = None, progress: bool = True) -> dict:
    """Train as configured into ``out`` (or continue the run there); returns ``summary.json``'s
    content. Under ``torchrun --nproc_per_node N`` each process trains on its shard of every step,
    the embedding cache is computed sharded and written once, and rank 0 alone writes the run."""
    device = pick_device(cfg.device)
    d = distributed.setup(device)
    if device.type == "cuda" and d.enabled:
        device = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(device)
    try:
        return _main(cfg, Path(out), resume, cache_dir, progress, device, d)
    finally:
        distributed.teardown(d)


def _main(cfg: SamConfig, out: Path, resume: bool, cache_dir: Path | None, progress: bool, device: torch.device,
          d: distributed.Dist) -> dict:
    from segment_anything.utils.transforms import ResizeLongestSide

    torch.manual_seed(cfg.seed)
    order_rng = np.random.default_rng(cfg.seed)
    prompt_rng = np.random.default_rng([cfg.seed, d.rank])
    checkpoint = torch_file(out / "last.pt", "SAM training checkpoint", weights_only=False) if resume else None
    if checkpoint is not None and len(checkpoint["random"]["prompts"]) != d.world:
        raise OptionError(f"the run was trained by {len(checkpoint['random']['prompts'])} process(es), not {d.world}",
                          out, "resume it with the same number of processes")
    subsets = load_subsets(cfg.data)
    train_set = subsets["train"]
    items = [img for img in train_set.images if train_set.annotations(img["id"])]
    if not items:
        raise OptionError("the training COCO file has no annotations", train_set.path)
    sam = build_sam(cfg.model_type, cfg.checkpoint, cfg.seed).to(device)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    distributed.barrier(d)
    cache = EmbeddingCache(sam, cache_dir or out / "embeddings", encoder_identity(cfg.model_type, cfg.checkpoint, cfg.seed))
    cache.fill([s.images_dir / img["file_name"] for s in subsets.values() for img in s.images
                if s.annotations(img["id"])], d.rank, d.world)  # the images training and evaluation prompt
    distributed.barrier(d)  # every embedding is on disk before any rank reads one
    transform = ResizeLongestSide(sam.image_encoder.img_size)
    targets = Targets(SPECS[cfg.model_type].image_size)
    eval_sets = {k: v for k, v in subsets.items() if k != "train"}
    for p in sam.parameters():
        p.requires_grad_(False)
    params = [p for m in trained_parts(sam, cfg) for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    total = cfg.max_steps or cfg.epochs * math.ceil(len(items) / (cfg.images_per_step * d.world))
    optimizer, scheduler = build_optimizer(cfg, params, total)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and device.type == "cuda")
    epoch, step, records, seconds, before = 0, 0, [], [], {}
    if checkpoint is not None:
        sam.mask_decoder.load_state_dict(checkpoint["model"]["mask_decoder"])
        if "prompt_encoder" in checkpoint["model"]:
            sam.prompt_encoder.load_state_dict(checkpoint["model"]["prompt_encoder"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        epoch, step, records, before = checkpoint["epoch"], checkpoint["step"], checkpoint["records"], checkpoint["before"]
        order_rng.bit_generator.state = checkpoint["random"]["numpy"]
        prompt_rng.bit_generator.state = checkpoint["random"]["prompts"][d.rank]
        torch.set_rng_state(checkpoint["random"]["torch"])
        random.setstate(checkpoint["random"]["python"])
    elif d.main:
        before = {name: evaluate(sam, s, cache, transform) for name, s in eval_sets.items()}
        (out / "config.yaml").write_text(configs.dump(cfg))
    while epoch < cfg.epochs and not (cfg.max_steps and step >= cfg.max_steps):
        record = train_one_epoch(sam, train_set, items, cache, targets, optimizer, scheduler, scaler, cfg, order_rng,
                                 prompt_rng, transform, step, d)
        epoch, step = epoch + 1, record["step"]
        seconds += record.pop("seconds_per_step")
        records.append({"epoch": epoch, **record})
        states = _random_states(order_rng, prompt_rng, d)  # every rank takes part in the gather
        if d.main:
            torch.save({"model": _decoder_state(sam, cfg), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch,
                        "step": step, "records": records, "before": before, "random": states}, out / "last.pt")
            (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        if progress and d.main:
            from rich.console import Console

            loss, iou = record["loss"], record["train_iou"]
            Console(stderr=True).print(f"epoch {epoch}: loss {'-' if loss is None else f'{loss:.4f}'}, train IoU "
                                       f"{'-' if iou is None else f'{iou:.3f}'}, encoder calls {cache.encoder_calls}")
    encoder_calls = sum(distributed.gather(cache.encoder_calls, d))
    summary = _finish(sam, cfg, out, eval_sets, cache, transform, before, step, epoch, d, encoder_calls, items, seconds,
                      records, device) if d.main else {}
    distributed.barrier(d)  # the other ranks wait for rank 0's evaluation: all leave the process group together
    return summary


def _finish(sam, cfg: SamConfig, out: Path, eval_sets: dict, cache, transform, before: dict, step: int, epoch: int,
            d, encoder_calls: int, items: list, seconds: list, records: list, device) -> dict:
    """Rank 0's end of a run: the trained parts, evaluation after training, ``summary.json``."""
    torch.save(_decoder_state(sam, cfg), out / "decoder.pt")
    after = {name: evaluate(sam, s, cache, transform, out / f"overlay_{name}.png") for name, s in eval_sets.items()}
    summary = {"steps": step, "epochs": epoch, "processes": d.world, "encoder_calls": encoder_calls,
               "train_images": len(items), "train_seconds": round(float(np.sum(seconds)), 2) if seconds else 0.0,
               "seconds_per_step": round(float(np.median(seconds)), 4) if seconds else None,
               "embedding_cache_seconds": round(sum(r.get("cache_seconds", 0.0) for r in records), 2),
               "gpu_max_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.type == "cuda" else None,
               "before": before, "after": after}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _overlay(cases: list, data: coco.CocoSet, path: Path, n: int = 4) -> None:
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


__all__ = ["SamConfig", "evaluate", "load_subsets", "main", "train_one_epoch"]
