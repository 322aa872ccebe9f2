"""The cyclic collector pause: off inside, its earlier state back after, errors included."""

from __future__ import annotations

import gc

import pytest

from mvtec2coco.runtime.collector import cyclic_gc_paused


def test_pause_restores_the_collector_state_even_on_an_error():
    assert gc.isenabled()
    with pytest.raises(ValueError), cyclic_gc_paused():
        assert not gc.isenabled()
        raise ValueError
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # it was off: it stays off
    finally:
        gc.enable()

