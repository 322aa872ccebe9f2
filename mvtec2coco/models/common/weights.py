"""Finding local weight files: the one place that explains how to get them.

Nothing is downloaded at run time. ``imagenet`` looks where torchvision itself caches its
weights (``$TORCH_HOME/hub/checkpoints/<file>``, default ``~/.cache/torch``); a path loads that
file; ``none`` starts from random initialisation.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...errors import Mvtec2CocoError


class WeightsNotFoundError(Mvtec2CocoError):
    """A weight file the configuration asks for is not on this machine."""


def torchvision_checkpoint_dir() -> Path:
    """The folder torchvision reads cached weights from (honours ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def torchvision_weights_file(arch: str) -> tuple[Path, str]:
    """(expected local path, download URL) of the default ImageNet weights of ``arch``."""
    from torchvision.models import get_model_weights

    weights = get_model_weights(arch).DEFAULT
    return torchvision_checkpoint_dir() / weights.url.split("/")[-1], weights.url


def load_state_dict(source: str, arch: str) -> dict[str, torch.Tensor] | None:
    """The state dict for ``source`` (``none``, ``imagenet`` or a path), or None for random init."""
    if source in ("none", "", None):
        return None
    if source == "imagenet":
        path, url = torchvision_weights_file(arch)
        if not path.is_file():
            raise WeightsNotFoundError(
                f"ImageNet weights for {arch} are not on this machine (nothing is downloaded at run time)",
                path,
                f"download {url} on a machine with internet access and copy it to {path.parent}/ "
                f"(or set TORCH_HOME), or use weights: none",
            )
    else:
        path = Path(source)
        if not path.is_file():
            raise WeightsNotFoundError("weight file does not exist", path, "pass an existing .pth file or weights: none")
    from .files import torch_file

    state = torch_file(path, "weight file")
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # our own checkpoints
    return state
