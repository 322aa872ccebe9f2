"""What every ``predict`` runs on: a converted subset (its ground truth's image ids and file names)
or image files and folders, and the categories predictions are filed under.

Keyed by the ground truth, a prediction for ``bottle/test/broken_large/000.png`` can never be
confused with one for ``bottle/test/contamination/000.png``: images are matched by id, and file
names are always relative to the images folder, never bare names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...datasets.imageio import is_image_file, read_header
from ...errors import OptionError
from ...formats import coco


@dataclass(frozen=True)
class PredictImage:
    id: int
    file_name: str  # relative to the ground truth's images folder, or to the folder given
    path: Path
    width: int
    height: int
    source_file: str = ""  # the ground truth's path of the image in the source dataset, if it names one

    def record(self) -> dict:
        """The image as the ground truth lists it (``predictions.json`` keeps it)."""
        extra = {"source_file": self.source_file} if self.source_file else {}
        return {"id": self.id, "file_name": self.file_name, "width": self.width, "height": self.height, **extra}


@dataclass(frozen=True)
class PredictInputs:
    images: list[PredictImage]
    categories: list[dict]  # the ground truth's, or empty: the model's names are used
    ground_truth: Path | None  # the subset's COCO file
    split: str | None

    def meta(self) -> dict:
        return {"ground_truth": str(self.ground_truth.resolve()) if self.ground_truth else None, "split": self.split}


def prediction_inputs(data: Path | None, split: str | None, images: list[Path] | None) -> PredictInputs:
    """``--data OUT --split S`` (a converted subset) or image paths; exactly one of the two."""
    images = list(images or [])
    if (data is None) == (not images):
        raise OptionError("give either --data OUT --split SUBSET (a converted subset) or image files and folders")
    if data is not None:
        return _from_ground_truth(Path(data), split or "test")
    if split is not None:
        raise OptionError("--split needs --data (the conversion the subset belongs to)")
    return PredictInputs(_from_paths(images), [], None, None)


def _from_ground_truth(data: Path, split: str) -> PredictInputs:
    gt = coco.load(coco.subset_file(data, split))
    found = []
    for img in gt.images:
        path = gt.images_dir / img["file_name"]
        if not path.is_file():
            raise OptionError("image of the ground truth does not exist", path, "convert again")
        found.append(PredictImage(int(img["id"]), img["file_name"], path, int(img["width"]), int(img["height"]),
                                  str(img.get("source_file", ""))))
    if not found:
        raise OptionError(f"subset '{split}' has no images", gt.path)
    categories = [{"id": c["id"], "name": c["name"], "supercategory": c.get("supercategory", "defect")}
                  for c in sorted(gt.coco.dataset["categories"], key=lambda c: c["id"])]
    return PredictInputs(found, categories, gt.path, split)


def _from_paths(paths: list[Path]) -> list[PredictImage]:
    named: dict[str, Path] = {}
    for given in map(Path, paths):
        if given.is_dir():
            pairs = [(f.relative_to(given).as_posix(), f) for f in sorted(given.rglob("*")) if f.is_file() and is_image_file(f)]
        elif given.is_file():
            pairs = [(given.name, given)]
        else:
            raise OptionError("image path does not exist", given)
        for name, path in pairs:
            if name in named and named[name].resolve() != path.resolve():
                raise OptionError(f"two images would share the name '{name}': {named[name]} and {path}", path,
                                  "pass their common folder instead, so that names stay distinct")
            named[name] = path
    if not named:
        raise OptionError("no images given")
    out = []
    for image_id, (name, path) in enumerate(sorted(named.items()), 1):
        header = read_header(path)
        out.append(PredictImage(image_id, name, path, header.width, header.height))
    return out


def category_ids(inputs: PredictInputs, names: list[str]) -> tuple[list[dict], dict[str, int]]:
    """Categories of the predictions file and the id of each model class name: the ground
    truth's ids, matched by name, or 1..N in the model's order."""
    if not inputs.categories:
        categories = [{"id": i, "name": n, "supercategory": "defect"} for i, n in enumerate(names, 1)]
        return categories, {n: i for i, n in enumerate(names, 1)}
    by_name = {c["name"]: c["id"] for c in inputs.categories}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise OptionError(f"the model's classes {unknown} are not categories of the ground truth "
                          f"{sorted(by_name)}", inputs.ground_truth, "predict on the conversion the model was trained on")
    return inputs.categories, by_name


def parameters(*modules) -> int:
    """Number of parameters of torch modules (for the comparison table)."""
    return int(sum(p.numel() for m in modules for p in m.parameters()))


def run_facts(run: Path, file: str, images_key: str, seconds_key: str) -> dict:
    """Training images and seconds as the run's own summary file records them (absent: omitted)."""
    import json

    path = Path(run) / file
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: data[src] for k, src in (("train_images", images_key), ("train_seconds", seconds_key)) if src in data}
