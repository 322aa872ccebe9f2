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
