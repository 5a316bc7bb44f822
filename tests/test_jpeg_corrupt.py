"""A JPEG cut short that still ends with an end marker fails (PIL would decode the rest flat grey, silently);
harmless decoder warnings (extraneous bytes before a marker) stay warnings; good JPEGs pass every path."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import aigc._jpeg as jp
from aigc._image import ImageDecodeError, ImageSpec, decode_image
from aigc._jpeg import prepare_image

SPECS = [ImageSpec(size=(32, 32)), ImageSpec(size=(32, 32), resize="shorter"),
         ImageSpec(size=(32, 32), resize="shorter", jpeg_draft=True)]  # fmt: skip


def _jpeg(progressive: bool = False) -> bytes:
    arr = np.random.default_rng(0).integers(0, 256, size=(128, 160, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90, progressive=progressive)
    return buf.getvalue()


def _cut(d: bytes) -> bytes:
    return d[: len(d) // 2] + b"\xff\xd9"


def _extraneous(d: bytes) -> bytes:
    i = d.find(b"\xff\xda")
    return d[:i] + b"\x00\x00\x00" + d[i:]


def test_pil_alone_would_decode_a_cut_jpeg_grey() -> None:  # why the check exists
    img = Image.open(io.BytesIO(_cut(_jpeg())))
    img.load()
    assert (np.asarray(img)[-8:] == 128).all()


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("spec", SPECS, ids=["region", "full", "draft"])
def test_cut_jpeg_fails_on_every_path(spec: ImageSpec, progressive: bool) -> None:
    if not jp.region_decode_available():
        pytest.skip("PyTurboJPEG/libturbojpeg missing")
    with pytest.raises(ImageDecodeError, match="corrupt JPEG data: premature end of data segment; part of the image would be grey"):
        prepare_image(_cut(_jpeg(progressive)), spec)
    with pytest.raises(ImageDecodeError, match="premature end"):
        decode_image(_cut(_jpeg(progressive)))


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("spec", SPECS, ids=["region", "full", "draft"])
def test_good_jpegs_have_no_false_alarm(spec: ImageSpec, progressive: bool) -> None:
    pi = prepare_image(_jpeg(progressive), spec)
    assert pi.warnings == []
    assert decode_image(_jpeg(progressive)).warnings == []


@pytest.mark.parametrize("spec", SPECS, ids=["region", "full", "draft"])
def test_extraneous_bytes_are_a_warning_with_intact_pixels(spec: ImageSpec) -> None:
    if not jp.region_decode_available():
        pytest.skip("PyTurboJPEG/libturbojpeg missing")
    good, odd = _jpeg(), _extraneous(_jpeg())
    pi = prepare_image(odd, spec)
    assert len(pi.warnings) == 1 and "extraneous bytes before marker" in pi.warnings[0]
    assert all(np.array_equal(a, b) for a, b in zip(pi.arrays, prepare_image(good, spec).arrays, strict=True))
    with pytest.raises(ImageDecodeError, match="flat grey"):  # a harmless first warning must not hide a cut
        prepare_image(_cut(odd), spec)


def test_without_turbojpeg_a_grey_tail_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jp, "_turbojpeg", lambda: None)
    li = decode_image(_cut(_jpeg()))
    assert any("flat grey" in w for w in li.warnings)
    assert decode_image(_jpeg()).warnings == []


def test_decoder_warnings_of_one_thread_never_reach_another() -> None:
    if not jp.region_decode_available():
        pytest.skip("PyTurboJPEG/libturbojpeg missing")
    from concurrent.futures import ThreadPoolExecutor

    good, bad = _jpeg(), _cut(_jpeg())

    def one(k: int) -> str:
        try:
            prepare_image(bad if k % 2 else good, SPECS[1])
            return "ok"
        except ImageDecodeError:
            return "err"

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(one, range(40)))
    assert got == ["err" if k % 2 else "ok" for k in range(40)]
