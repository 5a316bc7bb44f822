"""Dynamic int8 quantization of a graph whose weights live in external data, one weight at a time.

``onnxruntime.quantization.quantize_dynamic`` loads the whole fp32 graph, its weights included, and keeps
several copies of them while it rewrites the graph: the int8 export of a Qwen2.5-0.5B features detector
peaked at 4.5x its 2.5 GB of weights (BENCHMARKS.md), so the 1.5B (6.7 GB) and the Binoculars pair (9.6 GB)
could not get an int8 variant on a 24 GB machine. This module writes the same kind of graph while it holds
one weight in memory at a time:

- the graph file is read without its external data (the protobuf alone, a few MB);
- each ``MatMul`` whose second input is a float32 matrix initializer (and each ``Gemm`` with such a ``B``,
  ``alpha = beta = 1``, no ``transA``) becomes ``DynamicQuantizeLinear`` (the activation, uint8, once per
  tensor however many MatMuls read it) -> ``MatMulInteger`` with the int8 weight -> ``Cast`` -> ``Mul`` by
  the product of the two scales (-> ``Add`` of Gemm's ``C``): the pattern ``quantize_dynamic`` writes and
  ONNX Runtime fuses into ``DynamicQuantizeMatMul`` when it loads the graph;
- weights are signed int8, symmetric (zero point 0), one scale per output channel (``per_channel``) or per
  tensor, in -64..64 (``reduce_range``, the default, as ``quantize_dynamic(reduce_range=True)``) or -127..127:
  see :func:`export.variants.make_int8` for why the full range gives CPU-dependent results;
- every initializer is then written to ``<dst>.data`` in turn: an int8 weight from its fp32 source read
  alone; any other external initializer copied byte for byte in 64 MiB pieces. Tensors of 1 MiB and more
  start on a 4,096-byte boundary; int8 weights under 1 KB stay in the graph file.

Peak memory is the largest single weight (fp32, plus its int8 copy), not the graph: for the 1.5B's
embedding-sized LM head, 0.93 GB + 0.23 GB.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["QUANTIZER_NAME", "quantize_dynamic_streaming"]

log = logging.getLogger(__name__)

QUANTIZER_NAME = "aigc-streaming-int8"
_ALIGN = 4096
_ALIGN_FROM = 1 << 20  # tensors of 1 MiB and more start on a page; smaller ones on 64 bytes
_COPY_BYTES = 64 << 20
_FLOAT = 1  # onnx.TensorProto.FLOAT
_INT8 = 3  # onnx.TensorProto.INT8


def _external(t: Any) -> dict[str, str]:
    return {e.key: e.value for e in t.external_data}


def _read_weight(t: Any, base: Path) -> np.ndarray:
    """The float32 array of initializer ``t``, read alone from its external file (or from the graph)."""
    from onnx import numpy_helper

    if t.data_location != 1:  # onnx.TensorProto.EXTERNAL
        return numpy_helper.to_array(t).astype(np.float32, copy=False)
    info = _external(t)
    n = int(np.prod(t.dims))
    arr = np.fromfile(base / info["location"], dtype="<f4", count=n, offset=int(info.get("offset", 0)))
    if arr.size != n:
        raise ValueError(f"initializer {t.name!r}: {base / info['location']} holds {arr.size} of its {n} floats")
    return arr.reshape(tuple(t.dims))


def _quantize(w: np.ndarray, per_channel: bool, qmax: int = 127) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 of the (K, N) matrix ``w`` in -qmax..qmax: (q int8 (K, N), scale float32 (N,) or ())."""
    if per_channel:
        amax = np.maximum(w.max(axis=0), -w.min(axis=0)).astype(np.float32)
    else:
        amax = np.asarray(max(float(w.max()), -float(w.min())), np.float32)
    scale = np.where(amax > 0, amax / float(qmax), 1.0).astype(np.float32)
    q = np.empty(w.shape, np.int8)
    rows = max(1, (16 << 20) // max(1, 4 * w.shape[1]))  # 16 MiB of rows at a time, one float temporary
    for r in range(0, w.shape[0], rows):
        tmp = np.divide(w[r: r + rows], scale)
        np.rint(tmp, out=tmp)
        np.clip(tmp, -qmax, qmax, out=tmp)
        q[r: r + rows] = tmp
    return q, scale


class _Writer:
    """Appends tensors to one external data file at aligned offsets and points their protos at it."""

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.path, self.f, self.offset = path, open(path, "wb"), 0

    def _start(self, length: int) -> int:
        pad = (-self.offset) % (_ALIGN if length >= _ALIGN_FROM else 64)
        if pad:
            self.f.write(b"\0" * pad)
            self.offset += pad
        return self.offset

    def _point(self, t: Any, start: int, length: int) -> None:
        import onnx

        del t.external_data[:]
        t.data_location = onnx.TensorProto.EXTERNAL
        for k, v in (("location", self.path.name), ("offset", str(start)), ("length", str(length))):
            t.external_data.add(key=k, value=v)

    def add_array(self, t: Any, arr: np.ndarray) -> None:
        data = np.ascontiguousarray(arr).tobytes()
        start = self._start(len(data))
        self.f.write(data)
        self.offset += len(data)
        t.ClearField("raw_data")
        self._point(t, start, len(data))

    def copy_external(self, t: Any, base: Path) -> None:
        info = _external(t)
        src, off = base / info["location"], int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else os.path.getsize(src) - off
        start = self._start(length)
        with open(src, "rb") as f:
            f.seek(off)
            left = length
            while left:
                piece = f.read(min(_COPY_BYTES, left))
                if not piece:
                    raise ValueError(f"initializer {t.name!r}: {src} ends before its {length} bytes")
                self.f.write(piece)
                left -= len(piece)
        self.offset += length
        self._point(t, start, length)

    def close(self) -> None:
        self.f.close()


def _names_read(graph: Any) -> set[str]:
    """Every tensor name a node of ``graph`` or of its subgraphs (If / Loop / Scan bodies) reads, and the outputs."""
    names = {o.name for o in graph.output}
    for n in graph.node:
        names.update(n.input)
        for a in n.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                names |= _names_read(sub)
    return names


def _weight_nodes(graph: Any, inits: dict[str, Any], op_types: tuple[str, ...],
                  exclude: set[str]) -> dict[int, tuple[str, bool]]:
    """Node index -> (weight initializer, transposed) for every node to quantize."""
    out = {}
    for i, n in enumerate(graph.node):
        if n.op_type not in op_types or n.name in exclude or len(n.input) < 2 or n.input[1] not in inits:
            continue
        w = inits[n.input[1]]
        if w.data_type != _FLOAT or len(w.dims) != 2:
            continue  # a 1-D head vector (z @ w) or a non-float weight stays as it is
        attrs = {a.name: a for a in n.attribute}
        trans_b = False
        if n.op_type == "Gemm":
            if ("transA" in attrs and attrs["transA"].i) or any(
                    k in attrs and abs(attrs[k].f - 1.0) > 0 for k in ("alpha", "beta")):
                continue
            trans_b = bool(attrs["transB"].i) if "transB" in attrs else False
        out[i] = (n.input[1], trans_b)
    return out


def _rewrite_nodes(graph: Any, targets: dict[int, tuple[str, bool]]) -> dict[str, tuple[str, bool]]:
    """Replace each target node by the dynamic-int8 pattern; return int8 weight name -> (fp32 source, transposed)."""
    from onnx import TensorProto, helper

    quantized_inputs: dict[str, tuple[str, str, str]] = {}
    weights: dict[str, tuple[str, bool]] = {}
    nodes = []
    for i, n in enumerate(graph.node):
        if i not in targets:
            nodes.append(n)
            continue
        wname, trans_b = targets[i]
        a, out = n.input[0], n.output[0]
        tag = n.name or out
        if a not in quantized_inputs:
            q = (f"{a}_quantized", f"{a}_scale", f"{a}_zero_point")
            nodes.append(helper.make_node("DynamicQuantizeLinear", [a], list(q), name=f"{a}_QuantizeLinear"))
            quantized_inputs[a] = q
        aq, ascale, azp = quantized_inputs[a]
        qname = f"{wname}{'_T' if trans_b else ''}_quantized"
        weights[qname] = (wname, trans_b)
        y = out if n.op_type == "MatMul" or len(n.input) < 3 or not n.input[2] else f"{tag}_no_bias"
        nodes += [
            helper.make_node("MatMulInteger", [aq, qname, azp, f"{qname}_zero_point"], [f"{tag}_int32"],
                             name=f"{tag}_MatMulInteger"),
            helper.make_node("Cast", [f"{tag}_int32"], [f"{tag}_float"], to=TensorProto.FLOAT, name=f"{tag}_Cast"),
            helper.make_node("Mul", [ascale, f"{qname}_scale"], [f"{tag}_scales"], name=f"{tag}_scales_Mul"),
            helper.make_node("Mul", [f"{tag}_float", f"{tag}_scales"], [y], name=f"{tag}_output_Mul"),
        ]
        if y != out:
            nodes.append(helper.make_node("Add", [y, n.input[2]], [out], name=f"{tag}_bias_Add"))
    del graph.node[:]
    graph.node.extend(nodes)
    return weights


def quantize_dynamic_streaming(src: str | Path, dst: str | Path, op_types: tuple[str, ...] = ("MatMul", "Gemm"),
                               per_channel: bool = True, nodes_to_exclude: list[str] | None = None,
                               reduce_range: bool = True) -> Path:
    """Write the dynamic-int8 copy of the graph ``src`` (weights in external data or inline) to ``dst``,
    its weights in ``<dst>.data``, holding one weight in memory at a time. Returns ``dst``.

    Initializers that only the quantized nodes read are dropped; one that another node reads too (a tied
    embedding) stays in fp32 beside its int8 copy. Raises ValueError when ``dst`` is ``src`` or an external
    file is shorter than its tensor says.
    """
    import onnx
    from onnx import helper

    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError(f"int8: destination {dst} is the source graph")
    model = onnx.load(str(src), load_external_data=False)
    if not any(o.domain in ("", "ai.onnx") and o.version >= 10 for o in model.opset_import):
        raise ValueError(f"int8: {src.name} has no ai.onnx opset >= 10 (MatMulInteger needs 10)")
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    targets = _weight_nodes(g, inits, op_types, set(nodes_to_exclude or []))
    weights = _rewrite_nodes(g, targets)
    still_read = _names_read(g)
    from .external import SIZE_THRESHOLD, data_file_name

    writer = _Writer(dst.with_name(data_file_name(dst)))
    kept = []
    try:
        for t in list(g.initializer):
            if t.name not in still_read:
                continue  # read only by the replaced nodes: its int8 copy follows
            if t.data_location == onnx.TensorProto.EXTERNAL:
                writer.copy_external(t, src.parent)
            elif len(t.raw_data) >= SIZE_THRESHOLD and t.data_type in (_FLOAT, 10, 11, 16):  # a large inline float
                writer.add_array(t, np.frombuffer(t.raw_data, np.uint8))
            kept.append(t)
        for qname, (wname, trans_b) in weights.items():
            w = _read_weight(inits[wname], src.parent)
            q, scale = _quantize(np.ascontiguousarray(w.T) if trans_b else w, per_channel, 64 if reduce_range else 127)
            del w
            qt = onnx.TensorProto(name=qname, data_type=_INT8, dims=q.shape)
            if q.nbytes >= SIZE_THRESHOLD:
                writer.add_array(qt, q)
            else:  # as small as a shape: inside the graph file, as onnx's own external-data writer keeps it
                qt.raw_data = q.tobytes()
            del q
            kept += [onnx.numpy_helper.from_array(scale, f"{qname}_scale"),
                     onnx.numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{qname}_zero_point"), qt]
    finally:
        writer.close()
    del g.initializer[:]
    g.initializer.extend(kept)
    del g.value_info[:]  # shapes of replaced outputs: ONNX Runtime infers them again
    helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                   "aigc.int8.quantizer": QUANTIZER_NAME,
                                   "aigc.int8.per_channel": str(bool(per_channel)).lower()})
    onnx.save_model(model, str(dst))
    log.info("int8 (streaming): %d of %d weight nodes quantized into %s", len(targets),
             sum(n.op_type in op_types for n in g.node) + len(targets), writer.path.name)
    return dst
