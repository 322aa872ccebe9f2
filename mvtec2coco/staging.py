"""Write a whole output folder or nothing: build it in a hidden sibling, rename it into place."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputExistsError


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` unless ``overwrite``; a plain file is never replaced."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError("output path is a file", out, "choose a folder path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError("output folder is not empty", out, "pass --overwrite or choose another folder")


@contextmanager
def staged_output(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success it replaces ``out``, on error it goes.

    The temporary folder sits on the same filesystem, so the final step is a rename: a crash or
    Ctrl-C at any moment leaves either the old ``out`` or the complete new one.
    """
    out = Path(out).absolute()
    check_output(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
