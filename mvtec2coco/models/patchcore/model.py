"""PatchCore (Roth et al., CVPR 2022): a memory bank of locally aggregated patch features of good
images; a patch's anomaly score is its distance to the nearest patch in the bank, an image's the
maximum of the blurred map, or (``image_score: reweighted``) the largest patch score reweighted by
how rare its nearest normal pattern is (the paper's Eq. 7, which anomalib implements).

Features come from layers 2 and 3 of a torchvision ResNet (local weights, the classifier's rules:
``imagenet``, a path, or ``none``), are averaged over each 3x3 neighbourhood, brought to layer 2's
resolution, reduced to ``dim`` channels by adaptive average pooling, and concatenated (or, with
``aggregate: concat``, kept whole side by side, as anomalib does). The bank is
subsampled by greedy k-centre coreset selection, with distances measured after a random
projection to ``projection_dim`` dimensions for speed. Nearest-neighbour search runs in chunks
(``torch.cdist``) so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import OptionError
from ..common.config import AT_LEAST_ONE, FRACTION, NON_NEGATIVE
from ..common.weights import load_state_dict

BACKBONES = ("resnet18", "resnet34", "resnet50", "wide_resnet50_2")
IMAGE_SCORES = ("reweighted", "max")
AGGREGATIONS = ("pool", "concat")


@dataclass(frozen=True)
class PatchCoreConfig:
    LIMITS: ClassVar[dict] = {"image_size": (32, None, True, False), "dim": AT_LEAST_ONE, "coreset_ratio": FRACTION,
                              "projection_dim": AT_LEAST_ONE, "neighbourhood": AT_LEAST_ONE, "blur_sigma": NON_NEGATIVE,
                              "num_neighbours": AT_LEAST_ONE, "seed": NON_NEGATIVE}

    backbone: str = "wide_resnet50_2"
    weights: str = "imagenet"  # imagenet | none | path
    image_size: int = 224
    dim: int = 1024  # channels per layer after pooling, and of the concatenated feature
    aggregate: str = "pool"  # pool: layers pooled to dim, then both (the paper's code) | concat: side by side, as anomalib
    coreset_ratio: float = 0.1
    projection_dim: int = 128
    neighbourhood: int = 3
    blur_sigma: float = 4.0
    image_score: str = "max"  # max: the blurred map's maximum | reweighted: the paper's Eq. 7, as anomalib scores
    num_neighbours: int = 9  # bank neighbours of the reweighting (the paper's b)
    seed: int = 0  # the coreset's projection and start, and the initial weights of a backbone without weights

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        if self.image_score not in IMAGE_SCORES:
            raise OptionError(f"model.image_score '{self.image_score}' is not one of {', '.join(IMAGE_SCORES)}")
        if self.aggregate not in AGGREGATIONS:
            raise OptionError(f"model.aggregate '{self.aggregate}' is not one of {', '.join(AGGREGATIONS)}")


class FeatureExtractor(nn.Module):
    """Layer-2 and layer-3 features of a ResNet, aggregated per patch neighbourhood."""

    def __init__(self, config: PatchCoreConfig):
        super().__init__()
        from torchvision import models

        if config.backbone not in BACKBONES:
            raise OptionError(f"unknown backbone '{config.backbone}'", hint=f"use one of {', '.join(BACKBONES)}")
        with torch.random.fork_rng(devices=[]):  # weights "none": the same random network for the same seed
            torch.manual_seed(config.seed)
            net = getattr(models, config.backbone)(weights=None)
        state = load_state_dict(config.weights, config.backbone)
        if state is not None:
            net.load_state_dict(state, strict=False)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1)
        self.layer2, self.layer3 = net.layer2, net.layer3
        self.config = config
        self.eval()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, dim, h, w) patch features at layer 2's resolution (``concat``: as
        many channels as layers 2 and 3 have together)."""
        f2 = self.layer2(self.stem(x))
        f3 = self.layer3(f2)
        k = self.config.neighbourhood
        f2 = F.avg_pool2d(f2, k, stride=1, padding=k // 2)
        f3 = F.avg_pool2d(f3, k, stride=1, padding=k // 2)
        f3 = F.interpolate(f3, size=f2.shape[-2:], mode="bilinear", align_corners=False)
        if self.config.aggregate == "concat":
            return torch.cat((f2, f3), dim=1)
        b, _, h, w = f2.shape
        parts = []
        for f in (f2, f3):  # per layer: channels -> dim by adaptive average pooling
            flat = f.permute(0, 2, 3, 1).reshape(-1, 1, f.shape[1])
            parts.append(F.adaptive_avg_pool1d(flat, self.config.dim).squeeze(1))
        both = torch.stack(parts, dim=1)  # (B*h*w, 2, dim)
        fused = F.adaptive_avg_pool1d(both.reshape(len(both), 1, -1), self.config.dim).squeeze(1)
        return fused.reshape(b, h, w, -1).permute(0, 3, 1, 2)


def greedy_coreset(features: torch.Tensor, count: int, projection_dim: int = 128, seed: int = 0) -> torch.Tensor:
    """Indices of ``count`` points chosen by greedy k-centre selection (each new point is the one
    farthest from those already chosen), distances measured after a random projection.

    Each step updates every point's distance to the chosen set with one matrix-vector product:
    ``|p - c|^2 = |p|^2 - 2 p.c + |c|^2``, with the squared norms computed once, into buffers
    allocated once. Subtracting ``c`` from every point instead builds an n x d temporary per step
    (``greedy_coreset_reference``): the same selection, several times slower.
    """
    n = len(features)
    count = max(1, min(count, n))
    generator = torch.Generator().manual_seed(seed)
    points = _projected(features, projection_dim, generator)
    norms = (points * points).sum(dim=1)
    selected = torch.empty(count, dtype=torch.long)
    current = int(torch.randint(n, (1,), generator=generator))
    nearest = torch.full((n,), float("inf"), device=points.device, dtype=points.dtype)
    distance = torch.empty_like(nearest)
    for i in range(count):
        selected[i] = current
        centre = points[current]
        torch.addmv(norms, points, centre, alpha=-2.0, out=distance)
        distance.add_(norms[current]).clamp_(min=0)
        torch.minimum(nearest, distance, out=nearest)
        current = int(torch.argmax(nearest))
    return selected


def greedy_coreset_reference(features: torch.Tensor, count: int, projection_dim: int = 128,
                             seed: int = 0) -> torch.Tensor:
    """``greedy_coreset`` written plainly (a full difference per step): what tests compare it with."""
    n = len(features)
    count = max(1, min(count, n))
    generator = torch.Generator().manual_seed(seed)
    points = _projected(features, projection_dim, generator)
    selected = torch.empty(count, dtype=torch.long)
    current = int(torch.randint(n, (1,), generator=generator))
    nearest = torch.full((n,), float("inf"), device=points.device, dtype=points.dtype)
    for i in range(count):
        selected[i] = current
        nearest = torch.minimum(nearest, ((points - points[current]) ** 2).sum(dim=1))
        current = int(torch.argmax(nearest))
    return selected


def _projected(features: torch.Tensor, projection_dim: int, generator: torch.Generator) -> torch.Tensor:
    """A seeded random projection to ``projection_dim`` (Johnson-Lindenstrauss), or ``features``."""
    if projection_dim and projection_dim < features.shape[1]:
        projection = torch.randn(features.shape[1], projection_dim, generator=generator) / projection_dim**0.5
        return (features @ projection.to(features.device, features.dtype)).contiguous()
    return features.contiguous()


def nearest_distance(queries: torch.Tensor, bank: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Euclidean distance of each query to its nearest bank row, in chunks of both."""
    return nearest(queries, bank, chunk)[0]


def nearest(queries: torch.Tensor, bank: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of each query's nearest bank row, in chunks of both (the first of equals)."""
    out = torch.empty(len(queries), dtype=queries.dtype, device=queries.device)
    where = torch.empty(len(queries), dtype=torch.long, device=queries.device)
    for start in range(0, len(queries), chunk):
        q = queries[start : start + chunk]
        best = torch.full((len(q),), float("inf"), dtype=q.dtype, device=q.device)
        index = torch.zeros(len(q), dtype=torch.long, device=q.device)
        for b0 in range(0, len(bank), chunk * 4):
            values, at = torch.cdist(q, bank[b0 : b0 + chunk * 4]).min(dim=1)
            closer = values < best
            best = torch.where(closer, values, best)
            index = torch.where(closer, at + b0, index)
        out[start : start + chunk] = best
        where[start : start + chunk] = index
    return out, where


def reweighted_scores(features: torch.Tensor, distances: torch.Tensor, indices: torch.Tensor, bank: torch.Tensor,
                      neighbours: int) -> torch.Tensor:
    """The PatchCore paper's image score (Eq. 7), per image: the largest patch distance s*,
    scaled by 1 - softmax over the distances from that patch to its nearest bank point m* and to
    m*'s ``neighbours`` - 1 nearest bank neighbours. A patch whose nearest normal pattern is rare
    in the bank (far from the others) keeps more of its score than one in a dense cluster.

    ``features`` (B, P, D), ``distances`` and ``indices`` (B, P) from ``nearest``."""
    rows = torch.arange(len(features), device=features.device)
    worst = distances.argmax(dim=1)
    patch, score, centre = features[rows, worst], distances[rows, worst], bank[indices[rows, worst]]
    k = min(neighbours, len(bank))
    support = torch.cdist(centre, bank).topk(k, largest=False).indices  # (B, k): m* itself first
    spread = torch.linalg.vector_norm(bank[support] - patch[:, None], dim=2)  # (B, k)
    return (1 - torch.softmax(spread, dim=1)[:, 0]) * score


def gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur (B, 1, H, W) maps with a Gaussian of ``sigma`` px (as the PatchCore paper does)."""
    if sigma <= 0:
        return maps
    radius = int(4 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    maps = F.pad(maps, (radius, radius, radius, radius), mode="reflect")
    maps = F.conv2d(maps, kernel.view(1, 1, 1, -1))
    return F.conv2d(maps, kernel.view(1, 1, -1, 1))


class PatchCore:
    """Fit on good images, then score images: anomaly maps at the input size and image scores."""

    def __init__(self, config: PatchCoreConfig, device: torch.device | str = "cpu"):
        config.check()
        self.config = config
        self.device = torch.device(device)
        self.extractor = FeatureExtractor(config).to(self.device)
        self.bank: torch.Tensor | None = None

    def fit(self, batches) -> dict:
        """``batches``: iterable of (B, 3, S, S) normalised tensors of good images."""
        feats = []
        for x in batches:
            f = self.extractor(x.to(self.device))
            feats.append(f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]).cpu())
        all_feats = torch.cat(feats)
        count = max(1, int(round(len(all_feats) * self.config.coreset_ratio)))
        keep = greedy_coreset(all_feats.to(self.device), count, self.config.projection_dim, self.config.seed)
        self.bank = all_feats[keep.cpu()].to(self.device)
        return {"patches": len(all_feats), "bank": len(self.bank)}

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3, S, S) -> (anomaly maps (B, S, S), image scores (B,)). The map is the patch
        distances brought to the input size and blurred; the image score is the blurred map's
        maximum, or ``reweighted_scores`` of the patch distances (``image_score: reweighted``)."""
        if self.bank is None:
            raise OptionError("PatchCore is not fitted")
        f = self.extractor(x.to(self.device))
        b, d, h, w = f.shape
        patches = f.permute(0, 2, 3, 1).reshape(b, h * w, d)
        dist, where = nearest(patches.reshape(-1, d), self.bank)
        maps = F.interpolate(dist.reshape(b, 1, h, w), size=x.shape[-2:], mode="bilinear", align_corners=False)
        maps = gaussian_blur(maps, self.config.blur_sigma)[:, 0]
        if self.config.image_score == "max":
            scores = maps.flatten(1).max(dim=1).values
        else:
            scores = reweighted_scores(patches, dist.reshape(b, -1), where.reshape(b, -1), self.bank,
                                       self.config.num_neighbours)
        return maps.cpu().numpy(), scores.cpu().numpy()

    def state(self) -> dict:
        """Everything scoring needs, the backbone's weights included (no weight file needed later)."""
        return {"config": self.config.to_dict(), "bank": self.bank.cpu() if self.bank is not None else None,
                "extractor": {k: v.cpu() for k, v in self.extractor.state_dict().items()}}

    @classmethod
    def from_state(cls, state: dict, device: str = "cpu") -> PatchCore:
        config = PatchCoreConfig(**state["config"])
        model = cls(PatchCoreConfig(**{**state["config"], "weights": "none"}), device)
        model.config = config
        model.extractor.load_state_dict(state["extractor"])
        model.bank = state["bank"].to(model.device)
        return model
