"""Recognise a dataset layout from its folders and find its category folders."""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError, UnknownLayoutError
from . import btad, dagm, eyecandies, folder, kolektor, ksdd2, loco, mpdd, mvtec, mvtec2, mvtec3d, realiad, visa
from .common import subdirs

# Most specific first: LOCO, MVTec 3D-AD, BTAD, KSDD2 and MPDD also look like MVTec AD from far away,
# and Eyecandies like MVTec AD 2 (both have test_public).
READERS = {m.NAME: m for m in (eyecandies, mvtec2, loco, mvtec3d, visa, realiad, dagm, ksdd2, btad, mpdd, kolektor,
                               mvtec, folder)}
LAYOUTS = tuple(READERS)


def layout_of_category(path: Path) -> str | None:
    """The layout a single category folder follows, or None."""
    for name, reader in READERS.items():
        if reader.is_category(path):
            return name
    return None


def detect_layout(path: Path) -> str:
    """Layout of ``path``, which may be a dataset root or one category folder."""
    if not path.is_dir():
        raise DatasetError("dataset folder does not exist", path, "pass the folder that holds the categories")
    own = layout_of_category(path)
    if own is not None and own != folder.NAME:
        return own
    children = [c for c in (layout_of_category(d) for d in subdirs(path)) if c is not None]
    if children:
        return max(sorted(set(children)), key=children.count)
    if own is not None:
        return own
    raise UnknownLayoutError(
        "no known dataset layout found (expected e.g. <category>/train/good and <category>/test)",
        path,
        f"pass --layout, one of {', '.join(LAYOUTS)}",
    )


def category_dirs(path: Path, layout: str) -> tuple[Path, list[Path]]:
    """Return (dataset root, category folders) for ``path`` read as ``layout``."""
    reader = READERS[layout]
    if reader.is_category(path) and not (layout == folder.NAME and _has_category_children(path, reader)):
        return path.parent, [path]
    categories = [d for d in subdirs(path) if reader.is_category(d)]
    if not categories:
        raise UnknownLayoutError(f"folder does not follow the '{layout}' layout", path,
                                 f"check the path or pass another --layout ({', '.join(LAYOUTS)})")
    return path, categories


def _has_category_children(path: Path, reader) -> bool:
    return any(reader.is_category(d) for d in subdirs(path))
