"""Metrics of labelled scores with bootstrap intervals, and the paired comparison of two detectors on the
same items. Array functions: no bundle needed."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import metrics as M

__all__ = ["compare_scores", "evaluate_scores", "exact_proportion", "fpr_label"]

_THR_KEYS = ("accuracy", "precision", "recall", "f1", "fpr")
_CAL_KEYS = ("ece", "ece_adaptive", "mce", "brier", "nll")
# binned calibration errors grow under resampling: their intervals use the basic bootstrap (metrics.basic_ci)
_UPWARD_BIASED = ("ece", "ece_adaptive", "mce")
_MAX_EXAMPLES = 20


def fpr_label(t: float) -> str:
    """0.001 -> '0.1%', 0.01 -> '1%'."""
    return f"{t * 100:g}%"


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _val(point: float, reps: np.ndarray | None, level: float) -> dict[str, Any]:
    if reps is None:
        return {"value": _num(point), "ci": None}
    lo, hi = M.percentile_ci(reps, level)
    return {"value": _num(point), "ci": [_num(lo), _num(hi)]}


def _stat_fn(
    y: np.ndarray, p: np.ndarray, thresholds: Mapping[str, float | np.ndarray], targets: Sequence[float]
) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """One function computing every bootstrapped number of a detector from a weight matrix."""

    def stat(W: np.ndarray) -> dict[str, np.ndarray]:
        out = dict(M.w_ranking_metrics(y, p, W, tuple(targets)))
        out["ece"] = M.w_ece(y, p, W)
        out["ece_adaptive"] = M.w_adaptive_ece(y, p, W)
        out["mce"] = M.w_mce(y, p, W)
        out["brier"] = M.w_brier(y, p, W)
        out["nll"] = M.w_nll(y, p, W)
        for name, thr in thresholds.items():
            tm = M.w_threshold_metrics(y, p, thr, W)
            for k in _THR_KEYS:
                out[f"thr/{name}/{k}"] = tm[k]
        return out

    return stat


def exact_proportion(k: int, n: int, level: float = 0.95, min_n: int = 30) -> dict[str, Any]:
    """A proportion ``k/n`` with its exact Clopper-Pearson interval (0 of 100 -> [0, 0.0362] at 95%),
    its counts, and ``small`` when ``n < min_n``; value and interval None when ``n == 0``."""
    if n <= 0:
        return {"value": None, "ci": None, "k": int(k), "n": 0, "small": True, "interval": "clopper-pearson"}
    lo, hi = M.clopper_pearson(int(k), int(n), level)
    return {"value": k / n, "ci": [lo, hi], "k": int(k), "n": int(n), "small": n < min_n, "interval": "clopper-pearson"}


def _check_arrays(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.int64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels have {y.size} items but probabilities have {p.size}")
    if np.isnan(p).any():
        raise ValueError("probabilities contain NaN: drop failed items before evaluating")
    bad = ~((p >= 0.0) & (p <= 1.0))
    if bad.any():
        raise ValueError(f"probabilities must lie in [0, 1]: {int(bad.sum())} do not (first: {float(p[bad][0])!r}); "
                         "pass P(ai), not a raw score or logit")  # fmt: skip
    if not ((y == 0).any() and (y == 1).any()):
        raise ValueError(f"evaluation needs both classes: found {int((y == 0).sum())} human and {int((y == 1).sum())} AI items")
    return y, p


def evaluate_scores(
    y: np.ndarray,
    p: np.ndarray,
    thresholds: Mapping[str, float | np.ndarray],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    targets: Sequence[float] = M.TARGET_FPRS,
    n_bins: int = 15,
    min_n: int = 30,
    clusters: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """All headline metrics of one detector with bootstrap intervals (stratified percentile bootstrap).

    ``thresholds`` maps a name to a probability or to one probability per item (per-group thresholds).
    At each threshold, FPR, recall (TPR) and precision are proportions of counts: they carry exact
    Clopper-Pearson intervals, their ``k`` and ``n``, and ``small`` when ``n < min_n``; accuracy and F1
    keep bootstrap intervals. ``n_boot=0`` gives point values with no bootstrap intervals. ``clusters`` (one
    label per item): the bootstrap resamples whole clusters (texts that share an opening or a prompt).
    """
    y, p = _check_arrays(y, p)
    stat = _stat_fn(y, p, thresholds, targets)
    point = {k: float(v[0]) for k, v in stat(np.ones((1, y.size))).items()}
    reps = M.bootstrap(y, stat, n_boot=n_boot, seed=seed, groups=clusters) if n_boot > 0 else None

    def v(k: str) -> dict[str, Any]:
        if reps is not None and k in _UPWARD_BIASED:
            lo, hi = M.basic_ci(point[k], reps[k], level)
            return {"value": _num(point[k]), "ci": [_num(lo), _num(hi)]}
        return _val(point[k], None if reps is None else reps[k], level)

    tpr_at = {}
    for t in targets:
        _, _, oracle = M.tpr_at_fpr(y, p, t)
        n_h = int((y == 0).sum())
        tpr_at[fpr_label(t)] = {
            "target_fpr": t,
            "tpr": v(f"tpr@{t:g}"),
            "achieved_fpr": v(f"fpr@{t:g}"),
            "threshold": _num(oracle),
            "false_positives_allowed": math.floor(n_h * t + 1e-9),
            # fewer than 5 false positives allowed: the operating point rests on a handful of human items
            "small": n_h * t < 5,
        }
    thr_out = {}
    for name, thr in thresholds.items():
        cm = M.confusion(y, p, thr)
        entry: dict[str, Any] = {
            "threshold": _num(thr) if not isinstance(thr, np.ndarray) else "per-group",
            "confusion": {"tn": int(cm[0, 0]), "fp": int(cm[0, 1]), "fn": int(cm[1, 0]), "tp": int(cm[1, 1])},
        }
        for k in _THR_KEYS:
            entry[k] = v(f"thr/{name}/{k}")
        # counts at a threshold: exact intervals (a bootstrap of 0 of 100 collapses to [0, 0])
        tp, fp, fn, tn = (int(cm[1, 1]), int(cm[0, 1]), int(cm[1, 0]), int(cm[0, 0]))
        entry["fpr"] = exact_proportion(fp, fp + tn, level, min_n)
        entry["recall"] = exact_proportion(tp, tp + fn, level, min_n)
        entry["precision"] = exact_proportion(tp, tp + fp, level, min_n)
        thr_out[name] = entry
    return {
        "n": int(y.size),
        "n_human": int((y == 0).sum()),
        "n_ai": int((y == 1).sum()),
        "auroc": v("auroc"),
        "ap": v("ap"),
        "tpr_at_fpr": tpr_at,
        "thresholds": thr_out,
        "calibration": {**{k: v(k) for k in _CAL_KEYS}, "n_bins": n_bins, "reliability": M.reliability_bins(y, p, n_bins)},
    }


def compare_scores(
    y: np.ndarray,
    p_base: np.ndarray,
    p_cand: np.ndarray,
    thr_base: Mapping[str, float | np.ndarray],
    thr_cand: Mapping[str, float | np.ndarray],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    targets: Sequence[float] = M.TARGET_FPRS,
    clusters: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Differences candidate - baseline on the same items, with paired bootstrap intervals (both detectors
    are evaluated on the same resample in each replicate). Named thresholds are compared where both
    bundles have the name, each at its own value. ``significant``: the interval excludes 0."""
    y, p_base = _check_arrays(y, p_base)
    _, p_cand = _check_arrays(y, p_cand)
    common = [n for n in thr_base if n in thr_cand]
    sa = _stat_fn(y, p_base, {n: thr_base[n] for n in common}, targets)
    sb = _stat_fn(y, p_cand, {n: thr_cand[n] for n in common}, targets)
    keys = ["auroc", "ap", *[f"tpr@{t:g}" for t in targets], "ece", "brier", "nll"]
    keys += [f"thr/{n}/{k}" for n in common for k in ("recall", "fpr", "f1")]

    def both(W: np.ndarray) -> dict[str, np.ndarray]:
        a, b = sa(W), sb(W)
        return {k: b[k] - a[k] for k in keys}

    one = np.ones((1, y.size))
    pa, pb = sa(one), sb(one)
    reps = M.bootstrap(y, both, n_boot=n_boot, seed=seed, groups=clusters) if n_boot > 0 else None
    out: dict[str, Any] = {}
    for k in keys:
        d = float(pb[k][0] - pa[k][0])
        e = _val(d, None if reps is None else reps[k], level)
        ci = e["ci"]
        name = k.replace("thr/", "").replace("/", " ")
        if k.startswith("tpr@"):
            name = f"tpr@fpr{fpr_label(float(k[4:]))}"
        out[name] = {
            "baseline": _num(pa[k][0]),
            "candidate": _num(pb[k][0]),
            "delta": e["value"],
            "ci": ci,
            "significant": bool(ci is not None and None not in ci and (ci[0] > 0 or ci[1] < 0)),
            "higher_is_better": not (k in ("ece", "brier", "nll") or k.endswith("/fpr")),
        }
    return {"n": int(y.size), "deltas": out}
