"""Stable hashing for seeds: the same text gives the same integer in every run and process."""

from __future__ import annotations

import zlib


def stable_int(text: str) -> int:
    """CRC-32 of ``text`` (Python's ``hash`` changes between runs)."""
    return zlib.crc32(text.encode())
