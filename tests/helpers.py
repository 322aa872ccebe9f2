"""Helpers shared by tests: run the CLI in a subprocess, hash a folder tree, damage a PNG."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path


def run_cli(*args, check: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "mvtec2coco", *map(str, args)], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below ``root``."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


def stop_after(epochs: int, real):
    """``real`` (a ``train_one_epoch``) that raises KeyboardInterrupt, as Ctrl-C would, when it is
    called for the epoch after ``epochs`` epochs have run."""
    calls = []

    def stopping(*args, **kwargs):
        if len(calls) == epochs:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    return stopping


def stream_damage_opencv_decodes(good: bytes) -> bytes:
    """``good`` (a PNG) with one byte of its compressed stream changed and its chunk CRC made right
    again, where OpenCV still decodes every row, to other pixels, with only a warning (as a file
    damaged in memory before it was written would be): found by trying each byte."""
    import struct
    import zlib

    import cv2
    import numpy as np

    at = good.index(b"IDAT")
    (length,) = struct.unpack(">I", good[at - 4 : at])
    expected = cv2.imdecode(np.frombuffer(good, np.uint8), cv2.IMREAD_UNCHANGED)
    for k in range(2, length - 4):
        damaged = bytearray(good)
        damaged[at + 4 + k] ^= 0x01
        damaged[at + 4 + length : at + 8 + length] = struct.pack(">I", zlib.crc32(bytes(damaged[at : at + 4 + length])))
        decoded = cv2.imdecode(np.frombuffer(bytes(damaged), np.uint8), cv2.IMREAD_UNCHANGED)
        if decoded is not None and decoded.shape == expected.shape and not np.array_equal(decoded, expected):
            return bytes(damaged)
    raise AssertionError("no damage of this PNG that OpenCV decodes to other pixels")
