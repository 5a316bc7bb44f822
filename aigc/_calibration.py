"""Calibration: map a detector's raw score s (log-odds for logit models) to a calibrated P(ai).

``apply_calibration`` is what the runtime calls; the ``fit_*`` functions (numpy only) are what
export calls on a held-out split. The parameter layouts are those of docs/bundle.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["apply_calibration", "sigmoid"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function (float64)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def apply_calibration(scores: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """Raw scores (n,) -> calibrated P(ai) (n,) by the bundle's ``calibration`` object."""
    s = np.asarray(scores, dtype=np.float64)
    method = calibration.get("method", "none")
    p = calibration.get("params", {})
    if method == "none":
        return sigmoid(s)
    if method == "temperature":
        return sigmoid(s / float(p["temperature"]))
    if method == "platt":
        return sigmoid(float(p["a"]) * s + float(p["b"]))
    if method == "isotonic":
        return np.clip(np.interp(s, np.asarray(p["x"], float), np.asarray(p["y"], float)), 0.0, 1.0)
    raise ValueError(f"calibration.method: found {method!r}, expected none|temperature|platt|isotonic")
