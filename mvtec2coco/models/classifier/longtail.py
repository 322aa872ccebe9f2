"""Remedies for class imbalance (20 good vs 63 defect test images, 209 good-only training images).

- ``class_balanced_sampler``: draw every class equally often (WeightedRandomSampler, weight 1/n_c).
  Reach for it first when a class has few images: cheap, no change to the loss.
- ``class_balanced_weights``: Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of
  Samples": w_c = (1 - beta) / (1 - beta^n_c), normalised to sum to C. Softer than 1/n_c when
  images of a class are redundant (beta close to 1 approaches inverse frequency).
- ``FocalLoss``: Lin et al. 2017, down-weights easy examples by (1 - p_t)^gamma.
- ``LogitAdjustedLoss``: Menon et al. 2021 (logit adjustment) and Ren et al. 2020 (balanced
  softmax, tau = 1): cross-entropy on logits + tau * log(prior), which targets the balanced error;
  prediction uses the raw logits.
- ``BalancedContrastiveLoss``: Zhu et al., CVPR 2022 (BCL): supervised contrastive loss on a
  projection of the backbone features, with class-averaging (each class's terms in the
  denominator divided by its count in the batch) and class-complement (a learnable prototype per
  class, so every class appears in every batch), plus logit-adjusted cross-entropy on the head.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import WeightedRandomSampler

from ...errors import OptionError

LOSSES = ("ce", "cb_ce", "focal", "logit_adjusted", "balanced_softmax", "bcl")


def class_counts(labels: list[int], num_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)


def class_balanced_sampler(labels: list[int], num_classes: int, seed: int) -> WeightedRandomSampler:
    """Each draw picks a class uniformly (among present classes), then an image of it."""
    counts = class_counts(labels, num_classes)
    weights = torch.tensor([1.0 / counts[y] for y in labels], dtype=torch.double)
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(weights, num_samples=len(labels), replacement=True, generator=generator)


def class_balanced_weights(counts: np.ndarray, beta: float) -> torch.Tensor:
    """Cui et al. 2019: (1 - beta) / (1 - beta^n), normalised to sum to the number of classes."""
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    weights = (1.0 - beta) / (1.0 - np.power(beta, counts))
    return torch.tensor(weights / weights.sum() * len(counts), dtype=torch.float32)


def log_prior(counts: np.ndarray) -> torch.Tensor:
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    return torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32)


def adjust_logits(logits: torch.Tensor, prior_log: torch.Tensor, tau: float) -> torch.Tensor:
    """Menon et al. 2021: logits + tau * log(prior)."""
    return logits + tau * prior_log.to(logits.device, logits.dtype)


class FocalLoss(nn.Module):
    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight if weight is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=1)
        log_pt = log_p.gather(1, target[:, None]).squeeze(1)
        loss = -((1.0 - log_pt.exp()) ** self.gamma) * log_pt
        if self.weight is not None:
            loss = loss * self.weight[target]
        return loss.mean()


class LogitAdjustedLoss(nn.Module):
    def __init__(self, counts: np.ndarray, tau: float = 1.0):
        super().__init__()
        self.tau = tau
        self.register_buffer("prior_log", log_prior(counts))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(adjust_logits(logits, self.prior_log, self.tau), target)


class ProjectionHead(nn.Module):
    """MLP into the contrastive space; also maps the classifier weights to class prototypes."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, in_dim), nn.BatchNorm1d(in_dim), nn.ReLU(inplace=True),
                                 nn.Linear(in_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=1)


def balanced_contrastive(z: torch.Tensor, labels: torch.Tensor, prototypes: torch.Tensor,
                         temperature: float) -> torch.Tensor:
    """Balanced supervised contrastive loss (class-averaged, class-complemented).

    ``z``: (N, D) unit vectors of all views in the batch; ``labels``: (N,); ``prototypes``:
    (C, D) unit vectors. Anchors are the N views; candidates are the views and the prototypes.
    For anchor i the denominator sums exp(z_i . k / T) over all candidates k except i itself, each
    divided by the number of candidates of k's class, not counting i (class-averaging: a class
    contributes its mean, whatever its size in the batch); positives are the other views of the
    same class and the class's prototype.
    """
    n, num_classes = z.shape[0], prototypes.shape[0]
    candidates = torch.cat([z, prototypes], dim=0)
    cand_labels = torch.cat([labels, torch.arange(num_classes, device=z.device)])
    logits = z @ candidates.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    not_self = torch.ones_like(logits)
    not_self[torch.arange(n), torch.arange(n)] = 0.0
    positive = (labels[:, None] == cand_labels[None, :]).float() * not_self
    per_class = torch.bincount(cand_labels, minlength=num_classes).float()
    count = per_class[cand_labels][None, :].expand(n, -1) - positive  # class-averaging weights
    denominator = (logits.exp() * not_self / count.clamp(min=1.0)).sum(dim=1, keepdim=True)
    log_prob = logits - denominator.log()
    return -((positive * log_prob).sum(dim=1) / positive.sum(dim=1).clamp(min=1.0)).mean()


class BCLLoss(nn.Module):
    """alpha * logit-adjusted CE (head logits) + beta * balanced contrastive (projected features)."""

    def __init__(self, counts: np.ndarray, feature_dim: int, num_classes: int, dim: int, temperature: float,
                 alpha: float, beta: float, tau: float = 1.0):
        super().__init__()
        self.projection = ProjectionHead(feature_dim, dim)
        self.ce = LogitAdjustedLoss(counts, tau)
        self.temperature, self.alpha, self.beta = temperature, alpha, beta

    def forward(self, model, images: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images``: (B, 2, C, H, W) two views. Returns (loss, logits of the first view)."""
        b = images.shape[0]
        features = model.features(images.flatten(0, 1))  # (2B, F), views interleaved per image
        logits = model.head(features)
        linear = model.head[-1]
        prototypes = self.projection(linear.weight)  # class prototypes from the classifier weights
        z = self.projection(features)
        labels2 = target.repeat_interleave(2)
        loss = self.alpha * self.ce(logits, labels2) + self.beta * balanced_contrastive(
            z, labels2, prototypes, self.temperature)
        return loss, logits.view(b, 2, -1)[:, 0]


def build_loss(name: str, counts: np.ndarray, cfg, feature_dim: int) -> nn.Module:
    """The loss for ``imbalance.loss``; BCL carries its own projection head (trained with the model)."""
    if name == "ce":
        return nn.CrossEntropyLoss()
    if name == "cb_ce":
        return nn.CrossEntropyLoss(weight=class_balanced_weights(counts, cfg.cb_beta))
    if name == "focal":
        return FocalLoss(cfg.focal_gamma)
    if name == "logit_adjusted":
        return LogitAdjustedLoss(counts, cfg.tau)
    if name == "balanced_softmax":
        return LogitAdjustedLoss(counts, 1.0)
    if name == "bcl":
        return BCLLoss(counts, feature_dim, len(counts), cfg.bcl_dim, cfg.bcl_temperature, cfg.bcl_alpha,
                       cfg.bcl_beta, cfg.tau)
    raise OptionError(f"unknown loss '{name}'", hint=f"use one of {', '.join(LOSSES)}")
