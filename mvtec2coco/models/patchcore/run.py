"""``patchcore|autoencoder train | eval | predict`` (and ``patchcore annotate``): models fitted on a
category's good images only, scored by one anomaly map per image, and draft annotations.

A run folder holds ``<family>.pt`` (``patchcore.pt``: config, memory bank and the backbone
weights used, so that scoring needs no weight file; ``autoencoder.pt``: config and network),
``run.json`` (data, timings, memory), and after ``eval`` ``eval.json``, ``thresholds.json`` and
``heatmaps.png``. Both families have one interface (``fit``, ``score``, ``state``, ``from_state``).
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ...datasets import load_dataset
from ...datasets.imageio import is_image_file, load_mask
from ...errors import OptionError
from ...metrics.image import auroc, best_f1_threshold
from ...metrics.pixel import pro_auc
from ...records import GOOD, Sample
from ..classifier.data import ImageCache, normalize
from ..common.devices import pick_device
from .config import PatchCoreRunConfig
from .model import PatchCore

TEST_SPLITS = ("test", "test_public")


def _tensor(cache: ImageCache, paths: list[Path]) -> torch.Tensor:
    images = [torch.from_numpy(cache.get(p)).permute(2, 0, 1) for p in paths]
    return normalize(torch.stack(images))


def _batches(cache: ImageCache, paths: list[Path], batch_size: int, progress: str | None):
    chunks = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
    if progress:
        from ...runtime.parallel import with_progress

        yield from with_progress((_tensor(cache, c) for c in chunks), [1] * len(chunks), progress)
    else:
        yield from (_tensor(cache, c) for c in chunks)


def _only_category(root: Path, layout: str | None) -> str:
    categories = sorted({s.category for s in load_dataset(root, layout).samples})
    if len(categories) != 1:
        raise OptionError(f"the dataset has {len(categories)} categories: say which to fit", root,
                          f"--category NAME (data.category in a config), one of {', '.join(categories)}")
    return categories[0]


def _category_samples(root: Path, category: str, layout: str | None) -> list[Sample]:
    dataset = load_dataset(root, layout, [category])
    return list(dataset.samples)


FAMILIES = ("patchcore", "autoencoder")


def training_goods(data, family: str) -> tuple[Path, str, list[Sample]]:
    """(root, category, good training samples) of ``data`` (a ``DataConfig``): the dataset's
    train/good, or the good images of a conversion's train subset (``data.split``), so that a
    good-only model never fits on an image it is judged on."""
    if not data.root:
        raise OptionError(f"no data: pass --data ROOT (the dataset {family} fits on)")
    root = Path(data.root)
    category = data.category or _only_category(root, data.layout)
    samples = _category_samples(root, category, data.layout)
    if data.split == "official":
        train = [s for s in samples if s.split == "train" and s.label == GOOD]
    else:
        from ...split import make_split

        labeled = [s for s in samples if s.is_labeled]
        subsets = make_split(labeled, data.split).subsets
        train = [s for s in labeled if subsets[s.id] == "train" and s.label == GOOD]
    if not train:
        raise OptionError(f"no training good images in category '{category}'", root,
                          f"{family} fits on <category>/train/good")
    return root, category, train


def _model_class(family: str):
    if family == "autoencoder":
        from ..autoencoder.model import Autoencoder

        return Autoencoder
    return PatchCore


def fit(cfg: PatchCoreRunConfig, out: Path, progress: bool = False, family: str = "patchcore") -> dict:
    """Fit the family's model (PatchCore, or the autoencoder with its config) on the category's
    training good images and save the run."""
    from ..common import config as configs

    torch_device = pick_device(cfg.device)
    root, category, train = training_goods(cfg.data, family)
    layout, config, batch_size = cfg.data.layout, cfg.model, cfg.batch_size
    model = _model_class(family)(config, torch_device)
    cache = ImageCache(config.image_size)
    start = time.perf_counter()
    what = "Extracting features" if family == "patchcore" else "Reading images"
    stats = model.fit(_batches(cache, [s.image for s in train], batch_size, what if progress else None))
    seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state(), out / f"{family}.pt")
    (out / "config.yaml").write_text(configs.dump(cfg))
    info = {"family": family, "root": str(Path(root).resolve()), "layout": layout, "category": category,
            "config": config.to_dict(), **stats, "train_images": len(train), "fit_seconds": round(seconds, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "device": str(torch_device)}
    (out / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def load_run(run: Path, device: str = "auto", family: str | None = None):
    """(model, run.json) of a run folder of either family (or of ``family`` only)."""
    device = pick_device(device)
    run = Path(run)
    found = [f for f in (FAMILIES if family is None else (family,)) if (run / f"{f}.pt").is_file()]
    if not found:
        wanted = family or "patchcore or autoencoder"
        raise OptionError(f"no {wanted} model in the run folder", run, f"pass a folder written by `{wanted} train`")
    from ..common.files import load_weights, torch_file

    name = found[0]
    cls = _model_class(name)
    state = torch_file(run / f"{name}.pt", f"{name} run", weights_only=False)
    model = load_weights(run / f"{name}.pt", f"{name} run", lambda _: cls.from_state(state, device))
    return model, json.loads((run / "run.json").read_text())


def _score(model: PatchCore, samples: list[Sample], batch_size: int, progress: str | None):
    cache = ImageCache(model.config.image_size)
    maps, scores = [], []
    for x in _batches(cache, [s.image for s in samples], batch_size, progress):
        m, s = model.score(x)
        maps.append(m)
        scores.append(s)
    return (np.concatenate(maps), np.concatenate(scores)) if maps else (np.zeros((0,)), np.zeros((0,)))


def _gt(samples: list[Sample], size: int) -> np.ndarray:
    out = np.zeros((len(samples), size, size), np.uint8)
    for i, s in enumerate(samples):
        if s.masks:
            out[i] = cv2.resize(load_mask(s.masks, s.height, s.width), (size, size), interpolation=cv2.INTER_NEAREST)
    return out


def evaluate(run: Path, batch_size: int = 8, device: str = "auto", progress: bool = False) -> dict:
    """Image AUROC, pixel AUROC and PRO per defect type and overall; thresholds; heat-map overlays."""
    run = Path(run)
    model, info = load_run(run, device)
    samples = _category_samples(Path(info["root"]), info["category"], info["layout"])
    test = [s for s in samples if s.split in TEST_SPLITS and s.is_labeled]
    if not test:
        raise OptionError("the category has no labeled test images", info["root"])
    maps, scores = _score(model, test, batch_size, "Scoring test images" if progress else None)
    gt = _gt(test, model.config.image_size)
    is_defect = np.array([not s.is_good for s in test])
    result: dict = {"category": info["category"], "images": len(test), "per_type": {}}

    def block(keep: np.ndarray) -> dict:
        return {"images": int(keep.sum()), "image_auroc": auroc(scores[keep], is_defect[keep]),
                "pixel_auroc": auroc(maps[keep], gt[keep] > 0), "pro": pro_auc(maps[keep], gt[keep])}

    result["overall"] = block(np.ones(len(test), bool))
    for label in sorted({s.label for s in test if not s.is_good}):
        keep = np.array([s.is_good or s.label == label for s in test])
        result["per_type"][label] = block(keep)
    result["thresholds"] = _thresholds(model, samples, scores, is_defect, maps, gt, batch_size)
    (run / "thresholds.json").write_text(json.dumps(result["thresholds"], indent=2) + "\n")
    (run / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    _heatmaps(test, maps, scores, gt, run / "heatmaps.png")
    return result


def _thresholds(model, samples, scores, is_defect, maps, gt, batch_size) -> dict:
    """Validation good images set the thresholds when present (no false alarm on them); otherwise
    the F1-optimal thresholds on the test images, labelled as such (optimistic)."""
    val = [s for s in samples if s.split == "validation" and s.is_labeled]
    if val and any(not s.is_good for s in val):
        vmaps, vscores = _score(model, val, batch_size, None)
        vdef = np.array([not s.is_good for s in val])
        image_t, _ = best_f1_threshold(vscores, vdef)
        pixel_t, _ = best_f1_threshold(_subsample(vmaps), _subsample(_gt(val, model.config.image_size) > 0))
        how = "F1-optimal on the validation images"
    elif val:
        vmaps, vscores = _score(model, val, batch_size, None)
        image_t, pixel_t = float(vscores.max()), float(vmaps.max())
        how = "highest score on the validation good images (no false alarm there)"
    else:
        image_t, _ = best_f1_threshold(scores, is_defect)
        pixel_t, _ = best_f1_threshold(_subsample(maps), _subsample(gt > 0))
        how = "F1-optimal on the test images (no validation set: optimistic, for orientation only)"
    return {"image": image_t, "pixel": pixel_t, "chosen_by": how}


def _subsample(a: np.ndarray, n: int = 200_000) -> np.ndarray:
    flat = a.ravel()
    step = max(1, len(flat) // n)
    return flat[::step]


def _heatmaps(samples: list[Sample], maps: np.ndarray, scores: np.ndarray, gt: np.ndarray, path: Path, n: int = 8):
    """Rows: image with ground-truth outline | anomaly heat map over the image; worst-scored first."""
    order = [i for i in np.argsort(-scores) if not samples[i].is_good][: n // 2]
    order += [i for i in np.argsort(-scores) if samples[i].is_good][: n - len(order)]
    size = maps.shape[-1]
    lo, hi = float(maps.min()), float(maps.max()) + 1e-9
    tiles = []
    for i in order:
        image = cv2.resize(cv2.imread(str(samples[i].image), cv2.IMREAD_COLOR), (size, size))
        outline = image.copy()
        contours, _ = cv2.findContours(gt[i].copy(), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(outline, contours, -1, (0, 255, 0), 1)
        heat = cv2.applyColorMap(((maps[i] - lo) / (hi - lo) * 255).astype(np.uint8), cv2.COLORMAP_JET)
        overlay = cv2.addWeighted(image, 0.5, heat, 0.5, 0)
        cv2.drawContours(overlay, contours, -1, (255, 255, 255), 1)
        caption = f"{samples[i].label} {scores[i]:.2f}"
        cv2.putText(outline, caption, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([outline, overlay], axis=1))
    if tiles:
        cv2.imwrite(str(path), np.concatenate(tiles, axis=0))


def annotate(run: Path, images: list[Path], out: Path, fmt: str = "coco", threshold: float | None = None,
             min_area: int = 16, opening: int = 3, batch_size: int = 8, device: str = "auto",
             refine_with_sam: Path | None = None, sam_model_type: str = "vit_b", overwrite: bool = False) -> dict:
    """Anomaly map -> threshold -> cleaned regions -> instances through `convert`, marked as drafts.

    ``OUT/drafts`` holds the draft masks as a dataset in the ``folder`` layout (class ``anomaly``;
    images without a region under ``good``), and ``OUT/<format>`` its conversion, whose
    ``report.json`` says ``draft: true`` and whose COCO annotations carry a ``score`` (the highest
    anomaly value inside the region). ``verify OUT/<format>`` checks it like any conversion.
    """
    from ...convert import ConvertOptions, convert, parse_formats
    from ...runtime.staging import staged_output

    model, info = load_run(Path(run), device)
    files = _expand(images)
    if threshold is None:
        path = Path(run) / "thresholds.json"
        if not path.is_file():
            raise OptionError("no threshold: run `patchcore eval` first or pass --threshold", Path(run))
        threshold = float(json.loads(path.read_text())["pixel"])
    sam = _load_sam(refine_with_sam, sam_model_type, device) if refine_with_sam else None
    category = info["category"]
    scores: dict[str, np.ndarray] = {}
    with staged_output(Path(out), overwrite, [Path(run), *files]) as tmp:
        drafts = tmp / "drafts" / category
        for folder in ("good", "anomaly", "masks/anomaly"):
            (drafts / folder).mkdir(parents=True, exist_ok=True)
        cache = ImageCache(model.config.image_size)
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            maps, _ = model.score(_tensor(cache, chunk))
            for k, (path, amap) in enumerate(zip(chunk, maps)):
                name = f"{start + k:04d}_{path.stem}"
                image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                h, w = image.shape[:2]
                full = cv2.resize(amap, (w, h), interpolation=cv2.INTER_LINEAR)
                mask = _clean((full >= threshold).astype(np.uint8), opening, min_area)
                if sam is not None and mask.any():
                    mask = _refine(sam, image, mask)
                folder = "anomaly" if mask.any() else "good"
                shutil.copyfile(path, drafts / folder / f"{name}{path.suffix}")
                if mask.any():
                    cv2.imwrite(str(drafts / "masks" / "anomaly" / f"{name}_mask.png"), mask * 255)
                    scores[f"{category}/{folder}/{name}"] = full
        final = Path(out).absolute()
        report = convert(load_dataset(tmp / "drafts", "folder"), tmp / fmt,
                         ConvertOptions(formats=parse_formats(fmt), split="1,0,0", images="copy", workers=1))
        report.update({"draft": True, "anomaly_run": str(Path(run).resolve()), "pixel_threshold": threshold,
                       "output": str(final / fmt)})
        report["dataset"]["root"] = str(final / "drafts")  # where the drafts will be after the rename
        _finish(tmp / fmt, fmt, report, scores)
    return report


def _finish(folder: Path, fmt: str, report: dict, scores: dict[str, np.ndarray]) -> None:
    """Mark the output as drafts and score every COCO annotation (data.yaml holds no path to fix)."""
    from ...formats import coco
    from ...formats.placement import source_name
    from ...geometry.masks import decode_rle, polygon_to_mask

    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if fmt != "coco":  # data.yaml holds no path: it stays valid where the drafts are moved
        return
    path = coco.subset_path(folder, "train")
    data = coco.read_json(path)
    names = {img["id"]: img for img in data["images"]}
    for ann in data["annotations"]:
        img = names[ann["image_id"]]
        key = source_name(img["file_name"]).rsplit(".", 1)[0]
        seg = ann["segmentation"]
        region = decode_rle(seg) if isinstance(seg, dict) else polygon_to_mask(seg, img["height"], img["width"])
        amap = scores[key]
        ann["score"] = round(float(amap[region > 0].max()), 6)
    data["info"]["description"] += " (draft annotations from an anomaly model: check and correct them)"
    coco.write_json(path, data)


def _clean(mask: np.ndarray, opening: int, min_area: int) -> np.ndarray:
    if opening > 1:
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((opening, opening), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.zeros(count, np.uint8)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def _expand(images: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, images):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and is_image_file(f))
        elif p.is_file():
            files.append(p)
        else:
            raise OptionError("image path does not exist", p)
    if not files:
        raise OptionError("no images given")
    return files


def _load_sam(checkpoint: Path, model_type: str, device: str):
    from segment_anything import SamPredictor

    from ..sam.network import build_sam

    return SamPredictor(build_sam(model_type, checkpoint).to(pick_device(device)).eval())


def _refine(predictor, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each region's box prompts SAM; the union of SAM's masks replaces the draft."""
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    predictor.set_image(rgb)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    refined = np.zeros_like(mask)
    for i in range(1, count):
        x, y, w, h = stats[i, :4]
        masks, _, _ = predictor.predict(box=np.array([x, y, x + w - 1, y + h - 1]), multimask_output=False)
        refined |= masks[0].astype(np.uint8)
    return refined


def predict(run: Path, inputs, out: Path, batch_size: int = 8, device: str = "auto") -> Path:
    """Anomaly score of every input image (the map's maximum) and, when ``patchcore eval`` chose a
    pixel threshold, each connected region above it as an RLE instance of class ``anomaly`` scored
    by its highest value; ``OUT/predictions.json`` keyed by the ground truth."""
    from pycocotools import mask as mask_utils

    from ...formats.coco import write_predictions
    from ...geometry.boxes import coco_bbox, edges_of_mask
    from ..common.inputs import category_ids, parameters

    model, info = load_run(Path(run), device)
    began = time.perf_counter()
    path = Path(run) / "thresholds.json"
    threshold = float(json.loads(path.read_text())["pixel"]) if path.is_file() else None
    names = [c["name"] for c in inputs.categories] or ["anomaly"]
    categories, ids = category_ids(inputs, names)
    label = "anomaly" if "anomaly" in ids else names[0]  # a good-only model cannot tell defect types apart
    cache = ImageCache(model.config.image_size)
    images, annotations, small = [], [], []
    for start in range(0, len(inputs.images), batch_size):
        chunk = inputs.images[start : start + batch_size]
        maps, scores = model.score(_tensor(cache, [i.path for i in chunk]))
        for image, amap, score in zip(chunk, maps, scores):
            images.append({**image.record(), "score": round(float(score), 6)})
            small.append(amap)
            if threshold is None:
                continue
            full = cv2.resize(amap, (image.width, image.height), interpolation=cv2.INTER_LINEAR)
            count, regions = cv2.connectedComponents((full >= threshold).astype(np.uint8), connectivity=8)
            for k in range(1, count):
                region = regions == k
                rle = mask_utils.encode(np.asfortranarray(region.astype(np.uint8)))
                annotations.append({"image_id": image.id, "category_id": ids[label],
                                    "segmentation": {"size": [image.height, image.width],
                                                     "counts": rle["counts"].decode("ascii")},
                                    "area": int(region.sum()), "bbox": coco_bbox(edges_of_mask(region)),
                                    "score": round(float(full[region].max()), 6), "iscrowd": 0})
    family = info.get("family", "patchcore")
    described = f"PatchCore {model.config.backbone}" if family == "patchcore" else \
        f"{'VAE' if model.config.variational else 'Autoencoder'} ({model.config.score})"
    extra = {"memory_bank": int(model.bank.shape[0])} if family == "patchcore" else {}
    meta = {"family": family, "run": str(Path(run).resolve()), "model": described, "config": Path(run).name,
            "parameters": parameters(model.extractor), **extra,
            "predict_seconds": round(time.perf_counter() - began, 2), "train_images": info.get("train_images"),
            "train_seconds": info.get("fit_seconds"), "pixel_threshold": threshold,
            "anomaly_maps": write_maps(Path(out) / "maps", [i.id for i in inputs.images], small), **inputs.meta()}
    return write_predictions(Path(out), images, categories, annotations, meta)


def write_maps(folder: Path, ids: list[int], maps: list[np.ndarray]) -> dict:
    """Each anomaly map as a 16-bit PNG at the model's input resolution, scaled to one [low, high]
    range for all images: value = low + pixel / 65535 * (high - low)."""
    folder.mkdir(parents=True, exist_ok=True)
    low = float(min(m.min() for m in maps)) if maps else 0.0
    high = float(max(m.max() for m in maps)) if maps else 1.0
    span = max(high - low, 1e-12)
    for image_id, amap in zip(ids, maps):
        cv2.imwrite(str(folder / f"{image_id:05d}.png"), np.round((amap - low) / span * 65535).astype(np.uint16))
    size = int(maps[0].shape[-1]) if maps else 0
    return {"folder": folder.name, "scale": [low, high], "resolution": [size, size],
            "note": "value = low + pixel / 65535 * (high - low); resized to each image's own size for evaluation"}
