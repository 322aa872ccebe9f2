"""Train and evaluate a torchvision classifier on a dataset split: a plain loop, every knob in the config.

Run folder: ``config.yaml``, ``metrics.jsonl`` (one line per epoch: losses, validation metrics,
seconds spent loading data vs computing), ``best.pt`` and ``last.pt`` (model state and config),
``summary.json`` (best epoch, validation and test metrics), ``confusion_val.png``,
``confusion_test.png``. Under ``torchrun --nproc_per_node N`` training uses
DistributedDataParallel with a per-epoch reshuffled shard of the (possibly class-balanced)
sample order; evaluation is sharded and gathered; rank 0 alone writes.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ...errors import OptionError
from ...runtime.parallel import default_workers
from ..common import distributed
from ..common.devices import pick_device
from ..common.files import torch_file
from ..common.metrics import classification_metrics, plot_confusion
from .config import ExperimentConfig
from .data import ClassifierDataset, ImageCache, build_augment, make_splits
from .longtail import build_loss, class_balanced_sampler, class_counts
from .network import build_model, parameter_groups


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _order(labels: list[int], num_classes: int, sampler: str, seed: int, epoch: int, d) -> list[int]:
    """This rank's sample indices for ``epoch``: shuffled (or class-balanced), then sharded."""
    if sampler == "class_balanced":
        indices = list(class_balanced_sampler(labels, num_classes, seed + epoch))
    elif sampler == "none":
        g = torch.Generator().manual_seed(seed + epoch)
        indices = torch.randperm(len(labels), generator=g).tolist()
    else:
        raise OptionError(f"unknown sampler '{sampler}'", hint="use none or class_balanced")
    per_rank = math.ceil(len(indices) / d.world)
    indices = (indices * 2)[: per_rank * d.world]  # pad so that every rank takes the same number of steps
    return indices[d.rank :: d.world]


def _optimizer(cfg, groups):
    o = cfg.optim
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    if o.optimizer == "adam":
        return torch.optim.Adam(groups, lr=o.lr, weight_decay=o.weight_decay)
    if o.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay)
    raise OptionError(f"unknown optimizer '{o.optimizer}'", hint="use sgd, adam or adamw")


def build_scheduler(cfg, optimizer):
    """Stock torch schedulers, stepped once per epoch: optional LinearLR warm-up, then
    CosineAnnealingLR, StepLR or a constant rate."""
    o = cfg.optim
    sched = torch.optim.lr_scheduler
    warm = max(0, o.warmup_epochs)
    if o.scheduler == "cosine":
        main = sched.CosineAnnealingLR(optimizer, T_max=max(1, cfg.train.epochs - warm))
    elif o.scheduler == "step":
        main = sched.StepLR(optimizer, step_size=max(1, o.step_size), gamma=o.gamma)
    elif o.scheduler == "none":
        main = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    else:
        raise OptionError(f"unknown scheduler '{o.scheduler}'", hint="use none, cosine or step")
    if not warm:
        return main
    warmup = sched.LinearLR(optimizer, start_factor=1.0 / (warm + 1), end_factor=1.0, total_iters=warm)
    return sched.SequentialLR(optimizer, [warmup, main], milestones=[warm])


@torch.no_grad()
def predict(model, dataset: ClassifierDataset, batch_size: int, device: torch.device, d) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities and labels over ``dataset``, sharded over ranks and gathered."""
    model.eval()
    indices = list(range(len(dataset)))[d.rank :: d.world]
    probs, labels = [], []
    for start in range(0, len(indices), batch_size):
        batch = [dataset[i] for i in indices[start : start + batch_size]]
        x = torch.stack([b[0] for b in batch]).to(device)
        probs.append(torch.softmax(model(x).float(), dim=1).cpu().numpy())
        labels += [b[1] for b in batch]
    mine = (indices, np.concatenate(probs) if probs else np.zeros((0, 0)), labels)
    order, all_probs, all_labels = [], [], []
    for idx, p, lab in distributed.gather(mine, d):
        if len(idx):
            order += idx
            all_probs.append(p)
            all_labels += lab
    sort = np.argsort(order)
    return np.concatenate(all_probs)[sort], np.asarray(all_labels)[sort]


def train(cfg: ExperimentConfig, run_dir: Path | None = None, progress: bool = True, resume: bool = False) -> Path:
    """Train as configured (or continue the run in ``run_dir``); returns the run folder."""
    device = pick_device(cfg.train.device)
    d = distributed.setup(device)
    if device.type == "cuda" and d.enabled:
        device = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(device)
    try:
        return main(cfg, run_dir or Path(cfg.out) / cfg.name, device, d, progress, resume)
    finally:
        distributed.teardown(d)


def train_one_epoch(net, loss_fn, optimizer, scaler, train_set, cfg: ExperimentConfig, n_classes: int, epoch: int,
                    device: torch.device, d) -> dict:
    """One pass over this rank's shard of the (shuffled or class-balanced) training images."""
    bcl = cfg.imbalance.loss == "bcl"
    use_amp = scaler.is_enabled()
    net.train()
    order = _order(train_set.labels, n_classes, cfg.imbalance.sampler, cfg.train.seed, epoch, d)
    loader = DataLoader(torch.utils.data.Subset(train_set, order), batch_size=cfg.train.batch_size,
                        shuffle=False, num_workers=cfg.train.num_workers, drop_last=False)
    losses, t_data, t_compute, mark = [], 0.0, 0.0, time.perf_counter()
    for images, target in loader:
        images, target = images.to(device), target.to(device)
        now = time.perf_counter()
        t_data += now - mark
        with torch.autocast(device.type, enabled=use_amp):
            if bcl:
                loss, _ = loss_fn(net.module if d.enabled else net, images, target)
                if d.enabled:  # keep DDP's gradient hooks in the graph
                    loss = loss + 0.0 * net(images[:1, 0]).sum()
            else:
                loss = loss_fn(net(images), target)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if bcl and d.enabled:  # the projection head lives outside DDP: average its gradients by hand
            distributed.average_gradients(loss_fn.parameters(), d)
        scaler.step(optimizer)
        scaler.update()
        losses.append(float(loss.detach()))
        mark = time.perf_counter()
        t_compute += mark - now
    return {"train_loss": distributed.mean(float(np.mean(losses)), d), "time_data_s": round(t_data, 4),
            "time_compute_s": round(t_compute, 4), "data_fraction": round(t_data / max(1e-9, t_data + t_compute), 4)}


def _random_states() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _restore_random(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def main(cfg: ExperimentConfig, run_dir: Path, device: torch.device, d, progress: bool, resume: bool = False) -> Path:
    """The run: data, model, loss, optimizer and scheduler from the config, then epochs with a
    resumable checkpoint (``last.pt``) after each and the best one kept (``best.pt``)."""
    from ..common import config as configs

    seed_everything(cfg.train.seed)
    torch.set_num_threads(max(1, default_workers() // d.world))
    checkpoint = torch_file(run_dir / "last.pt", "classifier checkpoint", weights_only=False) if resume else None
    splits = make_splits(cfg.data)
    if not splits.subsets["train"] or not splits.subsets["val"]:
        raise OptionError("the split leaves no training or no validation images", cfg.data.root,
                          "use ratios such as 0.7,0.15,0.15 (the official MVTec AD split has no defect in train)")
    n_classes = len(splits.classes)
    cache = ImageCache(cfg.data.image_size, cfg.data.cache_dir)
    bcl = cfg.imbalance.loss == "bcl"
    train_set = ClassifierDataset(splits.subsets["train"], cache, build_augment(cfg.augment), views=2 if bcl else 1)
    val_set = ClassifierDataset(splits.subsets["val"], cache)
    test_set = ClassifierDataset(splits.subsets["test"], cache)
    counts = class_counts(train_set.labels, n_classes)
    model = build_model(cfg.model if checkpoint is None else _no_download(cfg.model), n_classes).to(device)
    loss_fn = build_loss(cfg.imbalance.loss, counts, cfg.imbalance, model.feature_dim).to(device)
    groups = parameter_groups(model, cfg.optim.lr, cfg.optim.head_lr)
    if bcl:
        groups.append({"params": list(loss_fn.parameters()), "lr": cfg.optim.head_lr or cfg.optim.lr, "name": "bcl"})
    optimizer = _optimizer(cfg, groups)
    scheduler = build_scheduler(cfg, optimizer)
    net = torch.nn.parallel.DistributedDataParallel(model) if d.enabled else model
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.train.amp and device.type == "cuda")
    metric = cfg.train.early_stopping_metric
    start, best, best_epoch, stale, records = 0, -math.inf, -1, 0, []
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        loss_fn.load_state_dict(checkpoint["loss"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        start, best, best_epoch, stale = checkpoint["epoch"], checkpoint["best"], checkpoint["best_epoch"], checkpoint["stale"]
        records = checkpoint["records"]
        _restore_random(checkpoint["random"])
    elif d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(configs.dump(cfg))
    bar = _progress(progress and d.main, cfg.train.epochs, start)
    for epoch in range(start, cfg.train.epochs):
        if cfg.train.patience and stale >= cfg.train.patience:
            break
        lr = optimizer.param_groups[0]["lr"]
        record = {"epoch": epoch + 1, **train_one_epoch(net, loss_fn, optimizer, scaler, train_set, cfg, n_classes,
                                                          epoch, device, d)}
        scheduler.step()
        probs, labels = predict(model, val_set, cfg.train.batch_size, device, d)
        val = classification_metrics(labels, probs, splits.classes)
        record.update({"lr": lr, **{f"val_{k}": v for k, v in val.items() if k not in ("per_class", "confusion")},
                       "cache_hits": cache.hits, "cache_misses": cache.misses})
        score = val[metric] if val.get(metric) is not None else -math.inf
        improved = score > best
        best, best_epoch, stale = (score, epoch + 1, 0) if improved else (best, best_epoch, stale + 1)
        records.append(record)
        if d.main:
            (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
            weights = {"model": model.state_dict(), "config": cfg.to_dict(), "classes": splits.classes, "epoch": epoch + 1}
            if improved:
                torch.save(weights, run_dir / "best.pt")
            torch.save({**weights, "loss": loss_fn.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "best": best,
                        "best_epoch": best_epoch, "stale": stale, "records": records, "random": _random_states()},
                       run_dir / "last.pt")
        if bar:
            bar[0].update(bar[1], advance=1, description=f"epoch {epoch + 1} loss {record['train_loss']:.3f} "
                                                         f"val {metric} {score:.3f}")
    if bar:
        bar[0].stop()
    distributed.barrier(d)
    best_state = torch.load(run_dir / "best.pt", map_location=device, weights_only=False)
    model.load_state_dict(best_state["model"])
    result = {"best_epoch": best_epoch, "early_stopping_metric": metric, "classes": splits.classes,
              "train_images": len(train_set), "train_seconds": round(sum(r["time_data_s"] + r["time_compute_s"]
                                                                         for r in records), 2)}
    for name, dataset in (("val", val_set), ("test", test_set)):
        if len(dataset):
            probs, labels = predict(model, dataset, cfg.train.batch_size, device, d)
            result[name] = classification_metrics(labels, probs, splits.classes)
    if d.main:
        for name in ("val", "test"):
            if name in result:
                plot_confusion(result[name]["confusion"], splits.classes, run_dir / f"confusion_{name}.png",
                               f"{cfg.name}: {name} (best epoch {best_epoch})")
        (run_dir / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    distributed.barrier(d)  # the other ranks wait for rank 0's files: all leave the process group together
    return run_dir


def _no_download(model_cfg):
    """The architecture without its starting weights: a resumed run loads its own."""
    return model_cfg.__class__(**{**model_cfg.__dict__, "weights": "none"})


def evaluate(run_dir: Path, device: str = "auto") -> dict:
    """Re-evaluate ``best.pt`` of a run on its validation and test images (same split)."""
    from ..common.config import build

    run_dir = Path(run_dir)
    if not (run_dir / "best.pt").is_file():
        raise OptionError("no best.pt in the run folder", run_dir, "pass a folder written by `classifier train`")
    from ..common.files import load_weights

    state = torch_file(run_dir / "best.pt", "classifier checkpoint", weights_only=False)
    cfg = load_weights(run_dir / "best.pt", "classifier checkpoint", lambda _: build(ExperimentConfig, state["config"]))
    torch_device = pick_device(device)
    splits = make_splits(cfg.data)
    model = build_model(_no_download(cfg.model), len(splits.classes))
    model.load_state_dict(state["model"])
    model.to(torch_device)
    cache = ImageCache(cfg.data.image_size, cfg.data.cache_dir)
    out = {}
    for name in ("val", "test"):
        dataset = ClassifierDataset(splits.subsets[name], cache)
        if len(dataset):
            probs, labels = predict(model, dataset, cfg.train.batch_size, torch_device, distributed.Dist())
            out[name] = classification_metrics(labels, probs, splits.classes)
            plot_confusion(out[name]["confusion"], splits.classes, run_dir / f"confusion_{name}.png", f"{cfg.name}: {name}")
    (run_dir / "eval.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def _progress(enabled: bool, total: int, done: int = 0):
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=False)
    progress.start()
    return progress, progress.add_task("training", total=total, completed=done)


__all__ = ["evaluate", "predict", "train"]
