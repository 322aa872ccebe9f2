"""Assign samples to train/val/test: the dataset's own split, seeded stratified ratios, or a file.

The result is written as ``meta/split.csv`` in every output, so that the detector, the segmenter
and the classifiers are trained and judged on the same images. It sits one folder down because
format detectors take any CSV at a dataset's top level for a table (Datumaro's ``tabular``).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import OptionError
from .records import Sample
from .runtime.seeding import stable_int

SUBSETS = ("train", "val", "test")
OFFICIAL = {"train": "train", "validation": "val", "val": "val", "test": "test", "test_public": "test"}
MANIFEST_COLUMNS = ("sample_id", "source", "subset", "class", "file_name")
MANIFEST = Path("meta", "split.csv")  # inside every output folder


def manifest_path(folder: Path) -> Path:
    """The split file of the output ``folder``; one at the output's top level is read too."""
    path = Path(folder) / MANIFEST
    return path if path.is_file() or not (Path(folder) / MANIFEST.name).is_file() else Path(folder) / MANIFEST.name


@dataclass
class Split:
    """Subset per sample id, plus warnings a user should read."""

    subsets: dict[str, str]
    warnings: list[str] = field(default_factory=list)

    def of(self, subset: str) -> list[str]:
        return sorted(i for i, s in self.subsets.items() if s == subset)

    def present(self) -> list[str]:
        """The subsets that hold a sample, in ``SUBSETS`` order."""
        held = set(self.subsets.values())
        return [s for s in SUBSETS if s in held]


def parse_ratios(text: str) -> tuple[float, float, float]:
    """``"0.7,0.15,0.15"`` -> (0.7, 0.15, 0.15): three finite fractions >= 0 that sum to 1."""
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        parts = ()
    hint = "e.g. --split 0.7,0.15,0.15, or --split official"
    if len(parts) != 3 or not all(math.isfinite(p) and p >= 0 for p in parts):
        raise OptionError(f"split '{text}' is not three finite fractions train,val,test (each >= 0)", hint=hint)
    if abs(sum(parts) - 1.0) > 1e-6:
        raise OptionError(f"split '{text}' sums to {sum(parts):g}, not 1", hint=hint)
    return parts  # type: ignore[return-value]


def is_split_file(spec: str) -> bool:
    """Whether a ``--split`` value names a split file rather than ratios or ``official``."""
    return spec != "official" and (spec.endswith(".csv") or Path(spec).is_file())


SPLIT_GROUPS = ("none", "sample")


def make_split(samples: list[Sample], spec: str, seed: int = 0, group: str = "none") -> Split:
    """Dispatch on ``spec``: ``official``, a path to a split CSV, or ratios (``group``: see
    ``stratified_split``)."""
    if group not in SPLIT_GROUPS:
        raise OptionError(f"--split-group '{group}' is not one of {', '.join(SPLIT_GROUPS)}")
    grouped = any(s.group for s in samples)
    if spec == "official" or is_split_file(spec):
        split = official_split(samples) if spec == "official" else split_from_file(samples, Path(spec))
        if group == "sample":
            split.warnings.append("--split-group sample applies to ratio splits: the given split is used as it is")
    else:
        split = stratified_split(samples, parse_ratios(spec), seed, group == "sample")
        if group == "sample" and not grouped:
            split.warnings.append("--split-group sample: this layout records no physical parts; each image is its own")
    if group == "none" and grouped:
        subsets: dict[tuple[str, str], set[str]] = defaultdict(set)
        for s in samples:
            if s.group and s.id in split.subsets:
                subsets[(s.category, s.group)].add(split.subsets[s.id])
        spread = sum(len(v) > 1 for v in subsets.values())
        if spread:
            split.warnings.append(f"{spread} of {len(subsets)} physical parts have images (views) in several subsets: "
                                  "near-copies of a test image are trained on; --split-group sample keeps them together")
    return split


def stratified_split(samples: list[Sample], ratios: tuple[float, float, float], seed: int,
                     by_group: bool = False) -> Split:
    """Split every (category, label) stratum by ``ratios``, shuffled with ``seed``.

    Each subset with a non-zero ratio gets at least one unit of every stratum when the stratum is
    large enough; otherwise a warning names it. Remaining units go by largest remainder. A unit
    is one image, or with ``by_group`` every image of one physical part (``Sample.group``: all
    camera views of a Real-IAD sample land in one subset, in the stratum of the part's defect).
    """
    units: dict[str, list[Sample]] = defaultdict(list)
    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s in samples:
        if by_group and s.group:
            units[f"{s.category}\0{s.group}"].append(s)
        else:  # a unit of one image: its own stratum, without a set of labels per image
            units[s.id] = [s]
            strata[(s.category, s.label or "unlabeled")].append(s.id)
    for key, members in units.items():
        if len(members) > 1 or members[0].id != key:  # a physical part: the stratum of its defect
            labels = sorted({m.label or "unlabeled" for m in members} - {"good"}) or ["good"]
            strata[(members[0].category, labels[0])].append(key)
    split = Split({})
    wanted = [i for i, r in enumerate(ratios) if r > 0]
    what = "part(s)" if by_group else "image(s)"
    for key in sorted(strata):
        ids = sorted(strata[key])
        rng = np.random.default_rng([seed, stable_int("/".join(key))])
        order = [ids[i] for i in rng.permutation(len(ids))]
        counts = _allocate(len(ids), ratios)
        if len(ids) < len(wanted):
            missing = [SUBSETS[i] for i in wanted if counts[i] == 0]
            split.warnings.append(f"class '{key[0]}/{key[1]}' has {len(ids)} {what}: none in {', '.join(missing)}")
        start = 0
        for subset, n in zip(SUBSETS, counts):
            for unit in order[start : start + n]:
                for member in units[unit]:
                    split.subsets[member.id] = subset
            start += n
    return split


def _allocate(n: int, ratios: tuple[float, float, float]) -> list[int]:
    wanted = [i for i, r in enumerate(ratios) if r > 0]
    counts = [0, 0, 0]
    if n >= len(wanted):
        for i in wanted:
            counts[i] = 1
    rest = n - sum(counts)
    exact = [r * rest for r in ratios]
    for i in range(3):
        counts[i] += int(exact[i])
    left = n - sum(counts)
    by_remainder = sorted(range(3), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for i in [j for j in by_remainder if ratios[j] > 0][:left]:
        counts[i] += 1
    return counts


def official_split(samples: list[Sample]) -> Split:
    """The dataset's own split; without a validation split, ``val`` reuses ``test``."""
    split = Split({})
    unknown = sorted({s.split for s in samples if s.split not in OFFICIAL})
    if unknown:
        raise OptionError(f"the dataset has no official split for: {', '.join(unknown)}",
                          hint="use --split 0.7,0.15,0.15 or --split-file")
    for s in samples:
        split.subsets[s.id] = OFFICIAL[s.split]
    if not any(v == "val" for v in split.subsets.values()):
        split.warnings.append("the official split has no validation set: val reuses the test images")
    defects_in_train = any(split.subsets[s.id] == "train" and not s.is_good for s in samples)
    if not defects_in_train:
        split.warnings.append(
            "with the official split no defect image reaches training (MVTec AD trains on good images "
            "only): a detector cannot learn from it; use --split 0.7,0.15,0.15 for supervised training"
        )
    return split


def split_from_file(samples: list[Sample], path: Path) -> Split:
    """Reuse the subsets of an earlier ``split.csv``; every sample must be listed, once.

    A UTF-8 byte-order mark (spreadsheet exports) is accepted; a sample listed twice is an
    error; rows for samples not in this dataset (e.g. other categories) are ignored with a warning.
    """
    if not path.is_file():
        raise OptionError("split file does not exist", path, "pass the split.csv of an earlier conversion")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"sample_id", "subset"} <= set(reader.fieldnames):
                raise OptionError("split file lacks the columns sample_id and subset", path)
            table: dict[str, str] = {}
            rows: dict[str, int] = {}
            for line, row in enumerate(reader, 2):
                sample_id = row["sample_id"]
                if sample_id in table:
                    raise OptionError(f"sample {sample_id} is listed twice (lines {rows[sample_id]} and {line})", path,
                                      "keep one row per sample")
                table[sample_id], rows[sample_id] = row["subset"], line
    except (UnicodeDecodeError, csv.Error) as exc:
        raise OptionError(f"split file is not a readable CSV ({exc})", path) from exc
    except OSError as exc:
        raise OptionError(f"cannot read the split file: {exc.strerror}", path) from exc
    bad = sorted({v for v in table.values() if v not in SUBSETS})
    if bad:
        raise OptionError(f"split file names unknown subsets {bad}", path, f"use {', '.join(SUBSETS)}")
    missing = [s.id for s in samples if s.id not in table]
    if missing:
        raise OptionError(f"split file lacks {len(missing)} sample(s), e.g. {missing[0]}", path,
                          "make a new split or convert the same dataset")
    split = Split({s.id: table[s.id] for s in samples})
    unknown = sorted(set(table) - set(split.subsets))
    if unknown:
        split.warnings.append(f"split file {path} lists {len(unknown)} sample(s) that are not in this dataset "
                              f"(ignored), e.g. {unknown[0]}")
    return split


def manifest_text(samples: list[Sample], split: Split, names: str = "flat") -> str:
    """``split.csv``: sample id, source path relative to the dataset root, subset, class, and the
    image's file name inside ``images/<subset>/`` of the output (name layout ``names``)."""
    from .formats.placement import output_name

    parts = any(s.group or s.view for s in samples)  # the physical part and view, where a layout has them
    head = MANIFEST_COLUMNS + (("group", "view") if parts else ())
    ordered = samples if all(a.id < b.id for a, b in zip(samples, samples[1:])) else sorted(samples, key=lambda s: s.id)
    subsets = split.subsets
    rows = [(s.id, s.relpath, subsets[s.id], s.label or "", output_name(s.relpath, names),
             *((s.group, s.view) if parts else ())) for s in ordered if s.id in subsets]
    text = "".join(f"{','.join(row)}\n" for row in [head, *rows])
    if text.count(",") == (len(head) - 1) * (1 + len(rows)) and text.count("\n") == 1 + len(rows) \
            and '"' not in text and "\r" not in text:
        return text  # no field needs quoting: exactly what csv.writer writes, without its cost per field
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([head, *rows])
    return buffer.getvalue()
