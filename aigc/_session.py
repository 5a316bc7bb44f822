"""The one place where ONNX Runtime sessions are created: providers validated, threads set."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["ProviderError", "create_session", "resolve_providers"]

# the same command as README's Install section: the CPU and GPU wheels install the same `onnxruntime`
# module, and an extra cannot remove the CPU one
GPU_INSTALL_HINT = "pip uninstall -y onnxruntime && pip install onnxruntime-gpu"

log = logging.getLogger("aigc")

_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "gpu": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}


class ProviderError(RuntimeError):
    """A requested execution provider is not available in this onnxruntime build."""


def resolve_providers(
    providers: Sequence[str] | str | None, allow_fallback: bool = False
) -> list[str]:
    """Turn user names ("cuda", "CUDAExecutionProvider", ...) into available ORT provider names.

    ``None`` picks CUDA when this onnxruntime has it, else CPU. A provider that is not available
    raises :class:`ProviderError` listing what is, unless ``allow_fallback``: then it is dropped
    with a warning in the log, and CPU is used when nothing else remains.
    """
    import onnxruntime as ort

    available = list(ort.get_available_providers())
    if providers is None:
        return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available] or available
    if isinstance(providers, str):
        providers = [p.strip() for p in providers.split(",") if p.strip()]
    wanted = [_ALIASES.get(p.lower(), p) for p in providers]
    out: list[str] = []
    for p in wanted:
        if p in available:
            out.append(p)
        elif allow_fallback:
            log.warning("execution provider %s is not available (have %s); falling back", p, available)
        else:
            raise ProviderError(
                f"execution provider {p!r} is not available in this onnxruntime (available: {available}); "
                f"for CUDA: {GPU_INSTALL_HINT} (README, Install), "
                "or ask for a fallback to CPU (allow_fallback=True / --allow-fallback)"
            )
    if not out:
        out = ["CPUExecutionProvider"]
        log.warning("no requested provider is available; using CPUExecutionProvider")
    elif "CPUExecutionProvider" not in out and "CPUExecutionProvider" in available:
        out.append("CPUExecutionProvider")
    return out


def create_session(
    model_path: str | os.PathLike[str],
    providers: Sequence[str] | str | None = None,
    threads: int | None = None,
    allow_fallback: bool = False,
) -> Any:
    """Create an ``onnxruntime.InferenceSession`` with validated providers and ``threads`` intra-op threads.

    ``threads=None`` leaves ONNX Runtime's default (one per physical core).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads: found {threads}, expected >= 1")
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # Idle ORT threads must not spin: image decoding runs on other threads at the same time.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    provs = resolve_providers(providers, allow_fallback)
    sess = ort.InferenceSession(str(Path(model_path)), sess_options=opts, providers=provs)
    got = sess.get_providers()
    if provs[0] != "CPUExecutionProvider" and provs[0] not in got:
        if not allow_fallback:
            raise ProviderError(f"{provs[0]} failed to initialise (session has {got}); ask for a fallback to use CPU")
        log.warning("%s failed to initialise; running on %s", provs[0], got)
    return sess
