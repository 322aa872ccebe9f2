"""Dataset readers, one module per on-disk layout, and ``load_dataset`` that picks one."""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from ..records import Dataset
from ..runtime.collector import cyclic_gc_paused
from .common import with_size
from .detect import LAYOUTS, READERS, category_dirs, detect_layout

__all__ = ["LAYOUTS", "READERS", "load_dataset", "detect_layout"]


def load_dataset(path: Path | str, layout: str | None = None, categories: list[str] | None = None,
                 sizes: bool = True) -> Dataset:
    """List every sample below ``path`` (a dataset root or one category) without decoding pixels.

    ``layout`` overrides detection; ``categories`` keeps only those category names and raises
    ``DatasetError`` for a name that is not there. ``sizes`` reads every image's and mask's header
    (sizes must agree); without it, sizes stay 0 for a caller that reads them itself, as
    ``convert`` does in its worker processes instead of one header after another here. The
    cyclic garbage collector is paused meanwhile (``cyclic_gc_paused``): a listing makes
    thousands of records and no cycles.
    """
    with cyclic_gc_paused():
        return _load_dataset(path, layout, categories, sizes)


def _load_dataset(path: Path | str, layout: str | None, categories: list[str] | None, sizes: bool) -> Dataset:
    try:
        path = Path(path).resolve()
    except (RuntimeError, OSError) as exc:  # a symbolic link loop
        raise DatasetError(f"dataset path cannot be resolved ({exc})", path, "fix the symbolic link") from exc
    if layout is None:
        layout = detect_layout(path)
    elif layout not in READERS:
        raise DatasetError(f"unknown layout '{layout}'", path, f"use one of {', '.join(LAYOUTS)}")
    root, dirs = category_dirs(path, layout)
    if categories:
        names = {d.name for d in dirs}
        missing = sorted(set(categories) - names)
        if missing:
            raise DatasetError(f"no category named {', '.join(missing)}", path,
                               f"available: {', '.join(sorted(names))}")
        dirs = [d for d in dirs if d.name in set(categories)]
    reader = READERS[layout]
    samples = [s for d in dirs for s in reader.read_category(root, d)]
    samples.sort(key=lambda s: s.id)
    if sizes:
        samples = [with_size(s) for s in samples]
    sources = tuple(dict.fromkeys([path, *(d.resolve() for d in dirs)]))
    read_map = getattr(reader, "value_map", None)
    maps, problems = {}, {}
    for d in dirs if read_map is not None else ():
        try:  # a broken mapping file matters to --classes value only: kept as its problem until then
            found = read_map(root, d)
        except DatasetError as exc:
            problems[d.name] = str(exc)
            continue
        if found is not None:
            maps[d.name] = found
    return Dataset(root=root, layout=layout, samples=tuple(samples), sources=sources, value_maps=maps,
                   value_map_problems=problems)
