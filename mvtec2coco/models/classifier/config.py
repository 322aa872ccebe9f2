"""Classifier experiment settings: every hyperparameter and its default, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..common.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, UNIT
from .network import ModelConfig


@dataclass(frozen=True)
class DataConfig:
    LIMITS: ClassVar[dict] = {"image_size": (8, None, True, False), "seed": NON_NEGATIVE}

    root: str = "demo/bottle"
    layout: str | None = None
    categories: tuple[str, ...] = ()
    split: str = "0.7,0.15,0.15"  # ratios, "official", or a split.csv from `convert`
    seed: int = 0
    task: str = "type"  # type: good + each defect type; binary: good vs defect
    image_size: int = 224
    cache_dir: str | None = None  # also keep decoded, resized images on disk (reused across runs)


@dataclass(frozen=True)
class OptimConfig:
    LIMITS: ClassVar[dict] = {"lr": POSITIVE, "head_lr": POSITIVE, "weight_decay": NON_NEGATIVE, "momentum": UNIT,
                              "step_size": AT_LEAST_ONE, "gamma": POSITIVE, "warmup_epochs": NON_NEGATIVE}

    optimizer: str = "adam"  # sgd | adam | adamw
    lr: float = 1e-3
    head_lr: float | None = None  # None: same as lr
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "none"  # none | cosine (CosineAnnealingLR) | step (StepLR); per epoch
    step_size: int = 10
    gamma: float = 0.1
    warmup_epochs: int = 0  # LinearLR from lr / (warmup_epochs + 1) up to lr, then the scheduler


@dataclass(frozen=True)
class AugmentConfig:
    LIMITS: ClassVar[dict] = {"hflip": UNIT, "vflip": UNIT, "rotation": (0, 180, True, True), "color_jitter": UNIT}

    hflip: float = 0.5
    vflip: float = 0.0
    rotation: float = 0.0  # degrees
    color_jitter: float = 0.0  # brightness, contrast and saturation strength


@dataclass(frozen=True)
class ImbalanceConfig:
    LIMITS: ClassVar[dict] = {"cb_beta": (0, 1, True, False), "focal_gamma": NON_NEGATIVE, "tau": NON_NEGATIVE,
                              "bcl_temperature": POSITIVE, "bcl_alpha": NON_NEGATIVE, "bcl_beta": NON_NEGATIVE,
                              "bcl_dim": AT_LEAST_ONE}

    sampler: str = "none"  # none | class_balanced
    loss: str = "ce"  # ce | cb_ce | focal | logit_adjusted | balanced_softmax | bcl
    cb_beta: float = 0.999  # Cui et al.: effective number of samples
    focal_gamma: float = 2.0
    tau: float = 1.0  # logit adjustment strength (balanced softmax = 1)
    bcl_temperature: float = 0.1
    bcl_alpha: float = 2.0  # weight of the logit-adjusted cross-entropy
    bcl_beta: float = 0.6  # weight of the balanced contrastive loss
    bcl_dim: int = 128


@dataclass(frozen=True)
class TrainConfig:
    LIMITS: ClassVar[dict] = {"epochs": AT_LEAST_ONE, "batch_size": AT_LEAST_ONE, "seed": NON_NEGATIVE,
                              "patience": NON_NEGATIVE, "num_workers": NON_NEGATIVE}

    epochs: int = 30
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision, CUDA only
    early_stopping_metric: str = "balanced_accuracy"
    patience: int = 0  # 0: no early stopping
    num_workers: int = 0


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "experiment"
    out: str = "runs/classifier"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    imbalance: ImbalanceConfig = field(default_factory=ImbalanceConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        from ..common.config import to_dict

        return to_dict(self)


def load_config(path: Path | None, overrides: list[str] = (), extra: dict | None = None) -> ExperimentConfig:
    """Defaults <- the YAML file <- command-line options <- ``a.b=value`` overrides; the run's name
    is the file's stem unless the file names it."""
    from ...formats.yaml_file import read_yaml_mapping
    from ..common import config as configs

    named = path is not None and "name" in read_yaml_mapping(path)
    extra = {**({"name": Path(path).stem} if path is not None and not named else {}), **(extra or {})}
    return configs.load(ExperimentConfig, Path(path) if path is not None else None, list(overrides), extra)
