"""Perturbations that content goes through on the internet, applied at evaluation time (numpy and PIL only).

Images: JPEG re-compression, resizing, Gaussian blur, centre crop, PNG-to-JPEG re-encoding.
Text: homoglyphs, zero-width characters, whitespace and newline changes, casing, truncation, typos.

Every perturbation is deterministic: the random ones draw from a generator seeded by
``(seed, perturbation name, item index)``, so an item gets the same edit whatever the batch or order it
is processed in, and a rerun with the same seed reproduces a report exactly.

>>> perturb_text("The cat sat on the mat.", "homoglyph", seed=0)  # doctest: +SKIP
>>> perturb_image(pil_rgb, "jpeg50")                                # doctest: +SKIP
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

__all__ = [
    "IMAGE_PERTURBATIONS",
    "TEXT_PERTURBATIONS",
    "image_applies",
    "list_perturbations",
    "perturb_image",
    "perturb_text",
    "perturb_texts",
]

# name -> one-line description (shown in reports)
IMAGE_PERTURBATIONS: dict[str, str] = {
    "jpeg95": "JPEG re-compression, quality 95",
    "jpeg75": "JPEG re-compression, quality 75",
    "jpeg50": "JPEG re-compression, quality 50",
    "jpeg30": "JPEG re-compression, quality 30",
    "resize0.5": "resize to 0.5x (bicubic)",
    "resize0.75": "resize to 0.75x (bicubic)",
    "resize1.5": "resize to 1.5x (bicubic)",
    "blur1": "Gaussian blur, sigma 1",
    "blur2": "Gaussian blur, sigma 2",
    "center_crop": "centre crop to the central 50% of width and height",
    "png_to_jpeg": "non-JPEG sources (PNG, WebP, ...) re-encoded as JPEG quality 90; JPEG sources untouched",
}

TEXT_PERTURBATIONS: dict[str, str] = {
    "homoglyph": "10% of the Latin letters that have a Cyrillic/Greek look-alike replaced by it",
    "zero_width": "zero-width characters (ZWSP, ZWNJ, ZWJ, WJ, BOM) inserted after 10% of the characters",
    "whitespace": "30% of the spaces doubled or replaced by a tab or a no-break space; trailing spaces on lines",
    "newlines": "line breaks removed, then the text hard-wrapped at 60-80 columns",
    "lowercase": "all lower case",
    "uppercase": "all upper case",
    "truncate64": "truncated to the first 64 tokens",
    "truncate128": "truncated to the first 128 tokens",
    "typos": "typos in 5% of the words (swap, drop, double or neighbouring key)",
}


def list_perturbations(modality: str) -> list[str]:
    """The perturbation names for ``"image"`` or ``"text"``, in report order."""
    if modality == "image":
        return list(IMAGE_PERTURBATIONS)
    if modality == "text":
        return list(TEXT_PERTURBATIONS)
    raise ValueError(f"modality: found {modality!r}, expected 'image' or 'text'")


def _rng(seed: int, name: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode()), int(index)])


# -- images -----------------------------------------------------------------------------------------------
def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    out = Image.open(io.BytesIO(buf.getvalue()))
    out.load()
    return out  # format "JPEG", with its quantisation tables, as a downloaded file would be


def _resize(img: Image.Image, f: float) -> Image.Image:
    w, h = img.size
    return img.resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.BICUBIC)


def _center_crop(img: Image.Image, frac: float = 0.5) -> Image.Image:
    w, h = img.size
    cw, ch = max(1, round(w * frac)), max(1, round(h * frac))
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch))


def image_applies(name: str, source_format: str | None) -> bool:
    """Whether perturbation ``name`` changes an image stored as ``source_format`` (only ``png_to_jpeg`` skips some)."""
    if name == "png_to_jpeg":
        return (source_format or "").upper() not in ("JPEG", "MPO")
    return True


def perturb_image(img: Image.Image, name: str, seed: int = 0, index: int = 0, source_format: str | None = None) -> Image.Image:
    """Apply image perturbation ``name`` (see :data:`IMAGE_PERTURBATIONS`) to a PIL image.

    ``source_format`` is the format the item was stored in (``png_to_jpeg`` leaves JPEG sources as they are).
    JPEG perturbations return the image decoded from real JPEG bytes (format ``"JPEG"``), so the detector
    sees what a downloaded file would give. The image perturbations are deterministic and draw no random
    numbers; ``seed`` and ``index`` are accepted so that all perturbations share one signature.
    """
    if name not in IMAGE_PERTURBATIONS:
        raise ValueError(f"unknown image perturbation {name!r}; known: {', '.join(IMAGE_PERTURBATIONS)}")
    if img.mode != "RGB":
        img = img.convert("RGB")
    if name.startswith("jpeg"):
        return _jpeg(img, int(name[4:]))
    if name.startswith("resize"):
        return _resize(img, float(name[6:]))
    if name.startswith("blur"):
        return img.filter(ImageFilter.GaussianBlur(radius=float(name[4:])))
    if name == "center_crop":
        return _center_crop(img)
    if name == "png_to_jpeg":
        return _jpeg(img, 90) if image_applies(name, source_format) else img
    raise AssertionError(name)  # pragma: no cover


# -- text -------------------------------------------------------------------------------------------------
HOMOGLYPHS: dict[str, str] = {
    "a": "\u0430", "c": "\u0441", "e": "\u0435", "i": "\u0456", "j": "\u0458", "o": "\u043e", "p": "\u0440",
    "s": "\u0455", "x": "\u0445", "y": "\u0443", "A": "\u0410", "B": "\u0412", "C": "\u0421", "E": "\u0415",
    "H": "\u041d", "I": "\u0406", "K": "\u041a", "M": "\u041c", "N": "\u039d", "O": "\u041e", "P": "\u0420",
    "T": "\u0422", "X": "\u0425", "Y": "\u03a5", "Z": "\u0396",
}  # fmt: skip
_ZW = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
_KEYS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _neighbours(ch: str) -> str:
    c = ch.lower()
    for r, row in enumerate(_KEYS):
        k = row.find(c)
        if k >= 0:
            near = [row[j] for j in (k - 1, k + 1) if 0 <= j < len(row)]
            for rr in (r - 1, r + 1):
                if 0 <= rr < len(_KEYS) and k < len(_KEYS[rr]):
                    near.append(_KEYS[rr][k])
            return "".join(near)
    return ""


def _homoglyph(text: str, rng: np.random.Generator, rate: float = 0.1) -> str:
    chars = list(text)
    idx = [i for i, c in enumerate(chars) if c in HOMOGLYPHS]
    if idx:
        pick = rng.random(len(idx)) < rate
        for i, on in zip(idx, pick, strict=True):
            if on:
                chars[i] = HOMOGLYPHS[chars[i]]
    return "".join(chars)


def _zero_width(text: str, rng: np.random.Generator, rate: float = 0.1) -> str:
    if not text:
        return text
    on = rng.random(len(text)) < rate
    kinds = rng.integers(0, len(_ZW), len(text))
    return "".join(c + (_ZW[k] if o else "") for c, o, k in zip(text, on, kinds, strict=True))


def _whitespace(text: str, rng: np.random.Generator, rate: float = 0.3) -> str:
    parts = text.split(" ")
    if len(parts) > 1:
        on = rng.random(len(parts) - 1) < rate
        kinds = rng.integers(0, 3, len(parts) - 1)
        seps = [(("  ", "\t", "\u00a0")[k] if o else " ") for o, k in zip(on, kinds, strict=True)]
        text = parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=True))
    return "\n".join(line + (" " if line else "") for line in text.split("\n"))


def _newlines(text: str, rng: np.random.Generator) -> str:
    words = " ".join(text.split("\n")).split(" ")
    width = int(rng.integers(60, 81))
    lines: list[str] = []
    cur = ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    lines.append(cur)
    return "\n".join(lines)


def _typo(word: str, rng: np.random.Generator) -> str:
    kind = int(rng.integers(0, 4))
    i = int(rng.integers(0, len(word) - 1))
    if kind == 0:  # swap two neighbouring letters
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:  # drop a letter
        return word[:i] + word[i + 1 :]
    if kind == 2:  # double a letter
        return word[: i + 1] + word[i] + word[i + 1 :]
    near = _neighbours(word[i])
    if not near:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    c = near[int(rng.integers(0, len(near)))]
    return word[:i] + (c.upper() if word[i].isupper() else c) + word[i + 1 :]


def _typos(text: str, rng: np.random.Generator, rate: float = 0.05) -> str:
    parts = text.split(" ")
    on = rng.random(len(parts)) < rate
    out = []
    for w, o in zip(parts, on, strict=True):
        out.append(_typo(w, rng) if o and len(w) >= 3 and w.isalpha() else w)
    return " ".join(out)


def _truncate(text: str, n: int, tokenizer: Any | None) -> str:
    """The text up to the end of its n-th token: by the tokenizer's offsets, else by whitespace words."""
    if tokenizer is not None:
        enc = tokenizer.encode(text, add_special_tokens=False)
        offs = enc.offsets
        if len(offs) <= n:
            return text
        return text[: offs[n - 1][1]]
    words = text.split()
    if len(words) <= n:
        return text
    # keep the original spacing of the kept part
    pos = 0
    for w in words[:n]:
        pos = text.index(w, pos) + len(w)
    return text[:pos]


_TEXT_FNS: dict[str, Callable[[str, np.random.Generator, Any], str]] = {
    "homoglyph": lambda t, r, _k: _homoglyph(t, r),
    "zero_width": lambda t, r, _k: _zero_width(t, r),
    "whitespace": lambda t, r, _k: _whitespace(t, r),
    "newlines": lambda t, r, _k: _newlines(t, r),
    "lowercase": lambda t, _r, _k: t.lower(),
    "uppercase": lambda t, _r, _k: t.upper(),
    "truncate64": lambda t, _r, k: _truncate(t, 64, k),
    "truncate128": lambda t, _r, k: _truncate(t, 128, k),
    "typos": lambda t, r, _k: _typos(t, r),
}


def perturb_text(text: str, name: str, seed: int = 0, index: int = 0, tokenizer: Any | None = None) -> str:
    """Apply text perturbation ``name`` (see :data:`TEXT_PERTURBATIONS`) to one text.

    ``index`` (the item's position in the data) and ``seed`` select the random draws. ``tokenizer`` (a
    Hugging Face ``tokenizers.Tokenizer``, e.g. a bundle's) defines the tokens that truncation counts;
    without one, truncation counts whitespace-separated words.
    """
    fn = _TEXT_FNS.get(name)
    if fn is None:
        raise ValueError(f"unknown text perturbation {name!r}; known: {', '.join(TEXT_PERTURBATIONS)}")
    return fn(text, _rng(seed, name, index), tokenizer)


def perturb_texts(
    texts: Sequence[str], name: str, seed: int = 0, tokenizer: Any | None = None, indices: Sequence[int] | None = None
) -> list[str]:
    """:func:`perturb_text` over a list; ``indices`` (default 0..n-1) are the items' positions in the data."""
    idx = range(len(texts)) if indices is None else indices
    return [perturb_text(t, name, seed, int(i), tokenizer) for t, i in zip(texts, idx, strict=True)]
