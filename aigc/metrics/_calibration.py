"""Calibration metrics of P(ai): Brier, NLL, ECE (equal-width and equal-mass), MCE, the reliability table."""

from __future__ import annotations

import numpy as np

from ._common import _check, _div, _weights


def w_brier(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Weighted Brier score (B,)."""
    y, p = _check(y, p)
    W = _weights(w, y.size)
    return _div(W @ (p - y) ** 2, W.sum(axis=1))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of P(ai) against the 0/1 label."""
    y, p = _check(y, p)
    return float(np.mean((p - y) ** 2))


def w_nll(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None, eps: float = 1e-12) -> np.ndarray:
    """Weighted mean negative log-likelihood (B,), P clipped at ``eps``."""
    y, p = _check(y, p)
    W = _weights(w, y.size)
    p = np.clip(p, eps, 1 - eps)
    return _div(W @ -(y * np.log(p) + (1 - y) * np.log(1 - p)), W.sum(axis=1))


def nll(y: np.ndarray, p: np.ndarray, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood (natural log) of the labels under P(ai), clipped at ``eps``."""
    y, p = _check(y, p)
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _bin_sums(y: np.ndarray, p: np.ndarray, W: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width bins (bin b holds p in [b/n, (b+1)/n), the last one includes 1): count, sum p, sum y (B, bins)."""
    idx = np.clip((p * n_bins).astype(np.int64), 0, n_bins - 1)
    M = np.zeros((y.size, n_bins))
    M[np.arange(y.size), idx] = 1.0
    return W @ M, W @ (M * p[:, None]), W @ (M * y[:, None])


def w_ece(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None, n_bins: int = 15) -> np.ndarray:
    """Weighted expected calibration error over ``n_bins`` equal-width bins (B,)."""
    y, p = _check(y, p)
    cnt, sp, sy = _bin_sums(y, p, _weights(w, y.size), n_bins)
    return _div(np.abs(sp - sy).sum(axis=1), cnt.sum(axis=1))


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of P(ai) over ``n_bins`` equal-width bins (binary, positive-class form)."""
    y, p = _check(y, p)
    if y.size == 0:
        raise ValueError("ECE of an empty set")
    return float(w_ece(y, p, None, n_bins)[0])


def w_mce(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None, n_bins: int = 15) -> np.ndarray:
    """Weighted maximum calibration error (B,): the largest |mean P - frequency of AI| over non-empty equal-width bins."""
    y, p = _check(y, p)
    cnt, sp, sy = _bin_sums(y, p, _weights(w, y.size), n_bins)
    gap = np.where(cnt > 0, np.abs(_div(sp - sy, cnt)), -np.inf)
    out = gap.max(axis=1)
    return np.where(np.isfinite(out), out, np.nan)


def mce(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """Maximum calibration error over ``n_bins`` equal-width bins."""
    y, p = _check(y, p)
    if y.size == 0:
        raise ValueError("MCE of an empty set")
    return float(w_mce(y, p, None, n_bins)[0])


def w_adaptive_ece(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None, n_bins: int = 15) -> np.ndarray:
    """Weighted adaptive (equal-mass) ECE (B,).

    Items are sorted by P (stable); the sorted list is cut into ``n_bins`` runs of equal size as
    ``np.array_split`` does (the first ``N % n_bins`` runs one longer). With integer weights this is exactly
    the unweighted value on the data with each item repeated ``w`` times: a run boundary may fall between
    the copies of one item.
    """
    y, p = _check(y, p)
    W = _weights(w, y.size)
    B, n = W.shape
    o = np.argsort(p, kind="mergesort")
    ps, ys, Ws = p[o], y[o].astype(np.float64), W[:, o]
    zero = np.zeros((B, 1))
    C = np.concatenate([zero, np.cumsum(Ws, axis=1)], axis=1)  # (B, n+1) positions
    CP = np.concatenate([zero, np.cumsum(Ws * ps, axis=1)], axis=1)
    CY = np.concatenate([zero, np.cumsum(Ws * ys, axis=1)], axis=1)
    N = C[:, -1]
    Ni = np.round(N).astype(np.int64)
    k = np.arange(n_bins + 1)
    # edges of np.array_split(N, n_bins): b * (N // k) + min(b, N % k)
    E = (k[None, :] * (Ni // n_bins)[:, None] + np.minimum(k[None, :], (Ni % n_bins)[:, None])).astype(np.float64)
    M = float(N.max()) + 1.0
    off = (np.arange(B) * M)[:, None]
    j = np.searchsorted((C[:, :-1] + off).ravel(), (E + off).ravel(), side="right").reshape(B, -1) - 1
    j = j - (np.arange(B) * n)[:, None]
    j = np.clip(j, 0, n - 1)
    rows = np.arange(B)[:, None]
    frac = E - C[rows, j]
    FP = CP[rows, j] + frac * ps[j]
    FY = CY[rows, j] + frac * ys[j]
    gaps = np.abs(np.diff(FP, axis=1) - np.diff(FY, axis=1)).sum(axis=1)
    return _div(gaps, N)


def adaptive_ece(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error over ``n_bins`` equal-mass bins of the items sorted by P(ai)."""
    y, p = _check(y, p)
    if y.size == 0:
        raise ValueError("ECE of an empty set")
    return float(w_adaptive_ece(y, p, None, n_bins)[0])


def reliability_bins(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> dict[str, list[float | int | None]]:
    """Equal-width reliability table: per bin ``lo hi count mean_p frac_ai`` (means None for empty bins)."""
    y, p = _check(y, p)
    cnt, sp, sy = (a[0] for a in _bin_sums(y, p, _weights(None, y.size), n_bins))
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return {
        "lo": edges[:-1].tolist(),
        "hi": edges[1:].tolist(),
        "count": cnt.astype(np.int64).tolist(),
        "mean_p": [None if c == 0 else float(a / c) for a, c in zip(sp, cnt, strict=True)],
        "frac_ai": [None if c == 0 else float(a / c) for a, c in zip(sy, cnt, strict=True)],
    }
