"""Loading weight and checkpoint files: a garbage, truncated or foreign file fails with one typed
error naming it, before any output is made, instead of a traceback from deep inside torch or
ultralytics. (YAML configs: ``formats.yaml_file``; COCO and ``data.yaml``: ``formats``.)
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ...errors import WeightsError

T = TypeVar("T")


LOAD_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, KeyError, TypeError, AttributeError,
               ImportError, zipfile.BadZipFile, OSError, AssertionError, IndexError)


def load_weights(path: Path | str, what: str, load: Callable[[str], T]) -> T:
    """``load(path)`` for a weights or checkpoint file; whatever it raises on a file that is no
    such checkpoint (garbage, truncated, another model) becomes one ``WeightsError``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{what} does not exist", path)
    try:
        return load(str(path))
    except LOAD_ERRORS as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise WeightsError(f"{what} cannot be loaded ({type(exc).__name__}: {first})", path,
                           "pass a file written for this model, or fetch it again") from exc


def torch_file(path: Path | str, what: str, weights_only: bool = True) -> Any:
    """``torch.load`` of ``path`` on the CPU, through ``load_weights``."""
    import torch

    return load_weights(path, what, lambda p: torch.load(p, map_location="cpu", weights_only=weights_only))
