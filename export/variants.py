"""Reduced-precision variants of an exported fp32 graph: int8 (CPU) and fp16 (GPU).

- int8: dynamic quantization (weights int8 offline, activations quantized per batch at run time) of
  ``MatMul`` and ``Gemm`` only. Convolutions stay fp32: dynamic int8 ``ConvInteger`` runs several
  times slower than MLAS's fp32 convolution on CPU and costs accuracy (bench/ measures it), so int8
  pays off for transformer text models, not for CNNs. For text encoders, ONNX Runtime's transformer
  fusions (GELU, SkipLayerNormalization, ...) run on the fp32 graph first and int8 quantizes the fused
  graph, which is faster than quantizing the plain graph (BENCHMARKS.md); the fusions are kept only when
  the fused fp32 graph gives the plain one's outputs to 1e-4 on sample inputs. An image int8 variant
  that is no smaller than fp32 (a CNN) is still written when asked, with a warning and an
  ``aigc.int8.note`` in its metadata saying why it gains nothing; the quickstart no longer asks for it.
  A graph whose weights are in external data (an LM) is quantized by :mod:`export.int8_stream` instead of
  ``quantize_dynamic``: the same operators, one weight in memory at a time.
- fp16: every float initializer and op in float16, with casts at the graph's inputs and outputs so
  the runtime still feeds and reads float32. Uses ``onnxruntime.transformers.float16`` when it is
  importable (it is part of the onnxruntime wheel), else a plain converter written with ``onnx``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from aigc._printable import printable

__all__ = ["INT8_OPS", "VARIANT_FILES", "fuse_text_encoder", "make_fp16", "make_int8", "make_variant", "module_nodes"]

log = logging.getLogger(__name__)

VARIANT_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}
INT8_OPS = ("MatMul", "Gemm")


def _sample_text_feeds(path: Path) -> dict[str, object]:
    """Two rows of 16 tokens (the second padded) for a text graph's inputs, ids below every embedding table."""
    import numpy as np
    import onnx

    model = onnx.load(str(path))
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    tables = [inits[n.input[0]][0] for n in model.graph.node if n.op_type == "Gather" and n.input[0] in inits
              and len(inits[n.input[0]]) == 2]
    high = max(3, min(tables)) if tables else 100
    rng = np.random.default_rng(0)
    ids = rng.integers(min(2, high - 1), high, (2, 16)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 12:] = 0
    pool = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return {i.name: pool[i.name] for i in model.graph.input if i.name in pool}


def fuse_text_encoder(src: str | Path, dst: str | Path, atol: float = 1e-4) -> dict[str, int] | None:
    """ONNX Runtime's BERT-family fusions on the fp32 text graph ``src``, written to ``dst``.

    Returns the fused-operator counts, or ``None`` (and writes nothing) when nothing fused, the
    optimizer failed, or the fused graph's outputs differ from ``src``'s by more than ``atol`` on
    sample inputs: a graph that is not a BERT-like encoder is then quantized as it is.
    """
    import numpy as np

    from aigc._session import create_session

    src, dst = Path(src), Path(dst)
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        opt = optimize_model(str(src), model_type="bert", num_heads=0, hidden_size=0, opt_level=0)
        stats = {k: int(v) for k, v in opt.get_fused_operator_statistics().items() if v}
        if not stats:
            return None
        opt.save_model_to_file(str(dst))
        feeds = _sample_text_feeds(src)
        a = create_session(src, "cpu", 1).run(None, feeds)[0]
        b = create_session(dst, "cpu", 1).run(None, feeds)[0]
        diff = float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
    except Exception as e:
        log.info("transformer fusions skipped (%s: %s)", type(e).__name__, printable(str(e)[:300]))
        dst.unlink(missing_ok=True)
        return None
    if not diff <= atol:
        log.warning("transformer fusions changed the outputs by %.3g (> %g); quantizing the plain graph", diff, atol)
        dst.unlink(missing_ok=True)
        return None
    return stats


def make_int8(
    src: str | Path,
    dst: str | Path,
    op_types: tuple[str, ...] = INT8_OPS,
    per_channel: bool = True,
    fuse_text: bool = False,
    external_data: bool = False,
    reduce_range: bool = True,
    fp32_modules: tuple[str, ...] = (),
) -> Path:
    """Dynamic int8 quantization of ``op_types`` (default MatMul/Gemm) of the fp32 graph ``src`` into ``dst``.

    Weights are signed int8 (S8 weights with U8 activations: the VNNI/AVX2 path of MLAS), one scale per
    output channel by default: on a fine-tuned MiniLM-L6 (600 dev texts) per-tensor scales cost 0.007
    AUROC, per-channel 0.0005, at the same speed.
    ``reduce_range`` (default): weights in -64..64 instead of -127..127. On an x86 CPU without VNNI (AVX2 only)
    ONNX Runtime multiplies U8 activations by S8 weights with VPMADDUBSW, which saturates a sum of two
    products at 32,767; 255 x 127 x 2 overflows it, 255 x 64 x 2 does not. With the full range the same
    int8 file gives other scores on such a CPU than on one with VNNI (a CNN head's probabilities moved by
    0.09 on an AVX2-only machine here, and three distinct texts' scores collapsed onto one), so its
    calibration and thresholds, fitted on the exporting machine, did not hold on the serving one.
    ``op_types`` is a parameter so that the benchmark can measure what quantizing ``Conv`` costs.
    ``fuse_text``: run :func:`fuse_text_encoder` first (text encoders); the fusions that were applied
    are recorded in the int8 file's metadata (``aigc.int8.fusions``).
    ``external_data``: ``src`` keeps its weights in external data and ``dst`` does too (one
    ``<dst>.data``). The graph is then quantized by :func:`export.int8_stream.quantize_dynamic_streaming`,
    one weight in memory at a time, into the same operator pattern (the fusions are skipped: they load the
    whole graph, and causal LMs gain nothing from them).
    ``fp32_modules``: torch module paths (``companion``, ``lm.model.layers.0``) whose ``op_types`` nodes stay
    fp32 (:func:`module_nodes` finds them); recorded as ``aigc.int8.fp32_modules`` in the int8 file's metadata.
    A two-LM graph can keep its small LM exact while the large one, which costs most of the time, goes int8.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    kept = module_nodes(src, fp32_modules, op_types) if fp32_modules else []
    if external_data:  # weights over 256 MiB: quantize_dynamic would hold the whole graph several times over
        from .int8_stream import quantize_dynamic_streaming

        quantize_dynamic_streaming(src, dst, op_types, per_channel, nodes_to_exclude=kept, reduce_range=reduce_range)
        if fp32_modules:
            _check_kept(dst, kept, op_types)
            _set_props(dst, {"aigc.int8.fp32_modules": ",".join(fp32_modules)}, external=True)
        return dst
    fuse_text = fuse_text and not fp32_modules  # the fusions rename the nodes that fp32_modules names
    fused: dict[str, int] | None = None
    with tempfile.TemporaryDirectory(prefix="aigc-int8-") as tmp:
        src_for_q = Path(src)
        if fuse_text:
            fused = fuse_text_encoder(src, Path(tmp) / "fused.onnx")
            if fused:
                src_for_q = Path(tmp) / "fused.onnx"
        if not fused:
            pre = Path(tmp) / "pre.onnx"
            try:  # shape inference + graph cleanup first: quantization needs shapes for Gemm/MatMul
                from onnxruntime.quantization.shape_inference import quant_pre_process

                quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
                src_for_q = pre
            except Exception as e:  # pragma: no cover - depends on the graph
                log.info("quant_pre_process skipped (%s: %s)", type(e).__name__, printable(e))
        quantize_dynamic(
            str(src_for_q),
            str(dst),
            # ONNX Runtime rewrites each Gemm into "<name>_MatMul" + "<name>_Add" before it reads the exclusions
            nodes_to_exclude=_not_2d_weight_nodes(src_for_q, op_types) + kept + [f"{k}_MatMul" for k in kept],
            op_types_to_quantize=list(op_types),
            per_channel=per_channel,
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
            # contrib ops of the fused graph have no ONNX shape inference: their outputs are float
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    props = {}
    if fp32_modules:
        _check_kept(dst, kept, op_types)
    if fused:
        props["aigc.int8.fusions"] = ",".join(f"{k}:{v}" for k, v in sorted(fused.items()))
    if fp32_modules:
        props["aigc.int8.fp32_modules"] = ",".join(fp32_modules)
    if props:
        _set_props(dst, props)
    return dst


def _check_kept(path: Path, kept: list[str], op_types: tuple[str, ...]) -> None:
    """Raise ValueError unless every node in ``kept`` is still an fp32 ``op_types`` node of the int8 graph."""
    import onnx

    there = {n.name for n in onnx.load(str(path), load_external_data=False).graph.node if n.op_type in op_types}
    lost = [n for n in kept if n not in there and f"{n}_MatMul" not in there]  # a Gemm kept as MatMul + Add
    if lost:
        raise ValueError(f"int8: {len(lost)} of the {len(kept)} nodes to keep in fp32 are gone from {path.name} "
                         f"(first: {lost[0]!r}); the quantizer renamed or replaced them")


def _set_props(path: Path, props: dict[str, str], external: bool = False) -> None:
    """Add ``props`` to the metadata of the graph ``path`` (its external data, if any, untouched)."""
    import onnx

    model = onnx.load(str(path), load_external_data=not external)
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, **props})
    onnx.save(model, str(path))


def _node_module(node: object) -> str | None:
    """The torch module path that produced ``node``: the dynamo exporter's ``pkg.torch.onnx.name_scopes``
    metadata (its innermost module), else a TorchScript-style name ``/lm/model/layers.0/self_attn/MatMul``."""
    import ast

    for p in getattr(node, "metadata_props", []):
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = [str(x) for x in ast.literal_eval(p.value) if str(x)]
            except (ValueError, SyntaxError):
                return None
            return scopes[-2] if len(scopes) > 1 else None  # the last scope is the op itself
    name = getattr(node, "name", "")
    if name.startswith("/") and name.count("/") > 1:
        return ".".join(name.strip("/").split("/")[:-1])
    return None


def module_nodes(path: str | Path, modules: tuple[str, ...], op_types: tuple[str, ...] = INT8_OPS) -> list[str]:
    """Names of the ``op_types`` nodes of the graph ``path`` produced inside any of the torch ``modules``
    (a module path and everything under it: ``companion`` holds ``companion.model.layers.0.mlp``).

    Raises ValueError, naming the graph's top-level modules, when no such node lies under one of
    ``modules`` (a misspelt name would otherwise quantize everything), or when the graph records no module
    of its nodes (an exporter that keeps neither name scopes nor scoped node names).
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    where = {n.name: _node_module(n) for n in graph.node if n.op_type in op_types}
    known = sorted({m.split(".")[0] for m in where.values() if m})
    if not known:
        raise ValueError(f"int8: {Path(path).name} records no torch module for its {'/'.join(op_types)} nodes; "
                         "fp32 modules cannot be chosen (export it with the dynamo exporter)")
    found = []
    for mod in modules:
        hits = [n for n, m in where.items() if m and (m == mod or m.startswith(mod + "."))]
        if not hits:
            raise ValueError(f"int8: no {'/'.join(op_types)} node of {Path(path).name} lies in module {mod!r}; "
                             f"its top-level modules: {', '.join(known)}")
        found += hits
    return sorted(set(found))


def _not_2d_weight_nodes(path: Path, op_types: tuple[str, ...]) -> list[str]:
    """``op_types`` nodes whose constant weight is not a matrix (a linear head ``z @ w`` with ``w`` of
    shape (F,)): per-channel int8 gives them a zero point that ONNX Runtime refuses, so they stay fp32."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    ranks = {i.name: len(i.dims) for i in model.graph.initializer}
    return [n.name for n in model.graph.node
            if n.op_type in op_types and len(n.input) > 1 and ranks.get(n.input[1], 2) != 2]


def _fp16_with_onnx(model: object) -> object:
    """Fallback converter: float initializers/constants to float16, Cast nodes at inputs and outputs."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    assert isinstance(model, onnx.ModelProto)
    g = model.graph
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(init).astype(np.float16)
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
    for node in g.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.t.data_type == TensorProto.FLOAT:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
        if node.op_type == "Cast":
            for a in node.attribute:
                if a.name == "to" and a.i == TensorProto.FLOAT:
                    a.i = TensorProto.FLOAT16
    new_nodes = []
    for inp in g.input:
        if inp.type.tensor_type.elem_type == TensorProto.FLOAT:
            cast_name = inp.name + "_fp16"
            for node in g.node:
                for i, n in enumerate(node.input):
                    if n == inp.name:
                        node.input[i] = cast_name
            new_nodes.append(helper.make_node("Cast", [inp.name], [cast_name], to=TensorProto.FLOAT16))
    tail = []
    for out in g.output:
        if out.type.tensor_type.elem_type == TensorProto.FLOAT:
            inner = out.name + "_fp16"
            for node in g.node:
                for i, n in enumerate(node.output):
                    if n == out.name:
                        node.output[i] = inner
            tail.append(helper.make_node("Cast", [inner], [out.name], to=TensorProto.FLOAT))
    nodes = new_nodes + list(g.node) + tail
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    return model


def _toposort(model: object) -> None:
    """Reorder the main graph's nodes topologically (the fp16 converter appends its input casts last)."""
    import onnx

    assert isinstance(model, onnx.ModelProto)
    g = model.graph
    known = {i.name for i in g.input} | {i.name for i in g.initializer} | {""}
    pending = list(g.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        rest = []
        for node in pending:
            if all(i in known for i in node.input):
                ordered.append(node)
                known.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):  # a cycle or an input from a subgraph scope: keep the order given
            ordered.extend(rest)
            break
        pending = rest
    del g.node[:]
    g.node.extend(ordered)


def make_fp16(src: str | Path, dst: str | Path, external_data: bool = False) -> Path:
    """float16 copy of the fp32 graph ``src`` in ``dst``; inputs and outputs stay float32 (casts inside).
    ``external_data``: weights in ``<dst>.data``."""
    import onnx

    from .external import resave

    dst = Path(dst)
    model = onnx.load(str(src))
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # LayerNormalization/Softmax-style reductions lose range in fp16 on some kernels: keep the default
        # op_block_list (ops without fp16 kernels) and the input/output types
        fp16 = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    except ImportError:
        fp16 = _fp16_with_onnx(model)
    _toposort(fp16)
    resave(fp16, dst, external_data)
    onnx.checker.check_model(str(dst))
    return dst


def make_variant(variant: str, src: str | Path, out_dir: str | Path, modality: str | None = None,
                 external_data: bool = False, int8_fp32_modules: tuple[str, ...] = ()) -> Path:
    """Write ``variant`` (``int8`` or ``fp16``) of the fp32 graph ``src`` into ``out_dir`` under its bundle name.

    ``modality="text"`` lets int8 try the transformer fusions first (:func:`fuse_text_encoder`).
    ``external_data``: ``src`` has its weights in external data, and the variant gets them in its own
    ``<file>.data``. ``int8_fp32_modules``: see :func:`make_int8`'s ``fp32_modules``.
    """
    if variant not in ("int8", "fp16"):
        raise ValueError(f"variant: found {variant!r}, expected int8 or fp16 (fp32 is the export itself)")
    dst = Path(out_dir) / VARIANT_FILES[variant]
    if variant == "fp16":
        return make_fp16(src, dst, external_data)
    make_int8(src, dst, fuse_text=modality == "text", external_data=external_data, fp32_modules=int8_fp32_modules)
    if modality == "image":
        _note_unhelpful_int8(Path(src), dst)
    return dst


def _note_unhelpful_int8(src: Path, dst: Path, min_saving: float = 0.1) -> None:
    """Say why an image int8 variant that saves nothing is there (a warning, and ``aigc.int8.note`` in its
    metadata): only MatMul/Gemm are int8, so a CNN keeps every convolution in fp32 and its int8 file is as
    large and as fast as fp32 (EfficientNet-Lite0: 183 vs 182 images/s at batch 1, BENCHMARKS.md). An image
    model made of MatMuls (ViT, CLIP) quantizes like a text encoder and gets no note."""
    import onnx

    ratio = dst.stat().st_size / max(1, src.stat().st_size)
    if ratio < 1.0 - min_saving:
        return
    note = (f"int8 of this image model is {ratio:.0%} of fp32's size and runs at fp32's speed: only MatMul/Gemm are "
            "quantized and its weights are in convolutions (dynamic int8 Conv runs about 12x slower on CPU, "
            "BENCHMARKS.md). It is there only because the export asked for it; serve fp32, and leave int8 out of "
            "--variants for image CNNs")  # fmt: skip
    log.warning("%s", note)
    model = onnx.load(str(dst))
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, "aigc.int8.note": note})
    onnx.save(model, str(dst))
