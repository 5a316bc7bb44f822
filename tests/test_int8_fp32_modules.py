"""An int8 variant that keeps chosen torch modules in fp32 (``aigc export --int8-fp32-modules``).

A two-LM graph spends most of its time in the larger LM; quantizing only that one keeps the small LM exact.
The modules are found from what the exporters record of each node (the dynamo exporter's name scopes, a
TorchScript-style ``/module/path/Op`` name); a name that matches nothing is an error, never a silently
fully-quantized graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from export.variants import make_int8, module_nodes  # noqa: E402


class _Half(torch.nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.up, self.down = torch.nn.Linear(d, 2 * d), torch.nn.Linear(2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.relu(self.up(x)))


class _TwoLMs(torch.nn.Module):
    """Stands in for LikelihoodFeatures with a companion: two sub-networks, their outputs summed."""

    def __init__(self, d: int = 32) -> None:
        super().__init__()
        self.lm, self.companion = _Half(d), _Half(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm(x) + self.companion(x)


def _export(tmp: Path, model: torch.nn.Module | None = None) -> tuple[Path, torch.nn.Module, np.ndarray]:
    from export.onnx_export import _export as export_graph

    torch.manual_seed(0)
    model = model or _TwoLMs().eval()
    x = torch.randn(4, 32)
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "model.onnx"
    ran = export_graph(model, (x,), path, ["x"], "y", {"x": {0: "batch"}}, "dynamo")
    assert ran == "dynamo"
    return path, model, x.numpy()


def _matmul_weights(path: Path) -> dict[str, str]:
    """Node name -> op type, for the nodes that multiply by a weight (fp32 MatMul/Gemm or MatMulInteger)."""
    g = onnx.load(str(path), load_external_data=False).graph
    inits = {t.name for t in g.initializer}
    return {n.name: n.op_type for n in g.node
            if n.op_type in ("MatMul", "Gemm", "MatMulInteger") and any(i in inits for i in n.input[1:2])}


@pytest.mark.parametrize("external", [False, True], ids=["quantize_dynamic", "streaming"])
def test_the_named_module_stays_fp32_and_the_other_goes_int8(tmp_path: Path, external: bool) -> None:
    src, model, x = _export(tmp_path)
    kept = module_nodes(src, ("companion",))
    assert len(kept) == 2  # companion.up and companion.down, nothing of lm
    assert len(module_nodes(src, ("lm",))) == 2 and set(module_nodes(src, ("lm",))).isdisjoint(kept)
    up = module_nodes(src, ("companion.up",))
    assert len(up) == 1 and set(up) < set(kept)  # a module path selects itself and what lies under it

    dst = make_int8(src, tmp_path / "model.int8.onnx", external_data=external, fp32_modules=("companion",))
    ops = _matmul_weights(dst)
    # a kept Gemm may come back as "<name>_MatMul" + Add (ONNX Runtime's quantize_dynamic splits every Gemm)
    assert all((ops.get(n) or ops.get(f"{n}_MatMul")) in ("MatMul", "Gemm") for n in kept), ops
    assert sum(op == "MatMulInteger" for op in ops.values()) == 2  # both of lm's layers
    props = {p.key: p.value for p in onnx.load(str(dst), load_external_data=False).metadata_props}
    assert props["aigc.int8.fp32_modules"] == "companion"

    # with lm's weights zero (exact in int8 whatever the scale), what is left is the companion alone:
    # kept in fp32 it matches torch to float rounding; quantized with the rest, it does not
    with torch.no_grad():
        model.lm.up.weight.zero_()
        model.lm.down.weight.zero_()
        want = model(torch.from_numpy(x)).numpy()
    src, _, _ = _export(tmp_path / "zero", model)
    part = make_int8(src, tmp_path / "zero" / "part.int8.onnx", external_data=external, fp32_modules=("companion",))
    full = make_int8(src, tmp_path / "zero" / "all.int8.onnx", external_data=external)
    run = {p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
           for p in (part, full)}
    assert np.abs(run[part] - want).max() < 1e-5
    assert np.abs(run[full] - want).max() > 1e-3


def test_a_module_that_is_not_there_is_refused_by_name(tmp_path: Path) -> None:
    src, _, _ = _export(tmp_path)
    with pytest.raises(ValueError, match=r"'companon'.*top-level modules: companion, lm"):
        make_int8(src, tmp_path / "model.int8.onnx", fp32_modules=("companon",))
    assert not (tmp_path / "model.int8.onnx").exists()


def test_torchscript_style_node_names_and_graphs_without_modules(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w = [numpy_helper.from_array(rng.normal(size=(8, 8)).astype(np.float32), f"w{i}") for i in range(3)]
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["a"], name="/lm/fc/MatMul"),
             helper.make_node("MatMul", ["a", "w1"], ["b"], name="/companion/model/layers.0/fc/MatMul"),
             helper.make_node("MatMul", ["b", "w2"], ["y"], name="/head/MatMul")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8])], w)
    path = tmp_path / "ts.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert module_nodes(path, ("companion",)) == ["/companion/model/layers.0/fc/MatMul"]
    assert module_nodes(path, ("companion.model.layers.0",)) == ["/companion/model/layers.0/fc/MatMul"]
    with pytest.raises(ValueError, match="no MatMul/Gemm node .* module 'companion.model.layers.1'"):
        module_nodes(path, ("companion.model.layers.1",))

    for n in graph.node:  # names that record no module: the choice cannot be made, and says so
        n.name = n.output[0]
    anon = tmp_path / "anon.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(anon))
    with pytest.raises(ValueError, match="records no torch module"):
        module_nodes(anon, ("companion",))
