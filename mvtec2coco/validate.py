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

from .datasets import READERS, load_dataset
from .datasets.common import collecting, with_size
from .datasets.imageio import MASK_NOTES, binary_mask, interpret_mask, opencv_single_threaded, read_mask_bytes
from .errors import BrokenFileError, DatasetError, PairingError, SizeMismatchError
from .geometry.regions import region_stats
from .records import Sample
from .runtime.allocator import keep_freed_memory
from .runtime.parallel import fork_map

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
    "unmapped_mask_values": "warning",
    "unreadable_mapping": "warning",
    "mask_on_good_image": "warning",
    "tiny_regions": "note",
    "border_regions": "note",
    "layout_quirks": "note",
}
MAX_EXAMPLES = 20


@dataclass
class Findings:
    """What the checks of one sample found: check name -> messages."""

    found: dict[str, list[str]] = field(default_factory=dict)

    def add(self, check: str, message: str) -> None:
        self.found.setdefault(check, []).append(message)


def check_sample(args: tuple[Sample, int, dict[int, str] | None]) -> Findings:
    """Read the sample's headers, decode its masks and run every per-mask check; a file that
    cannot be read is a finding, and the other checks of the dataset go on. With the category's
    value mapping (``datasets.value_maps``), a mask value it does not name is a finding and the
    values it names are expected (not "non-binary")."""
    sample, tiny, value_map = args
    findings = Findings()
    try:
        sample = with_size(sample)
        return _check_masks(sample, tiny, findings, value_map)
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


def _check_masks(sample: Sample, tiny: int, findings: Findings, value_map: dict[int, str] | None = None) -> Findings:
    if not sample.masks:  # a good image without a mask (most of them): nothing to decode
        return findings
    merged: np.ndarray | None = None
    for path in sample.masks:
        head, raw = read_mask_bytes(path)
        shown, note = interpret_mask(path, head, raw)
        if note is not None:
            findings.add(note, f"{path}: {MASK_NOTES[note]}")
        if raw.ndim == 3 and raw.shape[2] > 1:
            colour = raw[..., : min(3, raw.shape[2])]
            if not all(np.array_equal(colour[..., 0], colour[..., i]) for i in range(1, colour.shape[2])):
                findings.add("differing_channels", f"{path}: {raw.shape[2]} channels that differ")
        values = _values(raw)
        if value_map is not None and raw.ndim == 2:
            unknown = [int(v) for v in values if v != 0 and int(v) not in value_map]
            if unknown:
                listed = ", ".join(map(str, unknown[:8])) + (" ..." if len(unknown) > 8 else "")
                findings.add("unmapped_mask_values", f"{path}: values {listed} have no entry in the dataset's mapping "
                             "(--classes value does not write their regions)")
        elif values.size > 2 or (values.size == 2 and values[1] not in (1, 255)) or (values.size == 1 and values[0] > 0):
            listed = ", ".join(str(v) for v in values[:8]) + (" ..." if values.size > 8 else "")
            findings.add("non_binary_values", f"{path}: values {listed} (any value > 0 counts as defect)")
        binary = binary_mask(shown)
        merged = binary if merged is None else np.maximum(merged, binary, out=merged)
    assert merged is not None
    defect_pixels = cv2.countNonZero(merged)
    if sample.is_good and defect_pixels:
        findings.add("mask_on_good_image", f"{sample.masks[0]}: {defect_pixels} defect pixel(s) on a good image")
    if not sample.is_good and sample.masks and not defect_pixels:
        findings.add("empty_defect_mask", f"{sample.masks[0]}: mask of a '{sample.label}' image is empty")
    if defect_pixels:
        stats = region_stats(merged)
        areas = stats[:, cv2.CC_STAT_AREA]
        small = int(np.count_nonzero(areas <= tiny))
        if small:
            findings.add("tiny_regions", f"{sample.masks[0]}: {small} region(s) of <= {tiny} px")
        x, y, w, h = (stats[:, k] for k in (0, 1, 2, 3))
        border = int(np.count_nonzero((x == 0) | (y == 0) | (x + w == sample.width) | (y + h == sample.height)))
        if border:
            findings.add("border_regions", f"{sample.masks[0]}: {border} region(s) touch the image border")
    return findings


def _values(raw: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a mask: a histogram for 8- and 16-bit masks (np.unique sorts
    every pixel, ten times slower on a 1024 x 1024 mask; OpenCV's histogram is faster still)."""
    if raw.dtype == np.uint8 and raw.ndim == 2:
        _, high, _, _ = cv2.minMaxLoc(raw)
        nonzero = cv2.countNonZero(raw)
        if nonzero == 0 or cv2.countNonZero(cv2.compare(raw, high, cv2.CMP_EQ)) == nonzero:  # 0 and one value
            values = ([0] if nonzero < raw.size else []) + ([int(high)] if nonzero else [])
            return np.array(values, np.uint8)
        counts = cv2.calcHist([raw], [0], None, [256], [0, 256]).ravel()
        return np.flatnonzero(counts).astype(np.uint8)
    if raw.dtype in (np.uint8, np.uint16):
        return np.flatnonzero(np.bincount(raw.ravel(), minlength=1)).astype(raw.dtype)
    return np.unique(raw)


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
    for problem in dataset.value_map_problems.values():
        all_findings.add("unreadable_mapping", f"{problem} (--classes value cannot name the values)")
    for quirk in getattr(READERS[dataset.layout], "QUIRKS", ()):
        all_findings.add("layout_quirks", f"{dataset.layout}: {quirk}")
    jobs = [(s, tiny, dataset.value_maps.get(s.category)) for s in samples]
    with opencv_single_threaded():
        done = fork_map(check_sample, jobs, workers, "Checking masks" if progress else None,
                        initializer=keep_freed_memory)
    for findings in done:
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
