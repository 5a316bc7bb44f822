"""aigc export-triton: config.pbtxt parses as Triton's ModelConfig protobuf, and the written client's
pre- and post-processing around ONNX Runtime (and through a Triton client stand-in) equals `aigc score`."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aigc.cli import main

TEXTS = ["the cat sat on the mat", "moreover delve tapestry furthermore " * 5, "a dog ran in the park", "tapestry"]


def _client(model_dir: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"client_{model_dir.name}", model_dir / "aigc_triton_client.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the file runs
    spec.loader.exec_module(mod)
    return mod


def _parse(text: str) -> Any:
    pb = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    from google.protobuf import text_format

    return text_format.Parse(text, pb.ModelConfig())


def _cli_scores(bundle: Path, inputs: Path, tmp: Path) -> list[dict[str, Any]]:
    out = tmp / "cli.jsonl"
    assert main(["score", str(bundle), str(inputs), "--out", str(out), "--no-progress", "--overwrite"]) == 0
    return [json.loads(x) for x in out.read_text().splitlines()]


def test_text_repository(tiny_text_bundle: Path, tmp_path: Path) -> None:
    assert main(["export-triton", str(tiny_text_bundle), "--out", str(tmp_path / "repo"), "--max-batch", "8", "--kind", "cpu"]) == 0
    d = tmp_path / "repo" / "tiny-text"
    assert sorted(p.name for p in d.iterdir()) == ["1", "aigc_triton_client.py", "bundle.json", "config.pbtxt", "tokenizer.json"]
    cfg = _parse((d / "config.pbtxt").read_text())
    assert cfg.name == "tiny-text" and cfg.backend == "onnxruntime" and cfg.max_batch_size == 8
    assert [(i.name, list(i.dims)) for i in cfg.input] == [("input_ids", [-1]), ("attention_mask", [-1])]
    assert cfg.input[0].data_type == 9  # TYPE_INT64
    assert [(o.name, list(o.dims)) for o in cfg.output] == [("logits", [2])]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 2000 and cfg.instance_group[0].kind == 2  # KIND_CPU
    # the client around ONNX Runtime == aigc score
    import onnxruntime as ort

    client = _client(d)
    assert client.MAX_BATCH_SIZE == 8 and client.MODEL_NAME == "tiny-text"
    det = client.load(session=ort.InferenceSession(str(d / "1" / "model.onnx"), providers=["CPUExecutionProvider"]))
    got = [r.to_dict() for r in det.score(TEXTS, threshold="fpr@5%")]
    src = tmp_path / "texts.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    out = tmp_path / "cli.jsonl"
    assert main(["score", str(tiny_text_bundle), str(src), "--out", str(out), "--threshold", "fpr@5%", "--no-progress"]) == 0
    ref = [json.loads(x) for x in out.read_text().splitlines()]
    np.testing.assert_allclose([g["probability"] for g in got], [r["probability"] for r in ref], atol=1e-6)
    assert [g["label"] for g in got] == [r["label"] for r in ref]


class _FakeTriton:
    """Stands in for tritonclient.http.InferenceServerClient: runs the request's tensors through ORT."""

    def __init__(self, model: Path) -> None:
        import onnxruntime as ort

        self.sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        self.calls: list[tuple[str, list[int]]] = []

    def infer(self, model_name: str, inputs: list[Any], outputs: list[Any]) -> Any:
        feeds = {}
        for x in inputs:
            raw = x._get_binary_data() if x._get_binary_data() is not None else None
            dtype = {"FP32": np.float32, "INT64": np.int64}[x.datatype()]
            feeds[x.name()] = np.frombuffer(raw, dtype=dtype).reshape(x.shape())
            self.calls.append((model_name, list(x.shape())))
        names = [o.name() for o in outputs]
        res = dict(zip(names, self.sess.run(names, feeds), strict=True))

        class R:
            def as_numpy(self, n: str) -> np.ndarray:
                return res[n]

        return R()


def test_image_repository_through_a_triton_client(tiny_image_bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("tritonclient.http")
    from _serve_helpers import png_bytes

    assert main(["export-triton", str(tiny_image_bundle), "--out", str(tmp_path / "repo"), "--name", "img"]) == 0
    assert main(["export-triton", str(tiny_image_bundle), "--out", str(tmp_path / "repo"), "--name", "img"]) == 2  # no overwrite
    d = tmp_path / "repo" / "img"
    cfg = _parse((d / "config.pbtxt").read_text())
    assert [(i.name, list(i.dims)) for i in cfg.input] == [("pixel_values", [3, 32, 32])] and cfg.input[0].data_type == 11  # FP32
    assert not cfg.instance_group  # --kind auto leaves the choice to Triton
    paths = []
    for k, (w, h) in enumerate([(40, 40), (64, 48), (20, 30)]):
        p = tmp_path / f"i{k}.png"
        p.write_bytes(png_bytes(w, h, seed=k))
        paths.append(str(p))
    client = _client(d)
    fake = _FakeTriton(d / "1" / "model.onnx")
    det = client.load(session=client.TritonSession(json.loads((d / "bundle.json").read_text()), model_name="img", client=fake))
    got = [r.to_dict() for r in det.score(paths)]
    assert fake.calls and fake.calls[0] == ("img", [3, 3, 32, 32])
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(paths) + "\n")
    ref = _cli_scores(tiny_image_bundle, lst, tmp_path)
    np.testing.assert_allclose([g["probability"] for g in got], [r["probability"] for r in ref], atol=1e-6)
    assert [g["label"] for g in got] == [r["label"] for r in ref]


def test_client_refuses_a_changed_model(tiny_text_bundle: Path, tmp_path: Path) -> None:
    from aigc import BundleError

    main(["export-triton", str(tiny_text_bundle), "--out", str(tmp_path / "repo")])
    d = tmp_path / "repo" / "tiny-text"
    (d / "1" / "model.onnx").write_bytes((d / "1" / "model.onnx").read_bytes() + b"\0")
    with pytest.raises(BundleError, match="model.onnx"):
        _client(d).open_model_bundle(d)


def _image_bundle_with(tmp: Path, edit: Any, spec_edit: Any = None) -> Path:
    onnx = pytest.importorskip("onnx")
    from _bundles import base_spec, image_graph

    from aigc._bundle import write_bundle

    b = tmp / "bundle"
    b.mkdir()
    m = image_graph()
    edit(m.graph)
    onnx.save(m, str(b / "model.onnx"))
    spec = base_spec("image")
    if spec_edit:
        spec_edit(spec)
    write_bundle(b, spec)
    return b


def _fix_batch(graph: Any, which: str) -> None:
    getattr(graph, which)[0].type.tensor_type.shape.dim[0].dim_value = 1


@pytest.mark.parametrize("case", ["input batch 1", "output batch 1", "renamed input", "renamed output", "fixed size"])
def test_a_config_triton_would_refuse_is_refused_at_export(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """max_batch_size > 0 needs a dynamic first axis on every tensor, and the config names and dims must be the
    graph's: such a bundle had been exported with a config that only fails when Triton loads it (or with a
    KeyError traceback). Refused with exit 2 naming the tensor; nothing is written."""
    edits: dict[str, tuple[Any, Any, str]] = {
        "input batch 1": (lambda g: _fix_batch(g, "input"), None, "input 'pixel_values'.*fixed batch axis"),
        "output batch 1": (lambda g: _fix_batch(g, "output"), None, "output 'logits'.*fixed batch axis"),
        "renamed input": (lambda g: None, lambda s: s["model"]["inputs"][0].update(name="pixels"), "'pixels'"),
        "renamed output": (lambda g: None, lambda s: s["model"]["outputs"][0].update(name="scores"), "'scores'"),
        "fixed size": (lambda g: g.input[0].type.tensor_type.shape.dim[2].__setattr__("dim_value", 64), None,
                       r"input 'pixel_values'.*\[3, 64, 32\].*\[3, 32, 32\]"),
    }
    edit, spec_edit, msg = edits[case]
    b = _image_bundle_with(tmp_path, edit, spec_edit)
    assert main(["export-triton", str(b), "--out", str(tmp_path / "repo")]) == 2
    import re

    assert re.search(msg, capsys.readouterr().err)
    assert not (tmp_path / "repo").exists() or not any((tmp_path / "repo").iterdir())


def test_client_refuses_settings_the_served_model_cannot_honour(tmp_path: Path) -> None:
    """Triton serves the fp32 graph: variant='int8' had been taken and put int8's calibration and thresholds on
    fp32's scores (a silent misread); a batch_size above max_batch_size had every batch refused by Triton and
    sent again item by item."""
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort
    from _bundles import THRESHOLDS, base_spec, image_graph

    from aigc._bundle import write_bundle

    b = tmp_path / "bundle"
    b.mkdir()
    onnx.save(image_graph(), str(b / "model.onnx"))
    onnx.save(image_graph(), str(b / "model.int8.onnx"))
    spec = base_spec("image")
    spec["format_version"] = 3
    spec["model"]["variants"]["int8"] = "model.int8.onnx"
    spec["variant_calibration"] = {"int8": {"calibration": {"method": "temperature", "params": {"temperature": 9.0}, "n": 2000},
                                            "thresholds": {**THRESHOLDS, "fpr@1%": {**THRESHOLDS["fpr@1%"], "value": 0.11}}}}
    write_bundle(b, spec)
    assert main(["export-triton", str(b), "--out", str(tmp_path / "repo"), "--max-batch", "8"]) == 0
    d = tmp_path / "repo" / "tiny-image"
    client = _client(d)
    sess = ort.InferenceSession(str(d / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="variant: Triton serves the fp32 graph"):
        client.load(session=sess, model_dir=d, variant="int8")
    with pytest.raises(ValueError, match="batch_size: found 16, expected at most 8"):
        client.load(session=sess, model_dir=d, batch_size=16)
    det = client.load(session=sess, model_dir=d, variant="fp32", batch_size=4)
    assert det.spec["thresholds"]["fpr@1%"]["value"] == 0.8 and det.batch_size == 4
