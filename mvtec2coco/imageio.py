"""File-level image access: cheap header reads for every image, full decodes for masks only.

Headers are parsed by hand for PNG (the common case, 33 bytes) and by Pillow's lazy open for
anything else; neither decodes pixels. Truncation is caught from the file's last bytes (PNG's
IEND chunk, JPEG's EOI marker) so that a half-copied dataset fails before conversion starts.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import BrokenFileError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"IEND\xaeB`\x82"
PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type -> channels after decoding
PNG_PALETTE = 3
JPEG_EOI = b"\xff\xd9"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
PIL_CHANNELS = {"1": 1, "L": 1, "P": 3, "I": 1, "I;16": 1, "I;16B": 1, "F": 1, "LA": 2, "RGB": 3,
                "RGBA": 4, "CMYK": 4, "YCbCr": 3}


@dataclass(frozen=True)
class ImageHeader:
    """Width, height and channel count as a decoder will deliver them."""

    width: int
    height: int
    channels: int


def is_image_file(path: Path) -> bool:
    return is_image_name(path.name)


def is_image_name(name: str) -> bool:
    """An image file name (by suffix), hidden files excluded; a string test, no Path needed."""
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in IMAGE_SUFFIXES


def read_header(path: Path) -> ImageHeader:
    """Return the size of an image from its header, raising ``BrokenFileError`` if unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY)  # raw reads: a buffered file object cost more than the I/O
        try:
            head = os.pread(fd, 33, 0)
            if head.startswith(PNG_SIGNATURE):
                size = os.fstat(fd).st_size
                return _png_header(path, head, os.pread(fd, 12, max(0, size - 12)))
        finally:
            os.close(fd)
    except OSError as exc:
        raise BrokenFileError(f"cannot read file: {exc.strerror}", path) from exc
    return _pil_header(path)


def _png_header(path: Path, head: bytes, tail: bytes) -> ImageHeader:
    if len(head) < 33 or head[12:16] != b"IHDR":
        raise BrokenFileError("PNG header is cut short", path, "copy the file again")
    width, height, _depth, colour = struct.unpack(">IIBB", head[16:26])
    if tail[4:] != PNG_IEND:
        raise BrokenFileError("PNG file is truncated (no IEND chunk)", path, "copy the file again")
    if colour not in PNG_CHANNELS or width == 0 or height == 0:
        raise BrokenFileError(f"PNG header is invalid (colour type {colour})", path)
    return ImageHeader(width, height, PNG_CHANNELS[colour])


def _pil_header(path: Path) -> ImageHeader:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            width, height = im.size
            channels = PIL_CHANNELS.get(im.mode, len(im.getbands()))
            fmt = im.format
    except (UnidentifiedImageError, OSError, SyntaxError, ImportError) as exc:
        # ImportError: once imported, ultralytics patches Image.open to retry unknown files with pi_heif
        raise BrokenFileError(f"not a readable image ({type(exc).__name__})", path) from exc
    if fmt == "JPEG":
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 64))
            if JPEG_EOI not in fh.read():
                raise BrokenFileError("JPEG file is truncated (no end marker)", path, "copy the file again")
    return ImageHeader(width, height, channels)


def read_mask_raw(path: Path) -> np.ndarray:
    """Decode a mask file to its stored values (H x W or H x W x C), palette indices kept."""
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:  # e.g. a path OpenCV cannot open: decode from bytes instead
        try:
            array = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        except OSError as exc:
            raise BrokenFileError(f"cannot read mask: {exc.strerror}", path) from exc
    if array is None:
        raise BrokenFileError("mask cannot be decoded", path, "re-export it as PNG")
    if array.ndim == 3 and _is_palette_png(path):  # OpenCV expanded the palette to colours
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im)
    return array


def _is_palette_png(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(26)
    return head.startswith(PNG_SIGNATURE) and len(head) == 26 and head[25] == PNG_PALETTE


def binary_mask(raw: np.ndarray) -> np.ndarray:
    """Any value > 0 in any colour channel is defect; alpha is ignored. Returns uint8 0/1."""
    if raw.ndim == 2 and raw.dtype == np.uint8:
        return cv2.threshold(raw, 0, 1, cv2.THRESH_BINARY)[1]  # several times faster than numpy here
    if raw.ndim == 3:
        colour = raw[..., :3] if raw.shape[2] >= 3 else raw[..., :1]
        return (colour.max(axis=2) > 0).astype(np.uint8)
    return (raw > 0).astype(np.uint8)


def load_mask(paths: tuple[Path, ...] | list[Path], height: int, width: int, zero_one: bool = True) -> np.ndarray:
    """Merge the sample's mask files into one uint8 array of the image's size.

    With ``zero_one`` the values are 0/1. Without it, any non-zero value is defect and a single
    8-bit grey mask comes back as stored: ``masks.instances`` needs no more, and a full-frame
    threshold per mask costs a large share of a whole conversion.
    """
    from .errors import SizeMismatchError

    merged: np.ndarray | None = None
    for path in paths:
        raw = read_mask_raw(path)
        mask = raw if (not zero_one and raw.ndim == 2 and raw.dtype == np.uint8) else binary_mask(raw)
        if mask.shape != (height, width):
            raise SizeMismatchError(
                f"mask is {mask.shape[1]}x{mask.shape[0]} but its image is {width}x{height}", path
            )
        merged = mask if merged is None else cv2.max(merged, mask)
    return merged if merged is not None else np.zeros((height, width), dtype=np.uint8)


@contextmanager
def opencv_single_threaded() -> Iterator[None]:
    """OpenCV without its own threads while worker processes already use every core.

    Measured on the full synthetic MVTec AD, OpenCV's threads only competed with the other worker
    (2-4% slower, alternating). Set before forking the workers, which inherit it: changing it
    inside a forked child can hang on the parent's thread pool.
    """
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)
