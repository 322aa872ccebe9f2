"""torchvision classifiers with an explicit new head, stage freezing and head/backbone parameter groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ...errors import OptionError
from ..common.weights import load_state_dict

ARCHS = ("resnet18", "resnet34", "resnet50", "wide_resnet50_2", "efficientnet_b0", "convnext_tiny")


@dataclass(frozen=True)
class ModelConfig:
    LIMITS: ClassVar[dict] = {"dropout": (0, 1, True, False), "freeze_stages": (0, None, True, False)}

    arch: str = "resnet18"
    weights: str = "none"  # none | imagenet | path/to/file.pth
    new_head: bool = True  # replace the ImageNet classifier by one sized for our classes
    dropout: float = 0.0  # dropout before the new head
    freeze_stages: int = 0  # freeze the stem and the first N-1 stages (0: train everything)


class Classifier(nn.Module):
    """Backbone features -> (dropout) -> linear head; ``features`` exposes the pooled features for BCL."""

    def __init__(self, backbone: nn.Module, stages: list[nn.Module], feature_dim: int, num_classes: int,
                 dropout: float):
        super().__init__()
        self.backbone = backbone
        self.stages = stages
        self.feature_dim = feature_dim
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_model(config: ModelConfig, num_classes: int) -> Classifier:
    """Build ``config.arch`` with its weights, a new head for ``num_classes`` and frozen stages."""
    from torchvision import models

    if config.arch not in ARCHS:
        raise OptionError(f"unknown model '{config.arch}'", hint=f"use one of {', '.join(ARCHS)}")
    net = getattr(models, config.arch)(weights=None)
    state = load_state_dict(config.weights, config.arch)
    if state is not None:
        missing, _ = net.load_state_dict(state, strict=False)
        if missing and not all(k.startswith(("fc.", "classifier.")) for k in missing):
            raise OptionError(f"weights do not fit {config.arch}: missing {missing[:3]}", config.weights)
    if config.arch.startswith(("resnet", "wide_resnet")):
        feature_dim = net.fc.in_features
        net.fc = nn.Identity()
        stages = [nn.ModuleList([net.conv1, net.bn1]), net.layer1, net.layer2, net.layer3, net.layer4]
    elif config.arch.startswith("efficientnet"):
        feature_dim = net.classifier[-1].in_features
        net.classifier = nn.Identity()
        stages = list(net.features)
    else:  # convnext: keep its LayerNorm, drop the last linear
        feature_dim = net.classifier[-1].in_features
        net.classifier[-1] = nn.Identity()
        stages = list(net.features)
    if not config.new_head:
        raise OptionError("new_head: false is not supported: the ImageNet head has 1000 classes",
                          hint="keep new_head: true")
    model = Classifier(net, stages, feature_dim, num_classes, config.dropout)
    for stage in stages[: config.freeze_stages]:
        for p in stage.parameters():
            p.requires_grad_(False)
    return model


def parameter_groups(model: Classifier, lr: float, head_lr: float | None) -> list[dict]:
    """Separate learning rates for the head and the (trainable part of the) backbone."""
    head = [p for p in model.head.parameters() if p.requires_grad]
    head_ids = {id(p) for p in head}
    backbone = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": head, "lr": head_lr if head_lr is not None else lr, "name": "head"}]
    if backbone:
        groups.append({"params": backbone, "lr": lr, "name": "backbone"})
    return groups
