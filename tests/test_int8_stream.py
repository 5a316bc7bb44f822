"""The streaming int8 quantizer (``export.int8_stream``): the graph it writes scores as
``quantize_dynamic``'s does, it handles what LM and head graphs hold (MatMuls sharing an activation, Gemm
with ``transB`` and a bias, a 1-D head weight, a weight another node also reads), its memory is one
weight rather than the graph, and broken inputs are refused by name."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from export.int8_stream import QUANTIZER_NAME, quantize_dynamic_streaming  # noqa: E402


def _run(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, feeds)[0])


def _save(model: object, path: Path, external: bool = True) -> Path:
    from export.external import resave

    return resave(model, path, external)


def _head_graph(rng: np.random.Generator, d: int = 48, h: int = 64, v: int = 40) -> object:
    """x (N, d) -> two MatMuls on x (shared activation) -> Gemm(transB, bias) -> 1-D head; plus a Gather
    that reads the first MatMul's weight (a tied table)."""
    w1, w2 = rng.normal(size=(d, h)).astype(np.float32), rng.normal(size=(d, h)).astype(np.float32)
    wg, bg = rng.normal(size=(h, h)).astype(np.float32), rng.normal(size=(h,)).astype(np.float32)  # (N, K) for transB
    head = rng.normal(size=(h,)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["a"], name="mm1"),
        helper.make_node("MatMul", ["x", "w2"], ["b"], name="mm2"),
        helper.make_node("Add", ["a", "b"], ["ab"]),
        helper.make_node("Gemm", ["ab", "wg", "bg"], ["g"], name="gemm", transB=1),
        helper.make_node("Relu", ["g"], ["r"]),
        helper.make_node("MatMul", ["r", "head"], ["score"], name="head_mm"),
        helper.make_node("Gather", ["w1", "idx"], ["rows"], axis=0),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (w2, "w2"), (wg, "wg"), (bg, "bg"), (head, "head"))]
    graph = helper.make_graph(
        nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", d]),
                        helper.make_tensor_value_info("idx", TensorProto.INT64, ["k"])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n"]),
         helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["k", h])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("external", [True, False], ids=["external-source", "inline-source"])
def test_head_graph_quantized_as_the_math_says(tmp_path: Path, external: bool) -> None:
    rng = np.random.default_rng(0)
    src = _save(_head_graph(rng), tmp_path / "model.onnx", external)
    dst = quantize_dynamic_streaming(src, tmp_path / "model.int8.onnx")
    onnx.checker.check_model(str(dst))
    g = onnx.load(str(dst), load_external_data=False)
    # whatever the source, every tensor of 1 KB and more ends in the int8 graph's one data file
    assert all(t.data_location == TensorProto.EXTERNAL for t in g.graph.initializer if len(t.dims) == 2)
    assert {e.value for t in g.graph.initializer for e in t.external_data if e.key == "location"} == {
        "model.int8.onnx.data"}
    ops = [n.op_type for n in g.graph.node]
    assert ops.count("MatMulInteger") == 3  # mm1, mm2, gemm; the 1-D head stays a float MatMul
    assert ops.count("DynamicQuantizeLinear") == 2  # x once for mm1 and mm2, ab once for gemm
    assert "Gemm" not in ops and ops.count("MatMul") == 1
    names = {t.name for t in g.graph.initializer}
    assert "w1" in names and "w2" not in names and "wg" not in names  # w1 is still read by the Gather
    props = {p.key: p.value for p in g.metadata_props}
    assert props["aigc.int8.quantizer"] == QUANTIZER_NAME

    x = rng.normal(size=(5, 48)).astype(np.float32)
    feeds = {"x": x, "idx": np.array([0, 3], np.int64)}
    fp32, rows32 = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, feeds)
    int8, rows8 = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_array_equal(rows8, rows32)  # the tied table is untouched
    # the same arithmetic in numpy: uint8 activations (asymmetric), int8 weights per output column
    m = onnx.load(str(src))
    w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}

    def qmm(a: np.ndarray, wt: np.ndarray) -> np.ndarray:
        lo, hi = min(0.0, float(a.min())), max(0.0, float(a.max()))
        sa = (hi - lo) / 255.0
        za = np.clip(np.rint(-lo / sa), 0, 255)
        aq = np.clip(np.rint(a / sa) + za, 0, 255)
        sw = np.abs(wt).max(0) / 64.0  # reduce_range: -64..64, exact on every x86 int8 kernel
        wq = np.clip(np.rint(wt / sw), -64, 64)
        return ((aq - za) @ wq) * (sa * sw)

    ab = qmm(x, w["w1"]) + qmm(x, w["w2"])
    want = np.maximum(qmm(ab.astype(np.float32), w["wg"].T) + w["bg"], 0) @ w["head"]
    np.testing.assert_allclose(int8, want, rtol=1e-3, atol=1e-3)
    assert not np.allclose(int8, fp32, atol=1e-6)  # it did quantize
    assert np.corrcoef(int8, fp32)[0, 1] > 0.99


def test_lm_graph_matches_quantize_dynamic(tmp_path: Path) -> None:
    """A tiny Qwen2 features graph (tied embeddings, q/k/v biases): the same outputs as ORT's quantizer."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from test_zeroshot import make_tokenizer
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from export.onnx_export import export_text_model
    from training.lmfeatures import LikelihoodFeatures

    tok = make_tokenizer()
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      tie_word_embeddings=True)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = LikelihoodFeatures(Qwen2ForCausalLM(cfg).eval()).eval()
    rng = np.random.default_rng(0)
    model.fit_head(rng.normal(size=(20, 7)), np.arange(20) % 2)
    src, _ = export_text_model(model, ["input_ids", "attention_mask"], tmp_path / "model.onnx", output_name="score",
                               output_kind="score", external_data=True)
    ours = quantize_dynamic_streaming(src, tmp_path / "s8.onnx")
    g = onnx.load(str(src), load_external_data=False)
    ranks = {t.name: len(t.dims) for t in g.graph.initializer}
    head = [n.name for n in g.graph.node if n.op_type == "MatMul" and ranks.get(n.input[1], 2) == 1]
    quantize_dynamic(str(src), str(tmp_path / "r8.onnx"), op_types_to_quantize=["MatMul"], per_channel=True,
                     weight_type=QuantType.QInt8, use_external_data_format=True, nodes_to_exclude=head, reduce_range=True,
                     extra_options={"MatMulConstBOnly": True})
    ids = rng.integers(5, len(tok), (3, 20))
    mask = np.ones_like(ids)
    mask[1, 14:] = 0
    feeds = {"input_ids": ids, "attention_mask": mask}
    want, got = _run(tmp_path / "r8.onnx", feeds), _run(ours, feeds)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    n_weights = 2 * 7 + 1  # 2 layers x (q, k, v, o, gate, up, down) + the LM head
    assert [n.op_type for n in onnx.load(str(ours), load_external_data=False).graph.node].count("MatMulInteger") == n_weights


def test_memory_is_one_weight_not_the_graph(tmp_path: Path) -> None:
    """Eight 8 MiB weights (64 MiB in external data): the quantizer's numpy peak stays near one weight."""
    rng = np.random.default_rng(1)
    d, n_layers = 1448, 8  # 1448 x 1448 float32 = 8 MiB a weight
    nodes, inits, x = [], [], "x"
    for i in range(n_layers):
        nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"h{i}"], name=f"mm{i}"))
        inits.append(numpy_helper.from_array((rng.normal(size=(d, d)) / np.sqrt(d)).astype(np.float32), f"w{i}"))
        x = f"h{i}"
    graph = helper.make_graph(nodes, "deep", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", d])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["n", d])], inits)
    src = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "model.onnx")
    del graph, inits
    one = d * d * 4
    tracemalloc.start()
    try:
        quantize_dynamic_streaming(src, tmp_path / "model.int8.onnx")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2.6 * one, f"peak {peak / 2**20:.1f} MiB for {one / 2**20:.0f} MiB weights"
    data = tmp_path / "model.int8.onnx.data"
    assert one * n_layers / 4 <= data.stat().st_size < one * n_layers / 4 + n_layers * 8192
    xin = rng.normal(size=(2, d)).astype(np.float32)
    a, b = _run(src, {"x": xin}), _run(tmp_path / "model.int8.onnx", {"x": xin})
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


def test_refusals_name_the_problem(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    src = _save(_head_graph(rng, d=512, h=512), tmp_path / "model.onnx")
    with pytest.raises(ValueError, match="is the source graph"):
        quantize_dynamic_streaming(src, tmp_path / "model.onnx")
    data = tmp_path / "model.onnx.data"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"initializer '\w+'"):
        quantize_dynamic_streaming(src, tmp_path / "model.int8.onnx")


@pytest.mark.parametrize("external", [False, True])
def test_int8_does_not_saturate_where_activations_and_weights_peak(tmp_path: Path, external: bool) -> None:
    """Activations at the top of their uint8 range times same-sign weights near their largest: with weights
    in -127..127, ONNX Runtime's U8S8 kernel on an AVX2 CPU without VNNI saturates pairs of products at
    32,767 (9% error here), so one int8 file scored differently on different CPUs. Weights in -64..64 keep
    every x86 kernel exact up to rounding."""
    from export.variants import make_int8

    rng = np.random.default_rng(0)
    k, n = 256, 8
    w = (np.abs(rng.normal(size=(k, n))) + 1.0).astype(np.float32)
    w[:, 1] *= -1
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", n])],
                          [numpy_helper.from_array(w, "w")])
    src = tmp_path / "model.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    x = np.full((4, k), 5.0, np.float32)
    x[:, 0] = -1.0
    dst = make_int8(src, tmp_path / "model.int8.onnx", external_data=external)
    y = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    want = x @ w
    assert np.max(np.abs(y - want) / np.abs(want)) < 0.01
