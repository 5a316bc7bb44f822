"""Image and text transforms for training, built on the runtime's own preprocessing (``aigc``).

- The image eval transform IS ``aigc._image.preprocess_image`` with the run's ``ImageSpec``.
- The image train transform: optional resize (``data.resize``), CNNDetection's blur (sigma in
  ``blur_sigma``) and JPEG (quality in ``jpeg_quality``) with their probabilities, a random crop at the
  model's input size (no resize by default: resizing smears generator traces), a horizontal flip, then
  ``preprocess_image`` for padding (small images) and normalisation, so mean/std/padding match serving.
- Text windows ARE ``aigc._text.encode_windows`` with the run's ``TextSpec``; training sees one window
  per text per step (random or first), evaluation scores every window and pools them by ``pool_scores``.

Randomness comes from a per-sample generator seeded by (seed, epoch, index), so an augmentation does
not depend on worker count or on where a resumed run restarted.
"""

from __future__ import annotations

import io
import random
from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from aigc._image import ImageSpec, decode_image, preprocess_image, to_rgb
from aigc._jpeg import decode_for_spec, prepare_image
from aigc._text import TextSpec, TextWindows, encode_windows, pad_windows
from training.config import DataConfig

__all__ = ["ImageTrainTransform", "eval_crops", "eval_image", "load_image", "sample_rng", "text_train_batch"]

_INTERP = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
           "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}


def sample_rng(seed: int, epoch: int, index: int) -> random.Random:
    """The random generator of one sample in one epoch (independent of workers and resume points)."""
    return random.Random((int(seed) * 1_000_003 + int(epoch)) * 10_000_019 + int(index))


def _item(row: dict[str, Any]) -> Any:
    return row["image"] if "image" in row else row["item"]


def load_image(row: dict[str, Any], spec: ImageSpec | None = None) -> Image.Image:
    """A sample's image as RGB by the runtime's rule (``aigc.decode_image``); with a spec, decoded as the
    runtime decodes for it (``decode.jpeg_draft``: DCT-domain downscaled, see ``aigc._jpeg``)."""
    return (decode_for_spec(_item(row), spec) if spec is not None else decode_image(_item(row))).image


def eval_image(img: Image.Image, spec: ImageSpec) -> np.ndarray:
    """The centre crop of a decoded image by the runtime's ``preprocess_image``."""
    return preprocess_image(img, spec)


def eval_crops(row: dict[str, Any], spec: ImageSpec) -> list[np.ndarray]:
    """The evaluation transform: exactly what the runtime scores (``aigc._jpeg.prepare_image``): the same
    decode (JPEG draft or region) and every crop of the spec (one, or a grid whose scores are pooled)."""
    return prepare_image(_item(row), spec).arrays


class ImageTrainTransform:
    """Training augmentation for one image: (RGB PIL, rng) -> float32 (3, H, W)."""

    def __init__(self, spec: ImageSpec, cfg: DataConfig) -> None:
        self.spec = spec
        self.cfg = cfg
        self._crop_spec = replace(spec, resize="none")  # after our own crop, only pad + normalise

    def __call__(self, img: Image.Image, rng: random.Random) -> np.ndarray:
        cfg, (th, tw) = self.cfg, self.spec.size
        img = to_rgb(img)
        interp = _INTERP[cfg.interpolation]
        if cfg.resize == "exact":
            img = img.resize((tw, th), interp)
        elif cfg.resize == "shorter":
            w, h = img.size
            s = max(th / h, tw / w)
            img = img.resize((max(tw, round(w * s)), max(th, round(h * s))), interp)
        if cfg.blur_prob > 0 and rng.random() < cfg.blur_prob:
            sigma = rng.uniform(float(cfg.blur_sigma[0]), float(cfg.blur_sigma[-1]))
            if sigma > 0:
                img = img.filter(ImageFilter.GaussianBlur(radius=sigma))
        if cfg.jpeg_prob > 0 and rng.random() < cfg.jpeg_prob:
            q = rng.randint(int(cfg.jpeg_quality[0]), int(cfg.jpeg_quality[-1]))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=q)
            img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        w, h = img.size
        cw, ch = min(w, tw), min(h, th)
        if cfg.random_crop:
            left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
        else:
            left, top = (w - cw) // 2, (h - ch) // 2
        img = img.crop((left, top, left + cw, top + ch))
        if cfg.hflip > 0 and rng.random() < cfg.hflip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return preprocess_image(img, self._crop_spec)  # pads images smaller than the crop, normalises


def text_train_batch(
    tokenizer: Any, texts: list[str], spec: TextSpec, rngs: list[random.Random], which: str = "random"
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Cut texts into the runtime's windows and take one per text: (ids, mask) (N,T) int64 and the kept positions.

    Texts the runtime cannot score (empty, no tokens) are left out; their positions are not in the list.
    """
    encoded = encode_windows(tokenizer, texts, spec)
    wins: list[list[int]] = []
    kept: list[int] = []
    for i, (enc, rng) in enumerate(zip(encoded, rngs, strict=True)):
        if not isinstance(enc, TextWindows):
            continue
        k = rng.randrange(len(enc.windows)) if which == "random" else 0
        wins.append(enc.windows[k])
        kept.append(i)
    if not wins:
        return np.zeros((0, 1), np.int64), np.zeros((0, 1), np.int64), []
    ids, mask = pad_windows(wins, spec.pad_id)
    return ids, mask, kept
