"""Helpers shared by the layout readers: listing folders, skipping junk, checking pairs."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ..errors import EmptyCategoryError, PairingError, SizeMismatchError
from ..imageio import ImageHeader, is_image_name, read_header
from ..records import Sample

JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "license.txt", "readme.txt", "readme.md"}


def is_junk(name: str) -> bool:
    """Files and folders a reader skips silently: OS droppings, licences, hidden entries."""
    return name.lower() in JUNK_NAMES or name.startswith(".") or name.startswith("__")


def subdirs(folder: Path) -> list[Path]:
    """Sorted child folders, junk skipped; empty list if ``folder`` is missing."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as it:
        names = sorted(e.name for e in it if e.is_dir() and not is_junk(e.name))
    return [folder / n for n in names]


def image_files(folder: Path) -> list[Path]:
    """Sorted image files directly inside ``folder``; other files are ignored."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as it:  # names compared as strings: sorting Path objects cost more than listing
        names = sorted(e.name for e in it if is_image_name(e.name) and not is_junk(e.name) and e.is_file())
    return [folder / n for n in names]


def image_files_recursive(folder: Path) -> list[Path]:
    """Sorted image files anywhere below ``folder``, junk folders and files skipped."""
    found: list[Path] = []
    for sub in [folder, *subdirs(folder)]:
        found.extend(image_files(sub) if sub == folder else image_files_recursive(sub))
    return sorted(found)


def sample_id(root: Path, image: Path) -> str:
    """``image`` relative to ``root``, suffix dropped, with ``/`` separators."""
    text, base = str(image), str(root)  # pathlib caches both strings; string work is the fast path
    if text.startswith(base) and text[len(base) : len(base) + 1] == os.sep:
        relative = text[len(base) + 1 :]
    else:
        relative = os.path.relpath(text, base)
    stem = os.path.splitext(relative)[0]
    return stem if os.sep == "/" else stem.replace(os.sep, "/")


def make_sample(
    root: Path, category: str, split: str, label: str | None, image: Path, masks: tuple[Path, ...]
) -> Sample:
    """Build a sample from the listing alone: its size stays 0 until ``with_size`` reads it."""
    return Sample(id=sample_id(root, image), category=category, split=split, label=label, image=image,
                  masks=masks, width=0, height=0, channels=0)


def with_size(sample: Sample) -> Sample:
    """``sample`` with its image's size, read from headers; its masks must have the same size."""
    header = read_header(sample.image)
    for mask in sample.masks:
        check_same_size(mask, read_header(mask), sample.image, header)
    return replace(sample, width=header.width, height=header.height, channels=header.channels)


def check_same_size(mask: Path, mask_header: ImageHeader, image: Path, header: ImageHeader) -> None:
    if (mask_header.width, mask_header.height) != (header.width, header.height):
        raise SizeMismatchError(
            f"mask is {mask_header.width}x{mask_header.height} but image {image.name} is "
            f"{header.width}x{header.height}",
            mask,
            "resize the mask with nearest-neighbour interpolation or fix the pairing",
        )


def require_mask(image: Path, mask: Path | None, folder: Path, name: str) -> Path:
    """``mask``, found by the listing, or a ``PairingError`` naming ``folder / name``, the path that
    was looked for (joined only then: most images have their mask, and joins add up by thousands)."""
    if mask is None:
        raise PairingError(f"defect image has no mask (looked for {folder / name})", image,
                           "add the mask or move the image")
    return mask


def orphan_masks(masks: set[Path], used: set[Path]) -> None:
    """Raise for the first mask (in sorted order) that no image claimed."""
    orphans = sorted(masks - used)
    if orphans:
        raise PairingError(
            f"mask has no image ({len(orphans)} orphan mask(s) in total)",
            orphans[0],
            "remove the mask or restore its image",
        )


def require_samples(samples: list[Sample], category_dir: Path) -> None:
    if not samples:
        raise EmptyCategoryError("category holds no images", category_dir, "check the path and layout")
