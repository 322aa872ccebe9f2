"""Classifier data: samples and labels from a dataset plus a split, images decoded once and cached."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from ...datasets import load_dataset
from ...records import GOOD, Sample
from ...split import make_split
from .config import AugmentConfig, DataConfig

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


@dataclass
class Splits:
    """Samples per subset and the class names (index = label)."""

    classes: list[str]
    subsets: dict[str, list[tuple[Sample, int]]]


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (..., 3, H, W) -> float, ImageNet mean and std (what torchvision backbones expect)."""
    return (images.float() / 255.0 - MEAN) / STD


def class_of(sample: Sample, task: str, multi_category: bool) -> str:
    if sample.is_good:
        return GOOD
    if task == "binary":
        return "defect"
    return f"{sample.category}/{sample.label}" if multi_category else str(sample.label)


def make_splits(config: DataConfig) -> Splits:
    """The same split function as ``convert`` (or its ``split.csv``), so all models see the same images."""
    dataset = load_dataset(config.root, config.layout, list(config.categories) or None)
    samples = [s for s in dataset.samples if s.is_labeled]
    split = make_split(samples, config.split, config.seed)
    multi = len({s.category for s in samples}) > 1
    names = sorted({class_of(s, config.task, multi) for s in samples} - {GOOD})
    classes = [GOOD, *names]
    index = {c: i for i, c in enumerate(classes)}
    subsets: dict[str, list[tuple[Sample, int]]] = {"train": [], "val": [], "test": []}
    for s in samples:
        subsets[split.subsets[s.id]].append((s, index[class_of(s, config.task, multi)]))
    return Splits(classes, subsets)


class ImageCache:
    """Decoded, resized RGB images keyed by (path, size), in memory and optionally on disk.

    A 900x900 PNG is decoded once per run (or once ever with a disk cache), not once per epoch.
    ``hits`` and ``misses`` count lookups, so tests and logs can show the cache works.
    """

    def __init__(self, size: int, folder: str | None = None):
        self.size = size
        self.folder = Path(folder) if folder else None
        self.memory: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    def get(self, path: Path) -> np.ndarray:
        key = str(path)
        cached = self.memory.get(key)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        disk = self._disk_path(path)
        if disk is not None and disk.is_file():
            image = np.load(disk)
        else:
            image = self._decode(path)
            if disk is not None:
                disk.parent.mkdir(parents=True, exist_ok=True)
                np.save(disk, image)
        self.memory[key] = image
        return image

    def _decode(self, path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            from ...errors import BrokenFileError

            raise BrokenFileError("image cannot be decoded", path)
        image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))

    def _disk_path(self, path: Path) -> Path | None:
        if self.folder is None:
            return None
        stat = path.stat()
        key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.size}".encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.npy"


def build_augment(config: AugmentConfig):
    """torchvision v2 transforms on uint8 CHW tensors; identity when everything is off."""
    from torchvision.transforms import v2

    steps = []
    if config.hflip > 0:
        steps.append(v2.RandomHorizontalFlip(config.hflip))
    if config.vflip > 0:
        steps.append(v2.RandomVerticalFlip(config.vflip))
    if config.rotation > 0:
        steps.append(v2.RandomRotation(config.rotation))
    if config.color_jitter > 0:
        j = config.color_jitter
        steps.append(v2.ColorJitter(brightness=j, contrast=j, saturation=j))
    return v2.Compose(steps) if steps else None


class ClassifierDataset(TorchDataset):
    """(image tensor, label) pairs; with ``views=2`` two augmented views (for contrastive losses)."""

    def __init__(self, items: list[tuple[Sample, int]], cache: ImageCache, augment=None, views: int = 1):
        self.items = items
        self.cache = cache
        self.augment = augment
        self.views = views

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.items]

    def _view(self, image: torch.Tensor) -> torch.Tensor:
        if self.augment is not None:
            image = self.augment(image)
        return normalize(image)

    def __getitem__(self, index: int):
        sample, label = self.items[index]
        image = torch.from_numpy(self.cache.get(sample.image)).permute(2, 0, 1)
        if self.views == 1:
            return self._view(image), label
        return torch.stack([self._view(image) for _ in range(self.views)]), label
