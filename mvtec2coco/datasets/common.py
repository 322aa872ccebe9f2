"""Helpers shared by the layout readers: listing folders, skipping junk, checking pairs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path

from ..errors import BrokenFileError, DatasetError, EmptyCategoryError, PairingError, SizeMismatchError
from ..records import GOOD, Sample
from .imageio import ImageHeader, is_image_name, read_header

_COLLECTED: ContextVar[list[DatasetError] | None] = ContextVar("collected", default=None)


def problem(error: DatasetError) -> None:
    """Raise ``error``, or record it and go on while a caller collects every problem (``validate``)."""
    found = _COLLECTED.get()
    if found is None:
        raise error
    found.append(error)


@contextmanager
def collecting() -> Iterator[list[DatasetError]]:
    """Within this block readers record their problems in the yielded list instead of raising the
    first, and skip what they cannot pair."""
    found: list[DatasetError] = []
    token = _COLLECTED.set(found)
    try:
        yield found
    finally:
        _COLLECTED.reset(token)


def _scan(folder: Path) -> list[os.DirEntry]:
    """The entries of ``folder``, none when it is missing or not a folder; an unreadable folder
    is a problem named by its path."""
    try:
        with os.scandir(folder) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        problem(BrokenFileError(f"cannot list folder: {exc.strerror}", folder, "check its permissions"))
        return []


_CHILD = getattr(Path, "_make_child_relpath", None)  # what Path.iterdir builds its children with


def children(folder: Path, names: list[str]) -> list[Path]:
    """``[folder / name for name in names]`` for names of one path component each (a listing's):
    pathlib's own listing skips re-parsing each name, which ``/`` does (a quarter of a listing)."""
    if _CHILD is None:
        return [folder / name for name in names]
    return [_CHILD(folder, name) for name in names]


def _broken_link(entry: os.DirEntry) -> bool:
    """A symbolic link that points nowhere (missing target or a loop)."""
    return entry.is_symlink() and not os.path.exists(entry.path)


def _is(entry: os.DirEntry, kind: str) -> bool:
    """``entry.is_file()`` / ``is_dir()``, False for a link that loops (which raises there)."""
    try:
        return entry.is_file() if kind == "file" else entry.is_dir()
    except OSError:
        return False

JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "license.txt", "readme.txt", "readme.md"}


def is_junk(name: str) -> bool:
    """Files and folders a reader skips silently: OS droppings, licences, hidden entries."""
    return name.lower() in JUNK_NAMES or name.startswith(".") or name.startswith("__")


def subdirs(folder: Path) -> list[Path]:
    """Sorted child folders, junk skipped; empty list if ``folder`` is missing. A link that
    points nowhere is a problem: it may have been a folder of the dataset."""
    names = []
    for e in _scan(folder):
        if is_junk(e.name):
            continue
        if _is(e, "dir"):
            names.append(e.name)
        elif _broken_link(e) and not is_image_name(e.name):
            problem(BrokenFileError("symbolic link points to a missing path or loops", folder / e.name,
                                    "fix or remove the link"))
    return children(folder, sorted(names))


def image_files(folder: Path) -> list[Path]:
    """Sorted image files directly inside ``folder``; other files are ignored.

    An image name that is a broken link, and two images with the same stem (``000.png`` and
    ``000.jpg``: one mask, one sample id and one label file for both), are problems.
    """
    return children(folder, image_names(folder))


def image_names(folder: Path) -> list[str]:
    """The file names of ``image_files``: readers that pair names work on these strings."""
    names = []  # compared as strings: sorting Path objects cost more than listing
    for e in _scan(folder):
        if not is_image_name(e.name) or is_junk(e.name):
            continue
        if _is(e, "file"):
            names.append(e.name)
        elif _broken_link(e):
            problem(BrokenFileError("image link points to a missing file or loops", folder / e.name,
                                    "fix or remove the link"))
    names.sort()
    stems = [stem_of(name) for name in names]
    if len(set(stems)) == len(stems):
        return names
    first: dict[str, str] = {}
    twins: set[str] = set()
    for name, stem in zip(names, stems):
        if stem in first:
            problem(PairingError(f"two images share the stem '{stem}': {first[stem]} and {name} would get the "
                                 "same sample id, mask and label file", folder, "rename or remove one of them"))
            twins |= {first[stem], name}
        else:
            first[stem] = name
    return [n for n in names if n not in twins]


def stem_of(name: str) -> str:
    """``Path(name).stem`` of an image name (it has a suffix and does not start with a dot)."""
    return name[: name.rfind(".")]


def image_files_recursive(folder: Path) -> list[Path]:
    """Sorted image files anywhere below ``folder``, junk folders and files skipped."""
    found: list[Path] = []
    for sub in [folder, *subdirs(folder)]:
        found.extend(image_files(sub) if sub == folder else image_files_recursive(sub))
    return sorted(found)


def sample_id(root: Path, image: Path) -> str:
    """``image`` relative to ``root``, suffix dropped, with ``/`` separators."""
    stem = os.path.splitext(_relative(str(image), str(root)))[0]  # pathlib caches both strings
    return stem if os.sep == "/" else stem.replace(os.sep, "/")


def sample_ids(root: Path, folder: Path, names: list[str]) -> list[str]:
    """``sample_id`` of each image name (``image_names``) of ``folder``: the folder's part once."""
    relative = _relative(str(folder), str(root))
    if os.sep != "/":
        relative = relative.replace(os.sep, "/")
    prefix = "" if relative == "." else f"{relative}/"
    return [prefix + stem_of(name) for name in names]


def _relative(text: str, base: str) -> str:
    if text.startswith(base) and text[len(base) : len(base) + 1] == os.sep:
        return text[len(base) + 1 :]  # string work: the fast path
    return os.path.relpath(text, base)


def make_sample(
    root: Path, category: str, split: str, label: str | None, image: Path, masks: tuple[Path, ...],
    group: str = "", view: str = "", known_id: str | None = None,
) -> Sample:
    """Build a sample from the listing alone: its size stays 0 until ``with_size`` reads it.
    ``known_id``, when the reader has it already (``sample_ids``), saves working it out again."""
    return Sample(id=known_id or sample_id(root, image), category=category, split=split, label=label, image=image,
                  masks=masks, width=0, height=0, channels=0, group=group, view=view)


def with_size(sample: Sample, header: ImageHeader | None = None) -> Sample:
    """``sample`` with its image's size, read from headers (the image's own ``header`` when the
    caller has read it already); its masks must have the same size."""
    header = header or read_header(sample.image)
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


def require_mask(image: Path, mask: Path | None, folder: Path, name: str) -> tuple[Path, ...]:
    """``(mask,)``, found by the listing, or a ``PairingError`` naming ``folder / name``, the path
    that was looked for (joined only then: most images have their mask, and joins add up by
    thousands); ``()`` when the problem is collected."""
    if mask is None:
        problem(PairingError(f"defect image has no mask (looked for {folder / name})", image,
                             "add the mask or move the image"))
        return ()
    return (mask,)


def orphan_masks(masks: set[Path], used: set[Path]) -> None:
    """A problem for every mask (in sorted order) that no image claimed; raised, the first."""
    orphans = sorted(masks - used)
    for orphan in orphans:
        problem(PairingError(f"mask has no image ({len(orphans)} orphan mask(s) in total)", orphan,
                             "remove the mask or restore its image"))


def require_samples(samples: list[Sample], category_dir: Path) -> None:
    if not samples:
        problem(EmptyCategoryError("category holds no images", category_dir, "check the path and layout"))


def labelled_by_masks(root: Path, category: str, folder: Path, split: str, suffix: str, mask_ext: str,
                      defect: str, group: str = "") -> tuple[list[Sample], set[Path], set[Path]]:
    """(samples, every mask, the masks claimed) of a folder where each image's mask lies beside it
    as ``<stem><suffix>.<ext>`` and is its only label (KolektorSDD, KSDD2): an image is ``defect``
    when its mask holds a defect pixel, else good. ``mask_ext`` names the file looked for in the
    error of an image without its mask."""
    files = image_files(folder)
    masks = {f.stem[: -len(suffix)]: f for f in files if f.stem.endswith(suffix)}
    samples: list[Sample] = []
    used: set[Path] = set()
    for image in files:
        if image.stem.endswith(suffix):
            continue
        found = require_mask(image, masks.get(image.stem), folder, f"{image.stem}{suffix}{mask_ext}")
        shows = mask_shows_defect(found[0]) if found else None
        if shows is None:
            continue
        used.update(found)
        samples.append(make_sample(root, category, split, defect if shows else GOOD, image, found, group))
    return samples, set(masks.values()), used


def read_labelled_by_masks(root: Path, category_dir: Path, parts: list[tuple[Path, str, str]], suffix: str,
                           mask_ext: str, defect: str) -> list[Sample]:
    """A category whose images are labelled by their masks alone: ``labelled_by_masks`` of each
    (folder, split, group) in ``parts``; masks no image claims are problems, and a category
    without samples an error."""
    samples: list[Sample] = []
    every: set[Path] = set()
    used: set[Path] = set()
    for folder, split, group in parts:
        found, masks, claimed = labelled_by_masks(root, category_dir.name, folder, split, suffix, mask_ext, defect, group)
        samples += found
        every |= masks
        used |= claimed
    orphan_masks(every, used)
    require_samples(samples, category_dir)
    return samples


def mask_shows_defect(mask: Path) -> bool | None:
    """Whether ``mask`` holds any defect pixel: for layouts whose only label is the mask itself
    (KolektorSDD, KSDD2), where a reader has to decode it. None when it cannot be read (a
    problem, raised or collected)."""
    from .imageio import read_mask

    try:
        shown, _ = read_mask(mask)
    except DatasetError as exc:
        problem(exc)
        return None
    return bool(shown.any())
