"""A convolutional autoencoder (or variational autoencoder) of good images, scored by how badly it
reconstructs: the study's reconstruction strategy beside PatchCore's memory bank.

Trained on good images only, the network learns to redraw normal appearance; a defect is drawn
back as normal, so the per-pixel reconstruction error (squared error averaged over channels, or
1 - local SSIM) is high there. The map is blurred like PatchCore's and the image score is its
maximum. ``Autoencoder`` has PatchCore's interface (``fit``, ``score``, ``state``,
``from_state``), so the same run code trains, evaluates and predicts with it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import OptionError
from ..common.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE
from ..patchcore.model import gaussian_blur

SCORES = ("l2", "ssim", "l2+ssim")


@dataclass(frozen=True)
class AutoencoderConfig:
    LIMITS: ClassVar[dict] = {"image_size": (32, None, True, False), "latent_dim": AT_LEAST_ONE, "epochs": AT_LEAST_ONE,
                              "lr": POSITIVE, "batch_size": AT_LEAST_ONE, "kl_weight": NON_NEGATIVE,
                              "blur_sigma": NON_NEGATIVE, "seed": NON_NEGATIVE, "ssim_window": (3, None, True, False)}

    image_size: int = 128  # input side; each of the encoder's stages halves it
    channels: tuple[int, ...] = (32, 64, 128, 256)  # per encoder stage (stride 2); four stages: 128 px -> 8 px
    latent_dim: int = 128  # the bottleneck: small enough that defects cannot be copied through
    variational: bool = False  # VAE: a Gaussian latent with a KL term (kl_weight), sampled while training
    kl_weight: float = 1e-3  # weight of the KL term (VAE only); larger blurs reconstructions
    epochs: int = 60  # passes over the good images; raise it while run.json's losses still fall
    batch_size: int = 16  # enough images for stable BatchNorm statistics, small enough for a CPU
    lr: float = 1e-3  # Adam's usual rate: a small network from scratch, no pretrained part to protect
    score: str = "l2"  # anomaly map: l2 (squared error), ssim (1 - local SSIM), or l2+ssim (their sum)
    ssim_window: int = 11  # SSIM's Gaussian window (the usual 11 px)
    blur_sigma: float = 4.0  # Gaussian blur of the map before the image score (as PatchCore)
    seed: int = 0  # initial weights and the order of the images

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        if self.score not in SCORES:
            raise OptionError(f"model.score '{self.score}' is not one of {', '.join(SCORES)}")
        if not self.channels or any(c < 1 for c in self.channels):
            raise OptionError("model.channels must be a non-empty list of positive channel counts")
        if self.image_size % (2 ** len(self.channels)):
            raise OptionError(f"model.image_size {self.image_size} is not divisible by 2^{len(self.channels)}",
                              hint="each encoder stage halves the image: use a multiple of "
                                   f"{2 ** len(self.channels)}")


class ConvAutoencoder(nn.Module):
    """(B, 3, S, S) -> (B, 3, S, S): strided convolutions down to a ``latent_dim`` vector and back."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        chans = [3, *config.channels]
        down = []
        for a, b in zip(chans[:-1], chans[1:]):
            down += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*down)
        self.side = config.image_size // 2 ** len(config.channels)
        flat = chans[-1] * self.side * self.side
        self.variational = config.variational
        self.to_latent = nn.Linear(flat, config.latent_dim * (2 if config.variational else 1))
        self.from_latent = nn.Linear(config.latent_dim, flat)
        up: list[nn.Module] = []
        rev = chans[::-1]
        for k, (a, b) in enumerate(zip(rev[:-1], rev[1:])):
            up.append(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1))
            if k < len(rev) - 2:  # the last layer outputs the normalised image: no norm, no activation
                up += [nn.BatchNorm2d(b), nn.ReLU()]
        self.decoder = nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction, KL divergence per image; zeros for the plain autoencoder)."""
        h = self.encoder(x).flatten(1)
        z = self.to_latent(h)
        kl = torch.zeros(len(x), device=x.device)
        if self.variational:
            mu, logvar = z.chunk(2, dim=1)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
            kl = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1)
        h = self.from_latent(z).view(len(x), -1, self.side, self.side)
        return self.decoder(h), kl


def ssim_map(a: torch.Tensor, b: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Local SSIM (B, 1, H, W) of two (B, C, H, W) images, averaged over channels (Gaussian window,
    sigma 1.5, Wang et al. 2004); inputs are normalised images, so the constants use their range."""
    sigma = 1.5
    x = torch.arange(window, dtype=a.dtype, device=a.device) - window // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = (g / g.sum()).view(1, 1, 1, -1)
    channels = a.shape[1]

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.conv2d(F.pad(t, (window // 2,) * 4, mode="reflect"), g.expand(channels, 1, 1, window), groups=channels)
        return F.conv2d(t, g.transpose(-1, -2).expand(channels, 1, window, 1), groups=channels)

    span = float(max(float(a.detach().max() - a.detach().min()), 1e-6))
    c1, c2 = (0.01 * span) ** 2, (0.03 * span) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(dim=1, keepdim=True)


class Autoencoder:
    """Fit on good images, then score images: anomaly maps at the input size and image scores."""

    def __init__(self, config: AutoencoderConfig, device: torch.device | str = "cpu"):
        config.check()
        self.config = config
        self.device = torch.device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.net = ConvAutoencoder(config).to(self.device)
        self.losses: list[float] = []

    @property
    def extractor(self) -> nn.Module:  # the network, for the parameter count of predictions.json
        return self.net

    def fit(self, batches, progress=None) -> dict:
        """``batches``: iterable of (B, 3, S, S) normalised tensors of good images, read once and
        held in memory; then ``epochs`` passes in shuffled minibatches of ``batch_size``."""
        images = torch.cat([x.float() for x in batches])
        if not len(images):
            raise OptionError("no training images")
        cfg = self.config
        generator = torch.Generator().manual_seed(cfg.seed)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.net.train()
        start = time.perf_counter()
        steps = math.ceil(len(images) / cfg.batch_size)
        for epoch in range(cfg.epochs):
            order = torch.randperm(len(images), generator=generator)
            total = 0.0
            for k in range(steps):
                x = images[order[k * cfg.batch_size : (k + 1) * cfg.batch_size]].to(self.device)
                if len(x) < 2 and len(images) >= 2:  # BatchNorm needs two images
                    continue
                recon, kl = self.net(x)
                loss = self._loss(x, recon) + cfg.kl_weight * kl.mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(x)
            self.losses.append(total / len(images))
            if progress is not None:
                progress(epoch + 1, cfg.epochs, self.losses[-1])
        self.net.eval()
        return {"train_images": len(images), "epochs": cfg.epochs, "loss_first": round(self.losses[0], 6),
                "loss_last": round(self.losses[-1], 6), "losses": [round(v, 6) for v in self.losses],
                "train_seconds": round(time.perf_counter() - start, 2)}

    def _loss(self, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        loss = F.mse_loss(recon, x)
        if self.config.score != "l2":  # train for what is scored
            loss = loss + (1 - ssim_map(recon, x, self.config.ssim_window)).mean()
        return loss

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3, S, S) -> (anomaly maps (B, S, S), image scores (B,)): max of the blurred map."""
        self.net.eval()
        x = x.to(self.device).float()
        recon, _ = self.net(x)
        maps = torch.zeros(len(x), 1, *x.shape[-2:], device=self.device)
        if self.config.score in ("l2", "l2+ssim"):
            maps += ((recon - x) ** 2).mean(dim=1, keepdim=True)
        if self.config.score in ("ssim", "l2+ssim"):
            maps += 1 - ssim_map(recon, x, self.config.ssim_window)
        maps = gaussian_blur(maps, self.config.blur_sigma)[:, 0]
        return maps.cpu().numpy(), maps.flatten(1).max(dim=1).values.cpu().numpy()

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net.eval()(x.to(self.device).float())[0].cpu()

    def state(self) -> dict:
        return {"config": self.config.to_dict(), "net": {k: v.cpu() for k, v in self.net.state_dict().items()},
                "losses": self.losses}

    @classmethod
    def from_state(cls, state: dict, device: str = "cpu") -> Autoencoder:
        model = cls(AutoencoderConfig(**{**state["config"], "channels": tuple(state["config"]["channels"])}), device)
        model.net.load_state_dict(state["net"])
        model.net.eval()
        model.losses = list(state.get("losses", []))
        return model
