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


def build_zeroshot_bundle(
    model: Any,
    tokenizer: Any,
    text_spec: Any,
    out_dir: str | Path,
    cal_texts: list[str],
    cal_labels: list[int] | np.ndarray,
    name: str = "",
    targets: tuple[float, ...] = (0.01, 0.05),
    provenance: dict[str, Any] | None = None,
    threads: int | None = None,
) -> Path:
    """Export a zero-shot scorer and write a complete bundle in ``out_dir`` (a new or empty folder).

    ``tokenizer`` is the LM's Hugging Face fast tokenizer (its backend is saved as tokenizer.json);
    ``text_spec`` an ``aigc._text.TextSpec`` (``training.zeroshot.text_spec_for``). The calibration texts
    are scored through the runtime itself (``aigc.load(...).raw_scores``: the real windowing), then Platt
    calibration and the ``fpr@X%`` / ``balanced`` thresholds are fitted on them. Returns the bundle folder.
    """
    import datetime
    import platform

    import torch

    from aigc import _calibration, _thresholds
    from aigc._bundle import write_bundle
    from aigc._detector import load

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"{out}: not empty; a bundle is written into a new or empty folder")
    model = model.float().cpu().eval()
    _, exporter = export_zeroshot_onnx(model, out / "model.onnx")
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    backend.save(str(out / text_spec.tokenizer))
    stat = type(model).__name__
    spec: dict[str, Any] = {
        "name": name or f"zero-shot {stat}",
        "modality": "text",
        "labels": ["human", "ai"],
        "model": {
            "variants": {"fp32": "model.onnx"},
            "inputs": [{"name": n, "rank": 2, "dtype": "int64"} for n in INPUT_NAMES],
            "outputs": [{"name": OUTPUT_NAME, "rank": 1}],
            "output_kind": "score",
        },
        "preprocessing": text_spec.to_dict(),
        "calibration": {"method": "none", "params": {}},
        "thresholds": {"provisional": {"value": 0.5, "n_human": 0, "achieved_fpr": 0.0}},
        "provenance": {
            "config": {"statistic": stat},
            "data_fingerprint": "",
            "source_revision": "",
            "packages": {"torch": torch.__version__, "python": platform.python_version()},
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "exporter": f"export.zeroshot ({exporter})",
            **(provenance or {}),
        },
    }
    write_bundle(out, spec)
    det = load(out, providers="cpu", threads=threads)
    raw, errors = det.raw_scores(list(cal_texts))
    y = np.asarray(cal_labels, dtype=np.int64)
    ok = np.isfinite(raw)
    if ok.sum() < len(raw):
        log.warning("%d calibration texts could not be scored (%s)", int((~ok).sum()),
                    next((e for e in errors if e), "NaN score"))
    cal = _calibration.fit_calibration(raw[ok], y[ok], method="platt")
    p = _calibration.apply_calibration(raw[ok], cal)
    spec["calibration"] = cal
    spec["thresholds"] = _thresholds.choose_thresholds(p, y[ok], targets=targets)
    write_bundle(out, spec, overwrite=True)
    return out
