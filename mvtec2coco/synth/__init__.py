"""Built-in synthetic datasets in every supported layout, for the demo, tests and benchmarks."""

from __future__ import annotations

from .generate import generate
from .layouts import SYNTH_LAYOUTS
from .presets import PRESETS

__all__ = ["PRESETS", "SYNTH_LAYOUTS", "generate"]
