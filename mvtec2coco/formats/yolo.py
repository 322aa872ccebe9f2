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


def polygon_lines(class_id: int, polygons: list[np.ndarray], width: int, height: int) -> list[str]:
    """``cls x1 y1 x2 y2 ...`` per polygon: the vertices normalised to the image, 6 decimals."""
    return [f"{class_id} {text}" for text in polygon_texts(polygons, [(width, height)] * len(polygons))]


def polygon_texts(polygons: list[np.ndarray], sizes: list[tuple[int, int]]) -> list[str]:
    """``x1 y1 x2 y2 ...`` per polygon, normalised by its image's (width, height); all at once."""
    if not polygons:
        return []
    counts = np.fromiter((len(p) for p in polygons), np.int64, len(polygons))
    scale = np.repeat(np.asarray(sizes, dtype=np.float64), counts, axis=0)
    text = unit_decimals(np.concatenate(polygons) / scale)
    ends = (np.cumsum(counts) * 2 * _UNIT_WIDTH).tolist()
    return [text[start : end - 1] for start, end in zip([0, *ends[:-1]], ends)]


_UNIT_WIDTH = 9  # "d.dddddd" and a space
_THREE_DIGITS = np.array([list(f"{i:03d}".encode()) for i in range(1000)], dtype=np.uint8)


def unit_decimals(values: np.ndarray) -> str:
    """Every value clipped to [0, 1] and written with 6 decimals, each followed by a space.

    A value in [0, 1] with 6 decimals is always 8 characters, so the text is built as one byte
    array from digit tables: the polygons of an image cost a few array operations instead of one
    Python float formatting per coordinate. Rounding is to nearest on the scaled value, ties to
    even (``%.6f`` would decide a tie by the binary value's further digits): either is within
    5e-7 of the value.
    """
    scaled = np.rint(np.clip(values.reshape(-1), 0.0, 1.0) * 1e6).astype(np.int32)
    chars = np.empty((scaled.size, _UNIT_WIDTH), np.uint8)
    chars[:, 0] = 48 + scaled // 1_000_000  # "0" or "1"
    chars[:, 1] = 46  # "."
    fraction = scaled % 1_000_000
    chars[:, 2:5] = _THREE_DIGITS[fraction // 1000]
    chars[:, 5:8] = _THREE_DIGITS[fraction % 1000]
    chars[:, 8] = 32  # " "
    return chars.tobytes().decode("ascii")


def write_labels(path: Path | str, lines: list[str]) -> None:
    """One label file; an empty file marks a background (good) image."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if lines:
            os.write(fd, "".join(line + "\n" for line in lines).encode())
    finally:
        os.close(fd)


def write_data_yaml(root: Path, names: list[str], subsets: dict[str, str]) -> Path:
    """``data.yaml`` with subset folders and class names, and no ``path``: ultralytics then
    resolves the folders from the YAML's own folder, so the output can be moved or copied."""
    data = {**subsets, "names": dict(enumerate(names))}
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


# ---------------------------------------------------------------------------------------------
# reading


def read_data_yaml(path: Path | str) -> dict:
    """A YOLO ``data.yaml`` (class names and subset folders), not a COCO file or anything else."""
    from ..errors import OptionError
    from .yaml_file import read_yaml_mapping

    path = Path(path)
    if not path.is_file():
        raise OptionError("data.yaml does not exist", path, "pass OUT/data.yaml of `mvtec2coco convert`")
    if path.suffix.lower() == ".json":
        raise OptionError("this is a JSON file where a YOLO data.yaml is expected", path,
                          "pass OUT/data.yaml of `mvtec2coco convert --format yolo`")
    data = read_yaml_mapping(path, "data.yaml")
    if "names" not in data or "images" in data and "annotations" in data:
        raise OptionError("not a YOLO data.yaml (no 'names')", path, "pass OUT/data.yaml of `mvtec2coco convert`")
    return data


def class_names(data: dict) -> list[str]:
    """``names`` of a data.yaml as a list in class-id order."""
    return names_list(data["names"])


def names_list(names: dict | list) -> list[str]:
    """Class names in class-id order from a list or an id mapping (data.yaml, an ultralytics model)."""
    return [str(names[i]) for i in sorted(names)] if isinstance(names, dict) else [str(n) for n in names]


def read_labels(path: Path | str) -> list[tuple[int, np.ndarray]]:
    """The rows of a label file as (class id, normalised coordinates): 4 for a box (centre x, y,
    width, height), 2 per vertex for a polygon; a missing file has no rows (a background image)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        if line.strip():
            values = [float(v) for v in line.split()]
            rows.append((int(values[0]), np.asarray(values[1:], np.float64)))
    return rows


def find_data_yaml(out: Path | str) -> Path:
    """``data.yaml`` of a conversion: the folder itself, or ``OUT/yolo`` / ``OUT/yolo-seg`` for ``--format all``."""
    from ..errors import OptionError

    out = Path(out)
    if out.is_file():
        return out
    for root in (out, out / "yolo", out / "yolo-seg"):
        if (root / "data.yaml").is_file():
            return root / "data.yaml"
    raise OptionError("no data.yaml here", out, "pass the folder of `convert --format yolo` (or all), or its data.yaml")
