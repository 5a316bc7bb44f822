"""Provenance reader: each fixture (made here) gives the expected verdict, with its block and field."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from _provenance_fixtures import (
    A1111_PARAMETERS,
    COMFY_PROMPT,
    COMFY_WORKFLOW,
    image_bytes,
    jpeg_with_exif,
    jpeg_with_xmp,
    png_chunk,
    png_with_text,
    xmp_packet,
)
from PIL import Image

from aigc.provenance import POLICIES, decide, read_provenance


def _one(prov, source: str):
    got = [f for f in prov.findings if f.source == source and f.signal]
    assert got, prov.to_dict()
    return got[0]


# -- XMP / IPTC ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("term", "verdict", "signal"),
    [("trainedAlgorithmicMedia", "declared_ai", "ai"), ("compositeWithTrainedAlgorithmicMedia", "edited_with_ai", "ai_edit"),
     ("digitalCapture", "declared_capture", "capture"), ("computationalCapture", "declared_capture", "capture")],
)  # fmt: skip
def test_xmp_digital_source_type(term: str, verdict: str, signal: str) -> None:
    p = read_provenance(jpeg_with_xmp(xmp_packet(term)))
    assert p.verdict == verdict and p.basis == ["xmp"]
    f = _one(p, "xmp")
    assert (f.block, f.field, f.signal) == ("JPEG APP1 XMP", "Iptc4xmpExt:DigitalSourceType", signal)
    assert f.value.endswith(term)


def test_xmp_prefix_and_element_form_are_read_by_namespace() -> None:
    assert read_provenance(jpeg_with_xmp(xmp_packet("trainedAlgorithmicMedia", prefix="iptcExt"))).verdict == "declared_ai"
    assert read_provenance(jpeg_with_xmp(xmp_packet("trainedAlgorithmicMedia", as_element=True))).verdict == "declared_ai"


def test_xmp_other_source_type_is_reported_without_a_verdict() -> None:
    p = read_provenance(jpeg_with_xmp(xmp_packet("digitalCreation")))
    assert p.verdict == "none"
    assert [f.value.rsplit("/", 1)[-1] for f in p.findings] == ["digitalCreation"]


def test_xmp_in_png_and_webp() -> None:
    xmp = xmp_packet("trainedAlgorithmicMedia").decode()
    png = png_with_text({"XML:com.adobe.xmp": xmp}, kind="iTXt")
    p = read_provenance(png)
    assert p.verdict == "declared_ai" and p.findings[0].block == "PNG iTXt 'XML:com.adobe.xmp'"
    webp = image_bytes("WEBP", xmp=xmp.encode())
    p = read_provenance(webp)
    assert p.format == "webp" and p.verdict == "declared_ai" and p.findings[0].block == "WebP XMP"


def test_xmp_remote_manifest_reference_is_reported_not_fetched() -> None:
    p = read_provenance(jpeg_with_xmp(xmp_packet(remote="https://manifests.example.invalid/x.c2pa")))
    assert p.c2pa == {"state": "remote_not_fetched", "remote_url": "https://manifests.example.invalid/x.c2pa"}
    assert p.verdict == "none" and {f.block for f in p.findings} == {"JPEG APP1 XMP", "XMP dcterms:provenance"}


def test_creator_tool_naming_a_generator() -> None:
    p = read_provenance(jpeg_with_xmp(xmp_packet(creator_tool="ComfyUI")))
    assert p.verdict == "declared_ai" and _one(p, "xmp").field == "xmp:CreatorTool"
    assert read_provenance(jpeg_with_xmp(xmp_packet(creator_tool="Adobe Photoshop 25.0"))).verdict == "none"


# -- PNG generator chunks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["tEXt", "zTXt", "iTXt"])
def test_a1111_parameters_chunk(kind: str) -> None:
    p = read_provenance(png_with_text({"parameters": A1111_PARAMETERS}, kind=kind))
    f = _one(p, "png_text")
    assert p.verdict == "declared_ai" and (f.block, f.field) == (f"PNG {kind} 'parameters'", "parameters")
    assert "Steps: 20" in f.value


def test_comfyui_chunks() -> None:
    p = read_provenance(png_with_text({"prompt": COMFY_PROMPT, "workflow": COMFY_WORKFLOW}))
    assert p.verdict == "declared_ai"
    assert sorted(f.field for f in p.findings if f.signal == "ai") == ["prompt", "workflow"]


def test_generator_chunk_lookalikes_do_not_count() -> None:
    p = read_provenance(png_with_text({"parameters": "brightness=3", "prompt": "a caption someone wrote", "Comment": "hello"}))
    assert p.verdict == "none"
    assert all(f.signal is None for f in p.findings)


def test_png_software_novelai() -> None:
    p = read_provenance(png_with_text({"Software": "NovelAI", "Source": "NovelAI Diffusion V4"}))
    assert p.verdict == "declared_ai" and _one(p, "png_text").field == "Software"


# -- EXIF ----------------------------------------------------------------------------------------------------
def test_exif_make_model_software() -> None:
    p = read_provenance(jpeg_with_exif(software="GIMP 2.10", make="Canon", model="EOS R5"))
    got = {f.field: f.value for f in p.findings}
    assert got == {"Make": "Canon", "Model": "EOS R5", "Software": "GIMP 2.10"}
    assert {f.block for f in p.findings} == {"JPEG APP1 Exif"}
    assert p.verdict == "none"  # a camera name in EXIF is not a capture declaration: anyone can write it


def test_exif_software_generator_and_a1111_user_comment() -> None:
    p = read_provenance(jpeg_with_exif(software="Stable Diffusion XL"))
    assert p.verdict == "declared_ai" and _one(p, "exif").field == "Software"
    p = read_provenance(jpeg_with_exif(user_comment=A1111_PARAMETERS))
    f = _one(p, "exif")
    assert p.verdict == "declared_ai" and f.field == "UserComment" and f.value.startswith("a castle")


def test_png_exif_chunk() -> None:
    ex = Image.Exif()
    ex[0x0131] = "Midjourney"
    png = png_chunk(image_bytes("PNG"), b"eXIf", ex.tobytes())
    p = read_provenance(png)
    assert p.verdict == "declared_ai" and _one(p, "exif").block == "PNG eXIf"


def test_paths_and_bytes_agree(tmp_path: Path) -> None:
    data = png_with_text({"parameters": A1111_PARAMETERS})
    f = tmp_path / "a.png"
    f.write_bytes(data)
    assert read_provenance(f).to_dict() == read_provenance(data).to_dict()
    assert read_provenance(Image.open(io.BytesIO(data))) is None  # decoded images carry no file metadata


def test_no_metadata_is_none() -> None:
    p = read_provenance(image_bytes("JPEG"))
    assert (p.verdict, p.findings, p.c2pa) == ("none", [], None)


# -- policies ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "verdict", "basis", "detector", "final", "review"),
    [("declared_ai_first", "declared_ai", ["xmp"], "human", "ai", True),
     ("declared_ai_first", "edited_with_ai", ["c2pa:valid"], "ai", "ai", False),
     ("declared_ai_first", "invalid_credentials", ["c2pa:tampered_asset"], "human", "human", True),
     ("declared_ai_first", "declared_capture", ["c2pa:valid"], "ai", "ai", True),
     ("declared_ai_first", "none", [], "human", "human", False),
     ("declared_ai_first", "declared_ai", ["xmp"], None, "ai", True),
     ("detector_only", "declared_ai", ["xmp"], "human", "human", False),
     ("trusted_capture_clears", "declared_capture", ["c2pa:valid"], "ai", "human", True),
     ("trusted_capture_clears", "declared_capture", ["c2pa:untrusted_certificate"], "ai", "ai", True),
     ("trusted_capture_clears", "declared_capture", ["xmp"], "human", "human", False)],
)  # fmt: skip
def test_decide(policy: str, verdict: str, basis: list[str], detector: str | None, final: str, review: bool) -> None:
    d = decide({"verdict": verdict, "basis": basis}, detector, ["human", "ai"], policy)
    assert (d["label"], d["review"], d["policy"]) == (final, review, policy)


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        decide({"verdict": "none", "basis": []}, "human", ["human", "ai"], "trust_everything")
    assert "declared_ai_first" in POLICIES


@pytest.mark.shared
def test_real_iptc_declared_ai_jpegs(shared_data: Path) -> None:
    """40 real JPEGs whose XMP (written by Exiv2, prefix ``iptcExt``) declares trainedAlgorithmicMedia."""
    files = sorted((shared_data / "provenance" / "iptc_declared_ai").glob("*.jpg"))
    assert len(files) == 40
    for f in files:
        p = read_provenance(f)
        assert (p.verdict, p.basis) == ("declared_ai", ["xmp"]), (f.name, p.to_dict())
        assert p.findings[0].field == "Iptc4xmpExt:DigitalSourceType" and p.findings[0].block == "JPEG APP1 XMP"


def test_without_c2pa_python_a_store_is_reported_not_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from _provenance_fixtures import jpeg_with_segment

    monkeypatch.setitem(sys.modules, "c2pa", None)  # import c2pa -> ImportError
    p = read_provenance(jpeg_with_segment(image_bytes(), 0xEB, b"JP" + b"\x00" * 64))
    assert (p.verdict, p.c2pa["state"]) == ("none", "not_validated")
    assert "pip install 'aigc-sentinel[provenance]'" in p.findings[0].note
