"""Detection and calibration metrics (numpy only). Shared by export's calibration and by reports.

Conventions: ``y`` holds 0 (human) / 1 (AI); ``p`` holds P(ai) in [0, 1]; ``s`` any score where larger
means more AI-like. Functions that need both classes raise ValueError naming what is missing.
"""

from __future__ import annotations

import numpy as np

__all__ = ["auroc", "brier", "ece", "nll"]


def _check(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(np.int64).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels have {y.size} items but scores have {s.size}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN (drop failed items first)")
    return y, s


def auroc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half), by the Mann-Whitney rank statistic."""
    y, s = _check(y, s)
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        raise ValueError(f"AUROC needs both classes: found {n0} human and {n1} AI items")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2.0) / (n0 * n1))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of P(ai) against the 0/1 label."""
    y, p = _check(y, p)
    return float(np.mean((p - y) ** 2))


def nll(y: np.ndarray, p: np.ndarray, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood (natural log) of the labels under P(ai), clipped at ``eps``."""
    y, p = _check(y, p)
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of P(ai) over ``n_bins`` equal-width bins (binary, positive-class form)."""
    y, p = _check(y, p)
    if y.size == 0:
        raise ValueError("ECE of an empty set")
    idx = np.clip((p * n_bins).astype(np.int64), 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(float(p[m].mean()) - float(y[m].mean()))
    return total / y.size
