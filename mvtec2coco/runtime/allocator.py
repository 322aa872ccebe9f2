"""Make a worker process keep the memory it frees, instead of returning it to the OS per mask.

glibc hands large freed blocks back to the kernel (``munmap``, or trimming the heap top once more
than twice the last large block is free). A converter frees a decoded mask, OpenCV's contour
copy of it and the geometry arrays for every image, so the next image faults the same megabytes
in again: measured on full-scale synthetic MVTec AD, single process, that page-fault churn made
mask decoding and contour tracing 2-3x slower and the whole conversion about 1.7x slower.
Raising both thresholds keeps the blocks for reuse; the process then holds at most its peak.

``fork_map`` runs it in the calling process too, which takes work beside its forked workers, and
the setting stays for the rest of that process: setting glibc's initial values back would not
give its default back, since glibc stops adjusting the mmap threshold to the blocks it sees once
a program sets it, and every later large block would be a fresh memory map (measured here: the
benchmark's floor, decoding masks that way, took twice as long).
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Ask glibc to serve blocks up to ``mmap_threshold`` from the heap and to keep up to
    ``trim_threshold`` of free heap; returns False (and changes nothing) off glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
