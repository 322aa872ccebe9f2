"""PatchCore run settings: the data it fits on, the model, and how it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .model import PatchCoreConfig


@dataclass(frozen=True)
class DataConfig:
    root: str = ""  # dataset root (or category folder): the model fits on <category>/train/good
    category: str = ""  # the category to fit; may be left empty when the dataset has one
    layout: str | None = None  # detected when empty (see README's dataset layouts)
    split: str = "official"  # official: the dataset's train/good; or the split.csv of `convert`: its train good images


@dataclass(frozen=True)
class PatchCoreRunConfig:
    LIMITS: ClassVar[dict] = {"batch_size": (1, None, True, False)}

    data: DataConfig = field(default_factory=DataConfig)
    model: PatchCoreConfig = field(default_factory=PatchCoreConfig)
    batch_size: int = 8  # images per feature-extraction batch
    device: str = "auto"  # auto | cpu | cuda | cuda:N
