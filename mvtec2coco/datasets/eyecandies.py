"""Eyecandies: ``<Category>/{train,val,test_public,test_private}/data/NNN_<item>.<ext>``.

Each sample ``NNN`` has six lighting images ``NNN_image_0.png`` .. ``NNN_image_5.png``, the
defect mask ``NNN_mask.png`` (the union of its per-type masks) and ``NNN_metadata.yaml`` whose
``anomalous`` (0/1) labels it; depth, normals and pose files are ignored. Each lighting image is
one sample with its object (``group``: ``NNN``) and lighting (``view``: ``image_K``), so
``--split-group sample`` keeps an object's images together. ``train`` and ``val`` are good;
``test_private`` has no labels.

Source: L. Bonfiglioli et al., "The Eyecandies Dataset for Unsupervised Multimodal Anomaly
Detection and Localization", ACCV 2022 (Eyecan.ai). Licence: CC BY-NC-SA 4.0, per its
publisher. Never shipped here.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import BrokenFileError, PairingError
from ..records import GOOD, Sample
from .common import image_files, make_sample, orphan_masks, problem, require_mask, require_samples

NAME = "eyecandies"
DEFECT = "defect"
SPLITS = ("train", "val", "test_public", "test_private")
IMAGE = re.compile(r"^(\d+)_image_(\d+)$")
QUIRKS = ("six lighting images per object share one mask: each is a sample (view image_K)",)


def is_category(folder: Path) -> bool:
    return any((folder / split / "data").is_dir() for split in SPLITS)


def anomalous(path: Path) -> bool | None:
    """``anomalous`` of a ``NNN_metadata.yaml``; None (a problem) when missing or unreadable."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        value = data["anomalous"]
        if isinstance(value, bool) or value not in (0, 1):
            raise ValueError(f"anomalous is {value!r}, not 0 or 1")
        return bool(value)
    except FileNotFoundError:
        problem(PairingError("image has no metadata (looked for this file)", path, "restore the metadata file"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, ValueError, OverflowError,
            RecursionError) as exc:
        problem(BrokenFileError(f"metadata lacks a readable 'anomalous' of 0 or 1 ({type(exc).__name__})", path,
                                "restore the metadata file"))
    return None


def read_category(root: Path, category_dir: Path) -> list[Sample]:
    category = category_dir.name
    samples: list[Sample] = []
    used: set[Path] = set()
    all_masks: set[Path] = set()
    for split in SPLITS:
        folder = category_dir / split / "data"
        files = image_files(folder)
        masks = {f.stem[: -len("_mask")]: f for f in files if re.fullmatch(r"\d+_mask", f.stem)}
        all_masks |= set(masks.values())
        labels: dict[str, bool | None] = {}
        for image in files:
            match = IMAGE.match(image.stem)
            if match is None:
                continue
            number, light = match.groups()
            label: str | None
            found: tuple[Path, ...] = ()
            if split == "test_private":
                label = None
            elif split in ("train", "val"):
                label = GOOD
                found = (masks[number],) if number in masks else ()
            else:
                if number not in labels:
                    labels[number] = anomalous(folder / f"{number}_metadata.yaml")
                if labels[number] is None:
                    continue
                label = DEFECT if labels[number] else GOOD
                if labels[number]:
                    found = require_mask(image, masks.get(number), folder, f"{number}_mask.png")
                elif number in masks:
                    found = (masks[number],)
            used.update(found)
            samples.append(make_sample(root, category, split, label, image, found, f"{category}/{split}/{number}",
                                       f"image_{light}"))
    orphan_masks(all_masks, used)
    require_samples(samples, category_dir)
    return samples
