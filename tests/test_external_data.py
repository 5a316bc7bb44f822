"""ONNX external data in the bundle contract: a causal-LM detector exported with its weights in
``model.onnx.data`` (and its int8 variant in ``model.int8.onnx.data``) loads and scores like torch, from
a folder and from a zip; ``aigc info`` lists the files; a changed data file is refused by name; a graph
whose every initializer is external (``size_threshold=0``) scores the same."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


pytestmark = pytest.mark.train

N_WEIGHT_MATMULS = 2 * 7 + 1  # tiny Llama: 2 layers x (q, k, v, o, gate, up, down) + the LM head



@pytest.fixture(scope="module")
def lm_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A ``zeroshot:features`` detector (tiny Llama, head fitted) exported with external data and int8."""
    from _lm_features import features_run

    from export import BuildOptions, build_bundle
    from training.zeroshot import score_texts

    tmp = tmp_path_factory.mktemp("ext")
    run, texts, labels, tok, spec = features_run(tmp)
    opts = BuildOptions(targets=[0.2], variants=["int8"], external_data="always")
    bundle = build_bundle(run, tmp / "bundle", texts, labels, options=opts)
    return {"bundle": bundle, "texts": texts, "want": score_texts(run.model, tok, texts, spec), "tmp": tmp}


def test_external_data_bundle_scores_like_torch(lm_case: dict[str, Any]) -> None:
    from aigc import load
    from export.external import external_locations

    b = lm_case["bundle"]
    spec = json.loads((b / "bundle.json").read_text())
    assert spec["model"]["external_data"] == {"fp32": ["model.onnx.data"], "int8": ["model.int8.onnx.data"]}
    for f in ("model.onnx.data", "model.int8.onnx.data"):
        assert f in spec["files"] and (b / f).stat().st_size > 0
    assert external_locations(b / "model.onnx") == ["model.onnx.data"]
    raw, errors = load(b, providers="cpu").raw_scores(lm_case["texts"])
    assert errors == [None] * len(raw)
    np.testing.assert_allclose(raw, lm_case["want"], rtol=1e-4, atol=1e-4)
    # the int8 variant quantized every weight MatMul of the LM (dynamic, per-channel), the 1-D linear
    # head excepted, and shipped through the AUROC check (no --force)
    ev = spec["variants_eval"]["int8"]
    assert abs(ev["auroc_delta"]) <= 0.005 and "forced" not in ev and ev["n"] == len(lm_case["texts"])
    assert spec["variants_eval"]["fp32"]["auroc"] > 0.8
    g = onnx.load(str(b / "model.int8.onnx"), load_external_data=False)
    ops = [n.op_type for n in g.graph.node]
    assert ops.count("MatMulInteger") + ops.count("DynamicQuantizeMatMul") == N_WEIGHT_MATMULS
    assert (b / "model.int8.onnx.data").stat().st_size < (b / "model.onnx.data").stat().st_size / 2
    r8, e8 = load(b, providers="cpu", variant="int8").raw_scores(lm_case["texts"])
    assert e8 == [None] * len(r8) and np.corrcoef(r8, raw)[0, 1] > 0.9


def test_info_lists_external_files(lm_case: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from aigc.cli import main as aigc_main

    assert aigc_main(["info", str(lm_case["bundle"])]) == 0
    out = capsys.readouterr().out
    assert "external data model.onnx.data" in out and "external data model.int8.onnx.data" in out
    assert "files (sha256 checked on load):" in out


def test_tampered_external_file_refused_by_name(lm_case: dict[str, Any], tmp_path: Path) -> None:
    from aigc import load
    from aigc._bundle import BundleError

    b = tmp_path / "b"
    shutil.copytree(lm_case["bundle"], b)
    data = b / "model.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match=r"files\.model\.onnx\.data: sha256 is"):
        load(b, providers="cpu")
    data.unlink()
    with pytest.raises(BundleError, match=r"files\.model\.onnx\.data: listed in bundle\.json but missing"):
        load(b, providers="cpu")


def test_zipped_external_data_bundle(lm_case: dict[str, Any], tmp_path: Path) -> None:
    from aigc import load
    from aigc._bundle import zip_bundle

    zp = zip_bundle(lm_case["bundle"], tmp_path / "b.zip")
    raw, _ = load(zp, providers="cpu").raw_scores(lm_case["texts"][:8])
    np.testing.assert_allclose(raw, lm_case["want"][:8], rtol=1e-4, atol=1e-4)


def test_every_initializer_external(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """onnx's external data with size_threshold=0 (every weight out of the graph file), on a tiny image
    model, through export -> load -> score."""
    from _export_tiny import FakeRun, image_preprocessing, tiny_cnn
    from PIL import Image

    import export.external as ext
    from aigc import load
    from export import BuildOptions, build_bundle

    monkeypatch.setattr(ext, "SIZE_THRESHOLD", 0)
    rng = np.random.default_rng(0)
    items, labels = [], []
    for i in range(40):
        p = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 128 + 127 * (i % 2), (24, 24, 3), dtype=np.uint8)).save(p)
        items.append(str(p))
        labels.append(i % 2)
    run = FakeRun(tiny_cnn(), "image", image_preprocessing(), None, ["pixel_values"])
    b = build_bundle(run, tmp_path / "b", items, labels,
                     options=BuildOptions(targets=[0.2], external_data="always"))
    g = onnx.load(str(b / "model.onnx"), load_external_data=False)
    floats = [t for t in g.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    assert len(floats) == 4 and all(t.data_location == onnx.TensorProto.EXTERNAL for t in floats)
    # the ReduceMean axes stay inline: ONNX Runtime's shape inference reads them from the graph file
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in g.graph.initializer if t not in floats)
    assert json.loads((b / "bundle.json").read_text())["model"]["external_data"] == {"fp32": ["model.onnx.data"]}
    from export.parity import torch_raw_scores

    raw, errors = load(b, providers="cpu").raw_scores(items)
    want, _ = torch_raw_scores(run.model, "image", run.preprocessing, items, ["pixel_values"])
    assert errors == [None] * len(items)
    np.testing.assert_allclose(raw, want, rtol=1e-4, atol=1e-4)


def test_external_data_names_stay_inside_the_bundle() -> None:
    from aigc._bundle import BundleError, model_files

    spec: dict[str, Any] = {"model": {"variants": {"fp32": "model.onnx"}, "external_data": {"fp32": ["../w.data"]}}}
    with pytest.raises(BundleError, match=r"model\.external_data\.fp32: found '\.\./w\.data'"):
        model_files(spec)
    spec["model"]["external_data"] = {"int8": ["model.int8.onnx.data"]}
    with pytest.raises(BundleError, match=r"model\.external_data\.int8: no such variant"):
        model_files(spec)


def test_triton_repository_carries_the_external_data(lm_case: dict[str, Any], tmp_path: Path) -> None:
    """`aigc export-triton` of a bundle whose weights are external: 1/ holds model.onnx.data beside the graph
    (Triton's onnxruntime backend reads it from there), the client checks its sha256, and scores through the
    Triton stand-in equal the bundle's."""
    from test_triton import _client, _FakeTriton

    from aigc import BundleError, load
    from aigc.triton import export_triton

    d = export_triton(lm_case["bundle"], tmp_path / "repo", name="lm")
    assert (d / "1" / "model.onnx.data").read_bytes() == (lm_case["bundle"] / "model.onnx.data").read_bytes()
    client = _client(d)
    fake = _FakeTriton(d / "1" / "model.onnx")
    det = client.load(session=client.TritonSession(json.loads((d / "bundle.json").read_text()), model_name="lm", client=fake))
    got = [r.to_dict()["probability"] for r in det.score(lm_case["texts"][:6])]
    want = [r.to_dict()["probability"] for r in load(lm_case["bundle"], providers="cpu").score(lm_case["texts"][:6])]
    np.testing.assert_allclose(got, want, atol=1e-6)
    data = d / "1" / "model.onnx.data"
    data.write_bytes(data.read_bytes()[:-4] + b"\0\0\0\1")
    with pytest.raises(BundleError, match=r"files\.model\.onnx\.data"):
        client.open_model_bundle(d)
