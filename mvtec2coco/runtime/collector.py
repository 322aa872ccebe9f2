"""Pause Python's cyclic garbage collector over a batch job that makes many objects and few cycles.

The collector runs whenever enough container objects have been made since its last pass, and
each full pass walks every object alive. A checking pass makes objects by the hundred thousand
(dataset records, decoded results sent between processes, and the modules that importing torch
loads: some 350,000 objects), nearly none of them in reference cycles, so those passes free
nothing and cost time. Measured on full-scale synthetic MVTec AD (whole ``verify`` runs,
alternating): about a tenth of its wall time; memory at its peak unchanged. Reference counting
still frees everything that is not in a cycle while the collector is paused.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Disable the cyclic collector in this block, and in the processes forked in it; restore its
    state after (it stays off if it was off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
