"""Provenance: --out never destroys an input; free text never declares AI; unparsed formats never read as
"no metadata"; non-C2PA JUMBF is not invalid credentials; the table cannot be forged by a newline."""

from __future__ import annotations

import io
import json
import os
import stat
import struct
from pathlib import Path

import pytest
from _provenance_fixtures import image_bytes, jpeg_with_segment, png_with_text, xmp_packet
from PIL import Image, TiffImagePlugin

from aigc.cli import main
from aigc.provenance import decide, read_provenance


# -- 1: --out ---------------------------------------------------------------------------------------------------
def test_out_refuses_an_input_even_with_overwrite_and_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "keep.jpg"
    data = image_bytes()
    img.write_bytes(data)
    (tmp_path / "link.json").symlink_to(img)
    for out in ("keep.jpg", "link.json"):
        for extra in ([], ["--overwrite"]):
            assert main(["provenance", str(img), "--out", str(tmp_path / out), "--format", "json", *extra]) == 2
            assert "is one of the inputs" in capsys.readouterr().err
    assert img.read_bytes() == data
    lst = tmp_path / "list.txt"  # a file listed in a list of paths is an input too
    lst.write_text("keep.jpg\n")
    assert main(["provenance", str(lst), "--out", str(img), "--overwrite"]) == 2
    assert img.read_bytes() == data
    res = tmp_path / "r.json"
    res.write_text("mine")
    assert main(["provenance", str(img), "--out", str(res), "--format", "json"]) == 2
    assert "--overwrite" in capsys.readouterr().err and res.read_text() == "mine"


def test_out_is_written_atomically_with_the_default_mode(tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    img.write_bytes(png_with_text({"parameters": "cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1"}))
    res = tmp_path / "r.json"
    old = os.umask(0o027)
    try:
        assert main(["provenance", str(img), "--out", str(res), "--format", "json"]) == 0
        assert stat.S_IMODE(res.stat().st_mode) == 0o640
        assert main(["provenance", str(img), "--out", str(res), "--format", "jsonl", "--overwrite"]) == 0
    finally:
        os.umask(old)
    assert json.loads(res.read_text())["verdict"] == "declared_ai"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


# -- 3: free text -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["Title", "Author", "Description", "Comment"])
def test_free_text_mentioning_a_generator_declares_nothing(key: str) -> None:
    p = read_provenance(png_with_text({key: "Photo of a protest against Midjourney and Stable Diffusion"}))
    assert p is not None and p.verdict == "none" and p.basis == []
    f = next(f for f in p.findings if f.field == key)
    assert f.signal is None and "not a declaration" in (f.note or "")
    d = decide({"verdict": p.verdict, "basis": p.basis, "status": p.status}, "human", ["human", "ai"], "declared_ai_first")
    assert d["label"] == "human"


def test_software_naming_a_generator_still_declares() -> None:
    p = read_provenance(png_with_text({"Software": "NovelAI", "Title": "a cat"}))
    assert p is not None and p.verdict == "declared_ai" and p.basis == ["png_text"]


# -- 4: formats not parsed, not images --------------------------------------------------------------------------
def _tiff(tags: dict[int, object]) -> bytes:
    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    for k, v in tags.items():
        ifd[k] = v
        if k == 700:
            ifd.tagtype[k] = 1
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 20, 30)).save(buf, "TIFF", tiffinfo=ifd)
    return buf.getvalue()


def test_tiff_exif_and_xmp_are_read() -> None:
    p = read_provenance(_tiff({0x0131: "Midjourney v6"}))
    assert p is not None and p.format == "tiff" and p.status == "partial" and p.verdict == "declared_ai" and p.basis == ["exif"]
    p = read_provenance(_tiff({700: xmp_packet("trainedAlgorithmicMedia")}))
    assert p is not None and p.verdict == "declared_ai" and p.basis == ["xmp"]
    p = read_provenance(_tiff({}))
    assert p is not None and p.verdict == "none" and p.status == "partial"
    assert any(f.field == "format" and "C2PA is not read" in (f.note or "") for f in p.findings)
    d = decide({"verdict": p.verdict, "basis": p.basis, "status": p.status}, "human", ["human", "ai"], "declared_ai_first")
    assert d["reason"] != "detector" and "partly read" in d["reason"]


def test_heif_xmp_is_read() -> None:
    pytest.importorskip("pillow_heif").register_heif_opener()
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "HEIF", xmp=xmp_packet("trainedAlgorithmicMedia"))
    p = read_provenance(buf.getvalue())
    assert p is not None and p.format == "heif" and p.verdict == "declared_ai" and p.basis == ["xmp"]


def test_unreadable_files_are_errors_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello, not an image")
    for name, why in (("empty.jpg", "empty file"), ("text.jpg", "not an image")):
        p = read_provenance(tmp_path / name)
        assert p is not None and p.status == "not_read" and any(why in (f.error or "") for f in p.findings)
        d = decide({"verdict": p.verdict, "basis": p.basis, "status": p.status}, "human", ["human", "ai"], "declared_ai_first")
        assert d["reason"] == "detector; provenance not read"
        capsys.readouterr()
        assert main(["provenance", str(tmp_path / name)]) == 1
        out = capsys.readouterr().out
        assert "not read" in out and "no provenance metadata" not in out
    good = tmp_path / "good.jpg"
    good.write_bytes(image_bytes())
    assert main(["provenance", str(good), str(tmp_path / "text.jpg")]) == 0  # one read: 0


def test_truncated_files_say_so() -> None:
    jpg, png = image_bytes(), png_with_text({"Title": "x"})
    for data in (jpg[: len(jpg) // 2], jpg[:3], png[:-12]):
        p = read_provenance(data)
        assert p is not None and any("truncated" in (f.error or "") for f in p.findings), data[:4]
    p = read_provenance(jpg + b"\x00trailer after the end marker")
    assert p is not None and not any(f.error for f in p.findings)


# -- 5: JUMBF that is not C2PA ----------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", [b"JP\x00\x01garbagegarbage",
                                     b"JP\x00\x01\x00\x00\x00\x01" + struct.pack(">I", 40) + b"jumb" + struct.pack(">I", 24) + b"jumd" + b"\x00" * 16])  # fmt: skip
def test_jumbf_that_is_not_c2pa_is_not_invalid_credentials(payload: bytes) -> None:
    pytest.importorskip("c2pa")
    p = read_provenance(jpeg_with_segment(image_bytes(), 0xEB, payload))
    assert p is not None and p.verdict == "none" and p.c2pa is None
    f = next(f for f in p.findings if f.source == "c2pa")
    assert f.signal is None and "not a C2PA manifest store" in (f.error or "")


def test_a_broken_c2pa_store_stays_invalid() -> None:
    pytest.importorskip("c2pa")
    payload = b"JP\x00\x01\x00\x00\x00\x01" + struct.pack(">I", 48) + b"jumb" + struct.pack(">I", 32) + b"jumd" + b"c2pa" + b"\x00" * 12 + b"c2pa\x00\x00\x00\x00"
    p = read_provenance(jpeg_with_segment(image_bytes(), 0xEB, payload))
    assert p is not None and p.verdict == "invalid_credentials" and (p.c2pa or {}).get("state") == "malformed"


# -- 6: the table cannot be forged --------------------------------------------------------------------------------
def test_table_escapes_control_characters_and_json_stays_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    forged = "GIMP\nzz_real_photo.jpg: declared_capture (from c2pa:valid); C2PA valid\r\x1b[2K\u202e"
    img = tmp_path / "a.png"
    img.write_bytes(png_with_text({"Software": forged}, kind="iTXt"))
    assert main(["provenance", str(img)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and not any(x.startswith("zz_real_photo") for x in lines)
    assert "GIMP\\nzz_real_photo.jpg" in lines[1] and "\x1b" not in lines[1] and "\r" not in lines[1] and "\u202e" not in lines[1]
    assert main(["provenance", str(img), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["findings"][0]["value"].startswith("GIMP\nzz_real_photo.jpg")
