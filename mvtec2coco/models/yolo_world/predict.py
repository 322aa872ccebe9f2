"""``yolo-world predict``: detector boxes for a converted subset or image files, as
``predictions.json`` keyed by the ground truth, with annotated images."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ...formats.coco import write_predictions
from ...formats.yolo import names_list
from ...geometry.boxes import coco_bbox
from ..common.devices import ultralytics_device
from ..common.inputs import PredictInputs, category_ids, parameters
from ..common.sliced import Detections, check_slicing, sliced_detect


def world_text(name: str) -> str:
    """The text a class name becomes for YOLO-World (ultralytics reads '/' as a synonym separator)."""
    return name.replace("/", " ")


def detect(model, inputs: PredictInputs, conf: float, imgsz: int, device: str, max_det: int = 300,
           plots: Path | None = None, tile: int | None = None, overlap: float = 0.2) -> tuple[list[dict], list[dict]]:
    """Boxes of ``model`` on every input image: (categories, COCO result annotations, edges convention).

    With ``tile`` the model also runs on the image's tiles and the boxes are merged back into
    image coordinates (``common.sliced``)."""
    import cv2

    if not 0.0 <= conf <= 1.0:  # also refuses NaN
        from ...errors import OptionError

        raise OptionError(f"confidence threshold {conf} is not a number in [0, 1]")
    check_slicing(tile, overlap)
    by_text = {world_text(c["name"]): c["name"] for c in inputs.categories}
    names = [by_text.get(n, n) for n in names_list(model.names)]
    categories, ids = category_ids(inputs, names)
    annotations = []
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
    def run(source):
        return model.predict(source, conf=conf, imgsz=imgsz, max_det=max_det, verbose=False,
                             device=ultralytics_device(device))[0]

    def boxes_of(source) -> Detections:
        b = run(source).boxes
        return b.xyxy.cpu().numpy(), b.conf.cpu().numpy(), b.cls.cpu().numpy().astype(np.int64)

    for image in inputs.images:
        if tile is None:
            r = run(str(image.path))
            found: Detections = (r.boxes.xyxy.cpu().numpy(), r.boxes.conf.cpu().numpy(), r.boxes.cls.cpu().numpy())
        else:
            pixels = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
            found = sliced_detect(pixels, boxes_of, tile, overlap)
        boxes, scores, classes = found
        for edges, c, s in zip(boxes.tolist(), classes.tolist(), scores.tolist()):
            bbox = coco_bbox(edges)
            annotations.append({"image_id": image.id, "category_id": ids[names[int(c)]], "bbox": bbox,
                                "area": bbox[2] * bbox[3], "score": round(float(s), 6), "iscrowd": 0})
        if plots is not None:
            cv2.imwrite(str(plots / f"{image.id:05d}.png"), r.plot() if tile is None else _drawn(pixels, found, names))
    return categories, annotations


def _drawn(pixels: np.ndarray, found: Detections, names: list[str]) -> np.ndarray:
    """The merged boxes of a sliced run on the image, with class and score."""
    import cv2

    canvas = pixels.copy()
    for (x0, y0, x1, y1), s, c in zip(*(a.tolist() for a in found)):
        cv2.rectangle(canvas, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), (40, 40, 230), 1)
        cv2.putText(canvas, f"{names[int(c)]} {s:.2f}", (int(x0), max(10, int(y0) - 3)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.35, (40, 40, 230), 1, cv2.LINE_AA)
    return canvas


def _model_of(run: Path) -> str:
    from ..common import config as configs
    from .train import DetectorConfig

    return Path(configs.load(DetectorConfig, run / "config.yaml").model).name


def _training_facts(run: Path) -> dict:
    """Training seconds from ultralytics' results.csv (its cumulative ``time`` column), and the
    number of training images from the run's summary."""
    import csv

    facts = {}
    try:
        rows = list(csv.DictReader((run / "results.csv").read_text().splitlines()))
        times = [float(r["time"]) for r in rows if r.get("time")]
        if times:
            facts["train_seconds"] = round(times[-1], 1)
    except (OSError, ValueError, KeyError):
        pass
    from ..common.inputs import run_facts

    return {**run_facts(run, "summary.json", "train_images", "train_seconds"), **facts}


def predict_detector(weights: Path, inputs: PredictInputs, out: Path, conf: float = 0.25, imgsz: int = 640,
                     device: str = "auto", tile: int | None = None, overlap: float = 0.2) -> Path:
    """Run the detector, write ``OUT/predictions.json`` and ``OUT/results.json``, plots in ``OUT/images``."""
    from .train import load_detector

    model, world = load_detector(weights)
    out = Path(out)
    start = time.perf_counter()
    categories, annotations = detect(model, inputs, conf, imgsz, device, plots=out / "images", tile=tile, overlap=overlap)
    run = Path(weights).parent.parent
    meta = {"family": "yolo-world" if world else "yolo", "weights": str(Path(weights).resolve()),
            "model": Path(str(getattr(model, "ckpt_path", None) or weights)).name if not (run / "config.yaml").is_file()
            else _model_of(run), "parameters": parameters(model.model), "config": run.name,
            "predict_seconds": round(time.perf_counter() - start, 2), **_training_facts(run), **inputs.meta(),
            **({"sliced": {"tile": tile, "overlap": overlap}} if tile else {})}
    return write_predictions(out, [i.record() for i in inputs.images], categories, annotations, meta)
