"""The fault table: hostile inputs, broken files, full disks and signals, each run through the CLI.

Every case asserts the exit code, that stderr shows no traceback, that a failure is one line
naming the file, that no temporary tree is left anywhere, that a failed command created no
output, and that the source dataset is byte-identical afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from ..helpers import stream_damage_opencv_decodes, tree_digest

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
MASK = "bottle/ground_truth/broken_large/000_mask.png"
IMAGE = "bottle/test/broken_large/000.png"
GOOD_IMAGE = "bottle/test/good/000.png"


@dataclass
class Env:
    """One case's private world: a copy of the tiny dataset, a work folder, the default --out."""

    root: Path
    data: Path = field(init=False)
    work: Path = field(init=False)
    out: Path = field(init=False)

    def __post_init__(self):
        self.data, self.work = self.root / "data", self.root / "work"
        self.out = self.work / "out"
        self.work.mkdir()

    def __truediv__(self, rel: str) -> Path:
        return self.data / rel

    def convert(self, *extra: str, out: Path | None = None) -> Path:
        """A finished conversion made before the case runs (for verify and preview cases)."""
        target = out or self.work / "conv"
        result = run(["convert", str(self.data), "--out", str(target), *extra])
        assert result.returncode == 0, result.stderr
        return target

    def converted(self, *extra: str) -> Path:
        """A conversion for a case that only reads it (the model commands): made once per option
        set from the clean dataset, then hard-linked into the case's work folder."""
        key = tuple(extra)
        if key not in CONVERSIONS:
            cache = Path(tempfile.mkdtemp(prefix="m2c-fault-cache-")) / "conv"
            result = run(["convert", str(self.data), "--out", str(cache), *extra])
            assert result.returncode == 0, result.stderr
            CONVERSIONS[key] = cache
        target = self.work / "conv"
        shutil.copytree(CONVERSIONS[key], target, copy_function=os.link)
        return target


CONVERSIONS: dict[tuple[str, ...], Path] = {}


@pytest.fixture(scope="module", autouse=True)
def _drop_cached_conversions():
    yield
    for cache in CONVERSIONS.values():
        shutil.rmtree(cache.parent, ignore_errors=True)
    CONVERSIONS.clear()


@dataclass
class Case:
    id: str
    args: Callable[[Env], list[str]]
    code: int
    says: str = ""  # expected in the error line (exit 2), else in stdout + stderr
    setup: Callable[[Env], object] | None = None
    check: Callable[[Env, subprocess.CompletedProcess], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    data_changes: bool = False  # the case itself moves the dataset: its digest is not compared
    needs_root: bool = False


def run(args: list[str], env: dict[str, str] | None = None, timeout: int = 120):
    return subprocess.run([sys.executable, "-m", "mvtec2coco", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=timeout)


def leftovers(root: Path) -> list[str]:
    """Temporary trees or files of ours anywhere below ``root``."""
    return sorted(str(p) for p in root.rglob("*") if ".m2c-tmp-" in p.name or ".m2c-old-" in p.name)


# ---------------------------------------------------------------------------------------------
# dataset damage


def write_bytes(rel: str, data: bytes) -> Callable[[Env], None]:
    return lambda e: (e / rel).write_bytes(data)


def truncate(rel: str, keep: int = 100) -> Callable[[Env], None]:
    return lambda e: (e / rel).write_bytes((e / rel).read_bytes()[:keep])


def flip_pixel_data(rel: str) -> Callable[[Env], None]:
    """Damage a byte inside the PNG's IDAT chunk: the header stays valid, the data does not."""

    def damage(e: Env) -> None:
        raw = bytearray((e / rel).read_bytes())
        at = raw.index(b"IDAT") + 12
        raw[at] ^= 0xFF
        (e / rel).write_bytes(bytes(raw))

    return damage


def damage_stream_keep_crc(rel: str) -> Callable[[Env], None]:
    """Damage the PNG's compressed stream under right chunk CRCs, where OpenCV still decodes it
    to other pixels (``stream_damage_opencv_decodes``)."""
    return lambda e: (e / rel).write_bytes(stream_damage_opencv_decodes((e / rel).read_bytes()))


def resize_mask(e: Env) -> None:
    mask = cv2.imread(str(e / MASK), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(e / MASK), cv2.resize(mask, (mask.shape[1] // 2, mask.shape[0] // 2)))


def twin_image(e: Env) -> None:
    shutil.copyfile(e / IMAGE, (e / IMAGE).with_suffix(".jpg"))


def twin_mask(e: Env) -> None:
    mask = cv2.imread(str(e / MASK), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str((e / MASK).with_suffix(".bmp")), mask)


def dangling(rel: str) -> Callable[[Env], None]:
    def make(e: Env) -> None:
        (e / rel).unlink()
        (e / rel).symlink_to(e.root / "nowhere.png")
    return make


def self_loop(rel: str) -> Callable[[Env], None]:
    def make(e: Env) -> None:
        if (e / rel).exists():
            (e / rel).unlink()
        (e / rel).symlink_to(e / rel)
    return make


def empty_mask(e: Env) -> None:
    mask = cv2.imread(str(e / MASK), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(e / MASK), np.zeros_like(mask))


def jpeg_mask(e: Env) -> None:
    mask = cv2.imread(str(e / MASK), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str((e / MASK).with_suffix(".jpg")), mask, [cv2.IMWRITE_JPEG_QUALITY, 60])
    (e / MASK).unlink()


def palette_mask(inverted: bool) -> Callable[[Env], None]:
    """The same mask as a palette PNG; inverted: index 0 shows white (defect), index 1 black."""

    def make(e: Env) -> None:
        from PIL import Image

        mask = cv2.imread(str(e / MASK), cv2.IMREAD_GRAYSCALE) > 0
        im = Image.fromarray(np.where(mask, 0 if inverted else 1, 1 if inverted else 0).astype(np.uint8), "P")
        im.putpalette([255, 255, 255, 0, 0, 0] if inverted else [0, 0, 0, 255, 255, 255])
        im.save(e / MASK)

    return make


def alpha_mask(e: Env) -> None:
    mask = cv2.imread(str(e / MASK), cv2.IMREAD_GRAYSCALE)
    rgba = np.dstack([np.full_like(mask, 255)] * 3 + [mask])  # white everywhere, the shape in alpha
    cv2.imwrite(str(e / MASK), rgba)


def mask_on_good(e: Env) -> None:
    mask = cv2.imread(str(e / MASK), cv2.IMREAD_UNCHANGED)
    (e / "bottle/ground_truth/good").mkdir(exist_ok=True)
    cv2.imwrite(str(e / "bottle/ground_truth/good/000_mask.png"), mask)


def instances_total(e: Env, out: Path | None = None) -> int:
    return json.loads(((out or e.out) / "report.json").read_text())["instances_total"]


DAMAGE: list[tuple[str, Callable[[Env], object], str, str]] = [
    # id, damage, what convert/summary say (exit 2), what validate lists (exit 1)
    ("zero_byte_mask", write_bytes(MASK, b""), "empty (0 bytes)", "empty (0 bytes)"),
    ("zero_byte_image", write_bytes(IMAGE, b""), "empty (0 bytes)", "empty (0 bytes)"),
    ("truncated_image", truncate(IMAGE), "truncated", "truncated"),
    ("truncated_mask", truncate(MASK), "truncated", "truncated"),
    ("garbage_mask", write_bytes(MASK, b"not a png at all" * 10), "not a readable image|cannot be decoded",
     "not a readable image"),
    ("garbage_image", write_bytes(IMAGE, os.urandom(300)), "not a readable image", "not a readable image"),
    ("mask_size_mismatch", resize_mask, "mask is", "mask is"),
    ("missing_mask", lambda e: (e / MASK).unlink(), "has no mask", "has no mask"),
    ("orphan_mask", lambda e: shutil.copyfile(e / MASK, e / "bottle/ground_truth/broken_large/099_mask.png"),
     "mask has no image", "mask has no image"),
    ("same_stem_images", twin_image, "share the stem", "share the stem"),
    ("same_stem_masks", twin_mask, "share the stem", "share the stem"),
    ("dangling_image_link", dangling(IMAGE), "missing file", "missing file"),
    ("dangling_mask_link", dangling(MASK), "missing file", "missing file"),
    ("self_loop_image", self_loop(IMAGE), "loops|symbolic links", "loops|symbolic links"),
    ("self_loop_folder", self_loop("bottle/test/loop"), "loops|symbolic links", "loops|symbolic links"),
    ("corrupt_mask_pixels", flip_pixel_data(MASK), MASK.split("/")[-1], MASK.split("/")[-1]),
    ("mask_stream_damaged_under_right_crcs", damage_stream_keep_crc(MASK), "compressed stream", "compressed stream"),
    ("empty_category", lambda e: [shutil.rmtree(p) for p in (e / "grid").glob("*/*")], "holds no images",
     "holds no images"),
]


def damage_cases() -> list[Case]:
    cases = []
    for name, damage, says, listed in DAMAGE:
        cases.append(Case(f"convert-{name}", lambda e: ["convert", str(e.data), "--out", str(e.out)], 2, says,
                          setup=damage))
        cases.append(Case(f"convert-all-{name}", lambda e: ["convert", str(e.data), "--format", "all", "--out",
                                                            str(e.out)], 2, says, setup=damage))
        cases.append(Case(f"summary-{name}", lambda e: ["summary", str(e.data), "--json", str(e.work / "s.json")], 2,
                          says, setup=damage))
        cases.append(Case(f"validate-{name}", lambda e: ["validate", str(e.data)], 1, listed, setup=damage))
    return cases


def root_cases() -> list[Case]:
    def file_root(e: Env) -> None:
        (e.work / "file.txt").write_text("x")

    def loop_root(e: Env) -> None:
        (e.work / "loop").symlink_to(e.work / "loop")

    def empty_root(e: Env) -> None:
        (e.work / "empty").mkdir()

    cases = []
    for command in ("convert", "summary", "validate"):
        extra = (lambda e: ["--out", str(e.out)]) if command == "convert" else (lambda e: [])
        for name, setup, target, says in (
            ("root_is_file", file_root, "file.txt", "does not exist"),
            ("root_missing", None, "missing", "does not exist"),
            ("root_loops", loop_root, "loop", "cannot be resolved"),
            ("root_empty", empty_root, "empty", "no known dataset layout"),
        ):
            cases.append(Case(f"{command}-{name}", lambda e, t=target, c=command, x=extra: [c, str(e.work / t), *x(e)],
                              2, says, setup=setup))
    cases.append(Case("convert-bad-layout", lambda e: ["convert", str(e.data), "--layout", "nope", "--out", str(e.out)],
                      2, "unknown layout"))
    cases.append(Case("convert-bad-category", lambda e: ["convert", str(e.data), "-c", "nope", "--out", str(e.out)],
                      2, "no category named nope"))
    cases.append(Case("convert-folder-named-like-image", lambda e: ["convert", str(e.data), "--out", str(e.out)], 0,
                      setup=lambda e: (e / "bottle/test/good/zzz.png").mkdir()))
    return cases


# ---------------------------------------------------------------------------------------------
# what convert must say instead of silently changing data


def warning_cases() -> list[Case]:
    cases = []
    for name, setup, says in (
        ("jpeg_mask", jpeg_mask, "JPEG (lossy)"),
        ("inverted_palette_mask", palette_mask(True), "palette mask"),
        ("alpha_mask", alpha_mask, "alpha channel"),
        ("empty_defect_mask", empty_mask, "written as a background image"),
        ("mask_on_good_image", mask_on_good, "mask of a 'good' image"),
    ):
        cases.append(Case(f"convert-warns-{name}", lambda e: ["convert", str(e.data), "--out", str(e.out)], 0, says,
                          setup=setup, check=_check_warned(name)))
        cases.append(Case(f"convert-strict-{name}", lambda e: ["convert", str(e.data), "--strict", "--out", str(e.out)],
                          2, says, setup=setup))
    cases.append(Case("convert-palette-mask-read-by-colours", lambda e: ["convert", str(e.data), "--out", str(e.out)],
                      0, setup=palette_mask(False), check=_same_count_as_clean))
    cases.append(Case("convert-strict-clean", lambda e: ["convert", str(e.data), "--strict", "--out", str(e.out)], 0))
    return cases


def _check_warned(kind: str) -> Callable[[Env, subprocess.CompletedProcess], None]:
    def check(e: Env, result: subprocess.CompletedProcess) -> None:
        report = json.loads((e.out / "report.json").read_text())
        finding = {"inverted_palette_mask": "palette_mask"}.get(kind, kind)
        assert report["findings"][finding]["count"] == 1
        assert "warning:" in result.stderr
        if kind in ("inverted_palette_mask", "alpha_mask", "jpeg_mask"):
            _same_count_as_clean(e, result)
    return check


CLEAN_COUNT: dict[str, int] = {}


def _same_count_as_clean(e: Env, result: subprocess.CompletedProcess) -> None:
    assert instances_total(e) == CLEAN_COUNT["tiny"]


# ---------------------------------------------------------------------------------------------
# options


def option_cases() -> list[Case]:
    def convert(*extra: str) -> Callable[[Env], list[str]]:
        return lambda e: ["convert", str(e.data), "--out", str(e.out), *extra]

    def split_file(text: str | bytes) -> Callable[[Env], None]:
        def write(e: Env) -> None:
            path = e.work / "split.csv"
            path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return write

    def good_split(e: Env, transform: Callable[[str], str]) -> None:
        result = run(["convert", str(e.data), "--out", str(e.work / "first")])
        assert result.returncode == 0, result.stderr
        text = (e.work / "first" / "meta" / "split.csv").read_text()
        shutil.rmtree(e.work / "first")
        (e.work / "split.csv").write_bytes(transform(text).encode("utf-8"))

    sf = lambda e: ["convert", str(e.data), "--out", str(e.out), "--split-file", str(e.work / "split.csv")]  # noqa: E731

    def lines(text: str) -> list[str]:
        return text.splitlines(keepends=True)

    cases = [
        Case("split-nan", convert("--split", "nan,0.5,0.5"), 2, "finite"),
        Case("split-inf", convert("--split", "inf,0,0"), 2, "finite"),
        Case("split-negative", convert("--split", "1.1,-0.1,0"), 2, ">= 0"),
        Case("split-words", convert("--split", "a,b,c"), 2, "three finite"),
        Case("split-two-parts", convert("--split", "0.5,0.5"), 2, "three finite"),
        Case("split-sum", convert("--split", "0.6,0.6,0.1"), 2, "sums to 1.3"),
        Case("split-all-test", convert("--split", "0,0,1", "--format", "all"), 0, "no training subset",
             check=lambda e, r: _verify_passes(e.out)),
        Case("split-all-train-warns", convert("--split", "1,0,0"), 0, "no validation subset"),
        Case("split-all-train-strict", convert("--split", "1,0,0", "--strict"), 2, "no validation subset"),
        Case("seed-negative", convert("--seed", "-1"), 2, "--seed -1"),
        Case("seed-text", convert("--seed", "abc"), 2, "--seed"),
        Case("min-area-negative", convert("--min-area", "-1"), 2, "--min-area"),
        Case("simplify-nan", convert("--simplify", "nan"), 2, "--simplify"),
        Case("simplify-negative", convert("--simplify", "-1"), 2, "--simplify"),
        Case("format-unknown", convert("--format", "voc"), 2, "unknown format"),
        Case("format-empty", convert("--format", ","), 2, "unknown format"),
        Case("format-repeated", convert("-f", "yolo", "-f", "coco"), 0,
             check=lambda e, r: _has_formats(e.out, {"yolo", "coco"})),
        Case("format-repeated-same", convert("-f", "coco", "-f", "coco"), 0,
             check=lambda e, r: (e.out / "annotations").is_dir()),
        Case("classes-unknown", convert("--classes", "nope"), 2, "--classes"),
        Case("images-unknown", convert("--images", "nope"), 2, "--images"),
        Case("good-unknown", convert("--good", "nope"), 2, "--good"),
        Case("coco-masks-unknown", convert("--coco-masks", "nope"), 2, "--coco-masks"),
        Case("names-unknown", convert("--names", "nope"), 2, "--names"),
        Case("tile-too-small", convert("--tile", "8"), 2, "--tile 8"),
        Case("tile-overlap-one", convert("--tile", "64", "--overlap", "1"), 2, "--overlap"),
        Case("tile-overlap-nan", convert("--tile", "64", "--overlap", "nan"), 2, "--overlap"),
        Case("tile-empty-unknown", convert("--tile", "64", "--tile-empty", "lots"), 2, "--tile-empty"),
        Case("tile-min-visible-nan", convert("--tile", "64", "--min-visible", "nan"), 2, "--min-visible"),
        Case("tile-mirror-names", convert("--tile", "64", "--names", "mirror"), 2, "flat tile names"),
        Case("tile-options-without-tile", convert("--overlap", "0.5"), 2, "apply to --tile"),
        Case("tile-empty-superscript", convert("--tile", "64", "--tile-empty", "\u00b2"), 2, "--tile-empty"),
        Case("tile-huge", convert("--tile", "1000000000"), 2, "between 32 and 8192"),
        Case("tile-nothing-to-write", convert("--tile", "64", "--min-area", "100000", "--tile-empty", "none"), 2,
             "nothing to write"),
        Case("split-file-not-a-file", convert("--split-file", "official"), 2, "split file does not exist"),
        Case("tile-clean-all", convert("--tile", "64", "--format", "all"), 0,
             check=lambda e, r: (e.out / "coco" / "meta" / "tiles.csv").is_file()),
        Case("workers-zero", convert("--workers", "0"), 2, "--workers"),
        Case("unknown-option", convert("--bogus"), 2, "--bogus"),
        Case("split-file-missing", sf, 2, "does not exist"),
        Case("split-file-is-folder", sf, 2, "does not exist", setup=lambda e: (e.work / "split.csv").mkdir()),
        Case("split-file-binary", sf, 2, "not a readable CSV", setup=split_file(b"\xff\xfe\x00garbage\x80\x81")),
        Case("split-file-no-columns", sf, 2, "lacks the columns", setup=split_file("a,b\n1,2\n")),
        Case("split-file-bom", sf, 0, setup=lambda e: good_split(e, lambda t: "\ufeff" + t)),
        Case("split-file-duplicate-row", sf, 2, "listed twice",
             setup=lambda e: good_split(e, lambda t: t + lines(t)[1])),
        Case("split-file-unknown-ids", sf, 0, "not in this dataset",
             setup=lambda e: good_split(e, lambda t: t + "bottle/test/crack/999,x,test,crack\n")),
        Case("split-file-unknown-ids-strict", lambda e: [*sf(e), "--strict"], 2, "not in this dataset",
             setup=lambda e: good_split(e, lambda t: t + "bottle/test/crack/999,x,test,crack\n")),
        Case("split-file-missing-ids", sf, 2, "lacks 1 sample",
             setup=lambda e: good_split(e, lambda t: "".join(lines(t)[:-1]))),
        Case("split-file-bad-subset", sf, 2, "unknown subsets",
             setup=lambda e: good_split(e, lambda t: t.replace(",test,", ",exam,", 1))),
        Case("split-and-split-file", lambda e: [*sf(e), "--split", "0.5,0.25,0.25"], 2, "both given",
             setup=lambda e: good_split(e, lambda t: t)),
    ]
    return cases


def _has_formats(out: Path, formats: set[str]) -> None:
    assert {p.name for p in out.iterdir() if p.is_dir()} >= formats


def _verify_passes(out: Path) -> None:
    result = run(["verify", str(out)])
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# output paths


def output_cases() -> list[Case]:
    def convert_to(target: Callable[[Env], Path], *extra: str, source: Callable[[Env], Path] | None = None):
        return lambda e: ["convert", str((source or (lambda e: e.data))(e)), "--out", str(target(e)), *extra]

    def link(name: str, to: Callable[[Env], Path]) -> Callable[[Env], None]:
        return lambda e: (e.work / name).symlink_to(to(e))

    def our_output(e: Env) -> None:
        e.convert(out=e.out)

    def foreign(e: Env) -> None:
        e.out.mkdir()
        (e.out / "thesis.tex").write_text("years of work\n")

    def kept_foreign(e: Env, r: subprocess.CompletedProcess) -> None:
        assert (e.out / "thesis.tex").read_text() == "years of work\n"

    cases = []
    for images in ("link", "symlink", "copy"):
        cases += [
            Case(f"out-is-dataset-{images}", convert_to(lambda e: e.data, "--overwrite", "--images", images), 2,
                 "is the input"),
            Case(f"out-contains-dataset-{images}", convert_to(lambda e: e.root, "--overwrite", "--images", images), 2,
                 "contains the input"),
            Case(f"out-is-category-{images}", convert_to(lambda e: e.data / "bottle", "--overwrite", "--images", images),
                 2, "lies inside"),
            Case(f"out-link-to-dataset-{images}", convert_to(lambda e: e.work / "ln", "--overwrite", "--images", images),
                 2, "is the input", setup=link("ln", lambda e: e.data)),
        ]
    cases += [
        Case("out-is-dataset-no-overwrite", convert_to(lambda e: e.data), 2, "is the input"),
        Case("out-inside-dataset", convert_to(lambda e: e.data / "converted"), 2, "lies inside"),
        Case("out-inside-ground-truth", convert_to(lambda e: e.data / "bottle/ground_truth", "--overwrite"), 2,
             "lies inside"),
        Case("out-dotdot-is-category", convert_to(lambda e: e.data / "bottle" / ".." / "bottle", "--overwrite"), 2,
             "lies inside"),
        Case("out-dotdot-is-root", convert_to(lambda e: e.work / "x" / ".." / ".." / "data", "--overwrite"), 2,
             "is the input"),
        Case("category-input-out-is-root", convert_to(lambda e: e.data, "--overwrite", source=lambda e: e.data / "bottle"),
             2, "contains the input"),
        Case("category-input-out-is-sibling", convert_to(lambda e: e.data.parent / "bottle_out",
                                                         source=lambda e: e.data / "bottle"), 0,
             check=lambda e, r: shutil.rmtree(e.data.parent / "bottle_out")),
        Case("out-link-to-category", convert_to(lambda e: e.work / "ln", "--overwrite"), 2, "lies inside",
             setup=link("ln", lambda e: e.data / "bottle")),
        Case("out-is-file", convert_to(lambda e: e.work / "f"), 2, "is a file",
             setup=lambda e: (e.work / "f").write_text("x")),
        Case("out-under-file", convert_to(lambda e: e.work / "f" / "out"), 2, "under a file",
             setup=lambda e: (e.work / "f").write_text("x")),
        Case("out-dangling-link", convert_to(lambda e: e.work / "ln"), 2, "missing path",
             setup=link("ln", lambda e: e.root / "gone")),
        Case("out-looping-link", convert_to(lambda e: e.work / "ln"), 2, "loops",
             setup=lambda e: (e.work / "ln").symlink_to(e.work / "ln")),
        Case("out-link-to-empty-folder", convert_to(lambda e: e.work / "ln"), 0,
             setup=lambda e: ((e.work / "real").mkdir(), (e.work / "ln").symlink_to(e.work / "real")),
             check=lambda e, r: (e.work / "ln").is_symlink() and (e.work / "real" / "report.json").is_file()),
        Case("out-dotdot-elsewhere", convert_to(lambda e: e.work / "x" / ".." / "out"), 0),
        Case("out-under-proc", convert_to(lambda e: Path("/proc/m2c_out")), 2, "/proc/m2c_out"),
        Case("out-name-255", convert_to(lambda e: e.work / ("n" * 255)), 0),
        Case("out-name-too-long", convert_to(lambda e: e.work / ("n" * 256)), 2, "longer than"),
        Case("out-foreign-folder-overwrite", convert_to(lambda e: e.out, "--overwrite"), 2, "not written by mvtec2coco",
             setup=foreign, check=kept_foreign),
        Case("out-foreign-folder", convert_to(lambda e: e.out), 2, "not empty", setup=foreign, check=kept_foreign),
        Case("out-own-output-overwrite", convert_to(lambda e: e.out, "--overwrite", "--format", "coco"), 0,
             setup=our_output, check=lambda e, r: (e.out / "annotations").is_dir() and not (e.out / "data.yaml").exists()),
        Case("out-own-output-no-overwrite", convert_to(lambda e: e.out), 2, "not empty", setup=our_output),
        Case("out-contains-split-file", lambda e: ["convert", str(e.data), "--out", str(e.out), "--overwrite",
                                                   "--split-file", str(e.out / "meta" / "split.csv")], 2, "contains the input",
             setup=our_output),
        Case("out-empty-string", convert_to(lambda e: Path("")), 2, "empty"),
        Case("out-existing-empty-folder", convert_to(lambda e: e.out), 0, setup=lambda e: e.out.mkdir()),
    ]
    # the same rule for the other writers
    cases += [
        Case("synth-into-foreign-folder", lambda e: ["synth", str(e.out), "--overwrite"], 2, "not written by mvtec2coco",
             setup=foreign, check=kept_foreign),
        Case("synth-over-own", lambda e: ["synth", str(e.out), "--overwrite"], 0,
             setup=lambda e: run(["synth", str(e.out)])),
        Case("synth-under-file", lambda e: ["synth", str(e.work / "f" / "d")], 2, "under a file",
             setup=lambda e: (e.work / "f").write_text("x")),
        Case("synth-dangling-link", lambda e: ["synth", str(e.work / "ln")], 2, "missing path",
             setup=link("ln", lambda e: e.root / "gone")),
        Case("synth-bad-preset", lambda e: ["synth", str(e.out), "--preset", "nope"], 2, "unknown preset"),
        Case("synth-seed-negative", lambda e: ["synth", str(e.out), "--seed", "-1"], 2, "--seed"),
        Case("summary-json-into-dataset", lambda e: ["summary", str(e.data), "--json", str(e.data / "s.json")], 2,
             "lies inside"),
        Case("summary-json-over-mask", lambda e: ["summary", str(e.data), "--json", str(e / MASK)], 2, "lies inside"),
        Case("summary-size-plot-into-dataset", lambda e: ["summary", str(e.data), "--size-plot", str(e.data / "s.png")], 2,
             "inside"),
        Case("summary-imgsz-zero", lambda e: ["summary", str(e.data), "--imgsz", "0"], 2, "--imgsz"),
        Case("summary-json-unwritable", lambda e: ["summary", str(e.data), "--json", "/proc/m2c.json"], 2, "/proc"),
        Case("summary-json-is-folder", lambda e: ["summary", str(e.data), "--json", str(e.work)], 2, "is a folder"),
        Case("summary-plot-under-file", lambda e: ["summary", str(e.data), "--plot", str(e.work / "f" / "p.png")], 2,
             "under a file", setup=lambda e: (e.work / "f").write_text("x")),
        Case("summary-json-ok", lambda e: ["summary", str(e.data), "--json", str(e.work / "deep" / "s.json")], 0,
             check=lambda e, r: json.loads((e.work / "deep" / "s.json").read_text())),
        Case("validate-json-unwritable", lambda e: ["validate", str(e.data), "--json", "/proc/m2c.json"], 2, "/proc"),
        Case("validate-json-into-dataset", lambda e: ["validate", str(e.data), "--json", str(e.data / "v.json")], 2,
             "lies inside"),
        Case("preview-n-zero", lambda e: ["preview", str(e.convert("--format", "coco")), "--n", "0"], 2, "--n"),
        Case("preview-n-negative", lambda e: ["preview", str(e.convert("--format", "coco")), "--n", "-3"], 2, "--n"),
        Case("preview-out-unwritable", lambda e: ["preview", str(e.convert("--format", "coco")), "--out",
                                                  "/proc/m2c.png"], 2, "/proc"),
        Case("preview-out-is-folder", lambda e: ["preview", str(e.convert("--format", "coco")), "--out", str(e.work)],
             2, "is a folder"),
        Case("preview-out-into-dataset", lambda e: ["preview", str(e.convert("--format", "coco")), "--out",
                                                    str(e.data / "p.png")], 2, "lies inside"),
        Case("preview-writes", lambda e: ["preview", str(e.convert("--format", "coco")), "--out", str(e.work / "p.png")],
             0, "written", check=lambda e, r: cv2.imread(str(e.work / "p.png")) is not None),
        Case("preview-not-an-output", lambda e: ["preview", str(e.data)], 2, "report.json"),
    ]
    return cases


# ---------------------------------------------------------------------------------------------
# full disks and other write errors (injected, and on a real small tmpfs)


def disk_cases() -> list[Case]:
    cases = []
    for stage in ("images/", "labels/", "instances_", "report.json", "split.csv", "data.yaml", ".mvtec2coco"):
        cases.append(Case(f"enospc-convert-{stage.strip('/.')}", lambda e: ["convert", str(e.data), "--format", "all",
                                                                       "--out", str(e.out)],
                          2, "No space left on device", env={"MVTEC2COCO_FAULT": f"enospc:{stage}"}))
    cases += [
        Case("enospc-convert-tiles", lambda e: ["convert", str(e.data), "--format", "all", "--tile", "64", "--out",
                                                str(e.out)], 2, "No space left on device",
             env={"MVTEC2COCO_FAULT": "enospc:__x"}),
        Case("eio-convert-labels", lambda e: ["convert", str(e.data), "--out", str(e.out)], 2, "Input/output error",
             env={"MVTEC2COCO_FAULT": "eio:labels/"}),
        Case("enospc-synth", lambda e: ["synth", str(e.out)], 2, "No space left", env={"MVTEC2COCO_FAULT": "enospc:.png"}),
        Case("enospc-summary-json", lambda e: ["summary", str(e.data), "--json", str(e.work / "s.json")], 2,
             "No space left", env={"MVTEC2COCO_FAULT": "enospc:s.json"}),
        Case("enospc-validate-json", lambda e: ["validate", str(e.data), "--json", str(e.work / "v.json")], 2,
             "No space left", env={"MVTEC2COCO_FAULT": "enospc:v.json"}),
        Case("enospc-preview", lambda e: ["preview", str(e.convert("--format", "coco")), "--out", str(e.work / "p.png")],
             2, "No space left", env={"MVTEC2COCO_FAULT": "enospc:p.png"}),
        Case("enospc-verify-json", lambda e: ["verify", str(e.convert("--format", "coco"))], 2, "No space left",
             env={"MVTEC2COCO_FAULT": "enospc:verify.json"}),
        Case("enospc-convert-copy-images", lambda e: ["convert", str(e.data), "--images", "copy", "--out", str(e.out)], 2,
             "No space left", env={"MVTEC2COCO_FAULT": "enospc:broken_large"}),
    ]
    cases += [
        Case("tmpfs-full-copy", lambda e: ["convert", str(e.data), "--images", "copy", "--format", "all", "--out",
                                           str(e.work / "small" / "out")], 2, "No space left",
             setup=lambda e: _mount(e.work / "small", "size=64k"), needs_root=True),
        Case("tmpfs-no-inodes", lambda e: ["convert", str(e.data), "--images", "symlink", "--format", "all", "--out",
                                           str(e.work / "small" / "out")], 2, "No space left",
             setup=lambda e: _mount(e.work / "small", "nr_inodes=12"), needs_root=True),
        Case("tmpfs-read-only", lambda e: ["convert", str(e.data), "--out", str(e.work / "small" / "out")], 2,
             "read-only", setup=lambda e: _mount(e.work / "small", "ro"), needs_root=True),
        Case("tmpfs-mount-point", lambda e: ["convert", str(e.data), "--out", str(e.work / "small")], 2, "mount point",
             setup=lambda e: _mount(e.work / "small", "size=4m"), needs_root=True),
        Case("tmpfs-inside-mount-point", lambda e: ["convert", str(e.data), "--format", "all", "--out",
                                                    str(e.work / "small" / "out")], 0,
             setup=lambda e: _mount(e.work / "small", "size=8m"), needs_root=True),
        Case("unreadable-folder", lambda e: ["convert", str(e.data), "--out", str(e.out)], 2, "Permission denied",
             env={"MVTEC2COCO_FAULT": "eacces:bottle/test/broken_large"}),
        Case("unreadable-folder-validate", lambda e: ["validate", str(e.data)], 1, "Permission denied",
             env={"MVTEC2COCO_FAULT": "eacces:bottle/test/broken_large"}),
        Case("unreadable-mask", lambda e: ["convert", str(e.data), "--out", str(e.out)], 2, "Permission denied",
             env={"MVTEC2COCO_FAULT": f"eacces:{MASK}"}),
        Case("unreadable-image", lambda e: ["convert", str(e.data), "--out", str(e.out)], 2, "Permission denied",
             env={"MVTEC2COCO_FAULT": f"eacces:{IMAGE}"}),
        Case("unreadable-mask-summary", lambda e: ["summary", str(e.data)], 2, "Permission denied",
             env={"MVTEC2COCO_FAULT": f"eacces:{MASK}"}),
    ]
    return cases


MOUNTS: list[Path] = []


def _mount(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    MOUNTS.append(path)


# ---------------------------------------------------------------------------------------------
# verify: every tampering is a finding (exit 1), every unusable output one line (exit 2)


def edit_coco(change: Callable[[dict], object], subset: str = "test") -> Callable[[Path], None]:
    def edit(out: Path) -> None:
        path = out / "annotations" / f"instances_{subset}.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return edit


def first_label(out: Path) -> Path:
    return next(p for p in sorted((out / "labels").rglob("*.txt")) if p.read_text().strip())


def tamper_cases() -> list[Case]:
    def ann0(key: str, value) -> Callable[[dict], None]:
        return lambda d: d["annotations"][0].__setitem__(key, value(d["annotations"][0][key]))

    def renumber(d: dict) -> None:
        for c in d["categories"]:
            c["id"] += 10
        for a in d["annotations"]:
            a["category_id"] += 10

    def swap_image(out: Path) -> None:
        a, b = sorted((out / "images" / "train").glob("bottle__train__good__*"))[:2]
        os.unlink(a)
        shutil.copyfile(b, a)

    def corrupt_in_place(out: Path) -> None:  # a copy: the source is not touched
        path = sorted((out / "images" / "train").glob("bottle__train__good__*"))[0]
        raw = bytearray(path.read_bytes())
        raw[raw.index(b"IDAT") + 12] ^= 0xFF
        path.write_bytes(bytes(raw))

    def shift_polygon(d: dict) -> None:
        a = next(a for a in d["annotations"] if isinstance(a["segmentation"], list))
        a["segmentation"] = [[v + 3 for v in ring] for ring in a["segmentation"]]

    def resize_rle(d: dict) -> None:  # an RLE one row taller than its image
        a = d["annotations"][0]
        image = next(i for i in d["images"] if i["id"] == a["image_id"])
        a["segmentation"] = {"size": [image["height"] + 1, image["width"]], "counts": "0"}

    coco: list[tuple[str, Callable[[Path], None], str, tuple[str, ...]]] = [
        ("coco-bbox-changed", edit_coco(ann0("bbox", lambda b: [b[0], b[1], b[2] + 1, b[3]])), "bbox", ()),
        ("coco-area-changed", edit_coco(ann0("area", lambda a: a + 1)), "area", ()),
        ("coco-category-renamed", edit_coco(lambda d: d["categories"][0].__setitem__("name", "scratch")), "categories",
         ()),
        ("coco-category-duplicated", edit_coco(lambda d: d["categories"].append(dict(d["categories"][0]))),
         "used more than once", ()),
        ("coco-categories-renumbered", edit_coco(renumber), "categories", ()),
        ("coco-unknown-category-id", edit_coco(ann0("category_id", lambda c: 99)), "unknown category_id 99", ()),
        ("coco-annotation-id-duplicated", edit_coco(lambda d: d["annotations"][1].__setitem__(
            "id", d["annotations"][0]["id"])), "annotation id", ()),
        ("coco-iscrowd", edit_coco(ann0("iscrowd", lambda c: 1)), "iscrowd", ()),
        ("coco-polygon-moved", edit_coco(shift_polygon), "IoU", ()),
        ("coco-image-size-changed", edit_coco(lambda d: d["images"][0].__setitem__("width", 7)), "COCO size", ()),
        ("coco-annotation-dropped", edit_coco(lambda d: d["annotations"].pop(0)), "missing", ()),
        ("coco-truncated", lambda out: (out / "annotations/instances_test.json").write_text(
            (out / "annotations/instances_test.json").read_text()[:300]), "cannot be read back", ()),
        ("coco-file-deleted", lambda out: (out / "annotations/instances_test.json").unlink(), "missing", ()),
        ("coco-segmentation-garbage", edit_coco(ann0("segmentation", lambda s: {"counts": "??", "size": [1, 1]})),
         "instance", ()),
        ("coco-rle-size-changed", edit_coco(resize_rle), "RLE size", ()),
        ("coco-image-swapped", swap_image, "not the source image", ()),
        ("coco-image-deleted", lambda out: next((out / "images" / "test").rglob("*.png")).unlink(), "missing", ()),
        ("coco-extra-image", lambda out: shutil.copyfile(next((out / "images" / "test").rglob("*.png")),
                                                         out / "images" / "test" / "stray.png"), "not listed", ()),
        ("coco-copy-corrupted", corrupt_in_place, "differs from the source", ("--images", "copy")),
        ("coco-copy-replaced", lambda out: _replace_bytes(out), "differs from the source", ("--images", "copy")),
    ]
    yolo: list[tuple[str, Callable[[Path], None], str, tuple[str, ...]]] = [
        ("yolo-row-duplicated", lambda out: _append(first_label(out), first_label(out).read_text().splitlines()[0]),
         "duplicate row", ()),
        ("yolo-class-out-of-range", lambda out: first_label(out).write_text(
            "7" + first_label(out).read_text()[1:]), "exceeds dataset class count", ()),
        ("yolo-data-yaml-deleted", lambda out: (out / "data.yaml").unlink(), "data.yaml: missing", ()),
        ("yolo-data-yaml-renamed-class", lambda out: (out / "data.yaml").write_text(
            (out / "data.yaml").read_text().replace("bent", "dent", 1)), "names", ()),
        ("yolo-data-yaml-garbage", lambda out: (out / "data.yaml").write_text(": : [\n"), "cannot be read back", ()),
        ("yolo-label-deleted", lambda out: first_label(out).unlink(), "label file is missing", ()),
        ("yolo-label-extra", lambda out: (out / "labels" / "train" / "stray.txt").write_text("0 0.5 0.5 0.1 0.1\n"),
         "no image for", ()),
        ("yolo-box-moved", lambda out: first_label(out).write_text("0 0.1 0.1 0.05 0.05\n"), "instance", ()),
        ("yolo-seg-row-dropped", lambda out: first_label(out).write_text(""), "missing", ("--format", "yolo-seg")),
    ]
    cases = [Case("coco-linked-image-corrupted", lambda e: ["verify", str(_tampered(e, corrupt_in_place, ("--format",
                                                                                                   "coco")))],
                  1, "image data is corrupt", data_changes=True)]  # a hard link: the source is damaged too
    for name, tamper, says, extra in coco:
        cases.append(_tamper_case(name, tamper, says, ("--format", "coco", *extra)))
    for name, tamper, says, extra in yolo:
        cases.append(_tamper_case(name, tamper, says, extra or ("--format", "yolo")))
    unusable = [
        ("verify-report-deleted", lambda out: (out / "report.json").unlink(), "no report.json"),
        ("verify-report-garbage", lambda out: (out / "report.json").write_text("{"), "report.json is unreadable"),
        ("verify-report-incomplete", lambda out: (out / "report.json").write_text("{}"), "report.json is unreadable"),
        ("verify-split-deleted", lambda out: (out / "meta" / "split.csv").unlink(), "split.csv is missing"),
        ("verify-split-garbage", lambda out: (out / "meta" / "split.csv").write_bytes(b"\xff\xfe\x00"), "split.csv"),
    ]
    for name, tamper, says in unusable:
        cases.append(Case(name, lambda e, t=tamper: ["verify", str(_tampered(e, t, ("--format", "coco")))], 2, says))
    cases += [
        Case("verify-min-iou-high", lambda e: ["verify", str(e.convert("--format", "coco")), "--min-iou", "2"], 2,
             "--min-iou"),
        Case("verify-min-iou-negative", lambda e: ["verify", str(e.convert("--format", "coco")), "--min-iou", "-1"], 2,
             "--min-iou"),
        Case("verify-min-iou-nan", lambda e: ["verify", str(e.convert("--format", "coco")), "--min-iou", "nan"], 2,
             "--min-iou"),
        Case("verify-missing-folder", lambda e: ["verify", str(e.work / "nope")], 2, "does not exist"),
        Case("verify-source-moved", lambda e: ["verify", str(_moved_source(e))], 2, "--dataset"),
        Case("verify-source-moved-given", lambda e: ["verify", str(_moved_source(e)), "--dataset",
                                                     str(e.root / "moved")], 0, data_changes=True),
        Case("verify-clean-all", lambda e: ["verify", str(e.convert("--format", "all"))], 0, "PASS"),
        Case("verify-source-mask-resized", lambda e: ["verify", str(_source_mask_resized(e))], 2, "mask is",
             data_changes=True),
    ]
    return cases


def _source_mask_resized(e: Env) -> Path:
    """The source changed after the conversion: a mask no longer fits its image (found by a worker)."""
    out = e.convert("--format", "all")
    resize_mask(e)
    return out


def _append(path: Path, line: str) -> None:
    with open(path, "a") as fh:
        fh.write(line + "\n")


def _replace_bytes(out: Path) -> None:
    path = sorted((out / "images" / "train").glob("bottle__train__good__*"))[0]
    other = sorted((out / "images" / "train").glob("bottle__train__good__*"))[1]
    path.write_bytes(other.read_bytes())


def _tampered(e: Env, tamper: Callable[[Path], None], extra: tuple[str, ...]) -> Path:
    out = e.convert(*extra)
    tamper(out)
    return out


def _moved_source(e: Env) -> Path:
    out = e.convert("--format", "coco")
    os.rename(e.data, e.root / "moved")  # the same files, elsewhere
    return out


def _tamper_case(name: str, tamper: Callable[[Path], None], says: str, extra: tuple[str, ...]) -> Case:
    def check(e: Env, result: subprocess.CompletedProcess) -> None:
        report = json.loads((e.work / "conv" / "verify.json").read_text())
        assert not report["passed"]
    return Case(name, lambda e: ["verify", str(_tampered(e, tamper, extra))], 1, says, check=check)


# ---------------------------------------------------------------------------------------------
# model commands: broken configs, weights, devices and file kinds are one line, and leave nothing


def garbage(e: Env, name: str = "garbage.pt") -> Path:
    path = e.work / name
    if not path.exists():
        path.write_bytes(bytes(range(256))[::-1] * 2)
    return path


def trainer_cases() -> list[Case]:
    def coco(e: Env, subset: str = "train") -> str:
        return str(e.converted("--format", "all") / "coco" / "annotations" / f"instances_{subset}.json")

    def data_yaml(e: Env) -> str:
        return str(e.converted("--format", "all") / "yolo" / "data.yaml")

    def config(text: str) -> Callable[[Env], str]:
        def write(e: Env) -> str:
            (e.work / "c.yaml").write_text(text)
            return str(e.work / "c.yaml")
        return write

    def classify(*extra: str, text: str = "name: t\n") -> Callable[[Env], list[str]]:
        return lambda e: ["classifier", "train", "--config", config(text)(e), "--data", str(e.data), "--set",
                          f"out={e.work / 'runs'}", *extra]

    def out_of(e: Env) -> str:
        return str(e.converted("--format", "all"))

    def yolo_only(e: Env) -> str:
        return str(e.converted("--format", "all") / "yolo")

    def sam_run(decoder: bool) -> Callable[[Env], object]:
        def make(e: Env) -> None:
            (e.work / "samrun").mkdir()
            (e.work / "samrun" / "config.yaml").write_text("model_type: tiny\ncheckpoint: none\n")
            if decoder:
                shutil.copyfile(garbage(e), e.work / "samrun" / "decoder.pt")
        return make

    def a_run(e: Env) -> None:
        (e.work / "old").mkdir()
        (e.work / "old" / "notes.txt").write_text("a run lives here")

    sam = ["--set", "model_type=tiny", "--set", "checkpoint=none"]
    tiny_pc = ["--set", "model.backbone=resnet18", "--set", "model.weights=none"]
    return [
        Case("classify-yaml-syntax", classify(text="a: [1\n"), 2, "not valid YAML"),
        Case("classify-yaml-list", classify(text="- 1\n- 2\n"), 2, "not a mapping"),
        Case("classify-yaml-unknown-key", classify(text="nonsense: 1\n"), 2, "unknown setting"),
        Case("classify-set-bad-yaml", classify("--set", "train.epochs=[1"), 2, "not valid YAML"),
        Case("classify-set-not-a-section", classify("--set", "name.x=1"), 2, "not a section"),
        Case("classify-set-wrong-type", classify("--set", "train.epochs=many"), 2, "'train.epochs' must be a whole"),
        Case("classify-set-bool-as-number", classify("--set", "optim.lr=true"), 2, "'optim.lr' must be a number"),
        Case("classify-garbage-weights", lambda e: [*classify()(e), "--set", f"model.weights={garbage(e)}"], 2,
             "cannot be loaded"),
        Case("classify-device-7", classify("--device", "7"), 2, "device '7'"),
        Case("classify-device-banana", classify("--set", "train.device=banana"), 2, "unknown device"),
        Case("classify-eval-garbage-checkpoint", lambda e: ["classifier", "eval", str(e.work / "run")], 2,
             "cannot be loaded", setup=lambda e: ((e.work / "run").mkdir(),
                                                  shutil.copyfile(garbage(e), e.work / "run" / "best.pt"))),
        Case("classify-predict-not-a-run", lambda e: ["classifier", "predict", str(e.work / "old"), "--data", out_of(e),
                                                      "--out", str(e.work / "pred")], 2, "no best.pt", setup=a_run),
        Case("classify-into-an-old-folder", lambda e: [*classify()(e), "--out", str(e.work / "old")], 2,
             "already holds files", setup=a_run),
        Case("classify-resume-missing", lambda e: ["classifier", "train", "--resume", str(e.work / "nothing")], 2,
             "no config.yaml"),
        Case("classify-resume-with-settings", lambda e: ["classifier", "train", "--resume", str(e.work / "old"),
                                                         "--data", str(e.data)], 2, "--data cannot be given",
             setup=a_run),
        Case("patchcore-garbage-weights", lambda e: ["patchcore", "train", "--data", str(e.data), "-c", "bottle", "--out",
                                                     str(e.work / "pc"), "--set", "model.backbone=resnet18", "--set",
                                                     f"model.weights={garbage(e, 'g.pth')}"], 2, "cannot be loaded"),
        Case("patchcore-device-7", lambda e: ["patchcore", "train", "--data", str(e.data), "-c", "bottle", "--out",
                                              str(e.work / "pc"), *tiny_pc, "--device", "7"], 2, "device '7'"),
        Case("patchcore-out-is-dataset", lambda e: ["patchcore", "train", "--data", str(e.data), "-c", "bottle", "--out",
                                                    str(e.data / "bottle"), *tiny_pc], 2, "already holds files"),
        Case("patchcore-out-inside-dataset", lambda e: ["patchcore", "train", "--data", str(e.data), "-c", "bottle",
                                                        "--out", str(e.data / "bottle" / "run"), *tiny_pc], 2,
             "lies inside"),
        Case("patchcore-two-categories", lambda e: ["patchcore", "train", "--data", str(e.data), "--out",
                                                    str(e.work / "pc"), *tiny_pc], 2, "say which to fit"),
        Case("patchcore-no-data", lambda e: ["patchcore", "train", "--out", str(e.work / "pc"), *tiny_pc], 2,
             "no data"),
        Case("patchcore-eval-garbage-run", lambda e: ["patchcore", "eval", str(e.work / "pc"), "--device", "auto"], 2,
             "cannot be loaded", setup=lambda e: ((e.work / "pc").mkdir(),
                                                  shutil.copyfile(garbage(e), e.work / "pc" / "patchcore.pt"))),
        Case("sam-train-data-yaml", lambda e: ["sam", "train", "--data", yolo_only(e), *sam, "--out",
                                               str(e.work / "sam")], 2, "no COCO ground truth"),
        Case("sam-train-garbage-checkpoint", lambda e: ["sam", "train", "--data", out_of(e), "--set", "model_type=tiny",
                                                        "--set", f"checkpoint={garbage(e)}", "--out",
                                                        str(e.work / "sam")], 2, "cannot be loaded"),
        Case("sam-train-device-7", lambda e: ["sam", "train", "--data", out_of(e), *sam, "--device", "7", "--out",
                                              str(e.work / "sam")], 2, "device '7'"),
        Case("sam-train-config-syntax", lambda e: ["sam", "train", "--data", out_of(e), *sam, "--config",
                                                   config("lr: [\n")(e), "--out", str(e.work / "sam")], 2,
             "not valid YAML"),
        Case("sam-train-wrong-type", lambda e: ["sam", "train", "--data", out_of(e), *sam, "--set", "lr=fast", "--out",
                                                str(e.work / "sam")], 2, "'lr' must be a number"),
        Case("sam-train-resume-without-checkpoint", lambda e: ["sam", "train", "--resume", str(e.work / "samrun")], 2,
             "no last.pt", setup=sam_run(False)),
        Case("sam-eval-data-yaml", lambda e: ["sam", "eval", "none", "--model-type", "tiny", "--data", yolo_only(e)], 2,
             "no COCO ground truth"),
        Case("sam-eval-garbage-decoder", lambda e: ["sam", "eval", str(e.work / "samrun"), "--data", out_of(e)], 2,
             "cannot be loaded", setup=sam_run(True)),
        Case("sam-eval-not-a-run", lambda e: ["sam", "eval", str(e.work / "samrun"), "--data", out_of(e)], 2,
             "not a finished run", setup=sam_run(False)),
        Case("sam-predict-data-yaml", lambda e: ["sam", "predict", "none", "--model-type", "tiny", "--data",
                                                 yolo_only(e), "--prompts", "ground-truth", "--out",
                                                 str(e.work / "pred")], 2, "no COCO ground truth"),
        Case("sam-predict-two-box-sources", lambda e: ["sam", "predict", "none", "--model-type", "tiny", "--data",
                                                       out_of(e), "--prompts", "ground-truth", "--detector",
                                                       str(garbage(e)), "--out", str(e.work / "pred")], 2,
             "exactly one box source"),
        Case("sam-predict-tile-without-detector", lambda e: ["sam", "predict", "none", "--model-type", "tiny", "--data",
                                                             out_of(e), "--prompts", "ground-truth", "--tile", "64",
                                                             "--out", str(e.work / "pred")], 2, "--tile slices"),
        Case("sam-predict-garbage-boxes", lambda e: ["sam", "predict", "none", "--model-type", "tiny", "--data",
                                                     out_of(e), "--boxes", str(garbage(e)), "--out",
                                                     str(e.work / "pred")], 2, "not a COCO JSON file"),
        Case("predict-images-and-data", lambda e: ["sam", "predict", "none", "--model-type", "tiny", "--data",
                                                   out_of(e), str(e.data / IMAGE), "--prompts", "ground-truth",
                                                   "--out", str(e.work / "pred")], 2, "either --data"),
        Case("predict-split-without-data", lambda e: ["patchcore", "predict", str(e.work), str(e.data / IMAGE),
                                                      "--split", "test", "--out", str(e.work / "pred")], 2,
             "--split needs --data"),
        Case("predict-unknown-subset", lambda e: ["patchcore", "predict", str(e.work), "--data", out_of(e), "--split",
                                                  "holdout", "--out", str(e.work / "pred")], 2,
             "no COCO ground truth for subset 'holdout'"),
        Case("predict-into-an-old-folder", lambda e: ["sam", "predict", "none", "--model-type", "tiny", "--data",
                                                      out_of(e), "--prompts", "ground-truth", "--out",
                                                      str(e.work / "old")], 2, "already holds files", setup=a_run),
        Case("yolo-world-train-coco-json", lambda e: ["yolo-world", "train", "--data", str(Path(out_of(e)) / "coco" /
                                                      "annotations" / "instances_train.json"), "--set",
                                                      "model=yolov8n.yaml", "--out", str(e.work / "yw")], 2,
             "JSON file where a YOLO"),
        Case("yolo-world-train-garbage-weights", lambda e: ["yolo-world", "train", "--data", data_yaml(e), "--set",
                                                            f"model={garbage(e)}", "--out", str(e.work / "yw")], 2,
             "cannot be loaded"),
        Case("yolo-world-train-device-7", lambda e: ["yolo-world", "train", "--data", data_yaml(e), "--set",
                                                     "model=yolov8n.yaml", "--device", "7", "--out",
                                                     str(e.work / "yw")], 2, "device '7'"),
        Case("yolo-world-train-wrong-type", lambda e: ["yolo-world", "train", "--data", data_yaml(e), "--set",
                                                       "freeze=some", "--out", str(e.work / "yw")], 2,
             "'freeze' must be a whole number"),
        Case("classify-epochs-zero", classify("--set", "train.epochs=0"), 2, "'train.epochs' must be at least 1"),
        Case("classify-lr-negative", classify("--set", "optim.lr=-5"), 2, "'optim.lr' must be greater than 0"),
        Case("classify-image-size-zero", classify("--set", "data.image_size=0"), 2, "'data.image_size' must be"),
        Case("classify-compare-into-its-run", lambda e: ["classifier", "compare", str(e.work / "old"), "--markdown",
                                                         str(e.work / "old" / "summary.json")], 2, "inside the input",
             setup=a_run),
        Case("classify-compare-corrupt-summary", lambda e: ["classifier", "compare", str(e.work / "crun")], 2,
             "cannot be read", setup=lambda e: ((e.work / "crun").mkdir(), (e.work / "crun" / "config.yaml")
                                                .write_text("name: c\n"), (e.work / "crun" / "summary.json")
                                                .write_text("# not json\n"))),
        Case("patchcore-coreset-zero", lambda e: ["patchcore", "train", "--data", str(e.data), "-c", "bottle", "--out",
                                                  str(e.work / "pc"), *tiny_pc, "--set", "model.coreset_ratio=0"], 2,
             "'model.coreset_ratio' must be in (0, 1]"),
        Case("patchcore-annotate-threshold-nan", lambda e: ["patchcore", "annotate", str(e.work), str(e.data / IMAGE),
                                                            "--out", str(e.root / "drafts"), "--threshold", "nan"], 2,
             "is not a number"),
        Case("sam-lr-negative", lambda e: ["sam", "train", "--data", out_of(e), *sam, "--set", "lr=-1", "--out",
                                           str(e.work / "sam")], 2, "'lr' must be greater than 0"),
        Case("sam-cache-inside-data", lambda e: (lambda o: ["sam", "train", "--data", o, *sam, "--cache-dir",
                                                            str(Path(o) / "coco" / "emb"), "--out",
                                                            str(e.work / "sam")])(out_of(e)), 2, "lies inside"),
        Case("yolo-world-imgsz-negative", lambda e: ["yolo-world", "train", "--data", data_yaml(e), "--set",
                                                     "imgsz=-5", "--out", str(e.work / "yw")], 2,
             "'imgsz' must be at least 32"),
        Case("yolo-world-predict-conf-7", lambda e: ["yolo-world", "predict", str(garbage(e)), str(e.data / IMAGE),
                                                     "--conf", "7", "--out", str(e.work / "pr")], 2, "--conf"),
        Case("yolo-world-predict-overlap-without-tile", lambda e: ["yolo-world", "predict", str(garbage(e)),
                                                                   str(e.data / IMAGE), "--overlap", "0.5", "--out",
                                                                   str(e.work / "pr")], 2, "--overlap applies to --tile"),
        Case("yolo-world-predict-tile-8", lambda e: ["yolo-world", "predict", str(garbage(e)), str(e.data / IMAGE),
                                                     "--tile", "8", "--out", str(e.work / "pr")], 2, "--tile 8"),
        Case("yolo-world-predict-overlap-nan", lambda e: ["yolo-world", "predict", str(garbage(e)), str(e.data / IMAGE),
                                                          "--tile", "64", "--overlap", "nan", "--out", str(e.work / "pr")],
             2, "--overlap"),
        Case("yolo-world-eval-garbage-weights", lambda e: ["yolo-world", "eval", str(garbage(e)), "--data",
                                                           data_yaml(e)], 2, "cannot be loaded"),
        Case("yolo-world-predict-garbage-weights", lambda e: ["yolo-world", "predict", str(garbage(e)),
                                                              str(e.data / IMAGE), "--out", str(e.work / "pr")], 2,
             "cannot be loaded"),
    ]


# ---------------------------------------------------------------------------------------------

CASES = [*damage_cases(), *root_cases(), *warning_cases(), *option_cases(), *output_cases(), *disk_cases(),
         *tamper_cases(), *trainer_cases()]


def test_the_table_is_large():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def clean_count(tiny_mvtec, tmp_path_factory) -> int:
    out = tmp_path_factory.mktemp("clean") / "out"
    assert run(["convert", str(tiny_mvtec), "--out", str(out)]).returncode == 0
    CLEAN_COUNT["tiny"] = instances_total(None, out)  # type: ignore[arg-type]
    return CLEAN_COUNT["tiny"]


# The fast tier (make test-fast) runs one case in eight of those that start no model (a model's
# imports take seconds per case); make test runs them all.
FAST = {c.id for c in CASES[: len(CASES) - len(trainer_cases())][::8]}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=() if c.id in FAST else pytest.mark.slow)
                                  for c in CASES])
def test_fault(case: Case, tiny_mvtec, clean_count):
    if case.needs_root and not IS_ROOT:
        pytest.skip("mounting a small tmpfs needs root")
    root = Path(tempfile.mkdtemp(prefix="m2c-fault-"))
    try:
        _run_case(case, Env(root), tiny_mvtec)
    finally:
        while MOUNTS:
            subprocess.run(["umount", "-l", str(MOUNTS.pop())], check=False)
        for p in [root, *root.rglob("*")]:
            if not p.is_symlink():
                try:
                    os.chmod(p, 0o755)
                except OSError:
                    pass
        shutil.rmtree(root, ignore_errors=True)


def _run_case(case: Case, env: Env, tiny: Path) -> None:
    shutil.copytree(tiny, env.data, symlinks=True)
    if case.setup is not None:
        case.setup(env)
    args = case.args(env)  # may convert first (verify and preview cases)
    before = _digest(env.data)
    entries_before = set(os.listdir(env.work))
    result = run(args, case.env)
    text = result.stdout + result.stderr
    assert result.returncode == case.code, f"{case.id}: exit {result.returncode}, wanted {case.code}\n{text}"
    assert "Traceback" not in text, text
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    if case.code == 2:
        assert len(errors) == 1 and result.stderr.startswith("error:"), result.stderr  # no empty line before it
        assert "\n" not in result.stderr.strip(), f"not one line:\n{result.stderr}"
        assert any(say in result.stderr for say in case.says.split("|")), f"{case.says!r} not in {result.stderr!r}"
    else:
        assert not errors, result.stderr
        assert any(say in text for say in case.says.split("|")), f"{case.says!r} not in\n{text}"
    assert leftovers(env.root) == []
    if case.code != 0:
        new = set(os.listdir(env.work)) - entries_before
        assert not new, f"a failed command left {new}"
    if not case.data_changes:
        assert _digest(env.data) == before, "the source dataset changed"
    if case.check is not None:
        case.check(env, result)


def _digest(folder: Path) -> dict[str, str]:
    """tree_digest, tolerant of the damage cases (links that point nowhere, unreadable files)."""
    if not folder.exists():
        return {}
    try:
        return tree_digest(folder)
    except OSError:
        return {str(p): str(p.lstat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


# ---------------------------------------------------------------------------------------------
# signals


def _default_stop_signals() -> None:
    """In the child: SIGTERM and SIGHUP with their default actions, as a shell starts a command.
    A test run under ``nohup`` ignores SIGHUP, the child would inherit that, and the command
    rightly leaves an inherited ignore alone."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mvtec2coco", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=_default_stop_signals)


def _wait_until_working(parent: Path, proc: subprocess.Popen) -> None:
    """Return once the run's temporary tree under ``parent`` holds its staging marker: the work
    has begun and lasts until the marker goes, just before the final rename. The caller signals
    right away; a pause first could outlast the run on a loaded machine."""
    from mvtec2coco.runtime.staging import STAGING_MARKER

    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None and \
            not any((tree / STAGING_MARKER).exists() for tree in parent.glob(".*.m2c-tmp-*")):
        time.sleep(0.005)
    assert proc.poll() is None, "finished before it could be interrupted"


@pytest.mark.parametrize("signum,group", [(signal.SIGTERM, False), (signal.SIGHUP, False), (signal.SIGTERM, True),
                                          (signal.SIGINT, True)], ids=["term", "hup", "term-group", "int-group"])
@pytest.mark.slow
def test_signal_leaves_nothing(bottle, tmp_path, signum, group):
    """``timeout`` and ``docker stop`` send SIGTERM to the main process, a terminal's hang-up
    SIGHUP; a process group gets them all. Each is handled like Ctrl-C: nothing is left."""
    out = tmp_path / "out"
    before = tree_digest(bottle)
    proc = _start(["convert", str(bottle), "--format", "all", "--images", "copy", "--out", str(out)])
    _wait_until_working(tmp_path, proc)
    (os.killpg if group else os.kill)(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []
    assert tree_digest(bottle) == before


@pytest.mark.slow
def test_sigterm_during_synth(tmp_path):
    proc = _start(["synth", str(tmp_path / "ds"), "--preset", "bottle"])
    _wait_until_working(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_sigkill_leaves_a_stale_tree_the_next_run_removes(bottle, tmp_path):
    out = tmp_path / "out"
    proc = _start(["convert", str(bottle), "--format", "all", "--images", "copy", "--out", str(out)])
    _wait_until_working(tmp_path, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    stale = list(tmp_path.glob(".out.m2c-tmp-*"))
    assert len(stale) == 1
    marker = json.loads((stale[0] / ".mvtec2coco-staging.json").read_text())
    assert marker["pid"] == proc.pid and marker["target"] == "out" and marker["host"]
    result = run(["convert", str(bottle), "--format", "coco", "--out", str(out)])
    assert result.returncode == 0, result.stderr
    assert "notice: removed" in result.stderr and str(stale[0]) in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.slow
def test_a_live_run_is_not_disturbed(tiny_mvtec, tmp_path):
    """A marked tree whose process still runs (here: this test) is not removed: the second run refuses."""
    from mvtec2coco.runtime.staging import STAGING_MARKER, owner

    tree = tmp_path / ".out.m2c-tmp-deadbeef"
    tree.mkdir()
    (tree / STAGING_MARKER).write_text(json.dumps({**owner(), "target": "out"}))
    result = run(["convert", str(tiny_mvtec), "--out", str(tmp_path / "out")])
    assert result.returncode == 2 and "another mvtec2coco process" in result.stderr
    assert tree.is_dir() and not (tmp_path / "out").exists()


def test_a_tree_from_a_reused_pid_is_stale(tiny_mvtec, tmp_path):
    """Same pid, other start time (the pid was reused after the run died): stale."""
    from mvtec2coco.runtime.staging import STAGING_MARKER, owner

    tree = tmp_path / ".out.m2c-tmp-deadbeef"
    tree.mkdir()
    (tree / STAGING_MARKER).write_text(json.dumps({**owner(), "started": "1", "target": "out"}))
    result = run(["convert", str(tiny_mvtec), "--out", str(tmp_path / "out")])
    assert result.returncode == 0 and "notice: removed" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
