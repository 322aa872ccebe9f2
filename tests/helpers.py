"""Helpers shared by tests: run the CLI in a subprocess, hash a folder tree."""

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
