"""C2PA Content Credentials through c2pa-python: manifests signed here with a test chain, each state and verdict."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from _provenance_fixtures import (
    ai_edit_manifest,
    created_manifest,
    image_bytes,
    make_chain,
    sign,
    tamper_jpeg,
)
from PIL import Image

from aigc.provenance import ProvenanceOptions, read_provenance

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




def _one(prov, source: str):
    got = [f for f in prov.findings if f.source == source and f.signal]
    assert got, prov.to_dict()
    return got[0]


def test_c2pa_store_over_its_limit_is_not_validated() -> None:
    from aigc.provenance import Limits

    data = sign(image_bytes(), "image/jpeg", created_manifest("trainedAlgorithmicMedia"))
    p = read_provenance(data, ProvenanceOptions(limits=Limits(c2pa_bytes=1000)))
    assert (p.verdict, p.c2pa["state"]) == ("none", "not_validated")
    assert "over the 1000-byte limit" in p.findings[0].error


def test_aigc_provenance_command_with_trust_anchors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from aigc.cli import main

    f = tmp_path / "gen.jpg"
    f.write_bytes(sign(image_bytes(), "image/jpeg", created_manifest("trainedAlgorithmicMedia")))
    roots = tmp_path / "roots.pem"
    roots.write_text(make_chain().root_pem)
    assert main(["provenance", str(f), "--format", "json", "--trust-anchors", str(roots)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["verdict"], row["c2pa"]["state"], row["basis"]) == ("declared_ai", "valid", ["c2pa:valid"])
    assert main(["provenance", str(f)]) == 0
    assert "declared_ai (from c2pa:untrusted_certificate); C2PA untrusted_certificate" in capsys.readouterr().out
    assert main(["provenance", str(f), "--trust-anchors", str(tmp_path / "none.pem")]) == 2
