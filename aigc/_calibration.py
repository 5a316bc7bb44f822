"""Calibration: map a detector's raw score s (log-odds for logit models) to a calibrated P(ai).

``apply_calibration`` is what the runtime calls; the ``fit_*`` functions (numpy only) are what
export calls on a held-out split. The parameter layouts are those of docs/bundle.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "ISOTONIC_MIN_N",
    "CalibrationError",
    "adjust_prevalence",
    "apply_calibration",
    "default_method",
    "fit_calibration",
    "pool_adjacent_violators",
    "prevalence_record",
    "sigmoid",
]


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
    """Raw scores (n,) -> calibrated P(ai) (n,) by the bundle's ``calibration`` object.

    With a ``prevalence`` object (``aigc calibrate --prevalence``; bundles without it are not adjusted)
    the calibrated P is moved to the stated share of AI items by Bayes' rule on the odds (:func:`adjust_prevalence`).
    """
    p = _apply_map(scores, calibration)
    prev = calibration.get("prevalence")
    if isinstance(prev, dict) and prev.get("target") is not None:
        p = adjust_prevalence(p, float(prev["base"]), float(prev["target"]))
    return p


def adjust_prevalence(p: np.ndarray, base: float, target: float) -> np.ndarray:
    """P(ai) calibrated where a share ``base`` of the items were AI -> P(ai) where a share ``target`` are.

    Bayes' rule on the odds: odds' = odds x [target / (1 - target)] / [base / (1 - base)]; the likelihood
    ratio of the evidence is unchanged. Monotone, so it keeps the ranking; 0 and 1 stay 0 and 1.
    """
    for name, v in (("base", base), ("target", target)):
        if not 0.0 < v < 1.0:
            raise ValueError(f"prevalence {name}: found {v}, expected a share in (0, 1)")
    p = np.asarray(p, dtype=np.float64)
    k = (target / (1.0 - target)) / (base / (1.0 - base))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = k * p / (k * p + (1.0 - p))
    return np.where(np.isnan(p), np.nan, np.clip(out, 0.0, 1.0))


def prevalence_record(base: float, target: float, base_from: str) -> dict[str, Any]:
    """The ``calibration.prevalence`` object: the share of AI items the map was fitted on (``base``, and where
    that figure comes from), the share to report probabilities for (``target``), and the log-odds shift."""
    shift = float(np.log(target / (1 - target)) - np.log(base / (1 - base)))
    return {"version": 1, "base": round(float(base), 6), "base_from": base_from, "target": float(target),
            "logit_shift": round(shift, 6), "rule": "Bayes' rule on the odds"}


def _apply_map(scores: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
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


# -- fitting (export calls these on a held-out split; numpy only) ---------------------------------------

ISOTONIC_MIN_N = 1000
_T_RANGE = (1e-3, 1e3)


class CalibrationError(ValueError):
    """Calibration cannot be fitted as asked; the message says why and what to do."""


def _clean(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise CalibrationError(f"calibration: {s.size} scores but {y.size} labels")
    if not np.isfinite(s).all():
        raise CalibrationError(
            f"calibration: {int((~np.isfinite(s)).sum())} scores are NaN or infinite (drop failed items first)"
        )
    if not np.isin(y, (0, 1)).all():
        raise CalibrationError("calibration: labels must be 0 (human) or 1 (ai)")
    y = y.astype(np.float64)
    n1 = int(y.sum())
    if n1 == 0 or n1 == y.size:
        raise CalibrationError(f"calibration needs both classes: found {y.size - n1} human and {n1} ai items")
    return s, y


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from .metrics import brier, ece, nll

    return {"ece": round(ece(y, p, 15), 6), "brier": round(brier(y, p), 6), "nll": round(nll(y, p), 6)}


def _fit_temperature(s: np.ndarray, y: np.ndarray) -> float:
    """T minimising the NLL of sigmoid(s / T): bisection on the (monotone) derivative in beta = 1/T."""

    def grad(beta: float) -> float:
        return float(np.mean((sigmoid(beta * s) - y) * s))

    lo, hi = 1.0 / _T_RANGE[1], 1.0 / _T_RANGE[0]
    if grad(lo) >= 0:  # scores anti-correlated with the labels or carry no signal: flattest allowed
        return _T_RANGE[1]
    if grad(hi) <= 0:  # separable data: the NLL keeps falling as T -> 0
        return _T_RANGE[0]
    llo, lhi = np.log(lo), np.log(hi)
    for _ in range(200):
        mid = 0.5 * (llo + lhi)
        if grad(float(np.exp(mid))) < 0:
            llo = mid
        else:
            lhi = mid
        if lhi - llo < 1e-12:
            break
    return float(1.0 / np.exp(0.5 * (llo + lhi)))


def _fit_platt(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) of sigmoid(a * s + b) by Newton's method with backtracking on Platt's smoothed targets
    (Lin, Lin & Weng 2007), which keep the solution finite on separable data."""
    n1 = float(y.sum())
    n0 = float(y.size - n1)
    t = np.where(y > 0, (n1 + 1.0) / (n1 + 2.0), 1.0 / (n0 + 2.0))
    a, b = 0.0, float(np.log((n1 + 1.0) / (n0 + 1.0)))

    def loss(a_: float, b_: float) -> float:
        z = a_ * s + b_
        return float(np.mean(np.logaddexp(0.0, z) - t * z))

    f = loss(a, b)
    for _ in range(100):
        p = sigmoid(a * s + b)
        r = p - t
        w = p * (1.0 - p) + 1e-12
        g = np.array([np.mean(r * s), np.mean(r)])
        h = np.array([[np.mean(w * s * s), np.mean(w * s)], [np.mean(w * s), np.mean(w)]]) + 1e-12 * np.eye(2)
        if np.abs(g).max() < 1e-10:
            break
        step = np.linalg.solve(h, g)
        lam = 1.0
        while lam > 1e-10:
            a2, b2 = a - lam * float(step[0]), b - lam * float(step[1])
            f2 = loss(a2, b2)
            if f2 <= f + 1e-4 * lam * float(g @ -step):
                break
            lam *= 0.5
        else:
            break
        if abs(f - f2) < 1e-15:
            a, b, f = a2, b2, f2
            break
        a, b, f = a2, b2, f2
    return float(a), float(b)


def pool_adjacent_violators(y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """The non-decreasing sequence closest to ``y`` in weighted least squares (PAV), same length as ``y``."""
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=np.float64)
    vals: list[float] = []
    wts: list[float] = []
    sizes: list[int] = []
    for yi, wi in zip(y, w, strict=True):
        vals.append(float(yi))
        wts.append(float(wi))
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            wsum = wts[-2] + wts[-1]
            v = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / wsum
            size = sizes[-2] + sizes[-1]
            del vals[-1], wts[-1], sizes[-1]
            vals[-1], wts[-1], sizes[-1] = v, wsum, size
    return np.repeat(np.asarray(vals), sizes)


def _fit_isotonic(s: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    """Breakpoints (x increasing, y non-decreasing) of the isotonic fit, for ``np.interp``.

    Ties in ``s`` are pooled first; each constant block keeps its first and last x only.
    """
    xs, inv = np.unique(s, return_inverse=True)
    cnt = np.bincount(inv).astype(np.float64)
    ymean = np.bincount(inv, weights=y) / cnt
    fit = pool_adjacent_violators(ymean, cnt)
    keep = np.ones(xs.size, dtype=bool)
    if xs.size > 2:
        same_prev = np.r_[False, fit[1:] == fit[:-1]]
        same_next = np.r_[fit[:-1] == fit[1:], False]
        keep = ~(same_prev & same_next)
    x_out, y_out = xs[keep], np.clip(fit[keep], 0.0, 1.0)
    if x_out.size == 1:  # a single distinct score: a flat map over a tiny interval
        x_out = np.array([x_out[0] - 1e-9, x_out[0] + 1e-9])
        y_out = np.array([y_out[0], y_out[0]])
    return [float(v) for v in x_out], [float(v) for v in y_out]


def default_method(output_kind: str) -> tuple[str, str | None]:
    """The default calibration method for a model's ``output_kind`` and, when it is not temperature, why.

    Logit models get temperature scaling (one parameter, keeps the ranking and the 0.5 point). A
    ``score`` model outputs a statistic that is not centred at 0 (perplexity, curvature): dividing it by
    a temperature cannot move its human/AI boundary to P = 0.5, so it gets Platt (a * s + b).
    """
    if output_kind == "score":
        return "platt", (
            "output_kind 'score' (a zero-shot statistic, or a likelihood-features head fitted on the training "
            "split: not log-odds centred on this split's boundary): temperature scaling cannot centre it, so Platt "
            "scaling (sigmoid(a * s + b)) is the default"
        )
    return "temperature", None


def fit_calibration(
    scores: np.ndarray, labels: np.ndarray, method: str = "temperature", force: bool = False
) -> dict[str, Any]:
    """Fit a calibration map on held-out raw scores; return the bundle's ``calibration`` object.

    ``scores``: raw scores s (n,), finite (drop failed items first); ``labels``: 0 human / 1 ai.
    ``method``: ``temperature`` (P = sigmoid(s / T)), ``platt`` (sigmoid(a s + b)), ``isotonic``
    (monotone step map by pool-adjacent-violators, refused under 1,000 items unless ``force``: it
    overfits small sets) or ``none``. ``before`` holds ECE (15 bins), Brier and NLL of sigmoid(s),
    ``after`` those of the fitted map, both on these same items (an in-sample figure).
    Raises :class:`CalibrationError` naming the problem.
    """
    s, y = _clean(scores, labels)
    n = int(s.size)
    if method == "isotonic" and n < ISOTONIC_MIN_N and not force:
        raise CalibrationError(
            f"calibration: isotonic needs at least {ISOTONIC_MIN_N} items, found {n} (it overfits small sets); "
            "use temperature or platt, or force it"
        )
    params: dict[str, Any]
    if method == "none":
        params = {}
    elif method == "temperature":
        params = {"temperature": _fit_temperature(s, y)}
    elif method == "platt":
        a, b = _fit_platt(s, y)
        params = {"a": a, "b": b}
    elif method == "isotonic":
        x, yy = _fit_isotonic(s, y)
        params = {"x": x, "y": yy}
    else:
        raise CalibrationError(f"calibration method: found {method!r}, expected temperature|platt|isotonic|none")
    cal: dict[str, Any] = {"method": method, "params": params, "n": n, "n_human": int((y == 0).sum()), "n_ai": int(y.sum())}
    cal["before"] = _metrics(y, sigmoid(s))
    cal["after"] = _metrics(y, apply_calibration(s, cal))
    return cal
