"""ONNX external data in a bundle: the weights of a graph in one file beside it, ``<graph>.data``.

A protobuf file holds under 2 GB, so a large graph (an fp32 pair of 0.5B + 1.5B LMs) keeps its
initializers in ``model.onnx.data`` (``model.int8.onnx.data``, ...), one file per graph, at the top of
the bundle, hashed in ``files`` like every other file and listed per variant in ``model.external_data``
(docs/bundle.md). Only export needs ``onnx`` here; the runtime reads the files through ONNX Runtime.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["EXTERNAL_DATA_MIN_BYTES", "SIZE_THRESHOLD", "consolidate", "data_file_name", "external_locations", "resave",
           "use_external_data"]

log = logging.getLogger(__name__)

EXTERNAL_DATA_MIN_BYTES = 256 << 20  # "auto": weights of 256 MiB and more go to external data (export memory)
# initializers smaller than this stay inside the graph file (onnx's default): ONNX Runtime's shape
# inference reads small constants (a Slice's starts, a Reshape's shape) only from the graph file
SIZE_THRESHOLD = 1024
_SHAPE_BYTES = 1024
_FLOATS = (1, 10, 11, 16)  # onnx.TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16


def data_file_name(graph_file: str | Path) -> str:
    """The external data file of a graph file: ``model.onnx`` -> ``model.onnx.data``."""
    return Path(graph_file).name + ".data"


def use_external_data(policy: str, weight_bytes: int) -> bool:
    """``policy``: ``always``, ``never``, or ``auto`` (from :data:`EXTERNAL_DATA_MIN_BYTES` of weights)."""
    if policy not in ("auto", "always", "never"):
        raise ValueError(f"external_data: found {policy!r}, expected auto|always|never")
    return policy == "always" or (policy == "auto" and weight_bytes >= EXTERNAL_DATA_MIN_BYTES)


def external_locations(path: str | Path) -> list[str]:
    """The distinct external data files the graph at ``path`` refers to (relative names), in order."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    model = onnx.load(str(path), load_external_data=False)
    out: list[str] = []
    for t in _get_all_tensors(model):
        if uses_external_data(t):
            loc = next(e.value for e in t.external_data if e.key == "location")
            if loc not in out:
                out.append(loc)
    return out


def resave(model: Any, path: str | Path, external: bool, size_threshold: int | None = None) -> Path:
    """Save the ``onnx.ModelProto`` ``model`` at ``path``: inline, or with every initializer of at least
    ``size_threshold`` bytes (default :data:`SIZE_THRESHOLD`; 0: all of them) in the one file
    :func:`data_file_name` beside it (replaced if present). Integer tensors under 1 KB stay inline
    whatever the threshold: they are shapes and axes that shape inference must read from the graph."""
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    path = Path(path)
    data = path.with_name(data_file_name(path))
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    if external:
        threshold = SIZE_THRESHOLD if size_threshold is None else size_threshold
        convert_model_to_external_data(model, all_tensors_to_one_file=True, location=data.name,
                                       size_threshold=threshold, convert_attribute=False)
        for t in model.graph.initializer:
            if _shape_like(t) and t.external_data:
                del t.external_data[:]
                t.data_location = onnx.TensorProto.DEFAULT
    onnx.save_model(model, str(path))
    return path


def _shape_like(t: Any) -> bool:
    """A small integer tensor (a shape, axes, indices) that shape inference reads."""
    import onnx

    return t.data_type not in _FLOATS and _nbytes(t) < _SHAPE_BYTES and t.data_type != onnx.TensorProto.UNDEFINED


def consolidate(path: str | Path, external: bool, size_threshold: int | None = None) -> list[str]:
    """Make the graph at ``path`` inline (``external`` False), or keep every initializer of at least
    ``size_threshold`` bytes (default :data:`SIZE_THRESHOLD`) in its one data file; rewrite it only when
    it is not so already. Returns the external data files it now uses."""
    path = Path(path)
    threshold = SIZE_THRESHOLD if size_threshold is None else size_threshold
    locs = external_locations(path)
    want = [data_file_name(path)] if external else []
    if locs == want and not (external and _inline_bytes_over(path, threshold)):
        return locs
    if external and not locs and not _inline_bytes_over(path, threshold):
        return locs  # nothing big enough to move out
    import onnx

    log.info("%s: rewriting %s external data (%s -> %s)", path.name, "with" if external else "without", locs, want)
    model = onnx.load(str(path), load_external_data=True)
    for loc in locs:
        if loc != data_file_name(path):
            (path.parent / loc).unlink(missing_ok=True)
    resave(model, path, external, threshold)
    del model
    if not external:
        path.with_name(data_file_name(path)).unlink(missing_ok=True)
    return external_locations(path)


def _inline_bytes_over(path: Path, size_threshold: int) -> bool:
    """Whether an initializer of at least ``size_threshold`` bytes is still inside the graph file."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    model = onnx.load(str(path), load_external_data=False)
    return any(not uses_external_data(t) and _nbytes(t) >= size_threshold and not _shape_like(t)
               for t in model.graph.initializer)


def _nbytes(t: Any) -> int:
    import numpy as np
    from onnx import helper

    if t.raw_data:
        return len(t.raw_data)
    n = int(np.prod(t.dims)) if len(t.dims) else 1
    return n * np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
