"""Image arrays are read by their values, never by their dtype's range (issue 12, part 4), and HEIC decodes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import aigc
from aigc._image import ImageDecodeError, decode_image


def _two_images() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [(rng.random((32, 32, 3)) * 255).astype(np.uint8), np.full((32, 32, 3), (250, 20, 90), np.uint8)]


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16, np.int16])
def test_integer_arrays_in_0_255_score_as_uint8(tiny_image_bundle: Path, dtype: type) -> None:
    det = aigc.load(tiny_image_bundle)
    u8 = _two_images()
    want = [r.probability for r in det.score(u8)]
    got = det.score([a.astype(dtype) for a in u8])
    assert [r.error for r in got] == [None, None]
    assert got[0].probability != pytest.approx(got[1].probability, abs=1e-3)  # before: both grey, one score
    np.testing.assert_allclose([r.probability for r in got], want, rtol=0, atol=1e-7)


def test_other_ranges_and_floats_need_a_stated_range(tiny_image_bundle: Path) -> None:
    det = aigc.load(tiny_image_bundle)
    u8 = _two_images()[0]
    r = det.score([u8.astype(np.int64) * 4, u8 / 255.0, u8.astype(bool)])
    assert "int64 array with values 0..1016: expected values in 0..255" in (r[0].error or "")
    assert "value range is not known" in (r[1].error or "") and "value_range=(0, 1)" in (r[1].error or "")
    assert r[2].error is not None and r[2].probability != r[2].probability  # NaN
    want = det.score([u8])[0].probability
    for arr, rng in ((u8 / 255.0, (0, 1)), (u8.astype(np.float32), (0, 255)), (u8.astype(np.uint16) * 257, (0, 65535))):
        img = aigc.image_from_array(arr, value_range=rng)
        assert det.score([img])[0].probability == pytest.approx(want, abs=1e-7)
    with pytest.raises(ImageDecodeError, match="outside the stated value_range"):
        aigc.image_from_array(u8 / 255.0 * 2, value_range=(0, 1))
    with pytest.raises(ImageDecodeError, match="NaN"):
        aigc.image_from_array(np.full((4, 4), np.nan), value_range=(0, 1))


def test_heic_decodes_through_pillow_heif(tiny_image_bundle: Path, tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is in the formats extra")
    y, x = np.mgrid[0:32, 0:32]
    arr = np.stack([x * 8, y * 8, np.full_like(x, 128)], axis=-1).astype(np.uint8)  # smooth: survives HEVC
    buf = io.BytesIO()
    pillow_heif.from_bytes(mode="RGB", size=(32, 32), data=arr.tobytes()).save(buf, format="HEIF", quality=95)
    p = tmp_path / "phone.HEIC"
    p.write_bytes(buf.getvalue())
    li = decode_image(p)
    assert (li.width, li.height, li.format) == (32, 32, "HEIF")
    assert np.abs(np.asarray(li.image, np.int16) - arr).mean() < 6  # lossy, but this picture
    r = aigc.load(tiny_image_bundle).score([str(p)])[0]
    assert r.error is None and 0 <= r.probability <= 1
    assert Image.open(io.BytesIO(buf.getvalue())).size == (32, 32)


def test_heic_without_pillow_heif_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # import fails as if not installed
    fake = b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64
    with pytest.raises(ImageDecodeError, match=r"needs pillow-heif: pip install 'aigc-sentinel\[formats\]'"):
        decode_image(fake)
