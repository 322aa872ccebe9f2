"""Plain records that every stage speaks: one ``Sample`` per image, one ``Dataset`` per folder."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

GOOD = "good"


@dataclass(frozen=True)
class Sample:
    """One image of a dataset and the mask files that describe its defects.

    ``id`` is the image path relative to ``Dataset.root`` without suffix (``bottle/test/crack/000``),
    unique and stable. ``label`` is ``"good"``, a defect type, or ``None`` for unlabeled images
    (MVTec AD 2 private test sets). ``masks`` holds zero, one or several files (LOCO); any pixel
    > 0 in any of them is defect. Sizes come from file headers; no pixel is decoded to fill them.
    They are 0 in a listing made without reading headers (``load_dataset(..., sizes=False)``).
    """

    id: str
    category: str
    split: str
    label: str | None
    image: Path
    masks: tuple[Path, ...]
    width: int
    height: int
    channels: int
    group: str = ""  # the physical part several images show (Real-IAD's camera views): kept together by
    view: str = ""  # ``--split-group sample``; the view (camera, lighting) this image is of that part

    @property
    def has_size(self) -> bool:
        return self.width > 0

    @property
    def is_good(self) -> bool:
        return self.label == GOOD

    @property
    def is_labeled(self) -> bool:
        return self.label is not None

    @cached_property
    def relpath(self) -> str:
        """Image path relative to the dataset root, suffix included (used to mirror the tree)."""
        name = str(self.image)  # pathlib caches the string; Path.suffix parses the name each time
        dot = name.rfind(".")
        return self.id + (name[dot:] if dot > name.rfind(os.sep) else "")


@dataclass(frozen=True)
class Dataset:
    """The samples of one dataset folder, sorted by id, and the layout that produced them."""

    root: Path
    layout: str
    samples: tuple[Sample, ...]
    sources: tuple[Path, ...] = ()  # the folders read (resolved): no output may touch them
    value_maps: dict[str, dict[int, str]] = field(default_factory=dict)  # category -> mask value -> defect
    value_map_problems: dict[str, str] = field(default_factory=dict)  # category -> why its mapping is unreadable

    def files(self) -> list[Path]:
        """Every image and mask file of the samples."""
        return [p for s in self.samples for p in (s.image, *s.masks)]

    @property
    def categories(self) -> list[str]:
        return sorted({s.category for s in self.samples})

    def defect_types(self, category: str | None = None) -> list[str]:
        """Sorted defect type names (labels other than ``good`` and unlabeled)."""
        return sorted(
            {
                s.label
                for s in self.samples
                if s.label not in (None, GOOD) and (category is None or s.category == category)
            }
        )

    def of_category(self, category: str) -> list[Sample]:
        return [s for s in self.samples if s.category == category]

    def counts(self) -> Counter[tuple[str, str, str]]:
        """Image count per (category, split, label)."""
        return Counter((s.category, s.split, s.label or "unlabeled") for s in self.samples)
