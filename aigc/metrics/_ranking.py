"""Ranking metrics (AUROC, AP, ROC and precision-recall curves, TPR at a target FPR) and the counts and
rates of a decision at a threshold. Each has a weighted ``w_`` form that takes a (B, n) weight matrix."""

from __future__ import annotations

import numpy as np

from ._common import TARGET_FPRS, _check, _class_counts_desc, _div, _need_both, _weights


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
