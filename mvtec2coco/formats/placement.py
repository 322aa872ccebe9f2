"""Placing images in an output tree (hardlink, symlink or copy), and the names they get there.

Two name layouts. ``flat`` (the default) gives every image one file name inside its subset
folder: the source path's parts joined by ``__`` (``bottle/test/crack/000.png`` ->
``bottle__test__crack__000.png``), which every consumer reads, including those that only look at
one folder level (supervision, Datumaro, Label Studio). The scheme is reversible
(``source_name``): ``%`` in a part is written ``%25``, and a part that holds ``__`` or starts or
ends with ``_`` has each ``_`` written ``%5F``; the MVTec families never need either. ``mirror``
keeps the source tree under the subset folder (``bottle/test/crack/000.png``).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from urllib.parse import unquote

from ..errors import OptionError

IMAGE_MODES = ("link", "copy", "symlink")
NAME_LAYOUTS = ("flat", "mirror")
JOIN = "__"


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


def output_name(source_relpath: str, names: str = "flat") -> str:
    """The image's file name inside ``images/<subset>/`` for the name layout ``names``."""
    if names == "mirror":
        return source_relpath
    if not _needs_escape(source_relpath):  # the common case, one string test instead of one per part
        return source_relpath.replace("/", JOIN)
    return JOIN.join(_escape(part) for part in source_relpath.split("/"))


def _needs_escape(relpath: str) -> bool:
    """Whether any part of ``relpath`` holds ``%`` or ``__`` or starts or ends with ``_``
    (``_escape`` would change it)."""
    return ("%" in relpath or JOIN in relpath or relpath.startswith("_") or relpath.endswith("_")
            or "/_" in relpath or "_/" in relpath)


def source_name(name: str) -> str:
    """The source path (relative to the dataset root) of a ``flat`` name; ``mirror`` names (with
    a ``/``) are returned as they are."""
    if "/" in name:
        return name
    return "/".join(unquote(part) for part in name.split(JOIN))


def _escape(part: str) -> str:
    part = part.replace("%", "%25")
    if JOIN in part or part.startswith("_") or part.endswith("_"):
        part = part.replace("_", "%5F")
    return part


def image_relpath(subset: str, name: str) -> str:
    """``images/<subset>/<name>``, ``name`` from ``output_name``."""
    return f"images/{subset}/{name}"


def label_relpath(subset: str, name: str) -> str:
    """The label file ultralytics looks for: ``/images/`` -> ``/labels/``, suffix -> ``.txt``."""
    return f"labels/{subset}/{os.path.splitext(name)[0]}.txt"
