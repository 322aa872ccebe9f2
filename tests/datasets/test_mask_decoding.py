"""Mask decoding: 8-bit grey PNGs through libspng give OpenCV's pixels, and a damaged file gets
OpenCV's verdict, never a different one."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from mvtec2coco.datasets import imageio
from mvtec2coco.datasets.imageio import read_mask
from mvtec2coco.errors import BrokenFileError

from ..helpers import stream_damage_opencv_decodes

pytest.importorskip("pyspng")


def _mask(height: int = 211, width: int = 317, values: tuple[int, ...] = (0, 255), seed: int = 0) -> np.ndarray:
    """Blobs of ``values`` on a background, as defect masks look (long zero runs, ragged edges)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    for _ in range(12):
        y, x = rng.integers(0, height), rng.integers(0, width)
        cv2.circle(mask, (int(x), int(y)), int(rng.integers(1, 30)), int(rng.choice(values[1:])), -1)
    mask[rng.random((height, width)) < 0.002] = values[-1]  # specks
    return mask


def _encoders() -> dict[str, callable]:
    def opencv(level: int):
        return lambda a: cv2.imencode(".png", a, [cv2.IMWRITE_PNG_COMPRESSION, level])[1].tobytes()

    def pil(**options):
        def encode(a):
            buffer = io.BytesIO()
            Image.fromarray(a).save(buffer, format="PNG", **options)
            return buffer.getvalue()
        return encode

    return {"opencv-0": opencv(0), "opencv-3": opencv(3), "opencv-9": opencv(9), "pil": pil(),
            "pil-optimize": pil(optimize=True), "pil-level-1": pil(compress_level=1)}


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        out.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return out


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A PNG of these chunks, every CRC right."""
    parts = [imageio.PNG_SIGNATURE]
    for kind, body in chunks:
        parts.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
    return b"".join(parts)


def _outcome(path: Path) -> tuple:
    """The verdict on a mask: broken, or the pixels it decodes to."""
    try:
        array, note = read_mask(path)
    except BrokenFileError:
        return ("broken",)
    return "decoded", array.shape, array.dtype.str, array.tobytes(), note


def _fast(path: Path) -> np.ndarray | None:
    """The libspng path's answer for ``path``: its pixels, or None where OpenCV is left to decode."""
    return imageio._decode_checked_png(path, imageio._head(path))


def _opencv_outcome(path: Path, monkeypatch) -> tuple:
    with monkeypatch.context() as m:
        m.setattr(imageio, "_spng_load", None)
        return _outcome(path)


@pytest.mark.parametrize("encoder", sorted(_encoders()))
@pytest.mark.parametrize("values", [(0, 255), (0, 1, 2, 7, 200)], ids=["binary", "values"])
def test_grey_masks_decode_through_libspng_to_opencvs_pixels(tmp_path, monkeypatch, encoder, values):
    mask = _mask(values=values)
    path = tmp_path / "mask.png"
    path.write_bytes(_encoders()[encoder](mask))
    expected = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(expected, mask)
    fast = _fast(path)
    assert fast is not None and fast.dtype == np.uint8 and np.array_equal(fast, expected)

    def no_opencv(*_args, **_kwargs):
        raise AssertionError("OpenCV decoded an intact 8-bit grey PNG")

    monkeypatch.setattr(imageio.cv2, "imread", no_opencv)
    monkeypatch.setattr(imageio.cv2, "imdecode", no_opencv)
    shown, note = read_mask(path)
    assert note is None and np.array_equal(shown, expected)


def _damaged() -> dict[str, bytes]:
    """8-bit grey PNGs broken in the ways a copy or a disk breaks them, and some that are odd but
    readable; the chunk lists are rebuilt with right CRCs where the damage is inside them."""
    good = _encoders()["opencv-3"](_mask())
    chunks = _chunks(good)
    idat = [k for k, (kind, _) in enumerate(chunks) if kind == b"IDAT"][0]
    body = chunks[idat][1]
    flipped = bytearray(good)
    flipped[good.index(b"IDAT") + 4 + len(body) // 2] ^= 0x10
    stream = bytearray(body)
    stream[len(stream) // 2] ^= 0xFF
    short = zlib.compress(zlib.decompress(body)[: len(zlib.decompress(body)) // 2])
    extra = zlib.compress(zlib.decompress(body) + bytes(400))
    text = [chunks[0], (b"tEXt", b"Comment\x00mask"), *chunks[1:]]
    wide = 1 << 20 | 1  # one pixel wider than OpenCV decodes by default
    row = np.random.default_rng(3).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    repeated = zlib.compress((b"\x00" + row) * 20, 9)  # each row refers back 1,001 bytes
    flag = repeated[1] & 0xC0  # its level bits; no preset dictionary
    flag |= 31 - (0x18 * 256 + flag) % 31
    small_window = bytes([0x18, flag]) + repeated[2:]  # declares a 512-byte window
    return {
        "wider-than-opencv-reads": _png([(b"IHDR", struct.pack(">IIBBBBB", wide, 1, 8, 0, 0, 0, 0)),
                                         (b"IDAT", zlib.compress(bytes(wide + 1))), (b"IEND", b"")]),
        "small-window-far-references": _png([(b"IHDR", struct.pack(">IIBBBBB", 1000, 20, 8, 0, 0, 0, 0)),
                                             (b"IDAT", small_window), (b"IEND", b"")]),
        "inflates-far-beyond-its-rows": _png([(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)),
                                              (b"IDAT", zlib.compress(bytes(20 << 20))), (b"IEND", b"")]),
        "idat-crc-wrong": bytes(flipped),
        "zlib-stream-damaged-crc-right": _png([*chunks[:idat], (b"IDAT", bytes(stream)), *chunks[idat + 1 :]]),
        "half-the-rows": _png([*chunks[:idat], (b"IDAT", short), *chunks[idat + 1 :]]),
        "more-data-than-rows": _png([*chunks[:idat], (b"IDAT", extra), *chunks[idat + 1 :]]),
        "truncated": good[: len(good) - 30],
        "no-iend": good[: len(good) - 12],
        "bytes-after-iend": good + b"\x00" * 7,
        "text-chunk": _png(text),
        "zero-width-header": _png([(b"IHDR", struct.pack(">IIBBBBB", 0, 211, 8, 0, 0, 0, 0)), *chunks[1:]]),
        "wrong-height-header": _png([(b"IHDR", struct.pack(">IIBBBBB", 317, 212, 8, 0, 0, 0, 0)), *chunks[1:]]),
    }


@pytest.mark.parametrize("case", sorted(set(_damaged()) - {"zlib-stream-damaged-crc-right"}))
def test_a_damaged_grey_png_gets_opencvs_verdict(tmp_path, monkeypatch, case):
    """libspng skips chunk CRCs and may accept what libpng refuses: whatever it does, the verdict
    (the pixels, or the error) is the one OpenCV alone gives."""
    path = tmp_path / "mask.png"
    path.write_bytes(_damaged()[case])
    assert _outcome(path) == _opencv_outcome(path, monkeypatch)


@pytest.mark.parametrize("case", ["idat-crc-wrong", "half-the-rows", "truncated",
                                  "no-iend", "bytes-after-iend", "zero-width-header", "wrong-height-header",
                                  "wider-than-opencv-reads", "small-window-far-references",
                                  "inflates-far-beyond-its-rows", "more-data-than-rows"])
@pytest.mark.parametrize("inflate", ["isal", "zlib"])
def test_the_fast_path_declines_a_damaged_png(tmp_path, monkeypatch, case, inflate):
    if inflate == "zlib":  # a platform without an isal wheel
        monkeypatch.setattr(imageio, "_inflater", zlib.decompressobj)
        monkeypatch.setattr(imageio, "_InflateError", zlib.error)
    path = tmp_path / "mask.png"
    data = _damaged()[case]
    path.write_bytes(data)
    assert _fast(path) is None


@pytest.mark.parametrize("inflate", ["isal", "zlib"])
def test_a_stream_damaged_under_intact_chunks_is_broken_not_other_pixels(tmp_path, monkeypatch, inflate):
    """OpenCV decodes some damaged streams under right chunk CRCs to other pixels, warning only on
    stderr (which the readers silence): the stream's own checksum finds them, and the mask is
    reported broken instead of converted wrongly."""
    if inflate == "zlib":
        monkeypatch.setattr(imageio, "_inflater", zlib.decompressobj)
        monkeypatch.setattr(imageio, "_InflateError", zlib.error)
    path = tmp_path / "mask.png"
    for data in (stream_damage_opencv_decodes(_encoders()["opencv-3"](_mask(80, 80, seed=4))),  # an 8 KB window
                 stream_damage_opencv_decodes(_encoders()["opencv-3"](_mask())),  # 32 KB
                 _damaged()["zlib-stream-damaged-crc-right"]):
        path.write_bytes(data)
        with pytest.raises(BrokenFileError, match="compressed stream"):
            read_mask(path)


def test_a_damaged_mask_is_still_reported_broken(tmp_path):
    path = tmp_path / "mask.png"
    path.write_bytes(_damaged()["idat-crc-wrong"])
    with pytest.raises(BrokenFileError, match="cannot be decoded"):
        read_mask(path)


def test_other_pngs_are_left_to_opencv(tmp_path, monkeypatch):
    """Palette, colour and 16-bit masks keep OpenCV's (and Pillow's) reading: libspng never sees them."""
    mask = _mask()
    calls = []
    original = imageio._spng_load
    monkeypatch.setattr(imageio, "_spng_load", lambda *a: calls.append(a) or original(*a))
    for name, data in _other_pngs(mask).items():
        path = tmp_path / f"{name}.png"
        path.write_bytes(data)
        shown, _ = read_mask(path)
        assert np.array_equal(imageio.binary_mask(shown), (mask > 0).astype(np.uint8)), name
    assert calls == []


def _other_pngs(mask: np.ndarray) -> dict[str, bytes]:
    return {"rgb": cv2.imencode(".png", np.dstack([mask] * 3))[1].tobytes(),
            "grey16": cv2.imencode(".png", mask.astype(np.uint16) * 257)[1].tobytes(),
            "palette": _palette_png(mask), "interlaced": _interlaced_grey_png(mask)}


def _interlaced_grey_png(mask: np.ndarray) -> bytes:
    """An Adam7-interlaced 8-bit grey PNG of ``mask`` (no filters), as neither OpenCV nor Pillow writes."""
    height, width = mask.shape
    rows = b"".join(b"\x00" + row.tobytes() for x0, y0, dx, dy in imageio._ADAM7
                    if width > x0 and height > y0 for row in mask[y0::dy, x0::dx])
    assert len(rows) == imageio.stored_size(width, height, 8, True)
    return _png([(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 1)), (b"IDAT", zlib.compress(rows)),
                 (b"IEND", b"")])


def test_an_interlaced_mask_is_read_as_opencv_reads_it(tmp_path):
    path = tmp_path / "mask.png"
    mask = _mask(13, 11)  # passes of every size, some empty in one direction
    path.write_bytes(_interlaced_grey_png(mask))
    assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), mask)
    assert np.array_equal(read_mask(path)[0], mask)


@pytest.mark.parametrize("kind", ["rgb", "grey16", "interlaced"])
def test_a_damaged_stream_in_other_pngs_is_broken_too(tmp_path, kind):
    """The stream check runs for every PNG mask, not only those libspng decodes."""
    path = tmp_path / "mask.png"
    path.write_bytes(stream_damage_opencv_decodes(_other_pngs(_mask())[kind]))
    with pytest.raises(BrokenFileError, match="compressed stream"):
        read_mask(path)


def _palette_png(mask: np.ndarray) -> bytes:
    image = Image.fromarray((mask > 0).astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 255, 255, 255])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("variable", imageio.OPENCV_LIMIT_VARIABLES)
def test_changed_opencv_limits_leave_every_mask_to_opencv(tmp_path, monkeypatch, variable):
    path = tmp_path / "mask.png"
    mask = _mask()
    path.write_bytes(_encoders()["opencv-3"](mask))
    assert _fast(path) is not None
    monkeypatch.setenv(variable, str(10**12))
    assert _fast(path) is None
    assert np.array_equal(read_mask(path)[0], mask)


@pytest.mark.parametrize("kind", ["grey8", "rgba16"])
def test_a_header_far_larger_than_its_stream_is_left_to_opencv(tmp_path, kind):
    """A damaged header (CRC right) claiming an enormous image: OpenCV refuses it; the stream check
    neither overflows nor inflates gigabytes."""
    depth, colour = (8, 0) if kind == "grey8" else (16, 6)
    side = 0xFFFFFFFF if kind == "grey8" else 2**31 - 1
    path = tmp_path / "mask.png"
    path.write_bytes(_png([(b"IHDR", struct.pack(">IIBBBBB", side, side, depth, colour, 0, 0, 0)),
                           (b"IDAT", zlib.compress(bytes(1000))), (b"IEND", b"")]))
    with pytest.raises(BrokenFileError):
        read_mask(path)


@pytest.mark.parametrize("mode", ["1", "L", "P", "P4", "I;16", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize("size", [(1, 1), (7, 3), (33, 5)])
def test_stored_size_is_what_the_stream_holds(mode, size):
    """``stored_size`` from IHDR equals the inflated stream of Pillow's PNGs, sub-byte depths included
    (were it smaller, the stream check would quietly leave larger files unchecked)."""
    rng = np.random.default_rng(9)
    if mode == "P4":  # a palette of 16 colours: Pillow packs it in 4 bits
        image = Image.fromarray(rng.integers(0, 16, size[::-1], dtype=np.uint8), mode="P")
        image.putpalette(list(range(48)))
    elif mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16))
    else:
        image = Image.fromarray(rng.integers(0, 256, (*size[::-1], len(mode) if mode in ("LA", "RGB", "RGBA") else 1),
                                             dtype=np.uint8).squeeze(-1) if mode in ("L", "P", "1") else
                                rng.integers(0, 256, (*size[::-1], len(mode)), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    stream = b"".join(body for kind, body in _chunks(data) if kind == b"IDAT")
    stored = imageio.stored_size(width, height, imageio.PNG_SAMPLES[colour] * depth, bool(data[28]))
    assert len(zlib.decompress(stream)) == stored
    assert imageio._inflated_length(stream, stored) == stored
