"""Decoding only what the preprocessing needs (aigc/_jpeg.py): identical pixels for crop policies, the
recorded ``decode.jpeg_draft`` for resize policies, old bundles unchanged, grid crops pooled."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigc._image import ImageDecodeError, ImageSpec, decode_image, preprocess_crops, preprocess_image
from aigc._jpeg import decode_for_spec, prepare_image, region_decode_available


def _photo(w: int, h: int) -> Image.Image:
    skdata = pytest.importorskip("skimage.data")
    return Image.fromarray(skdata.astronaut()).resize((w, h), Image.Resampling.BICUBIC)


def _jpeg(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def _full(data: bytes, spec: ImageSpec) -> list[np.ndarray]:
    return preprocess_crops(decode_image(data).image, spec)


needs_turbo = pytest.mark.skipif(not region_decode_available(),
                                 reason="PyTurboJPEG/libturbojpeg missing (make libturbojpeg; pip install '.[jpeg]')")


@needs_turbo
@pytest.mark.parametrize("size", [(1001, 777), (1600, 1200)])
@pytest.mark.parametrize("fmt", ["420", "422", "444", "progressive", "gray", "restarts", "optimized"])
@pytest.mark.parametrize("crop", [(224, 224, (1, 1)), (37, 53, (1, 1)), (96, 96, (3, 3))])
def test_region_decode_is_pixel_identical(size: tuple[int, int], fmt: str, crop: tuple[int, int, tuple[int, int]]) -> None:
    img = _photo(*size)
    kw: dict[str, object] = {"420": {"subsampling": 2}, "422": {"subsampling": 1}, "444": {"subsampling": 0},
                             "progressive": {"subsampling": 2, "progressive": True}, "gray": {},
                             "restarts": {"subsampling": 1, "restart_marker_blocks": 7}, "optimized": {"optimize": True}}[fmt]
    data = _jpeg(img.convert("L") if fmt == "gray" else img, **kw)
    th, tw, grid = crop
    spec = ImageSpec(size=(th, tw), crop="grid" if grid != (1, 1) else "center", grid=grid)
    got = prepare_image(data, spec)
    assert got.decoded.startswith("region"), got.decoded
    ref = _full(data, spec)
    assert len(got.arrays) == len(ref) == grid[0] * grid[1]
    for a, r in zip(got.arrays, ref, strict=True):
        assert np.array_equal(a, r)
    assert (got.width, got.height, got.format) == (size[0], size[1], "JPEG")


@needs_turbo
@pytest.mark.shared
def test_region_decode_on_real_camera_and_generator_files(shared_data: Path) -> None:
    """Real files (the smallest photos, generator outputs, an XMP-carrying render): identical crops."""
    reals = sorted((shared_data / "images" / "real").glob("*.jpg"), key=lambda p: p.stat().st_size)[:3]
    files = [*reals, *sorted((shared_data / "images" / "ai").glob("*.jpg"))[:2],
             *sorted((shared_data / "provenance" / "iptc_declared_ai").glob("*.jpg"))[:1]]
    assert len(files) == 6
    for spec in (ImageSpec(size=(224, 224)), ImageSpec(size=(96, 128), crop="grid", grid=(2, 3))):
        for f in files:
            got = prepare_image(f, spec)
            assert got.decoded.startswith("region"), (f, got.decoded)
            ref = _full(f.read_bytes(), spec)
            assert len(got.arrays) == len(ref)
            assert all(np.array_equal(a, r) for a, r in zip(got.arrays, ref, strict=True)), f


@needs_turbo
def test_region_decode_reads_path_and_keeps_facts(tmp_path: Path) -> None:
    p = tmp_path / "a.jpg"
    p.write_bytes(_jpeg(_photo(900, 700)))
    spec = ImageSpec(size=(224, 224))
    got = prepare_image(p, spec)
    assert got.decoded.startswith("region")
    li = decode_image(p)
    assert got.jpeg_quality == li.jpeg_quality == 90
    assert np.array_equal(got.arrays[0], preprocess_image(li.image, spec))


def test_rotated_small_or_odd_jpegs_take_the_full_path() -> None:
    spec = ImageSpec(size=(224, 224))
    img = _photo(900, 600)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    rotated = _jpeg(img, exif=exif.tobytes())
    got = prepare_image(rotated, spec)
    assert got.decoded == "full" and (got.width, got.height) == (600, 900)
    assert np.array_equal(got.arrays[0], _full(rotated, spec)[0])
    small = _jpeg(_photo(200, 150))  # smaller than the crop: padded, full path
    assert prepare_image(small, spec).decoded == "full"
    cmyk = _jpeg(img.convert("CMYK"))
    got = prepare_image(cmyk, spec)
    assert got.decoded == "full" and np.array_equal(got.arrays[0], _full(cmyk, spec)[0])


def test_truncated_jpeg_gives_the_full_paths_error() -> None:
    data = _jpeg(_photo(900, 700))[:-5000]
    with pytest.raises(ImageDecodeError) as full:
        decode_image(data)
    for spec in (ImageSpec(size=(224, 224)), ImageSpec(size=(224, 224), resize="shorter", jpeg_draft=True)):
        with pytest.raises(ImageDecodeError) as fast:
            prepare_image(data, spec)
        assert str(fast.value) == str(full.value)


@pytest.mark.parametrize("resize", ["shorter", "exact"])
def test_bundle_without_decode_field_keeps_its_pixels(resize: str) -> None:
    """A bundle.json made before ``decode`` existed: full decode, the same arrays as before the change."""
    d = {"type": "image", "size": [224, 224], "resize": resize, "crop": "center", "mean": [0.5] * 3,
         "std": [0.5] * 3, "interpolation": "bicubic", "rgb_rule": "v1"}
    spec = ImageSpec.from_dict(d)
    assert not spec.jpeg_draft and spec.to_dict() == d  # writes the same bundle.json back
    data = _jpeg(_photo(1800, 1200))
    got = prepare_image(data, spec)
    assert got.decoded == "full"
    assert np.array_equal(got.arrays[0], preprocess_image(decode_image(data).image, spec))


def test_jpeg_draft_downscales_in_the_dct_domain() -> None:
    data = _jpeg(_photo(2400, 1600))
    spec = ImageSpec.from_dict({"size": [224, 224], "resize": "shorter", "decode": {"jpeg_draft": True}})
    assert spec.jpeg_draft and spec.to_dict()["decode"] == {"jpeg_draft": True}
    got = prepare_image(data, spec)
    assert got.decoded == "draft 1/4"  # 1600 / 4 = 400 >= 224 > 1600 / 8
    assert (got.width, got.height) == (2400, 1600)  # the whole image's size, for support checks
    li = decode_for_spec(data, spec)  # what training's augmentation reads
    assert li.image.size == (600, 400)
    assert np.array_equal(got.arrays[0], preprocess_image(li.image, spec))
    full = preprocess_image(decode_image(data).image, spec)
    assert not np.array_equal(got.arrays[0], full)  # other pixels: why the bundle records it
    assert float(np.abs(got.arrays[0] - full).mean()) < 0.1  # but the same picture
    exact = ImageSpec(size=(224, 224), resize="exact", jpeg_draft=True)
    assert prepare_image(data, exact).decoded == "draft 1/4"  # 1600 / 224 = 7.1 -> 4


def test_spec_fields_are_validated() -> None:
    base = {"size": [32, 32], "resize": "none"}
    with pytest.raises(ValueError, match="preprocessing.decode"):
        ImageSpec.from_dict({**base, "decode": {"jpeg_draft": True, "dct": "fast"}})
    with pytest.raises(ValueError, match="preprocessing.decode.jpeg_draft"):
        ImageSpec.from_dict({**base, "decode": {"jpeg_draft": "yes"}})
    with pytest.raises(ValueError, match="preprocessing.grid"):
        ImageSpec.from_dict({**base, "crop": "grid", "grid": [0, 3]})
    with pytest.raises(ValueError, match="'grid' needs resize"):
        ImageSpec.from_dict({**base, "resize": "exact", "crop": "grid", "grid": [2, 2]})
    with pytest.raises(ValueError, match="preprocessing.pooling"):
        ImageSpec.from_dict({**base, "crop": "grid", "grid": [2, 2], "pooling": "median"})
    g = ImageSpec.from_dict({**base, "crop": "grid", "grid": [2, 3], "pooling": "max"})
    assert g.to_dict()["grid"] == [2, 3] and g.to_dict()["pooling"] == "max"


def test_grid_scores_pool_over_crops(tmp_path: Path) -> None:
    """A grid bundle's raw score is the mean of its crops' raw scores (the tiny model, computed by hand)."""
    from _bundles import build_bundle, image_raw_score

    import aigc

    pre = {"type": "image", "size": [32, 32], "resize": "none", "crop": "grid", "grid": [2, 2], "pooling": "mean",
           "mean": [0.5] * 3, "std": [0.25] * 3, "interpolation": "bicubic", "rgb_rule": "v1"}
    bundle = build_bundle(tmp_path / "grid", "image", {"preprocessing": pre})
    assert json.loads((bundle / "bundle.json").read_text())["preprocessing"]["grid"] == [2, 2]
    rng = np.random.default_rng(0)
    arr = np.zeros((50, 70, 3), np.uint8)
    arr[:25, :35] = 250  # bright top-left, noisy elsewhere: the crops differ
    arr[25:] = rng.integers(0, 255, (25, 70, 3))
    png = io.BytesIO()
    Image.fromarray(arr).save(png, "PNG")
    det = aigc.load(bundle, threads=1)
    raw, err = det.raw_scores([png.getvalue(), arr[:20, :20]])
    assert err == [None, None]
    crops = [arr[y : y + 32, x : x + 32] for y in (0, 18) for x in (0, 38)]
    per_crop = [image_raw_score(c) for c in crops]
    assert len(set(np.round(per_crop, 6))) == 4
    assert raw[0] == pytest.approx(np.mean(per_crop), abs=1e-5)


@pytest.mark.train
def test_training_reads_and_evaluates_through_the_runtime(tmp_path: Path) -> None:
    """Train and serve cannot drift: training's eval crops are prepare_image's, its images decode_for_spec's."""
    from training.config import Config
    from training.run import image_spec_for
    from training.transforms import eval_crops, load_image

    cfg = Config()
    cfg.data.resize, cfg.data.jpeg_draft, cfg.data.crop, cfg.data.crop_grid = "shorter", True, "grid", [1, 3]
    cfg.model.input_size = 224

    from types import SimpleNamespace

    spec = image_spec_for(SimpleNamespace(image_defaults={}), cfg)  # type: ignore[arg-type]  # reads mean/std only
    assert spec.to_dict()["decode"] == {"jpeg_draft": True} and spec.grid == (1, 3)
    p = tmp_path / "wide.jpg"
    p.write_bytes(_jpeg(_photo(2400, 1200)))
    row = {"item": str(p), "label": 1}
    got = prepare_image(p, spec)
    crops = eval_crops(row, spec)
    assert got.decoded == "draft 1/4" and len(crops) == 3
    assert all(np.array_equal(a, b) for a, b in zip(crops, got.arrays, strict=True))
    assert load_image(row, spec).size == (600, 300)  # the drafted decode, as served
    assert load_image(row).size == (2400, 1200)  # without a spec: the full decode, as before
