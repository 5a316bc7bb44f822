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
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ._image import (
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

__all__ = ["PreparedImage", "decode_for_spec", "prepare_image", "region_decode_available"]

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


@lru_cache(maxsize=1)
def _turbojpeg() -> Any:
    """The PyTurboJPEG handle, or None when the package or libturbojpeg is not installed."""
    try:
        from turbojpeg import TurboJPEG

        return TurboJPEG()
    except Exception:  # ImportError, or OSError/RuntimeError when libturbojpeg is missing
        return None


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
    try:
        smalls = tj.crop_multiple(data, [(x0, y0, x1 - x0, y1 - y0) for (x0, y0, x1, y1), _ in boxes])
    except Exception:
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
