"""Placing images in an output tree (hardlink, symlink or copy) under names mirroring the source."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from ..errors import OptionError

IMAGE_MODES = ("link", "copy", "symlink")


def place_image(src: Path | str, dst: Path | str, mode: str) -> None:
    """Put ``src`` at ``dst``: ``link`` hardlinks (copying across filesystems), ``symlink``
    points at the absolute source, ``copy`` copies the bytes."""
    if mode == "link":
        try:
            os.link(src, dst)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EEXIST):  # a missing file or folder: copying fails the same way
                raise
            shutil.copyfile(src, dst)  # across filesystems, or links not supported
        return
    if mode == "symlink":
        os.symlink(os.path.abspath(src), dst)
        return
    if mode == "copy":
        shutil.copyfile(src, dst)
        return
    raise OptionError(f"unknown image mode '{mode}'", hint=f"use one of {', '.join(IMAGE_MODES)}")


def image_relpath(subset: str, source_relpath: str) -> str:
    """``images/<subset>/<path as in the dataset>``: mirroring keeps equal stems apart."""
    return f"images/{subset}/{source_relpath}"


def label_relpath(subset: str, source_relpath: str) -> str:
    """The label file ultralytics looks for: ``/images/`` -> ``/labels/``, suffix -> ``.txt``."""
    return f"labels/{subset}/{os.path.splitext(source_relpath)[0]}.txt"
