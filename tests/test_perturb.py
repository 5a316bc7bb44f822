"""Every perturbation: what it does, that it is deterministic in its seed, and that it leaves the input alone."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from aigc._image import decode_image, estimate_jpeg_quality
from aigc._text import ZERO_WIDTH, normalize_text
from aigc.perturb import (
    HOMOGLYPHS,
    IMAGE_PERTURBATIONS,
    TEXT_PERTURBATIONS,
    image_applies,
    list_perturbations,
    perturb_image,
    perturb_text,
    perturb_texts,
)

TEXT = (
    "The committee met on Tuesday to discuss the proposal. Several members raised concerns about costs,\n"
    "while others argued that the project would pay for itself within five years. A final vote is expected "
    "next month, after an independent review of the figures has been completed and published online."
)


def _photo(w: int = 96, h: int = 64) -> Image.Image:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h)], axis=-1)
    arr = np.clip(base + rng.normal(0, 20, size=(h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def test_lists_match_the_issue() -> None:
    assert list_perturbations("image") == [
        "jpeg95", "jpeg75", "jpeg50", "jpeg30", "resize0.5", "resize0.75", "resize1.5",
        "blur1", "blur2", "center_crop", "png_to_jpeg",
    ]  # fmt: skip
    assert set(list_perturbations("text")) == {
        "homoglyph", "zero_width", "whitespace", "newlines", "lowercase", "uppercase",
        "truncate64", "truncate128", "typos",
    }  # fmt: skip
    with pytest.raises(ValueError, match="modality"):
        list_perturbations("audio")
    with pytest.raises(ValueError, match="unknown image perturbation 'jpeg10'"):
        perturb_image(_photo(), "jpeg10")
    with pytest.raises(ValueError, match="unknown text perturbation"):
        perturb_text("x", "rot13")


@pytest.mark.parametrize("name", list(IMAGE_PERTURBATIONS))
def test_image_perturbation_deterministic_and_pure(name: str) -> None:
    img = _photo()
    before = np.asarray(img).copy()
    a = perturb_image(img, name, seed=1, index=3, source_format="PNG")
    b = perturb_image(img, name, seed=1, index=3, source_format="PNG")
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(img), before)
    assert a.mode == "RGB"
    assert not np.array_equal(np.asarray(a.convert("RGB")), before) or a.size != img.size
    # the runtime's decoder accepts every output
    li = decode_image(a)
    assert li.width == a.width


@pytest.mark.parametrize("q", [95, 75, 50, 30])
def test_jpeg_quality_is_real(q: int) -> None:
    out = perturb_image(_photo(), f"jpeg{q}")
    assert out.format == "JPEG"
    assert abs(estimate_jpeg_quality(out) - q) <= 2
    assert decode_image(out).jpeg_quality is not None


def test_lower_quality_changes_more() -> None:
    img = _photo()
    ref = np.asarray(img, dtype=float)
    err = [np.abs(np.asarray(perturb_image(img, f"jpeg{q}"), dtype=float) - ref).mean() for q in (95, 75, 50, 30)]
    assert err == sorted(err)


@pytest.mark.parametrize(("name", "size"), [("resize0.5", (48, 32)), ("resize0.75", (72, 48)), ("resize1.5", (144, 96)),
                                            ("center_crop", (48, 32))])  # fmt: skip
def test_geometry(name: str, size: tuple[int, int]) -> None:
    assert perturb_image(_photo(), name).size == size


def test_center_crop_is_the_centre() -> None:
    img = _photo(100, 60)
    out = perturb_image(img, "center_crop")
    np.testing.assert_array_equal(np.asarray(out), np.asarray(img)[15:45, 25:75])


def test_blur_smooths_more_with_sigma() -> None:
    img = _photo()
    ref = np.asarray(img, dtype=float)

    def roughness(a: np.ndarray) -> float:
        return float(np.abs(np.diff(a, axis=1)).mean())

    r1 = roughness(np.asarray(perturb_image(img, "blur1"), dtype=float))
    r2 = roughness(np.asarray(perturb_image(img, "blur2"), dtype=float))
    assert r2 < r1 < roughness(ref)


def test_png_to_jpeg_only_touches_non_jpeg() -> None:
    img = _photo()
    assert image_applies("png_to_jpeg", "PNG") and image_applies("png_to_jpeg", None)
    assert not image_applies("png_to_jpeg", "JPEG")
    assert all(image_applies(n, "JPEG") for n in IMAGE_PERTURBATIONS if n != "png_to_jpeg")
    assert perturb_image(img, "png_to_jpeg", source_format="PNG").format == "JPEG"
    assert perturb_image(img, "png_to_jpeg", source_format="JPEG") is img


def test_image_non_rgb_input() -> None:
    img = _photo().convert("L")
    assert perturb_image(img, "blur1").mode == "RGB"
    buf = io.BytesIO()
    _photo().convert("RGBA").save(buf, "PNG")
    assert perturb_image(Image.open(buf), "jpeg75").format == "JPEG"


@pytest.mark.parametrize("name", list(TEXT_PERTURBATIONS))
def test_text_perturbation_deterministic(name: str) -> None:
    text = "\n".join([TEXT] * 3)  # 150 words: long enough to be truncated
    a = perturb_text(text, name, seed=7, index=2)
    assert a == perturb_text(text, name, seed=7, index=2)
    assert a != text
    assert isinstance(a, str) and a.strip()
    # batch form equals item form, and the index (not the batch) selects the draws
    batch = perturb_texts([text, text, text], name, seed=7)
    assert batch[2] == a
    assert perturb_texts([text], name, seed=7, indices=[2]) == [a]
    assert perturb_text("", name, seed=0) == "" or name == "whitespace"


@pytest.mark.parametrize("name", ["homoglyph", "zero_width", "whitespace", "typos"])
def test_random_text_perturbations_depend_on_seed_and_index(name: str) -> None:
    outs = {perturb_text(TEXT, name, seed=s, index=i) for s in range(3) for i in range(3)}
    assert len(outs) > 5


def test_homoglyph() -> None:
    out = perturb_text(TEXT, "homoglyph", seed=0)
    assert len(out) == len(TEXT)
    changed = [(a, b) for a, b in zip(TEXT, out, strict=True) if a != b]
    assert changed and all(HOMOGLYPHS[a] == b for a, b in changed)
    eligible = sum(c in HOMOGLYPHS for c in TEXT)
    assert 0.03 < len(changed) / eligible < 0.2


def test_zero_width_is_invisible_to_the_runtime_normaliser() -> None:
    out = perturb_text(TEXT, "zero_width", seed=0)
    inserted = [c for c in out if c in ZERO_WIDTH]
    assert 0.05 * len(TEXT) < len(inserted) < 0.15 * len(TEXT)
    assert normalize_text(out) == normalize_text(TEXT)
    assert "".join(c for c in out if c not in ZERO_WIDTH) == TEXT


def test_whitespace_and_newlines_keep_the_words() -> None:
    for name in ("whitespace", "newlines"):
        out = perturb_text(TEXT, name, seed=0)
        assert out.split() == TEXT.split(), name
    nl = perturb_text(TEXT, "newlines", seed=0)
    assert all(len(line) <= 80 for line in nl.split("\n"))
    assert nl.count("\n") >= 3
    ws = perturb_text(TEXT, "whitespace", seed=0)
    assert ("\t" in ws) or ("  " in ws) or ("\u00a0" in ws)


def test_casing() -> None:
    assert perturb_text(TEXT, "lowercase") == TEXT.lower()
    assert perturb_text(TEXT, "uppercase") == TEXT.upper()


def test_truncation_by_words_and_by_tokenizer() -> None:
    long = " ".join(f"w{i}" for i in range(300))
    assert perturb_text(long, "truncate64").split() == [f"w{i}" for i in range(64)]
    assert perturb_text(long, "truncate128").split() == [f"w{i}" for i in range(128)]
    assert perturb_text("short text", "truncate64") == "short text"
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tok = tokenizers.Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    text = "a, b. c! " * 100  # punctuation is its own token here: 6 tokens per repeat
    out = perturb_text(text, "truncate64", tokenizer=tok)
    assert len(tok.encode(out).ids) == 64
    assert text.startswith(out)


def test_typos_change_few_words() -> None:
    text = " ".join(["information"] * 400)
    out = perturb_text(text, "typos", seed=0)
    words = out.split(" ")
    changed = sum(w != "information" for w in words)
    assert len(words) == 400 and 5 <= changed <= 40
    assert all(abs(len(w) - len("information")) <= 1 for w in words)
