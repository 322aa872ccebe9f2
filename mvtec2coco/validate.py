"""Checks on source masks before conversion: what would silently go wrong in a hand-written script.

Errors stop a trustworthy conversion (a defect image whose mask is empty, a mask whose size
differs from its image, pairing problems); warnings deserve a look (non-binary values such as
anti-aliased edges or 253/254, colour masks, defect pixels on a good image); notes are facts
(tiny regions, regions touching the border).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .datasets import load_dataset
from .datasets.common import collecting, with_size
from .datasets.imageio import MASK_NOTES, binary_mask, interpret_mask, read_mask_bytes
from .errors import BrokenFileError, DatasetError, PairingError, SizeMismatchError
from .records import Sample
from .runtime.parallel import pmap

LEVELS = {
    "unreadable_dataset": "error",
    "pairing": "error",
    "broken_file": "error",
    "size_mismatch": "error",
    "empty_defect_mask": "error",
    "jpeg_mask": "warning",
    "palette_mask": "warning",
    "alpha_mask": "warning",
    "transparent_mask": "warning",
    "differing_channels": "warning",
    "non_binary_values": "warning",
    "mask_on_good_image": "warning",
    "tiny_regions": "note",
    "border_regions": "note",
}
MAX_EXAMPLES = 20


@dataclass
class Findings:
    """What the checks of one sample found: check name -> messages."""

    found: dict[str, list[str]] = field(default_factory=dict)

    def add(self, check: str, message: str) -> None:
        self.found.setdefault(check, []).append(message)


def check_sample(args: tuple[Sample, int]) -> Findings:
    """Read the sample's headers, decode its masks and run every per-mask check; a file that
    cannot be read is a finding, and the other checks of the dataset go on."""
    sample, tiny = args
    findings = Findings()
    try:
        sample = with_size(sample)
        return _check_masks(sample, tiny, findings)
    except DatasetError as exc:
        findings.add(_kind(exc), str(exc))
        return findings


def _kind(exc: DatasetError) -> str:
    if isinstance(exc, SizeMismatchError):
        return "size_mismatch"
    if isinstance(exc, PairingError):
        return "pairing"
    if isinstance(exc, BrokenFileError):
        return "broken_file"
    return "unreadable_dataset"


def _check_masks(sample: Sample, tiny: int, findings: Findings) -> Findings:
    merged = np.zeros((sample.height, sample.width), np.uint8)
    for path in sample.masks:
        head, raw = read_mask_bytes(path)
        shown, note = interpret_mask(path, head, raw)
        if note is not None:
            findings.add(note, f"{path}: {MASK_NOTES[note]}")
        if raw.ndim == 3 and raw.shape[2] > 1:
            colour = raw[..., : min(3, raw.shape[2])]
            if not all(np.array_equal(colour[..., 0], colour[..., i]) for i in range(1, colour.shape[2])):
                findings.add("differing_channels", f"{path}: {raw.shape[2]} channels that differ")
        values = np.unique(raw)
        if values.size > 2 or (values.size == 2 and values[1] not in (1, 255)) or (values.size == 1 and values[0] > 0):
            listed = ", ".join(str(v) for v in values[:8]) + (" ..." if values.size > 8 else "")
            findings.add("non_binary_values", f"{path}: values {listed} (any value > 0 counts as defect)")
        np.maximum(merged, binary_mask(shown), out=merged)
    defect_pixels = int(np.count_nonzero(merged))
    if sample.is_good and defect_pixels:
        findings.add("mask_on_good_image", f"{sample.masks[0]}: {defect_pixels} defect pixel(s) on a good image")
    if not sample.is_good and sample.masks and not defect_pixels:
        findings.add("empty_defect_mask", f"{sample.masks[0]}: mask of a '{sample.label}' image is empty")
    if defect_pixels:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(merged, connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        small = int(np.count_nonzero(areas <= tiny))
        if small:
            findings.add("tiny_regions", f"{sample.masks[0]}: {small} region(s) of <= {tiny} px")
        x, y, w, h = (stats[1:, k] for k in (0, 1, 2, 3))
        border = int(np.count_nonzero((x == 0) | (y == 0) | (x + w == sample.width) | (y + h == sample.height)))
        if border:
            findings.add("border_regions", f"{sample.masks[0]}: {border} region(s) touch the image border")
    return findings


def validate_dataset(root: Path, layout: str | None = None, categories: list[str] | None = None, tiny: int = 3,
                     workers: int | None = None, progress: bool = False) -> dict:
    """Run every check and list every problem of the dataset (not only the first): pairing and
    listing problems of every category, then each sample's files."""
    root = Path(root)
    all_findings = Findings()
    with collecting() as problems:
        dataset = load_dataset(root, layout, categories, sizes=False)
    samples = list(dataset.samples)
    for exc in problems:
        all_findings.add(_kind(exc), str(exc))
    for findings in pmap(check_sample, [(s, tiny) for s in samples], workers, "Checking masks" if progress else None):
        for check, messages in findings.found.items():
            for message in messages:
                all_findings.add(check, message)
    checks = {
        name: {"level": level, "count": len(all_findings.found.get(name, [])),
               "examples": all_findings.found.get(name, [])[:MAX_EXAMPLES]}
        for name, level in LEVELS.items()
    }
    return {
        "root": str(root),
        "layout": dataset.layout,
        "images": len(samples),
        "masks": sum(len(s.masks) for s in samples),
        "errors": sum(c["count"] for c in checks.values() if c["level"] == "error"),
        "warnings": sum(c["count"] for c in checks.values() if c["level"] == "warning"),
        "checks": checks,
    }
