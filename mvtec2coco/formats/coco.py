"""COCO instance-segmentation JSON: the one module that writes and reads it.

Ground truth is written one file per subset, as text from per-annotation pieces.

Workers turn each annotation into JSON text (``annotation_tail``) while the geometry is at hand;
the main process only numbers images and annotations and joins the pieces. The file is exactly
``json.dumps(data, separators=(",", ":"))`` of the COCO dictionary (tested), without ever
building that dictionary or encoding every polygon coordinate in one process. Reading goes
through ``load`` (pycocotools' index, typed errors); predictions through ``write_predictions``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import OptionError

_COMPACT = (",", ":")


@dataclass(frozen=True)
class CocoImage:
    file_name: str  # relative to images/<subset>/
    width: int
    height: int
    category_id: int  # of every annotation of this image (one defect type per image) ...
    annotations: tuple[str, ...]  # ``annotation_tail`` texts
    source_file: str = ""  # the image's path relative to the source dataset's root
    tile: tuple[int, int, int, int] | None = None  # x, y, w, h in the source image (``convert --tile``)
    category_ids: tuple[int, ...] = ()  # ... unless each annotation has its own (``--classes value``)


def ring_texts(rings: list[np.ndarray]) -> list[str]:
    """``[x1,y1,x2,...]`` per ring, exactly as ``json.dumps`` writes a list of floats.

    Exact outlines have vertices at whole and at three-quarter pixels (``masks.coco_rings``):
    their text (``3.0``, ``2.75``) is built for all rings at once from digit arrays, with no float
    repr per coordinate; anything else goes through json.dumps.
    """
    if not rings:
        return []
    flat = np.concatenate([np.asarray(r, dtype=np.float64).reshape(-1) for r in rings])
    whole = np.floor(flat).astype(np.int64)
    quarters = flat - whole != 0
    if whole.min() < 0 or not np.all(flat[quarters] - whole[quarters] == 0.75):
        return [json.dumps(np.asarray(r, dtype=np.float64).reshape(-1).tolist(), separators=_COMPACT) for r in rings]
    places = len(str(int(whole.max())))
    powers = 10 ** np.arange(places - 1, -1, -1, dtype=np.int64)
    digits = np.searchsorted(powers[::-1], whole, side="right").clip(1)  # digits of each number
    chars = np.empty((whole.size, places + 4), np.uint8)
    chars[:, :places] = 48 + whole[:, None] // powers % 10
    chars[:, places:] = np.where(quarters[:, None], np.array([46, 55, 53, 44], np.uint8), np.array([46, 48, 44, 0], np.uint8))
    keep = np.arange(places + 4) >= (places - digits)[:, None]  # drop leading zeros
    keep[~quarters, -1] = False  # ".0," is one character shorter than ".75,"
    text = chars[keep].tobytes().decode("ascii")
    sizes = np.fromiter((np.size(r) for r in rings), np.int64, len(rings))
    ends = np.cumsum(np.add.reduceat(digits + 3 + quarters, np.cumsum(sizes) - sizes)).tolist()
    return [f"[{text[start : end - 1]}]" for start, end in zip([0, *ends[:-1]], ends)]


def instance_tails(found: list, mode: str, truncated: list[bool] | None = None) -> list[str]:
    """Each ``masks.Instance``'s annotation text after its ids: RLE for regions with holes
    (``auto``) or for all (``rle``); polygons otherwise (``masks.coco_rings``), their text built
    for all of them at once. In ``polygon`` mode a region's holes are joined to its outline by
    zero-width bridges (keyholes), which pycocotools fills back to exactly the region's pixels.
    ``truncated`` flags tile instances whose region the tile's border cuts."""
    from ..geometry.masks import coco_rings

    as_rle = [mode == "rle" or (mode == "auto" and inst.hole_pixels > 0) for inst in found]
    polygons = iter(ring_texts(coco_rings([inst for inst, rle in zip(found, as_rle) if not rle], keyholes=True)))
    flags = truncated if truncated is not None else [None] * len(found)
    return [annotation_tail(rle_json(inst.rle) if rle else f"[{next(polygons)}]", inst.area, inst.bbox, flag)
            for inst, rle, flag in zip(found, as_rle, flags)]


def rle_json(rle: dict) -> str:
    """A compressed RLE ``{"size":[h,w],"counts":"..."}``."""
    height, width = rle["size"]
    return f'{{"size":[{height},{width}],"counts":{json.dumps(rle["counts"])}}}'


def annotation_tail(segmentation_json: str, area: int, bbox: tuple[int, int, int, int],
                    truncated: bool | None = None) -> str:
    """An annotation's JSON after its ids: segmentation, area, bbox, iscrowd (always 0), and for
    a tile's instance whether the tile's border cuts its region."""
    x, y, w, h = bbox
    cut = "" if truncated is None else f',"truncated":{"true" if truncated else "false"}'
    return f'"segmentation":{segmentation_json},"area":{area},"bbox":[{x},{y},{w},{h}],"iscrowd":0{cut}}}'


def _json_string(text: str) -> str:
    """``json.dumps(text)``, without its machinery for the usual plain ASCII path."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text)


def header(names: list[str], supercategories: dict[str, str], subset: str) -> dict:
    """Everything of the COCO dictionary except images and annotations."""
    return {
        "info": {"description": f"mvtec2coco {subset} subset", "version": __version__,
                 "contributor": "mvtec2coco", "year": 0, "date_created": ""},
        "licenses": [],
        "categories": [{"id": i + 1, "name": n, "supercategory": supercategories.get(n, "defect")}
                       for i, n in enumerate(names)],
    }


def image_text(file_name: str, width: int, height: int, source_file: str = "",
               tile: tuple[int, int, int, int] | None = None) -> str:
    """An image record's JSON after its id (``"file_name":...}``): built where the image is
    converted, so that the process writing the file only numbers and joins."""
    source = f',"source_file":{_json_string(source_file)}' if source_file else ""
    if tile is not None:
        source += ',"tile":[{},{},{},{}]'.format(*tile)
    return f'"file_name":{_json_string(file_name)},"width":{width},"height":{height}{source}}}'


def write(path: Path, images: list[CocoImage], names: list[str], supercategories: dict[str, str], subset: str) -> None:
    """Write the subset's file; image and annotation ids start at 1 in the given (sorted) order."""
    write_rendered(path, [(image_text(i.file_name, i.width, i.height, i.source_file, i.tile), i.annotations,
                           i.category_ids or (i.category_id,) * len(i.annotations)) for i in images],
                   names, supercategories, subset)


def write_rendered(path: Path, images: list[tuple[str, tuple[str, ...], tuple[int, ...]]], names: list[str],
                   supercategories: dict[str, str], subset: str) -> None:
    """``write`` of images already rendered: per image its ``image_text``, its ``annotation_tail``
    texts and the category id of each."""
    head = json.dumps(header(names, supercategories, subset), separators=_COMPACT)
    image_parts, annotation_parts = [], []
    ann_id = 0
    for image_id, (text, tails, categories) in enumerate(images, 1):
        image_parts.append(f'{{"id":{image_id},{text}')
        for tail, category_id in zip(tails, categories, strict=True):
            ann_id += 1
            annotation_parts.append(f'{{"id":{ann_id},"image_id":{image_id},"category_id":{category_id},{tail}')
    text = f'{head[:-1]},"images":[{",".join(image_parts)}],"annotations":[{",".join(annotation_parts)}]}}'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# ---------------------------------------------------------------------------------------------
# reading


class CocoFileError(OptionError):
    """A file given as COCO JSON is missing, is another kind of file, or lacks COCO's keys."""


@dataclass
class CocoSet:
    """One COCO file, loaded with pycocotools: images by id order, annotations per image."""

    path: Path
    images_dir: Path  # where ``file_name`` is relative to
    coco: Any = field(repr=False)  # pycocotools.coco.COCO

    @property
    def images(self) -> list[dict]:
        return sorted(self.coco.dataset["images"], key=lambda i: i["id"])

    @property
    def categories(self) -> dict[int, str]:
        return {int(c["id"]): str(c["name"]) for c in self.coco.dataset["categories"]}

    def annotations(self, image_id: int) -> list[dict]:
        return self.coco.loadAnns(self.coco.getAnnIds(imgIds=[image_id]))

    def masks(self, image_id: int) -> list[np.ndarray]:
        return [self.coco.annToMask(a) for a in self.annotations(image_id)]

    def by_file_name(self) -> dict[str, dict]:
        return {img["file_name"]: img for img in self.coco.dataset["images"]}


def read_json(path: Path | str) -> dict:
    """A COCO instances file's dictionary, checked for COCO's three lists, as one typed error."""
    path = Path(path)
    if not path.is_file():
        raise CocoFileError("COCO file does not exist", path, "pass annotations/instances_<subset>.json of `convert`")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        hint = "a data.yaml is for YOLO; pass annotations/instances_<subset>.json" if path.suffix in (".yaml", ".yml") \
            else "pass annotations/instances_<subset>.json of `convert`"
        raise CocoFileError(f"not a COCO JSON file ({type(exc).__name__})", path, hint) from exc
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations",
                                                                                       "categories")):
        raise CocoFileError("not a COCO instances file (needs images, annotations and categories)", path)
    return data


def load(path: Path | str, images_dir: Path | None = None) -> CocoSet:
    """A COCO file with pycocotools' index; images sit in ``images/<subset>/`` beside
    ``annotations/`` in a conversion, unless ``images_dir`` says otherwise."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    path = Path(path)
    data = read_json(path)
    coco = COCO()
    coco.dataset = data
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress lines
            coco.createIndex()
    except (KeyError, TypeError) as exc:
        raise CocoFileError(f"COCO file is malformed ({type(exc).__name__}: {exc})", path) from exc
    return CocoSet(path, Path(images_dir) if images_dir else subset_images_dir(path), coco)


def subset_path(root: Path, subset: str) -> Path:
    """Where a conversion keeps a subset's COCO file: ``ROOT/annotations/instances_<subset>.json``."""
    return Path(root) / "annotations" / f"instances_{subset}.json"


def subset_images_dir(path: Path) -> Path:
    """``OUT/images/<subset>`` for ``OUT/annotations/instances_<subset>.json``."""
    subset = Path(path).stem.removeprefix("instances_")
    return Path(path).parent.parent / "images" / subset


def subset_file(out: Path | str, split: str) -> Path:
    """The ground-truth COCO file of ``split`` in a conversion: ``OUT/annotations`` or, for
    ``--format all``, ``OUT/coco/annotations``."""
    out = Path(out)
    for root in (out, out / "coco"):
        path = subset_path(root, split)
        if path.is_file():
            return path
    raise CocoFileError(f"no COCO ground truth for subset '{split}'", out,
                        "pass the folder of `convert --format coco` (or all) and a subset it wrote: train, val, test")


# ---------------------------------------------------------------------------------------------
# predictions


def write_predictions(folder: Path, images: list[dict], categories: list[dict], annotations: list[dict],
                      meta: dict) -> Path:
    """``predictions.json`` (images keyed by the ground truth's ids, each with its image-level
    anomaly ``score`` — the family's own, else its best annotation's, else 0 — categories,
    scored annotations, what was run) and ``results.json`` (the annotations alone: COCO's
    results format, for ``COCO.loadRes``). Annotation ids are given here, 1..N in order."""
    numbered = [{"id": i, **{k: v for k, v in a.items() if k != "id"}} for i, a in enumerate(annotations, 1)]
    best: dict[int, float] = {}
    for a in numbered:
        best[a["image_id"]] = max(best.get(a["image_id"], 0.0), float(a["score"]))
    images = [img if img.get("score") is not None else {**img, "score": best.get(img["id"], 0.0)} for img in images]
    results = [{k: v for k, v in a.items() if k != "id"} for a in numbered]
    data = {"info": {"description": "mvtec2coco predictions", "version": __version__, **meta},
            "images": images, "categories": categories, "annotations": numbered}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, separators=_COMPACT))
    path = folder / "predictions.json"
    path.write_text(json.dumps(data, separators=_COMPACT))
    return path


def write_json(path: Path, data: dict) -> None:
    """A COCO dictionary written the way ``write`` writes it (compact)."""
    path.write_text(json.dumps(data, separators=_COMPACT))


def read_predictions(path: Path | str) -> dict:
    """A ``predictions.json`` of ``predict``: a COCO file whose images are keyed by a ground
    truth and whose annotations carry scores, with ``info`` saying what made it."""
    path = Path(path)
    if path.is_dir():
        path = path / "predictions.json"
    data = read_json(path)
    if "mvtec2coco predictions" not in str(data.get("info", {}).get("description", "")):
        raise CocoFileError("not a predictions.json of `mvtec2coco <family> predict`", path)
    if not all(isinstance(r, dict) for r in (*data["images"], *data["annotations"], *data["categories"])):
        raise CocoFileError("images, annotations and categories must be lists of records", path)
    bad = [a.get("id") for a in data["annotations"] if not isinstance(a.get("score"), (int, float))
           or not isinstance(a.get("bbox"), list)]
    if bad:
        raise CocoFileError(f"annotation(s) {bad[:5]} lack a score or a bbox", path)
    data["info"]["path"] = str(path)
    return data
