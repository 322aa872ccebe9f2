"""freed_memory_kept: forked workers inherit the kept heap, and the calling program gets glibc's
usual allocator back afterwards."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from mvtec2coco.runtime.allocator import freed_memory_kept
from mvtec2coco.runtime.parallel import fork_map

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")


def _in_heap(size: int) -> bool:
    """Whether a fresh block of ``size`` bytes lies below the program break (glibc's heap) rather
    than in a memory map of its own."""
    libc = ctypes.CDLL(None)
    libc.sbrk.restype, libc.sbrk.argtypes = ctypes.c_void_p, (ctypes.c_long,)
    block = np.ones(size, np.uint8)
    return block.ctypes.data < libc.sbrk(0)


def _pid_and_heap(_k: int) -> tuple[int, bool]:
    time.sleep(0.002)  # long enough for both processes to take items
    return os.getpid(), _in_heap(3 << 20)


def _check_in_a_fresh_process() -> None:
    assert not _in_heap(48 << 20)  # beyond glibc's largest own threshold (32 MB): a map of its own
    with freed_memory_kept() as kept:
        assert kept
        seen = dict(fork_map(_pid_and_heap, list(range(40)), workers=2))
        assert len(seen) == 2 and all(seen.values())  # the forked worker inherited the setting
        assert _in_heap(48 << 20)
    assert not _in_heap(60 << 20)  # back to glibc's thresholds (a larger block than the heap kept free)


def test_workers_and_this_process_keep_large_blocks_in_the_heap_only_inside_the_block():
    """In a process of its own: what earlier tests freed would change what the heap holds."""
    result = subprocess.run([sys.executable, __file__], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


if __name__ == "__main__":
    _check_in_a_fresh_process()
