"""Facts about a dataset, per category: classes, counts per split, sizes, mask coverage, and the
sizes of the defect regions per class, in source pixels and at a training size."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .datasets.imageio import load_mask, opencv_single_threaded
from .errors import DatasetError
from .geometry.regions import region_stats
from .mask_layers import sample_layers
from .records import GOOD, Dataset, Sample
from .runtime.allocator import keep_freed_memory
from .runtime.parallel import fork_map

SMALL_PX = 4  # a region whose box's shorter side is below this at training size is nearly lost
QUANTILES = (0.0, 0.1, 0.5, 0.9, 1.0)
HISTOGRAM_EDGES = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 100_000)  # px; the last bin is open


@dataclass(frozen=True)
class MaskStats:
    """Defect-pixel fraction and 8-connected region count of one sample's merged mask, with each
    region's pixel count and the shorter side of its box."""

    coverage: float
    regions: int
    areas: tuple[int, ...] = ()
    sides: tuple[int, ...] = ()
    values: tuple[tuple[int, int], ...] = ()  # (mask value, its regions), with a value mapping only


@dataclass
class SizeRow:
    """The sizes of one defect class's regions: quantiles (min, 10 %, median, 90 %, max) of the
    pixel count and of the box's shorter side, in source pixels; and at ``imgsz`` (the image's
    longer side resized to it, as detectors train) the shorter sides and how many fall below
    ``SMALL_PX``."""

    label: str
    regions: int
    area_px: list[float]
    shorter_side_px: list[float]
    imgsz: int
    shorter_side_at_imgsz: list[float]
    below_small_at_imgsz: int
    histogram_at_imgsz: list[int]  # regions per bin of shorter side at imgsz, bins HISTOGRAM_EDGES


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
    sizes: list[SizeRow] = field(default_factory=list)
    value_classes: list[dict] = field(default_factory=list)  # {"value", "name", "regions", "images"}: mapping file

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
        if self.value_classes:
            lines.append("Defect classes by mask value (the dataset's mapping file; --classes value):")
            lines += [f"- {v['value']}: {v['name'] or '(no entry in the mapping)'}: {v['regions']} regions in "
                      f"{v['images']} images" for v in self.value_classes]
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


def mask_stats(sample: Sample, by_value: bool = False) -> MaskStats:
    """Decode the sample's masks (if any) and measure them; ``by_value`` also counts the regions
    of each mask value (``mask_layers``, one layer per file as ``convert`` reads them)."""
    if not sample.masks:
        return MaskStats(0.0, 0)
    mask = load_mask(sample.masks, sample.height, sample.width, zero_one=False)  # any value > 0 is defect
    regions = region_stats(mask)
    count = len(regions) + 1
    values: Counter = Counter()
    if by_value and not sample.is_good:
        try:
            layers = sample_layers(sample.masks, sample.height, sample.width, 0, {}, per_file=True)
        except DatasetError:  # a mask that holds no exact values (a JPEG): counted without them (validate says why)
            layers = []
        for layer in layers:
            values[layer.value] += cv2.connectedComponents(layer.mask, connectivity=8)[0] - 1
    return MaskStats(float(np.count_nonzero(mask)) / mask.size, count - 1,
                     tuple(regions[:, cv2.CC_STAT_AREA].tolist()),
                     tuple(np.minimum(regions[:, cv2.CC_STAT_WIDTH], regions[:, cv2.CC_STAT_HEIGHT]).tolist()),
                     tuple(sorted(values.items())))


def _mask_stats(args: tuple[Sample, bool]) -> MaskStats:
    return mask_stats(*args)


def summarize(dataset: Dataset, workers: int | None = None, progress: bool = False,
              imgsz: int = 640) -> list[CategorySummary]:
    """Compute every category's summary; masks are decoded once each, in parallel."""
    samples = list(dataset.samples)
    jobs = [(s, s.category in dataset.value_maps) for s in samples]
    with opencv_single_threaded():
        stats = fork_map(_mask_stats, jobs, workers, "Reading masks" if progress else None,
                         initializer=keep_freed_memory)
    by_sample = dict(zip((s.id for s in samples), stats))
    return [_category(dataset, name, by_sample, imgsz) for name in dataset.categories]


def _quantiles(values: np.ndarray) -> list[float]:
    return [round(float(v), 2) for v in np.quantile(values, QUANTILES)] if values.size else []


def _sizes(samples: list[Sample], stats: dict[str, MaskStats], imgsz: int) -> list[SizeRow]:
    """One row per defect class with regions: their sizes in source pixels and at ``imgsz``."""
    by_label: dict[str, list[tuple[np.ndarray, np.ndarray, float]]] = {}
    for s in samples:
        st = stats[s.id]
        if s.label in (None, GOOD) or not st.areas:
            continue
        by_label.setdefault(s.label, []).append((np.array(st.areas), np.array(st.sides), imgsz / max(s.width, s.height)))
    rows = []
    for label, parts in sorted(by_label.items()):
        areas = np.concatenate([a for a, _, _ in parts])
        sides = np.concatenate([d for _, d, _ in parts])
        scaled = np.concatenate([d * k for _, d, k in parts])
        rows.append(SizeRow(label, int(areas.size), _quantiles(areas), _quantiles(sides), imgsz, _quantiles(scaled),
                            int(np.count_nonzero(scaled < SMALL_PX)),
                            np.histogram(scaled, bins=HISTOGRAM_EDGES)[0].tolist()))
    return rows


def _category(dataset: Dataset, name: str, stats: dict[str, MaskStats], imgsz: int = 640) -> CategorySummary:
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
    summary.sizes = _sizes(samples, stats, imgsz)
    if name in dataset.value_maps:
        names = dataset.value_maps[name]
        regions: Counter = Counter()
        images: Counter = Counter()
        for s in samples:
            for value, n in stats[s.id].values:
                regions[value] += n
                images[value] += 1
        summary.value_classes = [{"value": v, "name": names.get(v), "regions": regions[v], "images": images[v]}
                                 for v in sorted(set(names) | set(regions))]
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


def plot_sizes(summaries: list[CategorySummary], path: Path) -> Path:
    """Histogram of the regions' shorter box side at the training size, per class, one panel per
    category, with the line below which a region is nearly lost."""
    from .runtime.plotting import pyplot, save

    plt = pyplot()
    n = len(summaries)
    fig, axes = plt.subplots(n, 1, figsize=(10, 3.2 * n + 0.6), squeeze=False)
    labels = [f"{a}-{b}" for a, b in zip(HISTOGRAM_EDGES[:-2], HISTOGRAM_EDGES[1:-1])] + [f">={HISTOGRAM_EDGES[-2]}"]
    for ax, summary in zip(axes[:, 0], summaries):
        rows = summary.sizes
        width = 0.8 / max(1, len(rows))
        for k, row in enumerate(rows):
            ax.bar(np.arange(len(labels)) + k * width - 0.4 + width / 2, row.histogram_at_imgsz, width, label=row.label)
        ax.axvline(HISTOGRAM_EDGES.index(SMALL_PX) - 0.5, color="#c8553d", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        imgsz = rows[0].imgsz if rows else 0
        ax.set_xlabel(f"shorter box side (px), image resized to {imgsz} px; left of the dashed line: below {SMALL_PX} px")
        ax.set_ylabel("regions")
        ax.set_title(f"{summary.name}: defect region sizes at training size")
        if rows:
            ax.legend(fontsize=7, ncol=3)
    return save(fig, path, dpi=110)
