"""Decode only what the preprocessing needs: the one image entry point of serving and training's eval.

:func:`prepare_image` turns an item into the model's crops. For a JPEG file or bytes it avoids the full
decode where it can:

- **resize policies** (``resize: shorter | exact``) with ``decode: {"jpeg_draft": true}`` in the bundle:
  libjpeg's DCT-domain downscaling (PIL's ``Image.draft``) to the smallest scale of 1/2, 1/4, 1/8 that
  is not below the size the resize step asks for, then the usual resize. The pixels differ from a full
  decode (that is why the bundle records it); a bundle without the field decodes in full, as before.
- **crop policies** (``resize: none``): a lossless, MCU-aligned crop of the region that holds the crops
  (libjpeg-turbo's ``tjTransform`` through PyTurboJPEG), one MCU wider on every side than the crops so
  that chroma upsampling sees the same neighbours, then a decode of that small JPEG by PIL, the same
  decoder as the full path. The pixels are identical to the full decode (tests/test_jpeg_decode.py
  checks equality), so nothing is recorded in the bundle; without libturbojpeg the full decode is used.

Anything unusual (EXIF rotation on a crop policy, CMYK, a file without its end marker, a decode error)
takes the full path of :func:`aigc.decode_image`, whose errors are the ones users see.

Corrupt entropy data: a JPEG cut short that still ends with an end marker decodes without an error in PIL
(libjpeg fills the missing part with flat grey and only warns, and PIL drops the warning). Every path
therefore checks the entropy data through libjpeg-turbo's own warnings (:func:`check_jpeg`): the region
path reads them from its lossless crop, the other paths from a 1/8-scale decode. Warnings that mean
missing or garbled pixels (premature end of data, bad Huffman code, a lost restart marker) fail the item;
harmless ones (extraneous bytes before a marker, common in camera files) become item warnings. Without
libturbojpeg the check falls back to the pixels: a last block of exact grey 128 gives a warning.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ._image import (
    ImageDecodeError,
    ImageInput,
    ImageSpec,
    LoadedImage,
    crop_origins,
    decode_image,
    estimate_jpeg_quality,
    normalise,
    preprocess_crops,
    resized_size,
    to_rgb,
)

__all__ = ["PreparedImage", "check_jpeg", "decode_for_spec", "prepare_image", "region_decode_available"]

_ORIENTATION = 0x0112
_REGION_MAX_FRACTION = 0.5  # decode a region only when it is at most this fraction of the image


@dataclass
class PreparedImage:
    """An item ready for the model: its crops and the facts about the source image.

    ``width``/``height`` are those of the whole image (after EXIF rotation), whatever was decoded;
    ``decoded`` says how: ``"full"``, ``"draft 1/N"`` (DCT-domain downscale) or ``"region WxH"``.
    """

    arrays: list[np.ndarray]
    width: int
    height: int
    format: str | None
    jpeg_quality: int | None = None
    warnings: list[str] = field(default_factory=list)
    decoded: str = "full"


_tj_local = threading.local()  # libjpeg warnings of the TurboJPEG call running in this thread

# libjpeg warnings that mean pixels are missing or wrong (the decoder filled them with grey or garbage).
_FATAL_JPEG = (
    ("premature end of data segment", "part of the image would be grey"),
    ("premature end of jpeg file", "part of the image would be grey"),
    ("bad huffman code", "part of the image would be garbled"),
    ("bad arithmetic code", "part of the image would be garbled"),
    ("instead of rst", "a restart marker is missing; part of the image would be shifted or grey"),
)


@lru_cache(maxsize=1)
def _turbojpeg() -> Any:
    """The PyTurboJPEG handle, or None when the package or libturbojpeg is not installed. Its libjpeg
    warnings go to the calling thread's list inside :func:`_tj_call` (never to Python's warnings, which
    are process-wide and would mix up concurrent items)."""
    try:
        from turbojpeg import TJERR_WARNING, TurboJPEG

        class _Checked(TurboJPEG):  # type: ignore[misc]
            def _TurboJPEG__report_error(self, handle: Any) -> None:  # overrides PyTurboJPEG's private hook
                msg = self._TurboJPEG__get_error_string(handle)
                code = getattr(self, "_TurboJPEG__get_error_code", None)
                sink = getattr(_tj_local, "messages", None)
                if code is not None and code(handle) == TJERR_WARNING:
                    if sink is not None:
                        sink.append(msg)
                    else:
                        warnings.warn(msg, stacklevel=2)
                    return
                raise OSError(msg)

        return _Checked()
    except Exception:  # ImportError, or OSError/RuntimeError when libturbojpeg is missing
        return None


def _tj_call(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, list[str]]:
    """(what ``fn`` returns, the libjpeg warnings it gave): ``fn`` is a method of :func:`_turbojpeg`."""
    msgs: list[str] = []
    _tj_local.messages = msgs
    try:
        return fn(*args, **kwargs), msgs
    finally:
        _tj_local.messages = None


def _judge(messages: list[str]) -> list[str]:
    """Raise ImageDecodeError for a libjpeg warning that means missing or garbled pixels; the others
    (e.g. extraneous bytes before a marker: the pixels are intact) come back as item warnings."""
    out: list[str] = []
    for m in dict.fromkeys(messages):  # libjpeg-turbo repeats a header warning for each stage
        low = m.lower()
        for pat, consequence in _FATAL_JPEG:
            if pat in low:
                what = m[len("Corrupt JPEG data: "):] if m.startswith("Corrupt JPEG data: ") else m
                raise ImageDecodeError(f"corrupt JPEG data: {what}; {consequence}")
        out.append(f"JPEG decoder warning: {m} (the pixels are intact)")
    return out


def _grey_tail(img: Image.Image) -> bool:
    """True when the last block (bottom-right 16x16) is exact grey 128: how libjpeg fills data it lacks."""
    if img.mode not in ("RGB", "L", "YCbCr"):
        return False
    w, h = img.size
    tail = np.asarray(img.crop((max(0, w - 16), max(0, h - 16), w, h)))
    return bool(tail.size) and bool((tail == 128).all())


def check_jpeg(data: bytes, img: Image.Image | None = None) -> list[str]:
    """Check a JPEG's entropy data (see the module docstring): raise :class:`aigc.ImageDecodeError` when
    pixels are missing or garbled, else return the item warnings (usually none). ``img``: the decoded image,
    for the fallback check without libturbojpeg."""
    tj = _turbojpeg()
    if tj is None:
        if img is not None and _grey_tail(img):
            return ["the end of this JPEG decodes flat grey (128), as a JPEG cut short does; install PyTurboJPEG "
                    "(pip install 'aigc-sentinel[jpeg]') to check it exactly"]
        return []
    try:
        _, msgs = _tj_call(tj.decode, data, scaling_factor=(1, 8))
    except Exception as e:  # a fatal libjpeg error in the check: PIL read it, so only a known corruption counts
        _judge([str(e)])
        return []
    out = _judge(msgs)
    if out and img is not None and _grey_tail(img):  # libjpeg words only its first warning: it may hide a cut
        raise ImageDecodeError("corrupt JPEG data: the end of the image decodes flat grey (128) as a JPEG cut short does "
                               f"(the decoder warned: {msgs[0]}); part of the image would be grey")
    return out


def region_decode_available() -> bool:
    """True when crop policies can decode only their region (PyTurboJPEG and libturbojpeg present)."""
    return _turbojpeg() is not None


def _read(item: ImageInput) -> bytes | None:
    """The bytes of a path or bytes item; None for other items and for unreadable paths (the full path
    then reports the error)."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, (str, os.PathLike)):
        try:
            return Path(item).read_bytes()
        except OSError:
            return None
    return None


def _open_jpeg(data: bytes) -> Image.Image | None:
    """A lazily opened baseline or progressive JPEG in RGB or L with its end marker, else None."""
    if data[:2] != b"\xff\xd8" or not data.rstrip(b"\x00")[-2:] == b"\xff\xd9":
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Exception:
        return None
    if img.format != "JPEG" or img.mode not in ("RGB", "L"):
        return None
    return img


def _oriented(img: Image.Image) -> tuple[int, int, int]:
    """(EXIF orientation, width, height after applying it)."""
    orientation = int(img.getexif().get(_ORIENTATION, 1) or 1)
    w, h = img.size
    return (orientation, h, w) if orientation in (5, 6, 7, 8) else (orientation, w, h)


def _draft(data: bytes, spec: ImageSpec) -> tuple[LoadedImage, str] | None:
    img = _open_jpeg(data)
    if img is None:
        return None
    orientation, ow, oh = _oriented(img)
    nw, nh = resized_size(ow, oh, spec)
    need = (nh, nw) if orientation in (5, 6, 7, 8) else (nw, nh)
    quality = estimate_jpeg_quality(img)
    stored_w = img.size[0]
    try:
        img.draft(None, need)
        img.load()
        li = decode_image(img)
    except Exception:
        return None
    li.warnings.extend(check_jpeg(data, img))
    scale = max(1, round(stored_w / img.size[0]))
    return LoadedImage(li.image, ow, oh, "JPEG", quality, li.warnings), f"draft 1/{scale}"


def decode_for_spec(item: ImageInput, spec: ImageSpec) -> LoadedImage:
    """:func:`aigc.decode_image`, or for a JPEG under a spec with ``jpeg_draft`` and a resize policy, its
    DCT-domain downscaled decode (``width``/``height`` stay those of the whole image). Training's
    augmentation path reads images through this, so it sees the pixels that serving sees."""
    if spec.jpeg_draft and spec.resize != "none":
        data = _read(item)
        got = _draft(data, spec) if data is not None else None
        if got is not None:
            return got[0]
    return decode_image(item)


def _mcu(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the JPEG's MCU in pixels: 8 x the largest sampling factors."""
    layers = getattr(img, "layer", None) or [("", 1, 1, 0)]
    if len(layers) == 1:
        return 8, 8
    return 8 * max(int(x[1]) for x in layers), 8 * max(int(x[2]) for x in layers)


def _region(data: bytes, spec: ImageSpec) -> PreparedImage | None:
    tj = _turbojpeg()
    img = _open_jpeg(data) if tj is not None else None
    if img is None:
        return None
    th, tw = spec.size
    w, h = img.size
    if _oriented(img)[0] != 1 or w < tw or h < th:
        return None
    origins = crop_origins(w, h, spec)
    mw, mh = _mcu(img)
    boxes = _regions(origins, spec, (w, h), (mw, mh))
    if boxes is None:
        return None
    quality = estimate_jpeg_quality(img)
    try:  # the lossless crop reads all the entropy data: its warnings check the whole file
        smalls, msgs = _tj_call(tj.crop_multiple, data, [(x0, y0, x1 - x0, y1 - y0) for (x0, y0, x1, y1), _ in boxes])
    except Exception:
        return None
    if _judge(msgs):  # a harmless warning may hide a later one (libjpeg words only its first): the full path checks the pixels too
        return None
    arrays: list[np.ndarray] = []
    for ((x0, y0, x1, y1), inside), small in zip(boxes, smalls, strict=True):
        try:
            sub = Image.open(io.BytesIO(small))
            sub.load()
        except Exception:
            return None
        if sub.size != (x1 - x0, y1 - y0) or sub.mode != img.mode:
            return None
        rgb = to_rgb(sub)
        arrays.extend(normalise(np.asarray(rgb.crop((x - x0, y - y0, x - x0 + tw, y - y0 + th)), dtype=np.uint8), spec)
                      for x, y in inside)
    area = sum((x1 - x0) * (y1 - y0) for (x0, y0, x1, y1), _ in boxes)
    return PreparedImage(arrays, w, h, "JPEG", quality, [], f"region {area / (w * h):.0%} in {len(boxes)}")


def _box(origins: list[tuple[int, int]], spec: ImageSpec, size: tuple[int, int], mcu: tuple[int, int]
         ) -> tuple[int, int, int, int]:
    """The MCU-aligned box (x0, y0, x1, y1) that holds the crops with one MCU of context on every side
    (chroma upsampling reads one neighbour beyond the crop), clipped to the image."""
    (th, tw), (w, h), (mw, mh) = spec.size, size, mcu
    x0 = max(0, (min(x for x, _ in origins) // mw - 1) * mw)
    y0 = max(0, (min(y for _, y in origins) // mh - 1) * mh)
    x1 = min(w, (max(x for x, _ in origins) + tw + mw - 1) // mw * mw + mw)
    y1 = min(h, (max(y for _, y in origins) + th + mh - 1) // mh * mh + mh)
    return x0, y0, x1, y1


def _regions(origins: list[tuple[int, int]], spec: ImageSpec, size: tuple[int, int], mcu: tuple[int, int]
             ) -> list[tuple[tuple[int, int, int, int], list[tuple[int, int]]]] | None:
    """(box, crop origins it serves): one box around all crops, else one box per crop (grids on large
    images), when they cover at most ``_REGION_MAX_FRACTION`` of the image; None when a full decode is as
    cheap. Crops keep their order."""
    w, h = size
    one = _box(origins, spec, size, mcu)
    if (one[2] - one[0]) * (one[3] - one[1]) <= _REGION_MAX_FRACTION * w * h:
        return [(one, origins)]
    boxes = [(_box([o], spec, size, mcu), [o]) for o in origins]
    if sum((b[2] - b[0]) * (b[3] - b[1]) for b, _ in boxes) <= _REGION_MAX_FRACTION * w * h:
        return boxes
    return None


def prepare_image(item: ImageInput, spec: ImageSpec) -> PreparedImage:
    """Decode one item and cut the spec's crops: what the Detector scores and training evaluates.

    Raises :class:`aigc.ImageDecodeError` (from :func:`aigc.decode_image`) when the item cannot be read.
    """
    data = _read(item)
    if data is not None and data[:2] == b"\xff\xd8":
        if spec.resize == "none":
            fast = _region(data, spec)
            if fast is not None:
                return fast
        elif spec.jpeg_draft:
            got = _draft(data, spec)
            if got is not None:
                li, how = got
                return PreparedImage(preprocess_crops(li.image, spec), li.width, li.height, li.format,
                                     li.jpeg_quality, li.warnings, how)
    li = decode_image(item if data is None else data)
    return PreparedImage(preprocess_crops(li.image, spec), li.width, li.height, li.format, li.jpeg_quality,
                         li.warnings, "full")
