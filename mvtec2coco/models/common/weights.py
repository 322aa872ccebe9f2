"""Backbone weights for the classifier and PatchCore: ``imagenet``, a path, a registry name, or ``none``.

``imagenet`` is torchvision's default weights of the architecture, taken from torchvision's own
cache (``$TORCH_HOME/hub/checkpoints/<file>``) or fetched there on first use (``fetch.ensure``:
verified, never when offline); a path loads that file and is never downloaded; ``none`` starts
from random initialisation.
"""

from __future__ import annotations

import torch

from .fetch import WeightsNotFoundError  # re-exported: callers catch it from here


def load_state_dict(source: str, arch: str) -> dict[str, torch.Tensor] | None:
    """The state dict for ``source`` (``none``, ``imagenet``, a registry name or a path), or None for
    random init."""
    if source in ("none", "", None):
        return None
    from .fetch import ensure, resolve
    from .registry import find

    if source == "imagenet":
        entry = find(arch)
        if entry is None:
            raise WeightsNotFoundError(f"no ImageNet weights known for {arch}", None,
                                       "pass a .pth file, a name from `mvtec2coco weights list`, or weights: none")
        path = ensure(entry)
    else:
        path = resolve(source, "weight file")
    from .files import torch_file

    state = torch_file(path, "weight file")
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # our own checkpoints
    return state
