"""Image decoding and preprocessing: the one implementation, shared by serving and training's eval path.

Nothing here imports torch. Training calls :func:`preprocess_image` for its evaluation transform, so
what a detector is evaluated on in training is exactly what it sees when served.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile

from ._pixels import ImageDecodeError, image_from_array, to_rgb

__all__ = [
    "ImageDecodeError",
    "ImageInput",
    "ImageSpec",
    "LoadedImage",
    "crop_origins",
    "decode_image",
    "estimate_jpeg_quality",
    "image_from_array",
    "normalise",
    "preprocess_crops",
    "preprocess_image",
    "resized_size",
    "to_rgb",
]

ImageInput = Any  # str | os.PathLike | bytes | PIL.Image.Image | np.ndarray (uint8, or integers in 0..255)

# Truncated files are an error, never silently padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False

_INTERP = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class ImageSpec:
    """The image part of a bundle's preprocessing spec (see docs/bundle.md)."""

    size: tuple[int, int] = (224, 224)  # (height, width)
    resize: str = "none"  # none | shorter | exact
    crop: str = "center"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"
    rgb_rule: str = "v1"
    jpeg_draft: bool = False  # bundle.json: "decode": {"jpeg_draft": true}
    grid: tuple[int, int] = (1, 1)  # crop "grid": rows x columns of crops, scores pooled by ``pooling``
    pooling: str = "mean"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageSpec:
        """Build from a bundle's ``preprocessing`` object; unknown keys are ignored only if they are ``type``."""
        size = d.get("size", [224, 224])
        if isinstance(size, int):
            size = [size, size]
        spec = cls(
            size=(int(size[0]), int(size[1])),
            resize=str(d.get("resize", "none")),
            crop=str(d.get("crop", "center")),
            mean=tuple(float(x) for x in d.get("mean", cls.mean)),  # type: ignore[arg-type]
            std=tuple(float(x) for x in d.get("std", cls.std)),  # type: ignore[arg-type]
            interpolation=str(d.get("interpolation", "bicubic")),
            rgb_rule=str(d.get("rgb_rule", "v1")),
            jpeg_draft=_decode_field(d.get("decode")),
            grid=_grid_field(d),
            pooling=str(d.get("pooling", "mean")),
        )
        spec.validate()
        return spec

    def to_dict(self) -> dict[str, Any]:
        """The bundle's ``preprocessing`` object; fields at their old defaults are left out, so a spec made
        before them writes the same bundle.json as it did."""
        d: dict[str, Any] = {
            "type": "image",
            "size": list(self.size),
            "resize": self.resize,
            "crop": self.crop,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "rgb_rule": self.rgb_rule,
        }
        if self.jpeg_draft:
            d["decode"] = {"jpeg_draft": True}
        if self.crop == "grid":
            d["grid"] = list(self.grid)
            d["pooling"] = self.pooling
        return d

    def validate(self) -> None:
        """Raise ValueError naming the field that is wrong."""
        if self.resize not in ("none", "shorter", "exact"):
            raise ValueError(f"preprocessing.resize: found {self.resize!r}, expected one of none|shorter|exact")
        if self.crop not in ("center", "grid"):
            raise ValueError(f"preprocessing.crop: found {self.crop!r}, expected 'center' or 'grid'")
        if self.crop == "grid" and (len(self.grid) != 2 or min(self.grid) < 1 or self.grid[0] * self.grid[1] > 64):
            raise ValueError(f"preprocessing.grid: found {list(self.grid)}, expected [rows, columns], each >= 1, at most 64 crops")
        if self.crop == "grid" and self.resize == "exact":
            raise ValueError("preprocessing.crop: 'grid' needs resize 'none' or 'shorter' ('exact' leaves one crop)")
        if self.crop == "center" and tuple(self.grid) != (1, 1):
            raise ValueError(f"preprocessing.grid: found {list(self.grid)} with crop 'center'; use crop 'grid'")
        if self.pooling not in ("mean", "max"):
            raise ValueError(f"preprocessing.pooling: found {self.pooling!r}, expected 'mean' or 'max'")
        if self.interpolation not in _INTERP:
            raise ValueError(
                f"preprocessing.interpolation: found {self.interpolation!r}, expected one of {sorted(_INTERP)}"
            )
        if self.rgb_rule != "v1":
            raise ValueError(f"preprocessing.rgb_rule: found {self.rgb_rule!r}, expected 'v1'")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ValueError("preprocessing.mean/std: expected three values each, std > 0")
        if min(self.size) < 1:
            raise ValueError(f"preprocessing.size: found {list(self.size)}, expected positive integers")


def _decode_field(d: Any) -> bool:
    """``preprocessing.decode`` -> jpeg_draft; absent (bundles made before it) means a full decode."""
    if d is None:
        return False
    if not isinstance(d, dict) or set(d) - {"jpeg_draft"}:
        raise ValueError(f"preprocessing.decode: found {d!r}, expected an object with the key 'jpeg_draft' only")
    if not isinstance(d.get("jpeg_draft", False), bool):
        raise ValueError(f"preprocessing.decode.jpeg_draft: found {d['jpeg_draft']!r}, expected true or false")
    return bool(d.get("jpeg_draft", False))


def _grid_field(d: dict[str, Any]) -> tuple[int, int]:
    g = d.get("grid", [1, 1])
    if isinstance(g, int):
        g = [g, g]
    try:
        rows, cols = (int(x) for x in g)
    except (TypeError, ValueError):
        raise ValueError(f"preprocessing.grid: found {g!r}, expected [rows, columns]") from None
    return rows, cols


@dataclass
class LoadedImage:
    """A decoded RGB image with the facts about its source that support checks and reports use."""

    image: Image.Image
    width: int
    height: int
    format: str | None
    jpeg_quality: int | None = None
    warnings: list[str] = field(default_factory=list)


def _register_heif_if_needed(data: bytes) -> None:
    """HEIC/HEIF (phone photos) decode through pillow-heif, registered on the first such file."""
    if data[4:8] != b"ftyp" or data[8:12] not in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"):
        return
    try:
        import pillow_heif
    except ImportError:
        raise ImageDecodeError("HEIC/HEIF image: decoding it needs pillow-heif: pip install 'aigc-sentinel[formats]'") from None
    pillow_heif.register_heif_opener()


def estimate_jpeg_quality(img: Image.Image) -> int | None:
    """Estimate the JPEG quality (1-100) from the luminance quantization table; None if not a JPEG.

    Inverts libjpeg's scaling of the standard table (IJG formula), averaged over the 64 entries.
    """
    q = getattr(img, "quantization", None)
    if not q or 0 not in q:
        return None
    table = np.asarray(list(q[0]), dtype=np.float64)[:64]
    base = np.asarray(_STD_LUMA, dtype=np.float64)
    scale = float(np.mean(table * 100.0 / base))  # percent of the standard table
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return int(np.clip(round(quality), 1, 100))


# IJG standard luminance quantization table (natural order is irrelevant for the mean).
_STD_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]  # fmt: skip


def decode_image(item: ImageInput) -> LoadedImage:
    """Decode one item (path, bytes, PIL image or array, see :func:`image_from_array`) into RGB by :func:`to_rgb`.

    Raises ImageDecodeError with a message that says what is wrong (empty file, not an image,
    truncated, too many pixels, ...). Animated images use their first frame and say so in ``warnings``.
    """
    warns: list[str] = []
    if isinstance(item, Image.Image):
        img = item
        fmt = getattr(item, "format", None)
    elif isinstance(item, np.ndarray):
        img = image_from_array(item)  # uint8, or integers in 0..255; anything else needs a stated range
        fmt = None
    else:
        if isinstance(item, (bytes, bytearray, memoryview)):
            data = bytes(item)
            what = "bytes"
        elif isinstance(item, (str, os.PathLike)):
            p = Path(item)
            what = str(p)
            try:
                data = p.read_bytes()
            except FileNotFoundError:
                raise ImageDecodeError(f"{what}: no such file") from None
            except IsADirectoryError:
                raise ImageDecodeError(f"{what}: is a directory, not an image") from None
            except OSError as e:
                raise ImageDecodeError(f"{what}: cannot read ({e.strerror or e})") from None
        else:
            raise ImageDecodeError(
                f"unsupported item type {type(item).__name__}: expected a path, bytes, PIL image or uint8 array"
            )
        if len(data) == 0:
            raise ImageDecodeError("empty file (0 bytes)")
        _register_heif_if_needed(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data))
                fmt = img.format
                n_frames = int(getattr(img, "n_frames", 1))
                if getattr(img, "is_animated", False) and n_frames > 1:
                    warns.append(f"animated {fmt} with {n_frames} frames: scored the first frame only")
                    img.seek(0)
                img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageDecodeError(f"refused: too many pixels for a safe decode ({e})") from None
        except Image.UnidentifiedImageError:
            raise ImageDecodeError("not a recognised image format (is the file really an image?)") from None
        except (OSError, SyntaxError, ValueError) as e:
            msg = str(e)
            if "truncated" in msg.lower() or "premature" in msg.lower():
                raise ImageDecodeError(f"truncated or corrupt image data ({msg})") from None
            raise ImageDecodeError(f"cannot decode image ({msg})") from None
        if fmt == "JPEG":  # PIL drops libjpeg's warnings: a JPEG cut short before its end marker reads as grey
            from ._jpeg import check_jpeg

            warns.extend(check_jpeg(data, img))
    quality = estimate_jpeg_quality(img) if fmt == "JPEG" else None
    try:
        rgb = to_rgb(img)
    except Exception as e:  # conversion of exotic modes
        raise ImageDecodeError(f"cannot convert {img.mode} image to RGB ({e})") from None
    if rgb.width < 1 or rgb.height < 1:
        raise ImageDecodeError(f"image has no pixels ({rgb.width}x{rgb.height})")
    return LoadedImage(rgb, rgb.width, rgb.height, fmt, quality, warns)


def _pad_reflect(arr: np.ndarray, th: int, tw: int) -> np.ndarray:
    h, w = arr.shape[:2]
    ph, pw = max(0, th - h), max(0, tw - w)
    if ph == 0 and pw == 0:
        return arr
    mode: Any = "reflect" if (h > 1 and w > 1 and ph < h and pw < w) else "edge"
    return np.pad(arr, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode=mode)


def resized_size(w: int, h: int, spec: ImageSpec) -> tuple[int, int]:
    """(width, height) of a ``w`` x ``h`` image after the spec's resize step (before the crop)."""
    th, tw = spec.size
    if spec.resize == "exact":
        return tw, th
    if spec.resize == "shorter":
        scale = max(th / h, tw / w)
        return max(tw, round(w * scale)), max(th, round(h * scale))
    return w, h


def crop_origins(w: int, h: int, spec: ImageSpec) -> list[tuple[int, int]]:
    """(left, top) of each crop in a ``w`` x ``h`` image (after the resize step), which must be at least
    the crop size: the centre, or a grid of rows x columns spread evenly from corner to corner (positions
    that coincide on a small image are kept once)."""
    th, tw = spec.size
    rows, cols = spec.grid if spec.crop == "grid" else (1, 1)
    if rows == 1 and cols == 1:
        return [((w - tw) // 2, (h - th) // 2)]
    tops = sorted({round(k * (h - th) / (rows - 1)) for k in range(rows)}) if rows > 1 else [(h - th) // 2]
    lefts = sorted({round(k * (w - tw) / (cols - 1)) for k in range(cols)}) if cols > 1 else [(w - tw) // 2]
    return [(x, y) for y in tops for x in lefts]


def normalise(arr: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (3, H, W): (x / 255 - mean) / std, fused as x * scale + bias."""
    std_arr = np.asarray(spec.std, dtype=np.float32)
    mul = (1.0 / (255.0 * std_arr)).astype(np.float32)
    bias = (-np.asarray(spec.mean, dtype=np.float32) / std_arr).astype(np.float32)
    out = arr.transpose(2, 0, 1).astype(np.float32)
    out *= mul[:, None, None]
    out += bias[:, None, None]
    return out


def preprocess_crops(img: Image.Image, spec: ImageSpec) -> list[np.ndarray]:
    """RGB PIL image -> the spec's crops, each a normalised float32 array (3, H, W), (H, W) = ``spec.size``.

    ``crop="center"`` gives one crop (see :func:`preprocess_image`); ``crop="grid"`` gives up to rows x
    columns crops placed by :func:`crop_origins` after the resize step. An image smaller than the crop is
    padded by reflection and gives one crop.
    """
    th, tw = spec.size
    if img.mode != "RGB":
        img = to_rgb(img)
    nw, nh = resized_size(img.width, img.height, spec)
    if (nw, nh) != img.size:
        img = img.resize((nw, nh), _INTERP[spec.interpolation])
    w, h = img.size
    if w >= tw and h >= th:  # crop in PIL first: only the crops are converted to arrays
        return [normalise(np.asarray(img.crop((x, y, x + tw, y + th)), dtype=np.uint8), spec)
                for x, y in crop_origins(w, h, spec)]
    arr = _pad_reflect(np.asarray(img, dtype=np.uint8), th, tw)
    hh, ww = arr.shape[:2]
    top, left = (hh - th) // 2, (ww - tw) // 2
    return [normalise(arr[top : top + th, left : left + tw], spec)]


def preprocess_image(img: Image.Image, spec: ImageSpec) -> np.ndarray:
    """RGB PIL image -> normalised float32 array of shape (3, H, W) with (H, W) = ``spec.size``.

    ``resize="none"``: centre crop at full resolution (images smaller than the crop are padded by
    reflection); ``"shorter"``: shorter side resized to the crop size, then centre crop; ``"exact"``:
    resized to the size, aspect ratio ignored. The input must already be RGB (see :func:`to_rgb`).
    A ``grid`` spec gives its centre crop here; :func:`preprocess_crops` gives all its crops.
    """
    if spec.crop == "grid":
        spec = replace(spec, crop="center", grid=(1, 1))
    return preprocess_crops(img, spec)[0]
