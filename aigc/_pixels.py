"""Pixel conversions: numpy arrays and every PIL mode to 8-bit RGB, each by one stated rule.

Split from :mod:`aigc._image` (which re-exports these names): decoding files and preprocessing for a
detector live there, the rules for what a pixel value means live here. Nothing here imports torch.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

__all__ = ["ImageDecodeError", "image_from_array", "to_rgb"]


class ImageDecodeError(ValueError):
    """An image could not be read or converted; the message says which item and why."""


def _scale_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale an integer or float array to uint8 by its dtype's full range (16-bit: divide by 257)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return (arr.astype(np.uint32) // 257).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        a = (arr.astype(np.float64) - info.min) / (info.max - info.min)
        return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)
    a = arr.astype(np.float64)
    if a.size and a.max() > 1.0:  # float images in 0..255
        a = a / 255.0
    return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)


def _array_to_uint8(arr: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """An image array -> uint8 without guessing its scale.

    Without ``value_range``: uint8 as is; any integer dtype whose values all lie in 0..255 as those values;
    anything else (other integer ranges, floats, bools) is refused, because its scale cannot be known.
    With ``value_range=(lo, hi)``: values are mapped linearly, lo -> 0 and hi -> 255; values outside are refused.
    """
    if value_range is None:
        if arr.dtype == np.uint8:
            return arr
        if np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_):
            lo, hi = int(arr.min()), int(arr.max())
            if 0 <= lo and hi <= 255:
                return arr.astype(np.uint8)
            raise ImageDecodeError(
                f"{arr.dtype} array with values {lo}..{hi}: expected values in 0..255; say the range with "
                "aigc.image_from_array(arr, value_range=(lo, hi))"
            )
        raise ImageDecodeError(
            f"{arr.dtype} array: its value range is not known; convert it with "
            "aigc.image_from_array(arr, value_range=(0, 1)) (or the range it uses), or pass uint8"
        )
    lo_r, hi_r = float(value_range[0]), float(value_range[1])
    if not hi_r > lo_r:
        raise ImageDecodeError(f"value_range: found {value_range}, expected (lo, hi) with hi > lo")
    a = arr.astype(np.float64)
    if not np.isfinite(a).all():
        raise ImageDecodeError("array holds NaN or infinite values")
    amin, amax = float(a.min()), float(a.max())
    if amin < lo_r or amax > hi_r:
        raise ImageDecodeError(f"array values {amin:g}..{amax:g} fall outside the stated value_range {value_range}")
    return np.clip(np.round((a - lo_r) / (hi_r - lo_r) * 255.0), 0, 255).astype(np.uint8)


def image_from_array(arr: np.ndarray, value_range: tuple[float, float] | None = None) -> Image.Image:
    """An (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array -> PIL image (L, RGB or RGBA), scaled by a stated rule.

    ``value_range=None`` accepts uint8, and any integer array whose values all lie in 0..255 (an int64 array
    of 0..255 is read as those values, never rescaled by its dtype); other integer ranges and float arrays
    raise :class:`ImageDecodeError` unless ``value_range=(lo, hi)`` says what black and white are, e.g.
    ``(0, 1)`` for floats in 0..1 or ``(0, 65535)`` for 16-bit data. Detectors accept the same arrays
    directly (with the same rule); convert with this function to state a range.
    """
    if not isinstance(arr, np.ndarray):
        raise ImageDecodeError(f"expected a numpy array, got {type(arr).__name__}")
    a = arr[..., None] if arr.ndim == 2 else arr
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ImageDecodeError(f"array of shape {arr.shape}: expected (H, W), (H, W, 1|3|4)")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageDecodeError(f"array of shape {arr.shape} has no pixels")
    a = _array_to_uint8(a, value_range)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[a.shape[2]]
    return Image.fromarray(a[..., 0] if mode == "L" else a, mode)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL image to 8-bit RGB by one rule (``rgb_rule: v1``), used by serving and training.

    The rule, in order:
    1. EXIF orientation is applied (``ImageOps.exif_transpose``).
    2. Palette images (``P``, ``PA``) are expanded to RGBA when they carry transparency, else to RGB.
    3. 16-bit and 32-bit integer greyscale (``I;16*``, ``I``) and float (``F``) are scaled to 8 bits by the
       dtype's full range (16-bit: value // 257), then replicated to three channels.
    4. Images with alpha (``RGBA``, ``LA``, ``La``, ``RGBa``) are composited on white: a transparent pixel
       is white, whatever colour it stores.
    5. ``L``, ``1``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` are converted by PIL's ``convert("RGB")``.
    """
    img = ImageOps.exif_transpose(img) or img
    mode = img.mode
    if mode in ("P", "PA"):
        img = img.convert("RGBA" if ("transparency" in img.info or mode == "PA") else "RGB")
        mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img)
        if mode == "I":
            # PIL stores 16-bit PNGs as mode I with values 0..65535; treat them as 16-bit.
            arr = arr.astype(np.uint16) if arr.size and arr.min() >= 0 and arr.max() <= 65535 else arr
        gray = _scale_to_uint8(np.asarray(arr))
        return Image.fromarray(np.stack([gray] * 3, axis=-1), "RGB")
    if mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode != "RGB":
        return img.convert("RGB")
    return img
