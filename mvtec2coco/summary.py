"""Facts about a dataset, per category: classes, counts per split, sizes, mask coverage."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .datasets.imageio import load_mask
from .records import GOOD, Dataset, Sample
from .runtime.parallel import pmap


@dataclass(frozen=True)
class MaskStats:
    """Defect-pixel fraction and 8-connected region count of one sample's merged mask."""

    coverage: float
    regions: int


@dataclass
class ClassRow:
    """One line of the per-split, per-class table."""

    split: str
    label: str
    images: int
    masks: int
    coverage_mean: float
    coverage_min: float
    coverage_max: float
    regions_mean: float
    regions_min: int
    regions_max: int


@dataclass
class CategorySummary:
    name: str
    defect_classes: list[str]
    total_images: int
    splits: dict[str, int]
    train_only_good: bool
    dimensions: list[dict[str, int]]  # {"width", "height", "channels", "count"}
    rows: list[ClassRow] = field(default_factory=list)

    def block(self) -> str:
        """The plain-text block printed first for each category."""
        lines = [
            f"Dataset Summary for '{self.name}':",
            f"Number of defect classes: {len(self.defect_classes)}",
            f"Types of defect classes: {self.defect_classes}",
            f"Total images used: {self.total_images}",
        ]
        lines += [f"- {_split_title(split, self.train_only_good)}: {n}" for split, n in _ordered(self.splits)]
        if len(self.dimensions) == 1:
            d = self.dimensions[0]
            lines.append(f"Image dimensions: {d['width']} x {d['height']} x {d['channels']}")
        else:
            lines.append("Image dimensions (varying):")
            lines += [f"- {d['width']} x {d['height']} x {d['channels']}: {d['count']} images" for d in self.dimensions]
        return "\n".join(lines)


SPLIT_ORDER = ("train", "validation", "test", "test_public", "all")


def _ordered(splits: dict[str, int]) -> list[tuple[str, int]]:
    rank = {s: i for i, s in enumerate(SPLIT_ORDER)}
    return sorted(splits.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))


def _split_title(split: str, train_only_good: bool) -> str:
    if split == "train":
        return "Training images (only 'good')" if train_only_good else "Training images"
    if split == "validation":
        return "Validation images"
    if split in ("test", "test_public"):
        return "Test images (good + defective)"
    if split.startswith("test_private"):
        return f"Unlabeled test images ({split})"
    if split == "all":
        return "Images without an official split"
    return f"{split} images"


def mask_stats(sample: Sample) -> MaskStats:
    """Decode the sample's masks (if any) and measure them."""
    if not sample.masks:
        return MaskStats(0.0, 0)
    mask = load_mask(sample.masks, sample.height, sample.width)
    count, _ = cv2.connectedComponents(mask, connectivity=8)
    return MaskStats(float(np.count_nonzero(mask)) / mask.size, count - 1)


def summarize(dataset: Dataset, workers: int | None = None, progress: bool = False) -> list[CategorySummary]:
    """Compute every category's summary; masks are decoded once each, in parallel."""
    samples = list(dataset.samples)
    stats = list(pmap(mask_stats, samples, workers, "Reading masks" if progress else None))
    by_sample = dict(zip((s.id for s in samples), stats))
    return [_category(dataset, name, by_sample) for name in dataset.categories]


def _category(dataset: Dataset, name: str, stats: dict[str, MaskStats]) -> CategorySummary:
    samples = dataset.of_category(name)
    splits = Counter(s.split for s in samples)
    dims = Counter((s.width, s.height, s.channels) for s in samples)
    summary = CategorySummary(
        name=name,
        defect_classes=dataset.defect_types(name),
        total_images=len(samples),
        splits=dict(splits),
        train_only_good=all(s.label == GOOD for s in samples if s.split == "train"),
        dimensions=[{"width": w, "height": h, "channels": c, "count": n}
                    for (w, h, c), n in sorted(dims.items(), key=lambda kv: (-kv[1], kv[0]))],
    )
    groups: dict[tuple[str, str], list[Sample]] = {}
    for s in samples:
        groups.setdefault((s.split, s.label or "unlabeled"), []).append(s)
    rank = {s: i for i, (s, _) in enumerate(_ordered(dict(splits)))}
    for (split, label), members in sorted(groups.items(), key=lambda kv: (rank[kv[0][0]], kv[0][1] != GOOD, kv[0][1])):
        cov = np.array([stats[s.id].coverage for s in members])
        reg = np.array([stats[s.id].regions for s in members])
        summary.rows.append(ClassRow(split, label, len(members), sum(len(s.masks) for s in members),
                                     float(cov.mean()), float(cov.min()), float(cov.max()),
                                     float(reg.mean()), int(reg.min()), int(reg.max())))
    return summary


def to_json(dataset: Dataset, summaries: list[CategorySummary]) -> dict:
    return {
        "root": str(dataset.root),
        "layout": dataset.layout,
        "categories": {
            s.name: {
                "number_of_defect_classes": len(s.defect_classes),
                **{k: v for k, v in asdict(s).items() if k not in ("name", "train_only_good")},
                "training_only_good": s.train_only_good,
            }
            for s in summaries
        },
    }


def plot(summaries: list[CategorySummary], path: Path) -> Path:
    """Bar chart of images per split and class, one panel per category."""
    from .runtime.plotting import pyplot, save

    plt = pyplot()

    n = len(summaries)
    fig, axes = plt.subplots(n, 1, figsize=(10, 3.2 * n + 0.6), squeeze=False)
    for ax, summary in zip(axes[:, 0], summaries):
        labels = [f"{r.split}\n{r.label}" for r in summary.rows]
        counts = [r.images for r in summary.rows]
        colours = ["#4c9f70" if r.label == GOOD else "#c8553d" if r.label != "unlabeled" else "#8d8d8d"
                   for r in summary.rows]
        bars = ax.bar(range(len(counts)), counts, color=colours)
        ax.bar_label(bars, fontsize=8)
        ax.set_xticks(range(len(counts)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("images")
        ax.set_title(f"{summary.name}: images per split and class (green good, red defect)")
        ax.margins(y=0.15)
    return save(fig, path, dpi=110)
