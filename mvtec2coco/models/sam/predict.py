"""``sam predict``: box prompts -> SAM masks -> ``predictions.json`` keyed by the ground truth.

Boxes come from one source: the ground truth itself (``--prompts ground-truth``, SAM judged as a
segmenter with exact boxes), a predictions or COCO file (``--boxes FILE``: matched by image id
when it is keyed by the same ground truth, else by file name relative to the images folder,
never by bare name), or a detector run here (``--detector best.pt``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ...errors import OptionError
from ...formats import coco
from ...geometry.boxes import coco_bbox, edges_of_bbox, edges_of_mask, sam_prompts
from ..common.devices import pick_device
from ..common.inputs import PredictInputs, category_ids, parameters, run_facts
from .data import EmbeddingCache, decode, encoder_identity, load_trained, read_rgb, upsample
from .network import build_sam

Boxes = dict[int, list[tuple[np.ndarray, str, float]]]  # image id -> (edges, class name, score) per box


def boxes_from_ground_truth(inputs: PredictInputs) -> Boxes:
    if inputs.ground_truth is None:
        raise OptionError("ground-truth prompts need --data OUT --split SUBSET")
    gt = coco.load(inputs.ground_truth)
    names = gt.categories
    return {img.id: [(edges_of_bbox([a["bbox"]])[0], names[a["category_id"]], 1.0) for a in gt.annotations(img.id)]
            for img in inputs.images}


def boxes_from_file(path: Path, inputs: PredictInputs) -> Boxes:
    """Boxes of a ``predictions.json`` or COCO file: by image id if it is keyed by the same
    ground truth, else by exact relative file name (an image without a match gets no box)."""
    data = coco.read_json(path)  # a predictions.json is a COCO file with scores
    same_gt = inputs.ground_truth is not None and data.get("info", {}).get("ground_truth") == str(inputs.ground_truth.resolve())
    names = {c["id"]: c["name"] for c in data.get("categories", [])}
    if same_gt:
        to_ours = {img["id"]: img["id"] for img in data["images"]}
    else:
        ours = {i.file_name: i.id for i in inputs.images}
        to_ours = {img["id"]: ours[img["file_name"]] for img in data["images"] if img["file_name"] in ours}
    found: Boxes = {i.id: [] for i in inputs.images}
    for a in data["annotations"]:
        image_id = to_ours.get(a["image_id"])
        if image_id in found:
            found[image_id].append((edges_of_bbox([a["bbox"]])[0], names.get(a["category_id"], "defect"),
                                    float(a.get("score", 1.0))))
    if not any(found.values()) and data["annotations"]:
        raise OptionError("no box of the file belongs to these images (matched by id or relative file name)", path)
    return found


def boxes_from_detector(weights: Path, inputs: PredictInputs, conf: float, max_det: int, device: str,
                        tile: int | None = None, overlap: float = 0.2) -> Boxes:
    from ..yolo_world.predict import detect
    from ..yolo_world.train import load_detector

    model, _ = load_detector(weights)
    categories, annotations = detect(model, inputs, conf, 640, device, max_det, tile=tile, overlap=overlap)
    names = {c["id"]: c["name"] for c in categories}
    found: Boxes = {i.id: [] for i in inputs.images}
    for a in annotations:
        found[a["image_id"]].append((edges_of_bbox([a["bbox"]])[0], names[a["category_id"]], a["score"]))
    return found


@torch.no_grad()
def predict_sam(checkpoint: str, model_type: str, inputs: PredictInputs, boxes: Boxes, out: Path,
                trained: Path | None = None, device: str = "auto", cache_dir: Path | None = None, seed: int = 0) -> Path:
    """SAM masks for every box; ``OUT/predictions.json`` (RLE masks, bbox of each mask), overlays."""
    from segment_anything.utils.transforms import ResizeLongestSide

    torch_device = pick_device(device)
    sam = load_trained(build_sam(model_type, checkpoint, seed).to(torch_device), trained).eval()
    transform = ResizeLongestSide(sam.image_encoder.img_size)
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="mvtec2coco-sam-") as scratch:  # no cache left behind unless asked
        cache = EmbeddingCache(sam, cache_dir or Path(scratch), encoder_identity(model_type, checkpoint, seed))
        facts = run_facts(Path(trained).parent, "summary.json", "train_images", "train_seconds") if trained else {}
        start = time.perf_counter()
        path = _predict(sam, transform, cache, inputs, boxes, out, {
            "family": "sam", "model": f"SAM {model_type}{' fine-tuned' if trained else ''}", "model_type": model_type,
            "checkpoint": str(checkpoint), "trained": str(Path(trained).resolve()) if trained else None,
            "config": Path(trained).parent.name if trained else "as given",
            "parameters": parameters(sam), **facts, **inputs.meta()}, start)
        return path


def _predict(sam, transform, cache, inputs: PredictInputs, boxes: Boxes, out: Path, meta: dict, start: float) -> Path:
    from pycocotools import mask as mask_utils

    torch_device = next(sam.parameters()).device
    names = sorted({name for found in boxes.values() for _, name, _ in found})
    categories, ids = category_ids(inputs, names)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    annotations = []
    for image in inputs.images:
        found = boxes.get(image.id, [])
        overlay = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
        if overlay is None:
            overlay = cv2.cvtColor(read_rgb(image.path), cv2.COLOR_RGB2BGR)
        if found:
            shape = (image.height, image.width)
            edges = np.stack([e for e, _, _ in found])
            emb = cache.get(image.path).to(torch_device).float()
            logits, iou_pred = decode(sam, emb, sam_prompts(edges), None, shape, transform)
            for k, mask in enumerate(upsample(sam, logits, shape, transform)):
                _, label, score = found[k]
                mask_edges = edges_of_mask(mask)
                if mask_edges is None:  # SAM found nothing inside the box: no instance
                    continue
                rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                annotations.append({
                    "image_id": image.id, "category_id": ids[label],
                    "segmentation": {"size": [image.height, image.width], "counts": rle["counts"].decode("ascii")},
                    "area": int(mask.sum()), "bbox": coco_bbox(mask_edges),
                    "score": round(float(score) * float(iou_pred[k, 0]), 6), "iscrowd": 0})
                tinted = overlay.copy()
                tinted[mask] = (0, 0, 255)
                overlay = cv2.addWeighted(tinted, 0.4, overlay, 0.6, 0)
                x0, y0, x1, y1 = (int(round(v)) for v in edges[k])
                cv2.rectangle(overlay, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), (0, 255, 255), 1)
                cv2.putText(overlay, label, (x0, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1,
                            cv2.LINE_AA)
        cv2.imwrite(str(out / "overlays" / f"{image.id:05d}.png"), overlay)
    meta["predict_seconds"] = round(time.perf_counter() - start, 2)
    return write(out, inputs, categories, annotations, meta)


def write(out: Path, inputs: PredictInputs, categories: list[dict], annotations: list[dict], meta: dict) -> Path:
    return coco.write_predictions(out, [i.record() for i in inputs.images], categories, annotations, meta)
