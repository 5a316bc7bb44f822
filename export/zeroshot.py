"""Zero-shot scorers (training/zeroshot.py) straight to a bundle, without a training run folder.

The generic path (``aigc train`` a ``zeroshot:*`` config, then ``aigc export``) needs nothing from this
file: ``export.onnx_export.export_text_model`` exports the LM(s) and the statistic as one graph
(``input_ids``, ``attention_mask`` (N, T) int64 -> ``score`` (N,) float32, larger = more AI-like) and
``export.bundle_build.build_bundle`` checks parity and calibrates it (Platt for ``output_kind: "score"``).
These two helpers wrap the same functions for a scorer built in Python (tests, benchmarks, notebooks).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["INPUT_NAMES", "OUTPUT_NAME", "build_zeroshot_bundle", "export_zeroshot_onnx"]

INPUT_NAMES = ["input_ids", "attention_mask"]
OUTPUT_NAME = "score"


def export_zeroshot_onnx(model: Any, path: str | Path, exporter: str = "auto") -> tuple[Path, str]:
    """Export a zero-shot scorer to ``path``; return ``(path, exporter)``, exporter ``"dynamo"`` or
    ``"torchscript"`` (the fallback when dynamo fails). Batch and sequence dims are dynamic; the model is
    exported on CPU in float32. Raises ``export.onnx_export.ExportError`` (e.g. weights over 2 GB)."""
    from .onnx_export import export_text_model

    return export_text_model(model, INPUT_NAMES, path, output_name=OUTPUT_NAME, output_kind="score",
                             vocab_size=getattr(model, "vocab", None), exporter=exporter)


@dataclass
class _ZeroShotRun:
    """The RunLike that ``build_bundle`` reads, for a scorer that has no run folder."""

    model: Any
    preprocessing: dict[str, Any]
    tokenizer_file: Path
    config: dict[str, Any]
    provenance: dict[str, Any]
    modality: str = "text"
    input_names: list[str] = field(default_factory=lambda: list(INPUT_NAMES))
    output_kind: str = "score"


def build_zeroshot_bundle(
    model: Any,
    tokenizer: Any,
    text_spec: Any,
    out_dir: str | Path,
    cal_texts: Sequence[str],
    cal_labels: Sequence[int] | np.ndarray,
    name: str = "",
    targets: Sequence[float] = (0.01, 0.05),
    threads: int | None = None,
    config: dict[str, Any] | None = None,
) -> Path:
    """Export a zero-shot scorer into a calibrated bundle at ``out_dir`` (must not exist) and return it.

    ``tokenizer``: the LM's Hugging Face fast tokenizer (or a ``tokenizers.Tokenizer``), saved as the
    bundle's tokenizer.json; ``text_spec``: an ``aigc._text.TextSpec`` (``training.zeroshot.text_spec_for``).
    ``build_bundle`` does the rest through the runtime: parity with torch on calibration texts (1e-4 on
    probabilities), Platt calibration and the ``fpr@X%`` / ``balanced`` thresholds fitted on the
    calibration texts' raw scores, and their support.
    """
    from .bundle_build import BuildOptions, build_bundle

    stat = type(model).__name__
    with tempfile.TemporaryDirectory(prefix="aigc-zeroshot-tok-") as tmp:
        tok_file = Path(tmp) / "tokenizer.json"
        getattr(tokenizer, "backend_tokenizer", tokenizer).save(str(tok_file))
        cfg = {"model": {"name": f"zeroshot:{stat}"}, **(config or {})}
        run = _ZeroShotRun(model.float().cpu().eval(), text_spec.to_dict(), tok_file, cfg,
                           {"config": cfg, "data_fingerprint": "", "source_revision": ""})
        opts = BuildOptions(targets=tuple(targets), name=name or f"zero-shot {stat}", threads=threads)
        return build_bundle(run, out_dir, list(cal_texts), np.asarray(cal_labels, dtype=np.int64), options=opts)
