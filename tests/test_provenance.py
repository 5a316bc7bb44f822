"""Provenance reader: each fixture (made here) gives the expected verdict, with its block and field."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from _provenance_fixtures import (
    A1111_PARAMETERS,
    COMFY_PROMPT,
    COMFY_WORKFLOW,
    ai_edit_manifest,
    created_manifest,
    image_bytes,
    jpeg_with_exif,
    jpeg_with_xmp,
    make_chain,
    png_chunk,
    png_with_text,
    sign,
    tamper_jpeg,
    xmp_packet,
)
from PIL import Image

from aigc.provenance import POLICIES, ProvenanceOptions, decide, read_provenance


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


# -- C2PA (c2pa-python) --------------------------------------------------------------------------------------
c2pa = pytest.importorskip("c2pa", reason="c2pa-python is not installed (the provenance extra)")


@pytest.fixture(scope="module")
def trusted() -> ProvenanceOptions:
    return ProvenanceOptions(trust_anchors=make_chain().root_pem)


@pytest.mark.parametrize(
    ("fmt", "mime", "block"), [("JPEG", "image/jpeg", "JPEG APP11 JUMBF"), ("PNG", "image/png", "PNG caBX"), ("WEBP", "image/webp", "WebP C2PA")]
)
def test_c2pa_declared_ai_valid(fmt: str, mime: str, block: str, trusted: ProvenanceOptions) -> None:
    data = sign(image_bytes(fmt), mime, created_manifest("trainedAlgorithmicMedia"))
    p = read_provenance(data, trusted)
    assert (p.verdict, p.c2pa["state"], p.basis) == ("declared_ai", "valid", ["c2pa:valid"])
    f = _one(p, "c2pa")
    assert f.block == block and f.field.endswith("c2pa.actions[0]") and "trainedAlgorithmicMedia" in f.value
    assert p.c2pa["signer"] == "aigc test signer"


def test_c2pa_without_anchor_is_untrusted_certificate() -> None:
    data = sign(image_bytes(), "image/jpeg", created_manifest("trainedAlgorithmicMedia"))
    p = read_provenance(data, ProvenanceOptions(trust_anchors=None))
    assert p.c2pa["state"] == "untrusted_certificate" and p.verdict == "declared_ai"
    assert p.basis == ["c2pa:untrusted_certificate"] and "signingCredential.untrusted" in p.c2pa["failures"]


def test_c2pa_declared_capture(trusted: ProvenanceOptions) -> None:
    p = read_provenance(sign(image_bytes(), "image/jpeg", created_manifest("digitalCapture")), trusted)
    assert (p.verdict, p.c2pa["state"]) == ("declared_capture", "valid")


def test_c2pa_edit_with_ai_tool(trusted: ProvenanceOptions) -> None:
    p = read_provenance(sign(image_bytes(), "image/jpeg", ai_edit_manifest()), trusted)
    assert (p.verdict, p.c2pa["state"]) == ("edited_with_ai", "valid")
    assert [f.signal for f in p.findings if f.field.endswith("]")] == ["capture", "ai_edit"]


def test_c2pa_ai_edit_of_a_signed_capture_parent(trusted: ProvenanceOptions) -> None:
    parent = sign(image_bytes(color=(10, 200, 10)), "image/jpeg", created_manifest("digitalCapture"))
    edit = {"claim_generator_info": [{"name": "aigc-sentinel-tests"}], "title": "edit", "assertions": [{"label": "c2pa.actions", "data": {
        "actions": [{"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent-1"]}}, {"action": "c2pa.edited", "digitalSourceType":
                    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia", "softwareAgent": {"name": "Generative Fill"}}]}}]}  # fmt: skip
    try:
        data = sign(image_bytes(color=(10, 200, 10)), "image/jpeg", edit, parent=(parent, "image/jpeg"))
    except c2pa.C2paError as e:
        pytest.fail(f"c2pa Builder refused the edit manifest: {e}")
    p = read_provenance(data, trusted)
    assert (p.verdict, p.c2pa["state"]) == ("edited_with_ai", "valid")
    ing = [f for f in p.findings if "ingredients[" in f.field]
    assert ing and ing[0].signal == "capture" and ing[0].value.startswith("parentOf")


def test_c2pa_tampered_pixels_give_invalid_credentials(trusted: ProvenanceOptions) -> None:
    signed = sign(image_bytes(size=(96, 96)), "image/jpeg", created_manifest("trainedAlgorithmicMedia"))
    bad = tamper_jpeg(signed)
    Image.open(io.BytesIO(bad)).load()  # still a decodable image: only pixels changed
    p = read_provenance(bad, trusted)
    assert (p.verdict, p.c2pa["state"]) == ("invalid_credentials", "tampered_asset")
    assert "assertion.dataHash.mismatch" in p.c2pa["failures"]
    # the AI declaration is still listed, but not counted
    acts = [f for f in p.findings if f.field.endswith("c2pa.actions[0]")]
    assert acts[0].signal is None and "not counted" in acts[0].note


def test_c2pa_bad_signature_gives_invalid_credentials(trusted: ProvenanceOptions) -> None:
    data = sign(image_bytes(), "image/jpeg", created_manifest("digitalCapture"), bad_signature=True)
    p = read_provenance(data, trusted)
    assert (p.verdict, p.c2pa["state"]) == ("invalid_credentials", "invalid_signature")
    assert "claimSignature.mismatch" in p.c2pa["failures"]


def test_remote_manifest_is_reported_and_not_fetched(trusted: ProvenanceOptions) -> None:
    ctx = c2pa.Context(c2pa.Settings.from_dict({"verify": {"verify_after_sign": False}}))
    ch = make_chain()
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, ch.chain_pem.encode(), ch.key_pem, None))
    with c2pa.Builder(created_manifest("trainedAlgorithmicMedia"), context=ctx) as b:
        b.set_no_embed()
        b.set_remote_url("https://manifests.example.invalid/m.c2pa")
        out = io.BytesIO()
        b.sign(signer, "image/jpeg", io.BytesIO(image_bytes()), out)
    p = read_provenance(out.getvalue(), trusted)
    assert p.c2pa == {"state": "remote_not_fetched", "remote_url": "https://manifests.example.invalid/m.c2pa"}
    assert p.verdict == "none"  # an unfetched manifest declares nothing we could check


def test_c2pa_turned_off_reports_the_store_present() -> None:
    data = sign(image_bytes(), "image/jpeg", created_manifest("trainedAlgorithmicMedia"))
    p = read_provenance(data, ProvenanceOptions(c2pa=False))
    assert (p.verdict, p.c2pa["state"]) == ("none", "not_validated")


def test_trust_anchor_file_is_read_once_and_a_bad_path_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "roots.pem"
    f.write_text(make_chain().root_pem)
    assert ProvenanceOptions(trust_anchors=str(f)).anchors_pem() == make_chain().root_pem
    with pytest.raises(ValueError, match="cannot read"):
        ProvenanceOptions(trust_anchors=str(tmp_path / "missing.pem"))


def test_c2pa_manifest_breaking_a_rule_is_invalid(trusted: ProvenanceOptions) -> None:
    bad = {"claim_generator_info": [{"name": "aigc-sentinel-tests"}], "title": "x", "assertions": [{"label": "c2pa.actions", "data": {
        "actions": [{"action": "c2pa.opened"}]}}]}  # fmt: skip  (opened names no ingredient)
    p = read_provenance(sign(image_bytes(), "image/jpeg", bad), trusted)
    assert (p.verdict, p.c2pa["state"]) == ("invalid_credentials", "invalid_manifest")
