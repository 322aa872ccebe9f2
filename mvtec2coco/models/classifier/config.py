"""Classifier experiment configuration: YAML with visible hyperparameters, ``--set a.b=value`` overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError, OptionError
from .network import ModelConfig


@dataclass(frozen=True)
class DataConfig:
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
    optimizer: str = "adam"  # sgd | adam | adamw
    lr: float = 1e-3
    head_lr: float | None = None  # None: same as lr
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "none"  # none | cosine | step
    step_size: int = 10
    gamma: float = 0.1
    warmup_epochs: int = 0


@dataclass(frozen=True)
class AugmentConfig:
    hflip: float = 0.5
    vflip: float = 0.0
    rotation: float = 0.0  # degrees
    color_jitter: float = 0.0  # brightness, contrast and saturation strength


@dataclass(frozen=True)
class ImbalanceConfig:
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
        return dataclasses.asdict(self)


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise OptionError(f"'{where}' must be a mapping")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise OptionError(f"unknown key(s) {unknown} in '{where or 'config'}'", hint=f"known: {', '.join(known)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value or {}, f"{where}.{name}".strip("."))
        elif isinstance(default, tuple):
            kwargs[name] = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        elif isinstance(default, float) and isinstance(value, (int, str)) and not isinstance(value, bool):
            kwargs[name] = float(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def settings_from_yaml(path: Path | None, overrides: dict) -> dict:
    """A YAML mapping of settings (or none) with the given non-None ``overrides`` on top."""
    from ..common.files import read_yaml_mapping

    values = read_yaml_mapping(path) if path else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return values


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise OptionError(f"--set '{text}' is not key=value", hint="e.g. --set optim.lr=1e-4")
    from ..common.files import yaml_value

    key, value = text.split("=", 1)
    return key.strip().split("."), yaml_value(value, key)


def load_config(path: Path | None, overrides: list[str] = ()) -> ExperimentConfig:
    """Read a YAML config (or defaults) and apply ``a.b=value`` overrides."""
    raw: dict = {}
    if path is not None:
        from ..common.files import read_yaml_mapping

        path = Path(path)
        raw = read_yaml_mapping(path)
        raw.setdefault("name", path.stem)
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text}: '{key}' is not a section")
        node[keys[-1]] = value
    try:
        return _build(ExperimentConfig, raw, "")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"a setting has the wrong type ({exc})", path) from exc
