"""Autoencoder run settings: the data it trains on (good images only), the model, and how it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..patchcore.config import DataConfig
from .model import AutoencoderConfig


@dataclass(frozen=True)
class AutoencoderRunConfig:
    LIMITS: ClassVar[dict] = {"batch_size": (1, None, True, False)}

    data: DataConfig = field(default_factory=DataConfig)
    model: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    batch_size: int = 8  # images per scoring batch (training uses model.batch_size)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
