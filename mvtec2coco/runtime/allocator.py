"""Make a worker process keep the memory it frees, instead of returning it to the OS per mask.

glibc hands large freed blocks back to the kernel (``munmap``, or trimming the heap top once more
than twice the last large block is free). A converter frees a decoded mask, OpenCV's contour
copy of it and the geometry arrays for every image, so the next image faults the same megabytes
in again: measured on full-scale synthetic MVTec AD, single process, that page-fault churn made
mask decoding and contour tracing 2-3x slower and the whole conversion about 1.7x slower.
Raising both thresholds keeps the blocks for reuse; the process then holds at most its peak.
``freed_memory_kept`` does it for the process that forks the workers (they inherit it, and it
takes work beside them), and sets glibc's initial thresholds again afterwards.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
GLIBC_INITIAL = 128 << 10  # both thresholds' values before any mallopt (then adjusted by glibc itself)


def keep_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Ask glibc to serve blocks up to ``mmap_threshold`` from the heap and to keep up to
    ``trim_threshold`` of free heap; returns False (and changes nothing) off glibc."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))


@contextmanager
def freed_memory_kept() -> Iterator[bool]:
    """``keep_freed_memory`` while the block runs (yields whether it took effect); then glibc's
    initial thresholds again, so that a program calling the library keeps its usual allocator
    (glibc's own adjustment of the mmap threshold stays off once it was set)."""
    kept = keep_freed_memory()
    try:
        yield kept
    finally:
        mallopt = _mallopt() if kept else None
        if mallopt is not None:
            mallopt(M_MMAP_THRESHOLD, GLIBC_INITIAL)
            mallopt(M_TRIM_THRESHOLD, GLIBC_INITIAL)


def _mallopt():
    """glibc's ``mallopt``, or None off glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt
