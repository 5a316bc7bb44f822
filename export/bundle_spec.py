"""The parts of bundle.json that export writes before anything is scored: the graph's inputs and outputs,
the package versions, the provenance, and the provisional spec (calibration ``none``, a placeholder
threshold) under which parity and the calibration scores are computed."""

from __future__ import annotations

import datetime
import platform
from collections.abc import Sequence
from typing import Any

__all__ = ["io_spec", "packages", "provisional_spec"]


def packages() -> dict[str, str]:
    """Versions of Python and of the packages that shape an export (missing ones left out)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for p in ("torch", "onnx", "onnxruntime", "onnxscript", "numpy", "tokenizers", "transformers", "timm"):
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    try:
        import aigc

        out["aigc"] = aigc.__version__
    except Exception:  # pragma: no cover
        pass
    return out


def io_spec(modality: str, input_names: Sequence[str], output_kind: str) -> dict[str, Any]:
    """The graph's ``inputs`` and ``outputs`` as bundle.json records them (name, rank, dtype)."""
    if modality == "image":
        inputs = [{"name": input_names[0] if input_names else "pixel_values", "rank": 4, "dtype": "float32"}]
    else:
        inputs = [{"name": n, "rank": 2, "dtype": "int64"} for n in input_names]
    out_name = "logits" if output_kind == "logits" else "score"
    return {"inputs": inputs, "outputs": [{"name": out_name, "rank": 2 if output_kind == "logits" else 1}]}


def provisional_spec(
    run: Any,
    name: str | None,
    labels: Sequence[str],
    variant_files: dict[str, str],
    io: dict[str, Any],
    preprocessing: dict[str, Any],
    exporter: str,
    calibration_source: dict[str, Any],
) -> dict[str, Any]:
    """bundle.json before calibration: calibration ``none`` and a placeholder threshold, so that the
    runtime can load the bundle and return raw scores; ``run`` is an ``export.bundle_build.RunLike``."""
    prov_run = dict(run.provenance or {})
    return {
        "format_version": 1,
        "name": name or str(run.config.get("name") or prov_run.get("model") or f"{run.modality} detector"),
        "modality": run.modality,
        "labels": list(labels),
        "model": {
            "variants": dict(variant_files),
            "inputs": io["inputs"],
            "outputs": io["outputs"],
            "output_kind": run.output_kind,
        },
        "preprocessing": preprocessing,
        "calibration": {"method": "none", "params": {}},
        "thresholds": {"provisional": {"value": 0.5, "n_human": 0, "achieved_fpr": 0.0}},
        "provenance": {
            "config": run.config,
            "data_fingerprint": prov_run.get("data_fingerprint", ""),
            "source_revision": prov_run.get("source_revision", ""),
            "packages": packages(),
            "training_packages": prov_run.get("packages") or {},
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "exporter": f"torch.onnx {exporter}"
            + (" (dynamo failed; TorchScript fallback)" if exporter == "torchscript" else ""),
            "trained": prov_run.get("created", ""),
            "calibration_data": calibration_source,
        },
    }
