"""File-level image access: cheap header reads for every image, full decodes for masks only.

Headers are parsed by hand for PNG (the common case, 33 bytes) and by Pillow's lazy open for
anything else; neither decodes pixels. Truncation is caught from the file's last bytes (PNG's
IEND chunk, JPEG's EOI marker) so that a half-copied dataset fails before conversion starts.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import BrokenFileError

try:
    from isal.isal_zlib import decompressobj as _inflater  # zlib's inflate at about three times its speed
    from isal.isal_zlib import error as _InflateError
except ImportError:
    from zlib import decompressobj as _inflater
    from zlib import error as _InflateError
try:
    from pyspng import load as _spng_load
except ImportError:  # a platform without a pyspng wheel: OpenCV decodes every mask
    _spng_load = None

# errors only: a broken file is reported once, as our own error, not as OpenCV's warning too
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"IEND\xaeB`\x82"
PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type -> channels after decoding
PNG_PALETTE = 3
PNG_GREY = 0
PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel as stored (a palette index is one)
_CHUNK_HEAD = struct.Struct(">I4s").unpack_from
ZLIB_32K_WINDOW = b"\x78"  # a zlib stream's first byte for deflate's largest window (libpng declares less for small images)
FAST_MASK_BYTES = 16 << 20  # larger mask files go to OpenCV unchecked: the checks and libspng hold the file whole
OPENCV_MAX_SIDE = 1 << 20  # OpenCV's default limits on an image it decodes (imgcodecs): it refuses larger ones
OPENCV_MAX_PIXELS = 1 << 30
OPENCV_LIMIT_VARIABLES = ("OPENCV_IO_MAX_IMAGE_WIDTH", "OPENCV_IO_MAX_IMAGE_HEIGHT", "OPENCV_IO_MAX_IMAGE_PIXELS")
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


def read_header(path: Path | str) -> ImageHeader:
    """Return the size of an image from its header, raising ``BrokenFileError`` if unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY)  # raw reads: a buffered file object cost more than the I/O
        try:
            head = os.pread(fd, 33, 0)
            if not head:
                raise BrokenFileError("image file is empty (0 bytes)", path, "copy the file again")
            if head.startswith(PNG_SIGNATURE):
                size = os.fstat(fd).st_size
                return png_header(path, head, os.pread(fd, 12, max(0, size - 12)))
        finally:
            os.close(fd)
    except OSError as exc:
        raise BrokenFileError(f"cannot read file: {exc.strerror}", path) from exc
    return _pil_header(path)


def png_header(path: Path | str, head: bytes, tail: bytes) -> ImageHeader:
    """``read_header`` of a PNG from its first 33 bytes and its last 12 (the whole file if shorter)."""
    if len(head) < 33 or head[12:16] != b"IHDR":
        raise BrokenFileError("PNG header is cut short", path, "copy the file again")
    width, height, _depth, colour = struct.unpack(">IIBB", head[16:26])
    if tail[4:] != PNG_IEND:
        raise BrokenFileError("PNG file is truncated (no IEND chunk)", path, "copy the file again")
    if colour not in PNG_CHANNELS or width == 0 or height == 0:
        raise BrokenFileError(f"PNG header is invalid (colour type {colour})", path)
    return ImageHeader(width, height, PNG_CHANNELS[colour])


def _pil_header(path: Path | str) -> ImageHeader:
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
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 64))
            if JPEG_EOI not in fh.read():
                raise BrokenFileError("JPEG file is truncated (no end marker)", path, "copy the file again")
    return ImageHeader(width, height, channels)


JPEG_SOI = b"\xff\xd8\xff"
JPEG_THRESHOLD = 127  # a JPEG mask is defect where brighter than this: compression noise stays below
MASK_NOTES = {
    "jpeg_mask": "mask is a JPEG (lossy): read as defect where brighter than 127, so that compression noise "
                 "adds no regions",
    "palette_mask": "palette mask whose colours differ from its indices: read by the colours it shows",
    "alpha_mask": "mask drawn in the alpha channel (its colour is uniform): read from the alpha channel",
    "transparent_mask": "mask with transparent pixels: read as defect where visible and not black",
}


def read_mask_raw(path: Path | str) -> np.ndarray:
    """Decode a mask file to its stored values (H x W or H x W x C), palette indices kept."""
    return _decode(path, _head(path))


def _head(path: Path | str) -> bytes:
    """The first 26 bytes (enough for PNG's colour type and JPEG's marker); an empty or
    unreadable file is a ``BrokenFileError``."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            head = os.pread(fd, 26, 0)
        finally:
            os.close(fd)
    except OSError as exc:
        raise BrokenFileError(f"cannot read mask: {exc.strerror}", path) from exc
    if not head:
        raise BrokenFileError("mask file is empty (0 bytes)", path, "export the mask again")
    return head


_QUIET = [0]  # how many ``quiet_stderr`` blocks this process is inside


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """libpng prints its own complaints about a broken file on stderr; ours is the one that counts.

    Each decode hides them; a caller decoding a batch (a worker's chunk) holds this around the
    batch, so that stderr is swapped once for it, not six system calls per mask.
    """
    if _QUIET[0]:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    _QUIET[0] += 1
    try:
        os.dup2(null, 2)
        yield
    finally:
        _QUIET[0] -= 1
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _decode(path: Path | str, head: bytes) -> np.ndarray:
    if len(head) == 26 and head.startswith(PNG_SIGNATURE) and head[12:16] == b"IHDR":
        array = _decode_checked_png(path, head)
        if array is not None:
            return array
    with quiet_stderr():
        array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:  # e.g. a path OpenCV cannot open: decode from bytes instead
        try:
            with quiet_stderr():
                array = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        except (OSError, cv2.error) as exc:
            raise BrokenFileError(f"cannot read mask: {getattr(exc, 'strerror', None) or exc}", path) from exc
    if array is None or array.size == 0:
        if head.startswith(PNG_SIGNATURE):
            with open(path, "rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - 8))
                if fh.read() != PNG_IEND:
                    raise BrokenFileError("PNG file is truncated (no IEND chunk)", path, "copy the file again")
        raise BrokenFileError("mask cannot be decoded", path, "re-export it as PNG")
    if array.ndim == 3 and _is_palette(head):  # OpenCV expanded the palette to colours
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im)
    return array


def _decode_checked_png(path: Path | str, head: bytes) -> np.ndarray | None:
    """A PNG mask's pixels when libspng may decode it (below), else None for OpenCV to decode, whose
    verdict on a broken file counts; a ``BrokenFileError`` for a file whose chunks are intact but
    whose compressed stream fails to inflate or fails its Adler-32 (damaged before its CRCs were
    computed): OpenCV refuses some of those and decodes others to other pixels, with a warning only.

    The file is read whole (up to ``FAST_MASK_BYTES``; a larger one is left to OpenCV unchecked),
    must pass ``verify``'s chunk walk (``image_integrity.walk_png``: every length and CRC-32, IHDR
    first, IEND last; a file that fails it is OpenCV's to judge) and its stream is inflated by
    ISA-L in pieces that are dropped (``_inflated_length``: a small file cannot inflate to
    gigabytes here). libspng (``pyspng``, which decoded 8-bit grey masks in two thirds of OpenCV's
    time, checks included) then decodes an 8-bit grey, non-interlaced PNG whose stream holds
    exactly its rows and declares the 32 KB window (libpng refuses references beyond a smaller
    one, ISA-L and zlib follow them), within OpenCV's size limits (it refuses larger images,
    libspng would not) and with those limits unchanged; pyspng as it sets libspng up checks
    neither the chunk CRCs nor the stream's checksum, hence the checks first."""
    width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
    if colour not in PNG_SAMPLES or not width or not height:
        return None
    data = _read_small(path)
    if data is None or len(data) < 29 or data[28] > 1:  # IHDR's interlace method: none or Adam7
        return None
    from ..image_integrity import walk_png  # imports this module: not at the top

    with memoryview(data) as view:
        if walk_png(view)[0] is not None:
            return None
    stream = _idat_stream(data)
    stored = stored_size(width, height, PNG_SAMPLES[colour] * depth, bool(data[28]))
    try:
        inflated = _inflated_length(stream, stored)
    except MemoryError:
        return None
    except (_InflateError, zlib.error) as exc:  # chunks intact, stream not: it was damaged before its CRCs were made
        raise BrokenFileError("PNG image data is corrupt (its compressed stream fails to inflate or fails its "
                              f"checksum: {exc})", path, "export the mask again") from exc
    if _spng_load is None or (depth, colour, data[28]) != (8, PNG_GREY, 0) or inflated != stored or \
            stream[:1] != ZLIB_32K_WINDOW or width > OPENCV_MAX_SIDE or height > OPENCV_MAX_SIDE or \
            width * height > OPENCV_MAX_PIXELS or any(name in os.environ for name in OPENCV_LIMIT_VARIABLES):
        return None
    try:
        array = _spng_load(data)
    except (RuntimeError, ValueError, MemoryError):
        return None
    return array if array.shape == (height, width) and array.dtype == np.uint8 else None


def _read_small(path: Path | str) -> bytes | None:
    """The whole file, or None for one over ``FAST_MASK_BYTES`` or one that cannot be read (the
    caller's decoder says what is wrong with it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            length = os.fstat(fd).st_size
            return os.read(fd, length + 1) if length <= FAST_MASK_BYTES else None  # a file that grew fails the walk
        finally:
            os.close(fd)
    except OSError:
        return None


_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))  # x0, y0, dx, dy


def stored_size(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> int:
    """Bytes of a PNG's image data before compression: each row's filter byte and its samples,
    packed; an Adam7 image's rows pass by pass (a pass without pixels has no rows)."""
    if not interlaced:
        return height * (1 + (width * bits_per_pixel + 7) // 8)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        columns, rows = max(0, -(-(width - x0) // dx)), max(0, -(-(height - y0) // dy))
        if columns and rows:
            total += rows * (1 + (columns * bits_per_pixel + 7) // 8)
    return total


def _inflated_length(stream: bytes, rows: int) -> int | None:
    """How many bytes ``stream`` inflates to, its Adler-32 checked (a damaged stream raises), in
    pieces of ``_PIECE`` that are dropped as they come; None for a stream cut short, one that
    goes on past twice ``rows`` (and at least 1 MB more), and one too short to hold ``rows`` at
    deflate's largest expansion: left to OpenCV."""
    if rows > _DEFLATE_MAX_EXPANSION * len(stream) + _PIECE:
        return None
    inflater = _inflater()
    total, tail, limit = 0, stream, rows + max(rows, 1 << 20)
    while not inflater.eof and total <= limit:
        piece = len(inflater.decompress(tail, _PIECE))
        if not piece and len(inflater.unconsumed_tail) == len(tail):
            break  # no progress: nothing more to come
        total, tail = total + piece, inflater.unconsumed_tail
    return total if inflater.eof else None


_PIECE = 1 << 20  # bytes inflated at a time
_DEFLATE_MAX_EXPANSION = 1032  # bytes out per byte in, at most (258-byte matches in 2 bits)


def _idat_stream(data: bytes) -> bytes:
    """The zlib stream of a PNG whose chunk structure ``walk_png`` found intact: its IDATs joined."""
    parts, at = [], len(PNG_SIGNATURE)
    while at < len(data):
        length, kind = _CHUNK_HEAD(data, at)
        if kind == b"IDAT":
            parts.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    return b"".join(parts)


def _is_palette(head: bytes) -> bool:
    return head.startswith(PNG_SIGNATURE) and len(head) == 26 and head[25] == PNG_PALETTE


def read_mask(path: Path | str) -> tuple[np.ndarray, str | None]:
    """Decode a mask as it shows, where any value > 0 is defect, with a note (a key of
    ``MASK_NOTES``) when that differs from its raw values.

    A palette PNG is read through its palette (an inverted palette would otherwise turn the
    background into the defect), a mask with a non-opaque alpha channel by what is visible (or
    by the alpha itself when its colour is uniform), and a JPEG above half intensity.
    """
    return interpret_mask(path, *read_mask_bytes(path))


def read_mask_bytes(path: Path | str) -> tuple[bytes, np.ndarray]:
    """(first bytes, stored values): what ``interpret_mask`` needs, decoded once."""
    head = _head(path)
    return head, _decode(path, head)


def interpret_mask(path: Path | str, head: bytes, raw: np.ndarray) -> tuple[np.ndarray, str | None]:
    """``read_mask`` on an already decoded mask (``read_mask_bytes``)."""
    if raw.ndim == 2 and raw.dtype == np.uint8 and not head.startswith(JPEG_SOI) and not _is_palette(head):
        return raw, None  # the common case: an 8-bit grey PNG, as stored
    if _is_palette(head):
        return _palette_mask(path, raw)
    note = None
    array = raw
    if raw.ndim == 3 and raw.shape[2] in (2, 4):
        colour, alpha = raw[..., :-1], raw[..., -1]
        if alpha.min() < alpha.max() or alpha.max() == 0:
            if colour.min() == colour.max():
                array, note = alpha, "alpha_mask"
            else:
                array = np.where(alpha > 0, colour.max(axis=2), 0).astype(raw.dtype)
                note = "transparent_mask"
        else:
            array = colour
    if head.startswith(JPEG_SOI):
        grey = array.max(axis=2) if array.ndim == 3 else array
        return (grey > JPEG_THRESHOLD).astype(np.uint8), "jpeg_mask"
    return array, note


def _palette_mask(path: Path | str, indices: np.ndarray) -> tuple[np.ndarray, str | None]:
    from PIL import Image

    with Image.open(path) as im:
        palette = np.asarray(im.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        transparency = im.info.get("transparency")
    shown = np.zeros(256, np.uint8)
    shown[: len(palette)] = palette.max(axis=1) if len(palette) else 0
    if isinstance(transparency, bytes):  # per-index alpha: a transparent colour shows nothing
        alpha = np.frombuffer(transparency, np.uint8)
        shown[: len(alpha)] = np.where(alpha > 0, shown[: len(alpha)], 0)
    elif isinstance(transparency, int):
        shown[transparency] = 0
    mask = shown[indices]
    same = np.array_equal(mask > 0, indices > 0)
    return mask, None if same else "palette_mask"


def binary_mask(raw: np.ndarray) -> np.ndarray:
    """Any value > 0 in any colour channel is defect; alpha is ignored. Returns uint8 0/1."""
    if raw.ndim == 2 and raw.dtype == np.uint8:
        return cv2.threshold(raw, 0, 1, cv2.THRESH_BINARY)[1]  # several times faster than numpy here
    if raw.ndim == 3:
        colour = raw[..., :3] if raw.shape[2] >= 3 else raw[..., :1]
        return (colour.max(axis=2) > 0).astype(np.uint8)
    return (raw > 0).astype(np.uint8)


def load_mask(paths: tuple[Path | str, ...] | list[Path | str], height: int, width: int, zero_one: bool = True,
              notes: list[tuple[str, str]] | None = None) -> np.ndarray:
    """Merge the sample's mask files, each read as it shows (``read_mask``), into one uint8 array
    of the image's size.

    With ``zero_one`` the values are 0/1. Without it, any non-zero value is defect and a single
    8-bit grey mask comes back as stored: ``masks.instances`` needs no more, and a full-frame
    threshold per mask costs a large share of a whole conversion. ``notes`` collects
    ``(note, path)`` for masks read other than by their raw values.
    """
    from ..errors import SizeMismatchError

    merged: np.ndarray | None = None
    for path in paths:
        shown, note = read_mask(path)  # a string is read as fast: no Path per mask
        if note is not None and notes is not None:
            notes.append((note, str(path)))
        mask = shown if (not zero_one and shown.ndim == 2 and shown.dtype == np.uint8) else binary_mask(shown)
        if mask.shape != (height, width):
            raise SizeMismatchError(
                f"mask is {mask.shape[1]}x{mask.shape[0]} but its image is {width}x{height}", path,
                "resize the mask with nearest-neighbour interpolation or fix the pairing"
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
