"""Detection and calibration metrics (numpy only). Shared by export's calibration and by reports.

Conventions: ``y`` holds 0 (human) / 1 (AI); ``p`` holds P(ai) in [0, 1]; ``s`` any score where larger
means more AI-like; an item is flagged as AI when its score is ``>=`` the threshold. Functions that
need both classes raise ValueError naming what is missing.

Every metric is computed by one weighted implementation: the public functions pass unit weights and the
bootstrap (:func:`bootstrap`) passes a ``(B, n)`` matrix of resampling counts, so that B replicates are
computed at once with no Python loop, and the point estimate and its interval cannot disagree on what
the metric is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._thresholds import betainc

__all__ = [
    "TARGET_FPRS",
    "adaptive_ece",
    "auroc",
    "average_precision",
    "basic_ci",
    "bootstrap",
    "bootstrap_weights",
    "brier",
    "clopper_pearson",
    "confusion",
    "ece",
    "mce",
    "nll",
    "percentile_ci",
    "precision_recall_curve",
    "reliability_bins",
    "roc_curve",
    "threshold_metrics",
    "tpr_at_fpr",
    "w_adaptive_ece",
    "w_auroc",
    "w_average_precision",
    "w_brier",
    "w_ece",
    "w_mce",
    "w_nll",
    "w_ranking_metrics",
    "w_threshold_metrics",
    "w_tpr_at_fpr",
    "wilson_interval",
]

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


# -- ranking ----------------------------------------------------------------------------------------
def w_auroc(y: np.ndarray, s: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Weighted AUROC for each row of ``w`` (B, n): the Mann-Whitney statistic, ties count one half.

    Returns (B,); NaN for a row that has no weight on one of the classes.
    """
    y, s = _check(y, s)
    W = _weights(w, y.size)
    G1, G0, _ = _class_counts_desc(y, s, W)
    # humans strictly below each group (in descending order: those in later groups)
    below0 = G0.sum(axis=1, keepdims=True) - np.cumsum(G0, axis=1)
    num = (G1 * (below0 + 0.5 * G0)).sum(axis=1)
    return _div(num, G1.sum(axis=1) * G0.sum(axis=1))


def auroc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half), by the Mann-Whitney rank statistic."""
    y, s = _check(y, s)
    _need_both(y, "AUROC")
    return float(w_auroc(y, s)[0])


def w_average_precision(y: np.ndarray, s: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Weighted average precision (B,): sum over score thresholds of (recall step) x precision.

    The step-function definition of scikit-learn's ``average_precision_score`` (no interpolation).
    """
    y, s = _check(y, s)
    W = _weights(w, y.size)
    G1, G0, _ = _class_counts_desc(y, s, W)
    tp = np.cumsum(G1, axis=1)
    fp = np.cumsum(G0, axis=1)
    prec = np.nan_to_num(_div(tp, tp + fp))
    return _div((G1 * prec).sum(axis=1), G1.sum(axis=1))


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision of the AI class (area under the precision-recall step curve)."""
    y, s = _check(y, s)
    _need_both(y, "AP")
    return float(w_average_precision(y, s)[0])


def roc_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points at every distinct score: (fpr, tpr, thresholds), starting at (0, 0) with threshold +inf.

    Same points as scikit-learn's ``roc_curve(..., drop_intermediate=False)``.
    """
    y, s = _check(y, s)
    _need_both(y, "ROC")
    G1, G0, gs = _class_counts_desc(y, s, _weights(None, y.size))
    tpr = np.r_[0.0, np.cumsum(G1[0]) / G1.sum()]
    fpr = np.r_[0.0, np.cumsum(G0[0]) / G0.sum()]
    return fpr, tpr, np.r_[np.inf, gs]


def precision_recall_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision-recall points at every distinct score, by decreasing threshold: (precision, recall, thresholds)."""
    y, s = _check(y, s)
    _need_both(y, "precision-recall")
    G1, G0, gs = _class_counts_desc(y, s, _weights(None, y.size))
    tp = np.cumsum(G1[0])
    fp = np.cumsum(G0[0])
    return tp / (tp + fp), tp / G1.sum(), gs


def w_tpr_at_fpr(
    y: np.ndarray, s: np.ndarray, target: float, w: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best TPR among thresholds whose FPR is at most ``target``, per row of ``w``.

    Returns (tpr, achieved_fpr, threshold), each (B,). The threshold is the lowest score still flagged
    (``+inf`` when no threshold meets the target but flagging nothing); the achieved FPR is that of the
    first (highest) threshold that reaches the best TPR. These are oracle operating points read off the
    ROC curve of the evaluated data itself, not thresholds chosen beforehand.
    """
    y, s = _check(y, s)
    W = _weights(w, y.size)
    G1, G0, gs = _class_counts_desc(y, s, W)
    tpr = np.concatenate([np.zeros((W.shape[0], 1)), _div(np.cumsum(G1, axis=1), G1.sum(axis=1, keepdims=True))], axis=1)
    fpr = np.concatenate([np.zeros((W.shape[0], 1)), _div(np.cumsum(G0, axis=1), G0.sum(axis=1, keepdims=True))], axis=1)
    ok = fpr <= target * (1 + 1e-12)
    masked = np.where(ok, tpr, -1.0)
    best = masked.max(axis=1)
    first = np.argmax(masked >= best[:, None], axis=1)
    rows = np.arange(W.shape[0])
    thr = np.r_[np.inf, gs][first]
    bad = np.isnan(fpr[:, -1]) | np.isnan(tpr[:, -1])
    out_tpr = np.where(bad, np.nan, best)
    out_fpr = np.where(bad, np.nan, fpr[rows, first])
    return out_tpr, out_fpr, np.where(bad, np.nan, thr)


def tpr_at_fpr(y: np.ndarray, s: np.ndarray, target: float) -> tuple[float, float, float]:
    """(TPR, achieved FPR, threshold) at the best operating point with FPR <= ``target`` (see :func:`w_tpr_at_fpr`)."""
    y, s = _check(y, s)
    _need_both(y, "TPR at FPR")
    t, f, thr = w_tpr_at_fpr(y, s, target)
    return float(t[0]), float(f[0]), float(thr[0])


def w_ranking_metrics(
    y: np.ndarray, s: np.ndarray, w: np.ndarray | None = None, targets: tuple[float, ...] = TARGET_FPRS
) -> dict[str, np.ndarray]:
    """AUROC, AP and TPR / achieved FPR at each target FPR from one sort: ``auroc``, ``ap``,
    ``tpr@{t}``, ``fpr@{t}`` (t as given, e.g. ``tpr@0.01``), each (B,). Same values as the functions above."""
    y, s = _check(y, s)
    W = _weights(w, y.size)
    G1, G0, _ = _class_counts_desc(y, s, W)
    n1 = G1.sum(axis=1)
    n0 = G0.sum(axis=1)
    c1 = np.cumsum(G1, axis=1)
    c0 = np.cumsum(G0, axis=1)
    out = {
        "auroc": _div((G1 * (n0[:, None] - c0 + 0.5 * G0)).sum(axis=1), n1 * n0),
        "ap": _div((G1 * np.nan_to_num(_div(c1, c1 + c0))).sum(axis=1), n1),
    }
    z = np.zeros((W.shape[0], 1))
    tpr = np.concatenate([z, _div(c1, n1[:, None])], axis=1)
    fpr = np.concatenate([z, _div(c0, n0[:, None])], axis=1)
    bad = (n1 == 0) | (n0 == 0)
    rows = np.arange(W.shape[0])
    for t in targets:
        masked = np.where(fpr <= t * (1 + 1e-12), tpr, -1.0)
        best = masked.max(axis=1)
        first = np.argmax(masked >= best[:, None], axis=1)
        out[f"tpr@{t:g}"] = np.where(bad, np.nan, best)
        out[f"fpr@{t:g}"] = np.where(bad, np.nan, fpr[rows, first])
    return out


# -- thresholded -------------------------------------------------------------------------------------
def w_threshold_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float | np.ndarray, w: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Counts and rates of the decision ``p >= threshold`` per row of ``w``.

    ``threshold`` is one value or one per item (per-group thresholds). Returns (B,) arrays under
    ``tp fp tn fn accuracy precision recall f1 fpr``; a rate with an empty denominator is NaN.
    """
    y, p = _check(y, p)
    W = _weights(w, y.size)
    pred = p >= np.broadcast_to(np.asarray(threshold, dtype=np.float64), p.shape)
    tp = W @ (pred & (y == 1)).astype(np.float64)
    fp = W @ (pred & (y == 0)).astype(np.float64)
    fn = W @ (~pred & (y == 1)).astype(np.float64)
    tn = W @ (~pred & (y == 0)).astype(np.float64)
    precision = _div(tp, tp + fp)
    recall = _div(tp, tp + fn)
    return {
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "accuracy": _div(tp + tn, tp + fp + tn + fn),
        "precision": precision,
        "recall": recall,
        "f1": _div(2 * tp, 2 * tp + fp + fn),
        "fpr": _div(fp, fp + tn),
    }


def threshold_metrics(y: np.ndarray, p: np.ndarray, threshold: float | np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall (TPR), F1, FPR and the confusion counts of ``p >= threshold``."""
    return {k: float(v[0]) for k, v in w_threshold_metrics(y, p, threshold).items()}


def confusion(y: np.ndarray, p: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    """2x2 confusion matrix of ``p >= threshold``: rows true human/AI, columns predicted human/AI."""
    m = w_threshold_metrics(y, p, threshold)
    return np.array([[m["tn"][0], m["fp"][0]], [m["fn"][0], m["tp"][0]]], dtype=np.int64)


# -- calibration -------------------------------------------------------------------------------------
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


# -- intervals ---------------------------------------------------------------------------------------
def bootstrap_weights(
    y: np.ndarray, n_boot: int = 1000, seed: int = 0, stratified: bool = True, max_cells: int = 4_000_000
) -> Iterator[np.ndarray]:
    """Yield resampling counts in chunks of shape (b, n), n_boot rows in all, deterministic in ``seed``.

    ``stratified``: humans and AI items are resampled separately, so each replicate keeps the class
    sizes of the data (no replicate lacks a class). Chunks hold at most ``max_cells`` numbers.
    """
    y = np.asarray(y).astype(np.int64).ravel()
    n = y.size
    if n == 0:
        raise ValueError("bootstrap of an empty set")
    strata = [np.flatnonzero(y == c) for c in (0, 1)] if stratified else [np.arange(n)]
    strata = [s for s in strata if s.size]
    chunk = max(1, min(n_boot, max_cells // n))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        W = np.zeros((b, n))
        for r in range(b):
            # one generator per replicate: replicate r is the same whatever the chunking or n_boot
            rng = np.random.default_rng([seed, done + r])
            for idx in strata:
                W[r] += np.bincount(idx[rng.integers(0, idx.size, size=idx.size)], minlength=n)
        done += b
        yield W


def bootstrap(
    y: np.ndarray,
    stat: Callable[[np.ndarray], Any],
    n_boot: int = 1000,
    seed: int = 0,
    stratified: bool = True,
) -> Any:
    """Replicates of ``stat(W)`` over ``n_boot`` resamples (``W``: (b, n) counts from :func:`bootstrap_weights`).

    ``stat`` returns a (b,) array, a tuple of them, or a dict of them; the result has the same shape
    with (n_boot,) arrays. Calling it with the same ``y`` and seed gives the same resamples, which is
    what a paired comparison of two detectors needs (compute both inside one ``stat``).
    """
    if n_boot < 1:
        raise ValueError(f"bootstrap: n_boot is {n_boot}, expected at least 1")
    parts: list[Any] = [stat(W) for W in bootstrap_weights(y, n_boot, seed, stratified)]
    first = parts[0]
    if isinstance(first, dict):
        return {k: np.concatenate([np.asarray(q[k]) for q in parts]) for k in first}
    if isinstance(first, tuple):
        return tuple(np.concatenate([np.asarray(q[i]) for q in parts]) for i in range(len(first)))
    return np.concatenate([np.asarray(q) for q in parts])


def percentile_ci(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (NaN replicates ignored; (nan, nan) if all are NaN)."""
    r = np.asarray(replicates, dtype=np.float64)
    r = r[~np.isnan(r)]
    if r.size == 0:
        return (math.nan, math.nan)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(r, [a, 1.0 - a])
    return float(lo), float(hi)


def basic_ci(point: float, replicates: np.ndarray, level: float = 0.95, lower: float = 0.0) -> tuple[float, float]:
    """Basic (reverse-percentile) bootstrap interval ``[2θ - q_hi, 2θ - q_lo]``, floored at ``lower``.

    For statistics that resampling biases upward, such as binned calibration errors (ECE, MCE): their
    percentile interval can sit wholly above the point estimate; the basic interval reflects the
    replicates around the estimate, which removes that shift (to first order).
    """
    lo, hi = percentile_ci(replicates, level)
    if math.isnan(lo):
        return (math.nan, math.nan)
    return float(max(lower, 2.0 * point - hi)), float(max(lower, 2.0 * point - lo))


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n ((nan, nan) when n == 0)."""
    if n <= 0:
        return (math.nan, math.nan)
    z = _norm_ppf(1.0 - (1.0 - level) / 2.0)
    ph = k / n
    den = 1 + z * z / n
    c = (ph + z * z / (2 * n)) / den
    h = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / den
    return max(0.0, c - h), min(1.0, c + h)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a proportion k/n ((nan, nan) when n == 0).

    Conservative; right for small groups and for zero counts (0/n gives [0, upper]).
    """
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= k <= n:
        raise ValueError(f"clopper_pearson: k={k} outside 0..{n}")
    a = (1.0 - level) / 2.0
    lo = 0.0 if k == 0 else _beta_ppf(a, k, n - k + 1)
    hi = 1.0 if k == n else _beta_ppf(1.0 - a, k + 1, n - k)
    return lo, hi


def _norm_ppf(q: float) -> float:
    """Standard normal quantile by bisection on erf (plenty for interval levels)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _beta_ppf(q: float, a: float, b: float) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if betainc(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
