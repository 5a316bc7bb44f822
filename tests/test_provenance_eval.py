"""``aigc eval`` counts items by provenance verdict and shows each bundle's scores within each verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _provenance_fixtures import A1111_PARAMETERS, image_bytes, jpeg_with_xmp, png_with_text, xmp_packet

from aigc.cli import main


@pytest.mark.slow
def test_eval_report_has_a_provenance_section(tiny_image_bundle: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "real").mkdir(parents=True)
    (data / "ai").mkdir()
    for i in range(6):
        c = (20 * i, 100, 200 - 20 * i)
        (data / "real" / f"cam{i}.jpg").write_bytes(jpeg_with_xmp(xmp_packet("digitalCapture"), image_bytes(color=c)))
        (data / "real" / f"plain{i}.jpg").write_bytes(image_bytes(color=(c[2], c[1], c[0])))
        (data / "ai" / f"gen{i}.jpg").write_bytes(jpeg_with_xmp(xmp_packet("trainedAlgorithmicMedia"), image_bytes(color=(200, 20 * i, 40))))
    for i in range(3):
        (data / "ai" / f"sd{i}.png").write_bytes(png_with_text({"parameters": A1111_PARAMETERS}))
    rep = tmp_path / "rep"
    assert main(["eval", str(tiny_image_bundle), str(data), "--report", str(rep), "--bootstrap", "10", "--no-robustness", "--no-progress"]) == 0
    m = json.loads((rep / "metrics.json").read_text())
    pv = m["provenance"]
    by = pv["by_verdict"]
    assert {k: (v["n"], v["n_human"], v["n_ai"]) for k, v in by.items()} == {
        "declared_ai": (9, 0, 9), "declared_capture": (6, 6, 0), "none": (6, 6, 0)}
    name = m["bundles"][0]["name"]
    d = by["declared_ai"]["bundles"][name]
    assert d["n_scored"] == 9 and sum(d["histogram"]["counts"]) == 9 and 0 <= d["p10"] <= d["median"] <= d["p90"] <= 1
    pol = pv["policy"][name]
    assert pol["policy"] == "declared_ai_first" and pol["n"] == 21
    assert pol["accuracy_final"] >= pol["accuracy_detector"]  # every declared-AI item is AI here
    assert "## Provenance" in (rep / "summary.md").read_text()
    assert "<section id=provenance>" in (rep / "report.html").read_text()
    rep2 = tmp_path / "rep2"
    assert main(["eval", str(tiny_image_bundle), str(data), "--report", str(rep2), "--bootstrap", "0", "--no-robustness",
                 "--no-progress", "--no-provenance"]) == 0  # fmt: skip
    assert "provenance" not in json.loads((rep2 / "metrics.json").read_text())


def test_bundle_provenance_policy_is_used_and_checked(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("onnx")
    from _bundles import build_bundle

    import aigc

    good = build_bundle(tmp_path / "b1", "image", {"provenance_policy": "detector_only"})
    item = jpeg_with_xmp(xmp_packet("trainedAlgorithmicMedia"))
    det = aigc.load(good)
    r = det.score([item], threshold=0.99, provenance=True)[0]
    assert r.label == "human" and r.provenance["decision"] == {"policy": "detector_only", "label": "human", "reason": "detector", "review": False}
    from aigc.provenance import ProvenanceOptions

    r = det.score([item], threshold=0.99, provenance=ProvenanceOptions(policy="declared_ai_first"))[0]
    assert (r.label, r.provenance["decision"]["label"]) == ("human", "ai")  # the caller wins; the detector's label stays
    spec = json.loads((good / "bundle.json").read_text())
    spec["provenance_policy"] = "believe_everything"
    (good / "bundle.json").write_text(json.dumps(spec))  # bundle.json is not among the hashed files
    with pytest.raises(aigc.BundleError, match="provenance_policy"):
        aigc.load(good)
