"""DAGM 2007: ``ClassN/{Train,Test}/NNNN.PNG`` with ``Label/NNNN_label.PNG`` and ``Label/Labels.txt``.

``Labels.txt`` starts with one header line, then one tab-separated row per image: row number,
defect flag (0/1), image file, 0, and the label file (``0`` when there is none). Flag 1 is a
defect image (type ``defect``: one defect kind per class); ``Train`` holds defect images too.
Without ``Labels.txt`` an image is defective when its ``_label`` file exists. The labels are
filled ellipses around each defect (weak labels, not pixel-exact).

Source: "Weakly Supervised Learning for Industrial Optical Inspection", DAGM 2007 competition
(M. Wieler, T. Hahn; Heidelberg Collaboratory for Image Processing). Licence: for research use,
per its publisher. Never shipped here.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BrokenFileError, PairingError
from ..records import GOOD, Sample
from .common import image_files, make_sample, orphan_masks, problem, require_mask, require_samples

NAME = "dagm"
DEFECT = "defect"
SPLITS = {"Train": "train", "Test": "test"}
LABEL_DIR = "Label"
LABELS_TXT = "Labels.txt"
QUIRKS = ("labels are ellipses drawn around each defect (weak labels): boxes and outlines are larger than the defect",)


def is_category(folder: Path) -> bool:
    return any((folder / split / LABEL_DIR).is_dir() for split in SPLITS)


def read_labels_txt(path: Path) -> dict[str, str | None]:
    """Image file name -> label file name (None for a good image), from ``Labels.txt``."""
    try:
        lines = path.read_text(encoding="utf-8-sig", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problem(BrokenFileError(f"Labels.txt cannot be read ({exc})", path, "restore the dataset's own file"))
        return {}
    found: dict[str, str | None] = {}
    for number, line in enumerate(lines[1:], 2):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 5 or parts[1] not in ("0", "1"):
            problem(PairingError(f"line {number} is not 'row flag image 0 label'", path, "restore the dataset's own file"))
            continue
        if parts[2] in found:
            problem(PairingError(f"line {number} lists {parts[2]} a second time", path, "keep one row per image"))
            continue
        found[parts[2]] = parts[4] if parts[1] == "1" else None
    return found


def read_category(root: Path, category_dir: Path) -> list[Sample]:
    category = category_dir.name
    samples: list[Sample] = []
    used: set[Path] = set()
    all_masks: set[Path] = set()
    for folder_name, split in SPLITS.items():
        folder = category_dir / folder_name
        label_dir = folder / LABEL_DIR
        masks = {m.name: m for m in image_files(label_dir)}
        all_masks |= set(masks.values())
        txt = label_dir / LABELS_TXT
        listed = None
        if txt.is_file():
            listed = read_labels_txt(txt)
        elif txt.exists() or txt.is_symlink():  # a folder, or a link that points nowhere: not a label list
            problem(BrokenFileError("Labels.txt is not a readable file", txt, "restore the dataset's own file"))
            continue
        images = image_files(folder)
        if listed is not None:
            names = {i.name for i in images}
            gone = sorted(n for n in listed if n not in names)
            if gone:
                problem(PairingError(f"{len(gone)} image(s) listed in Labels.txt do not exist, e.g. {gone[0]}", txt,
                                     "restore the images or Labels.txt"))
        for image in images:
            if listed is None:
                mask = next((m for n, m in masks.items() if n.rsplit(".", 1)[0] == f"{image.stem}_label"), None)
                label, found = (DEFECT, (mask,)) if mask is not None else (GOOD, ())
            elif image.name not in listed:
                problem(PairingError("image is not listed in Labels.txt", image, "restore Labels.txt or remove the image"))
                continue
            elif listed[image.name] is None:
                label, found = GOOD, ()
            else:
                name = listed[image.name]
                label, found = DEFECT, require_mask(image, masks.get(name), label_dir, name)
            used.update(found)
            samples.append(make_sample(root, category, split, label, image, found))
    orphan_masks(all_masks, used)
    require_samples(samples, category_dir)
    return samples
