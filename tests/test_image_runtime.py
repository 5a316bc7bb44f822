"""Image decoding, the RGB rule, preprocessing, golden probabilities, and every kind of bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from _bundles import IMAGE_SIZE, image_raw_score
from PIL import Image

import aigc
from aigc._calibration import sigmoid
from aigc._image import ImageSpec, decode_image, estimate_jpeg_quality, preprocess_image, to_rgb


def _rgb_array(h: int, w: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _png(img: Image.Image, **kw) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


# -- the RGB rule ---------------------------------------------------------------------------------------
def test_rgb_rule_alpha_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (10, 20, 30, 0))  # fully transparent, colour ignored
    assert np.asarray(to_rgb(rgba))[0, 0].tolist() == [255, 255, 255]
    half = Image.new("RGBA", (4, 4), (0, 0, 0, 128))
    assert np.asarray(to_rgb(half))[0, 0].tolist() == [127, 127, 127]
    la = Image.new("LA", (2, 2), (0, 255))
    assert np.asarray(to_rgb(la))[0, 0].tolist() == [0, 0, 0]


def test_rgb_rule_palette_with_transparency() -> None:
    p = Image.new("P", (4, 4), 0)
    p.putpalette([200, 0, 0, 0, 0, 200] + [0] * 762)
    p.putpixel((1, 1), 1)
    p.info["transparency"] = 0  # index 0 is transparent -> white
    out = np.asarray(to_rgb(Image.open(io.BytesIO(_png(p)))))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[1, 1].tolist() == [0, 0, 200]


def test_rgb_rule_16_bit_scaled_by_full_range() -> None:
    arr = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    img = Image.open(io.BytesIO(_png(Image.fromarray(arr))))  # a real 16-bit PNG
    assert img.mode.startswith("I")
    out = np.asarray(to_rgb(img))
    assert out[0, :, 0].tolist() == [0, 1, 255, 128]
    assert (out[..., 0] == out[..., 2]).all()


def test_rgb_rule_cmyk_and_grey() -> None:
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # pure red in CMYK
    assert np.asarray(to_rgb(cmyk))[0, 0].tolist() == [255, 0, 0]
    grey = Image.new("L", (2, 2), 77)
    assert np.asarray(to_rgb(grey))[0, 0].tolist() == [77, 77, 77]


def test_exif_orientation_is_applied() -> None:
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255  # left half white
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=95)
    li = decode_image(buf.getvalue())
    assert (li.width, li.height) == (10, 20)
    out = np.asarray(li.image)
    assert out[2, 5].mean() > 200 and out[-3, 5].mean() < 50  # white half now on top


def test_jpeg_quality_estimate() -> None:
    img = Image.fromarray(_rgb_array(64, 64))
    for q in (30, 75, 95):
        est = estimate_jpeg_quality(Image.open(io.BytesIO(_jpeg(img, q))))
        assert est is not None and abs(est - q) <= 2, (q, est)
    assert estimate_jpeg_quality(Image.open(io.BytesIO(_png(img)))) is None


# -- preprocessing ---------------------------------------------------------------------------------------
def test_preprocess_center_crop_and_normalise() -> None:
    arr = _rgb_array(40, 50)
    spec = ImageSpec(size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    x = preprocess_image(Image.fromarray(arr), spec)
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    crop = arr[4:36, 9:41]
    np.testing.assert_allclose(x, ((crop / 255.0 - 0.5) / 0.25).transpose(2, 0, 1), atol=1e-5)


def test_preprocess_small_images_are_padded_and_resize_modes() -> None:
    spec = ImageSpec(size=(32, 32))
    assert preprocess_image(Image.new("RGB", (5, 7)), spec).shape == (3, 32, 32)
    assert preprocess_image(Image.new("RGB", (1, 1)), spec).shape == (3, 32, 32)
    for mode in ("shorter", "exact"):
        s = ImageSpec(size=(32, 32), resize=mode)
        assert preprocess_image(Image.new("RGB", (300, 100)), s).shape == (3, 32, 32)


# -- golden probabilities through the bundle -------------------------------------------------------------
def test_golden_probabilities(tiny_image_bundle: Path) -> None:
    det = aigc.load(tiny_image_bundle, threads=1)
    arrs = [_rgb_array(IMAGE_SIZE, IMAGE_SIZE, s) for s in range(3)]
    arrs.append(np.full((IMAGE_SIZE, IMAGE_SIZE, 3), (255, 0, 0), np.uint8))
    p = det.predict_proba(arrs)
    expect = sigmoid(np.array([image_raw_score(a) for a in arrs]) / 2.0)  # temperature 2
    np.testing.assert_allclose(p[:, 1], expect, atol=1e-6)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # pure red: pooled = (2, -2, -2) -> logits (2.1, -3.5) -> s = -5.6 -> sigmoid(-5.6 / 2)
    assert p[3, 1] == pytest.approx(0.0573241765, abs=1e-7)


def test_every_item_type_gives_the_same_score(tiny_image_bundle: Path, tmp_path: Path) -> None:
    arr = _rgb_array(48, 40, 3)
    img = Image.fromarray(arr)
    data = _png(img)
    path = tmp_path / "x.png"
    path.write_bytes(data)
    det = aigc.load(tiny_image_bundle, threads=1)
    p = det.predict_proba([str(path), path, data, img, arr])[:, 1]
    assert np.allclose(p, p[0], atol=1e-7)


def test_order_kept_across_batches_and_workers(tiny_image_bundle: Path) -> None:
    arrs = [_rgb_array(IMAGE_SIZE + s % 5, IMAGE_SIZE + 3, s) for s in range(23)]
    one = aigc.load(tiny_image_bundle, batch_size=1, workers=1).predict_proba(arrs)
    many = aigc.load(tiny_image_bundle, batch_size=4, workers=3).predict_proba(arrs)
    np.testing.assert_allclose(one, many, atol=1e-6)


# -- bad input: one bad item never fails its batch -------------------------------------------------------
def _bad_items(tmp_path: Path) -> dict[str, tuple[object, str | None]]:
    good = Image.fromarray(_rgb_array(64, 64, 7))
    jpeg = _jpeg(good)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "trunc.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (tmp_path / "text.jpg").write_text("this is not an image\n")
    bomb = _png(Image.new("L", (12000, 12000)))  # 144 MP > PIL's 2x limit (~179 MP)? see below
    cmyk = io.BytesIO()
    Image.new("CMYK", (40, 40), (0, 255, 255, 0)).save(cmyk, "JPEG")
    pal = Image.new("P", (40, 40), 0)
    pal.putpalette([200, 0, 0] * 256)
    gif = io.BytesIO()
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=50)
    return {
        "zero-byte": (tmp_path / "empty.jpg", "empty file (0 bytes)"),
        "truncated": (tmp_path / "trunc.jpg", "truncated"),
        "text as jpg": (tmp_path / "text.jpg", "not a recognised image format"),
        "bomb": (bomb, "too many pixels"),
        "16-bit": (_png(Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)), None),
        "cmyk": (cmyk.getvalue(), None),
        "palette+transparency": (_png(pal, transparency=0), None),
        "animated gif": (gif.getvalue(), None),
        "1x1": (_png(Image.new("RGB", (1, 1), (9, 9, 9))), None),
        "good": (jpeg, None),
        "missing": (tmp_path / "nope.png", "no such file"),
    }


def test_bad_inputs_each_reported_others_scored(tiny_image_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000_000)  # bomb = 144 MP > 2x limit -> error
    cases = _bad_items(tmp_path)
    det = aigc.load(tiny_image_bundle, batch_size=4)
    results = det.score([v[0] for v in cases.values()])
    assert len(results) == len(cases)
    for (name, (_, err)), r in zip(cases.items(), results, strict=True):
        if err is None:
            assert r.error is None, (name, r.error)
            assert 0.0 <= r.probability <= 1.0 and r.label in ("human", "ai")
        else:
            assert r.error is not None and err in r.error, (name, r.error)
            assert np.isnan(r.probability) and r.label is None
    by = dict(zip(cases, results, strict=True))
    assert any("animated GIF with 3 frames: scored the first frame only" in w for w in by["animated gif"].warnings)
    assert any("tiny image (1x1)" in w for w in by["1x1"].warnings)
    assert by["good"].meta == {"width": 64, "height": 64, "format": "JPEG", "jpeg_quality": 90}


def test_animated_gif_uses_first_frame() -> None:
    gif = io.BytesIO()
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    li = decode_image(gif.getvalue())
    assert np.asarray(li.image)[5, 5].tolist() == [255, 0, 0]
    assert li.warnings and "first frame" in li.warnings[0]


def test_bad_arrays_and_types(tiny_image_bundle: Path) -> None:
    det = aigc.load(tiny_image_bundle)
    r = det.score([np.zeros((4, 4, 5), np.uint8), 12345, np.zeros((0, 3, 3), np.uint8), _rgb_array(8, 8)])
    assert "expected (H, W), (H, W, 1|3|4)" in (r[0].error or "")
    assert "unsupported item type int" in (r[1].error or "")
    assert r[2].error is not None
    assert r[3].error is None


def test_threshold_by_name_value_and_unknown(tiny_image_bundle: Path) -> None:
    det = aigc.load(tiny_image_bundle)
    arr = _rgb_array(32, 32)
    r1 = det.score([arr], threshold="balanced")[0]
    assert (r1.threshold_name, r1.threshold) == ("balanced", 0.5)
    r2 = det.score([arr], threshold=0.0)[0]
    assert r2.label == "ai" and r2.threshold == 0.0
    with pytest.raises(KeyError, match=r"threshold 'fpr@0.1%' is not in this bundle \(it has \['balanced', 'fpr@1%', 'fpr@5%'\]\)"):
        det.score([arr], threshold="fpr@0.1%")
