"""YOLO text labels (boxes or polygons, normalised) and the ``data.yaml`` ultralytics reads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml


def _fmt(v: float) -> str:
    return f"{v:.6f}"


def box_line(class_id: int, bbox: tuple[int, int, int, int], width: int, height: int) -> str:
    """``cls cx cy w h``: the pixel box normalised to the image, centre form."""
    x, y, w, h = bbox
    return " ".join([str(class_id), _fmt((x + w / 2) / width), _fmt((y + h / 2) / height),
                     _fmt(w / width), _fmt(h / height)])


def polygon_line(class_id: int, polygon: np.ndarray, width: int, height: int) -> str:
    """``cls x1 y1 x2 y2 ...``: the polygon's vertices normalised to the image."""
    norm = np.clip(polygon / np.array([width, height], dtype=np.float64), 0.0, 1.0).reshape(-1)
    return f"{class_id} " + " ".join(["%.6f"] * norm.size) % tuple(norm.tolist())


def write_labels(path: Path | str, lines: list[str]) -> None:
    """One label file; an empty file marks a background (good) image."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if lines:
            os.write(fd, "".join(line + "\n" for line in lines).encode())
    finally:
        os.close(fd)


def write_data_yaml(root: Path, final_root: Path, names: list[str], subsets: dict[str, str]) -> Path:
    """``data.yaml`` with the absolute final ``path``, subset folders and class names."""
    data = {"path": str(final_root), **subsets, "names": dict(enumerate(names))}
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path
