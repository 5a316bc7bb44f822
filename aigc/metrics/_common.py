"""Shared helpers of the metrics: input checks, weight matrices, tie groups in descending score order."""

from __future__ import annotations

import numpy as np

TARGET_FPRS: tuple[float, ...] = (0.001, 0.01, 0.05)  # the operating points reports show


def _check(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(np.int64).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels have {y.size} items but scores have {s.size}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN (drop failed items first)")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 (human) or 1 (AI); found {sorted(set(np.unique(y).tolist()) - {0, 1})[:5]}")
    return y, s


def _weights(w: np.ndarray | None, n: int) -> np.ndarray:
    """Weights as a float64 (B, n) matrix; None -> one row of ones."""
    if w is None:
        return np.ones((1, n), dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"weights of shape {w.shape} do not match {n} items")
    return w


def _need_both(y: np.ndarray, what: str) -> None:
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        raise ValueError(f"{what} needs both classes: found {n0} human and {n1} AI items")


def _groups_desc(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order by descending score and the start index of each group of tied scores in that order."""
    order = np.argsort(-s, kind="mergesort")
    ss = s[order]
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    return order, starts, ss[starts]


def _class_counts_desc(y: np.ndarray, s: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tie group (descending score): weighted AI count G1 (B, g), human count G0 (B, g), group score (g,)."""
    order, starts, gs = _groups_desc(s)
    Wo = W[:, order]
    yo = y[order]
    if starts.size == y.size:  # no ties: each item is its own group
        return Wo * yo, Wo * (1 - yo), gs
    G1 = np.add.reduceat(Wo * yo, starts, axis=1)
    G0 = np.add.reduceat(Wo * (1 - yo), starts, axis=1)
    return G1, G0, gs


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b with NaN where b == 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    out = np.full(np.broadcast(a, b).shape, np.nan)
    np.divide(a, b, out=out, where=b != 0)
    return out
