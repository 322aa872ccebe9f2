"""Real-IAD: ``<category>/{OK/<part>/<image>.jpg, NG/<code>/<part>/<image>.jpg + <mask>.png}``.

Every physical part (``S0001``) is photographed by five cameras (``..._C1_...`` to ``_C5_``);
each image is one sample, with its part (``group``: ``NG/AK/S0001``) and camera (``view``: ``C1``)
kept, so that ``--split-group sample`` keeps all views of a part in one subset. A defect image's
mask lies beside it as ``<stem>.png`` or ``<stem>_mask.png``. Defect types are the dataset's own
codes (AK, BX, CH, HS, PS, QS, YW, ZW; see README).

The split comes from the dataset's JSON file of the category (``realiad_jsons/<category>.json``
or ``realiad_jsons/realiad_jsons/<category>.json`` beside the categories or one folder up):
``{"meta": {"normal_class": "OK", ...}, "train": [...], "test": [...]}``, each entry with
``image_path`` (relative to the category folder), ``anomaly_class`` and ``mask_path``. As in the
dataset's own evaluation, an entry whose class is the normal class or whose mask is null is a
good view (a defective part's camera that does not see the defect). Without the JSON every
sample gets split ``all`` and its folder's label.

Source: C. Wang et al., "Real-IAD: A Real-World Multi-View Dataset for Benchmarking Versatile
Industrial Anomaly Detection", CVPR 2024 (Tencent Youtu Lab). Licence: CC BY-NC-SA 4.0, for
non-commercial research, per its publisher. Never shipped here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import BrokenFileError, DatasetError, PairingError
from ..records import GOOD, Sample
from .common import is_junk, make_sample, orphan_masks, problem, require_mask, require_samples, subdirs
from .imageio import is_image_name

NAME = "realiad"
OK, NG = "OK", "NG"
JSON_DIRS = ("realiad_jsons", "realiad_jsons/realiad_jsons")
VIEW = re.compile(r"_(C\d+)(?:_|$)")
QUIRKS = ("defect parts are photographed by five cameras; a camera that does not see the defect has no mask "
          "(its image is a good view, as in the dataset's evaluation)",)


def is_category(folder: Path) -> bool:
    return (folder / OK).is_dir() or (folder / NG).is_dir()


def split_file(root: Path, category: str) -> Path | None:
    """The category's JSON split file, where the dataset puts it, or None."""
    for base in (root, root.parent):
        for sub in JSON_DIRS:
            path = base / sub / f"{category}.json"
            if path.is_file():
                return path
    return None


def read_split(path: Path, category: str) -> dict[str, tuple[str, bool]] | None:
    """image path (relative to the category folder) -> (split, defective), from the JSON; None
    (a problem) when the file cannot be read or lists an image twice."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        normal = data.get("meta", {}).get("normal_class", OK)
        table: dict[str, tuple[str, bool]] = {}
        for split in ("train", "test"):
            for entry in data[split]:
                rel = str(entry["image_path"]).replace("\\", "/")
                rel = rel[len(category) + 1 :] if rel.startswith(f"{category}/") else rel
                if rel in table:
                    raise ValueError(f"{rel} is listed twice ({table[rel][0]} and {split})")
                table[rel] = (split, entry.get("anomaly_class") != normal and entry.get("mask_path") is not None)
        return table
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        problem(DatasetError(f"Real-IAD split file cannot be read ({type(exc).__name__}: {str(exc)[:200]})", path,
                             "restore the dataset's JSON file or move it away"))
        return None


def read_category(root: Path, category_dir: Path) -> list[Sample]:
    category = category_dir.name
    json_path = split_file(root, category)
    listed = read_split(json_path, category) if json_path is not None else None
    if json_path is not None and listed is None:
        return []  # one problem for the whole category, not one per image
    samples: list[Sample] = []
    used: set[Path] = set()
    all_masks: set[Path] = set()
    parts = [(GOOD, d) for d in subdirs(category_dir / OK)]
    parts += [(code.name, d) for code in subdirs(category_dir / NG) for d in subdirs(code)]
    for label, part_dir in parts:
        images, masks = _listing(part_dir)
        all_masks |= set(masks.values())
        for image in images:
            rel = image.relative_to(category_dir).as_posix()
            mask = masks.get(image.stem)
            split, this = "all", label
            if listed is not None:
                if rel not in listed:
                    problem(DatasetError("image is not in the category's split file", image,
                                         f"restore the image's entry in {json_path}"))
                    continue
                split, defective = listed[rel]
                this = label if defective and label != GOOD else GOOD
            found: tuple[Path, ...] = ()
            if this != GOOD:
                found = require_mask(image, mask, part_dir, f"{image.stem}.png")
            elif mask is not None:
                found = (mask,)
            used.update(found)
            view = VIEW.search(image.stem)
            samples.append(make_sample(root, category, split, this, image, found,
                                       f"{category}/{part_dir.relative_to(category_dir).as_posix()}",
                                       view.group(1) if view else ""))
    if listed is not None:
        seen = {s.image.relative_to(category_dir).as_posix() for s in samples}
        gone = sorted(set(listed) - seen)
        if gone:
            problem(PairingError(f"{len(gone)} image(s) of the split file do not exist, e.g. {gone[0]}", json_path,
                                 "restore the images or the dataset's JSON file"))
    orphan_masks(all_masks, used)
    require_samples(samples, category_dir)
    return samples


def _listing(folder: Path) -> tuple[list[Path], dict[str, Path]]:
    """The part folder's images (JPEG) and their masks by image stem: a PNG of the image's stem
    or ``<stem>_mask``. A PNG that belongs to no image is listed as a mask (an orphan)."""
    files = [folder / n for n in sorted(p.name for p in _entries(folder)) if is_image_name(n) and not is_junk(n)]
    images = [f for f in files if f.suffix.lower() in (".jpg", ".jpeg")]
    stems = {f.stem for f in images}
    masks: dict[str, Path] = {}
    for f in files:
        if f.suffix.lower() in (".jpg", ".jpeg"):
            continue
        stem = f.stem[: -len("_mask")] if f.stem.endswith("_mask") and f.stem[: -len("_mask")] in stems else f.stem
        masks.setdefault(stem, f)
    return images, masks


def _entries(folder: Path) -> list[Path]:
    """The files of a part folder; a link that points nowhere (or loops) is a problem."""
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        problem(BrokenFileError(f"cannot list folder: {exc.strerror}", folder, "check its permissions"))
        return []
    files = []
    for p in entries:
        try:
            if p.is_file():
                files.append(p)
            elif p.is_symlink() and is_image_name(p.name):
                problem(BrokenFileError("image link points to a missing file or loops", p, "fix or remove the link"))
        except OSError:
            problem(BrokenFileError("image link loops", p, "fix or remove the link"))
    return files
