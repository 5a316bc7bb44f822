"""Bundle schema v1: a valid bundle loads (folder and zip); every broken part is refused by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _bundles import base_spec, build_bundle

import aigc
from aigc._bundle import BundleError, open_bundle, validate_spec, write_bundle, zip_bundle

pytest.importorskip("onnx")


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "b"
    shutil.copytree(src, dst)
    return dst


def _edit(bundle: Path, fn) -> None:  # type: ignore[no-untyped-def]
    spec = json.loads((bundle / "bundle.json").read_text())
    fn(spec)
    (bundle / "bundle.json").write_text(json.dumps(spec))


def test_valid_folder_and_zip(tiny_image_bundle: Path, tmp_path: Path) -> None:
    b = open_bundle(tiny_image_bundle)
    assert b.modality == "image" and b.spec["files"]["model.onnx"]
    z = zip_bundle(tiny_image_bundle, tmp_path / "bundle.zip")
    det = aigc.load(z)
    assert det.modality == "image"
    assert det.bundle.source == z


@pytest.mark.parametrize(
    ("mutate", "field", "expect"),
    [
        (lambda s: s.update(format_version=4), "format_version", "expected one of 1, 2, 3"),
        (lambda s: s.update(format_version=True), "format_version", "expected one of 1, 2, 3"),
        (lambda s: s.update(modality="audio"), "modality", "'image' or 'text'"),
        (lambda s: s.update(labels=["ai"]), "labels", "two distinct"),
        (lambda s: s.update(labels=["x", "x"]), "labels", "two distinct"),
        (lambda s: s["model"].update(variants={"int8": "model.onnx"}), "model.variants", "'fp32'"),
        (lambda s: s["model"].update(variants={"fp32": "model.onnx", "fp64": "x"}), "model.variants.fp64", "unknown variant"),
        (lambda s: s["model"].update(output_kind="probs"), "model.output_kind", "'logits' or 'score'"),
        (lambda s: s["model"]["outputs"][0].update(rank=1), "model.outputs[0].rank", "expected 2"),
        (lambda s: s["model"]["inputs"][0].update(rank=3), "model.inputs", "rank 4"),
        (lambda s: s["preprocessing"].update(type="text"), "preprocessing.type", "expected 'image'"),
        (lambda s: s["preprocessing"].update(resize="squash"), "preprocessing.resize", "none|shorter|exact"),
        (lambda s: s["preprocessing"].update(interpolation="magic"), "preprocessing.interpolation", "expected one of"),
        (lambda s: s["calibration"].update(method="beta"), "calibration.method", "expected one of"),
        (lambda s: s["calibration"].update(params={"temperature": -1}), "calibration.params.temperature", "> 0"),
        (lambda s: s.update(thresholds={}), "thresholds", "at least one"),
        (lambda s: s["thresholds"]["fpr@1%"].update(value=1.5), "thresholds.fpr@1%.value", "[0, 1]"),
        (lambda s: s["thresholds"]["fpr@1%"].pop("n_human"), "thresholds.fpr@1%.n_human", "missing"),
        (lambda s: s.pop("provenance"), "provenance", "missing"),
        (lambda s: s["files"].pop("model.onnx"), "files", "no sha256"),
    ],
)
def test_spec_refusals_name_the_field(tiny_image_bundle: Path, tmp_path: Path, mutate, field: str, expect: str) -> None:  # type: ignore[no-untyped-def]
    b = _copy(tiny_image_bundle, tmp_path)
    _edit(b, mutate)
    with pytest.raises(BundleError) as ei:
        open_bundle(b)
    msg = str(ei.value)
    assert msg.startswith(field), msg
    assert expect in msg, msg


def test_text_spec_refusals(tiny_text_bundle: Path, tmp_path: Path) -> None:
    b = _copy(tiny_text_bundle, tmp_path)
    _edit(b, lambda s: s["model"]["inputs"].pop(1))
    with pytest.raises(BundleError, match=r"model.inputs: found \['input_ids'\], expected 'attention_mask'"):
        open_bundle(b)
    b2 = _copy(tiny_text_bundle, tmp_path / "x")
    _edit(b2, lambda s: s["preprocessing"].update(pooling="median"))
    with pytest.raises(BundleError, match="preprocessing.pooling: found 'median'"):
        open_bundle(b2)


def test_missing_and_corrupt_files(tiny_text_bundle: Path, tmp_path: Path) -> None:
    b = _copy(tiny_text_bundle, tmp_path)
    (b / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=r"files.tokenizer.json: listed in bundle.json but missing"):
        open_bundle(b)
    b2 = _copy(tiny_text_bundle, tmp_path / "y")
    with open(b2 / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match=r"files.model.onnx: sha256 is .* expected .*corrupt"):
        open_bundle(b2)
    (b2 / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match="bundle.json: not valid JSON"):
        open_bundle(b2)
    with pytest.raises(BundleError, match="no such bundle"):
        open_bundle(tmp_path / "nowhere")


def test_graph_must_match_spec(tiny_image_bundle: Path, tmp_path: Path) -> None:
    """bundle.json that names an input the ONNX graph lacks is refused at load, naming both."""
    b = _copy(tiny_image_bundle, tmp_path)
    _edit(b, lambda s: s["model"]["inputs"][0].update(name="images"))
    with pytest.raises(BundleError, match=r"model.inputs: the ONNX graph has inputs \['pixel_values'\], bundle.json says \['images'\]"):
        aigc.load(b)
    b2 = _copy(tiny_image_bundle, tmp_path / "z")
    _edit(b2, lambda s: s["model"]["outputs"][0].update(name="probs"))
    with pytest.raises(BundleError, match="model.outputs.0..name: 'probs' is not an output"):
        aigc.load(b2)


def test_missing_variant_is_named(tiny_image_bundle: Path) -> None:
    with pytest.raises(BundleError, match=r"no 'int8' variant in this bundle \(it has \['fp32'\]\)"):
        aigc.load(tiny_image_bundle, variant="int8")


def test_write_bundle_never_overwrites(tiny_image_bundle: Path, tmp_path: Path) -> None:
    b = _copy(tiny_image_bundle, tmp_path)
    spec = json.loads((b / "bundle.json").read_text())
    with pytest.raises(FileExistsError):
        write_bundle(b, spec)
    write_bundle(b, spec, overwrite=True)
    assert open_bundle(b).spec["files"] == spec["files"]


def test_validate_spec_accepts_base_specs() -> None:
    for m in ("image", "text"):
        s = base_spec(m)
        s["files"] = {"model.onnx": "0" * 64, "tokenizer.json": "0" * 64}
        validate_spec(s)


def test_build_bundle_in_nested_zip(tiny_text_bundle: Path, tmp_path: Path) -> None:
    """A zip whose files sit under one folder also loads."""
    import zipfile

    z = tmp_path / "nested.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in tiny_text_bundle.iterdir():
            zf.write(p, f"mybundle/{p.name}")
    det = aigc.load(z)
    assert det.modality == "text"
    assert build_bundle  # imported helper stays used


def test_placed_bundle_folder_is_readable_like_a_plain_folder(tmp_path: Path) -> None:
    """Export builds in a mkdtemp folder (mode 0700); the placed bundle gets mkdir's mode under the umask,
    so a service running as another user can open it."""
    import os
    import tempfile

    from aigc._bundle import place_bundle

    old = os.umask(0o022)
    try:
        for out_name, mask, want in (("b", 0o022, 0o755), ("c", 0o027, 0o750)):
            os.umask(mask)
            tmp = Path(tempfile.mkdtemp(prefix=".b.tmp-", dir=tmp_path))
            (tmp / "bundle.json").write_text("{}")
            assert tmp.stat().st_mode & 0o777 == 0o700
            out = place_bundle(tmp, tmp_path / out_name, overwrite=False)
            assert out.stat().st_mode & 0o777 == want
    finally:
        os.umask(old)
