"""ONNX export of a zero-shot scorer (training/zeroshot.py): the LM(s) and the statistic in one graph.

Inputs ``input_ids`` and ``attention_mask`` (N, T) int64 with dynamic N and T; one output ``score`` (N,)
float32 (larger = more AI-like), so the runtime scores the bundle like any other (``output_kind: "score"``).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["check_zeroshot_parity", "export_zeroshot_onnx"]

log = logging.getLogger(__name__)

INPUT_NAMES = ["input_ids", "attention_mask"]
OUTPUT_NAME = "score"


def export_zeroshot_onnx(model: Any, path: str | Path, opset: int = 18, vocab_low: int = 4) -> tuple[Path, str]:
    """Export ``model`` (a zero-shot ``nn.Module``, on CPU in float32) to ``path``; returns (path, exporter).

    Tries the dynamo exporter (``torch.onnx.export(..., dynamo=True)``) with dynamic batch and sequence
    dims, traced on a (2, 8) example; falls back to the TorchScript exporter (``dynamo=False``) if that
    fails. ``exporter`` is ``"dynamo"`` or ``"torchscript"``: record it in the bundle's provenance. Weights
    are stored inside the file (single-file bundle) unless the model exceeds 2 GB, where ONNX needs
    external data next to the file.
    """
    import torch

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    vocab = int(getattr(model, "vocab", 100))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(min(vocab_low, vocab - 1), vocab, (2, 8), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    external = n_bytes >= 2_000_000_000
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (ids, mask),
                str(out),
                input_names=INPUT_NAMES,
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
                opset_version=opset,
                dynamo=True,
                external_data=external,
                verbose=False,
            )
        exporter = "dynamo"
    except Exception as e:  # pragma: no cover - depends on the torch version
        log.warning("dynamo ONNX export failed (%s: %s); falling back to the TorchScript exporter",
                    type(e).__name__, str(e)[:300])
        with torch.no_grad():
            torch.onnx.export(
                model,
                (ids, mask),
                str(out),
                input_names=INPUT_NAMES,
                output_names=[OUTPUT_NAME],
                dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                              "attention_mask": {0: "batch", 1: "sequence"},
                              OUTPUT_NAME: {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        exporter = "torchscript"
    return out, exporter


def check_zeroshot_parity(
    model: Any, onnx_path: str | Path, input_ids: np.ndarray, attention_mask: np.ndarray
) -> float:
    """Largest |ONNX Runtime - torch| over a batch of (N, T) int64 inputs (NaN positions must agree)."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run([OUTPUT_NAME], {"input_ids": input_ids, "attention_mask": attention_mask})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(input_ids), torch.from_numpy(attention_mask)).float().numpy()
    if not np.array_equal(np.isnan(got), np.isnan(want)):
        return float("inf")
    ok = ~np.isnan(want)
    return float(np.max(np.abs(got[ok] - want[ok]))) if ok.any() else 0.0
