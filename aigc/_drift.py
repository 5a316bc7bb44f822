"""The calibration score distribution stored in a bundle, and the population stability index of live scores.

Export stores ``score_histogram`` in bundle.json: counts of the calibrated P(ai) of the calibration humans
and AI items on fixed bins (:data:`EDGES`, logit-spaced so that the bins near 0 and 1, where most scores
of a good detector lie, stay fine). A service compares the histogram of its live scores with the humans'
(:func:`psi`): traffic that leaves the calibration data moves the PSI, and with it the trust one may put
in a threshold's stated false-positive rate. Bundles made before the field keep working; drift is then
reported as unavailable (:func:`read_histogram` returns None).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, TypeGuard

import numpy as np

__all__ = ["EDGES", "HISTOGRAM_VERSION", "histogram_counts", "psi", "read_histogram", "score_histogram"]

HISTOGRAM_VERSION = 1
# bin edges on the calibrated probability: 0, sigmoid(-7), sigmoid(-6), ..., sigmoid(7), 1 (16 bins)
EDGES: list[float] = [0.0, *[round(1.0 / (1.0 + math.exp(-z)), 9) for z in range(-7, 8)], 1.0]
_EPS = 1e-4  # share given to an empty bin so that the log stays finite


def histogram_counts(p: Sequence[float] | np.ndarray, edges: Sequence[float] = EDGES) -> np.ndarray:
    """Counts of the finite probabilities ``p`` in the bins of ``edges`` (left-closed; 1.0 falls in the last)."""
    arr = np.asarray(p, dtype=np.float64).reshape(-1)
    arr = arr[np.isfinite(arr)]
    e = np.asarray(edges, dtype=np.float64)
    idx = np.clip(np.searchsorted(e, arr, side="right") - 1, 0, len(e) - 2)
    return np.bincount(idx, minlength=len(e) - 1).astype(np.int64)


def score_histogram(p: Sequence[float] | np.ndarray, y: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """The ``score_histogram`` field of bundle.json from calibrated probabilities ``p`` and labels ``y``
    (0 human, 1 ai) of the calibration split."""
    pa, ya = np.asarray(p, dtype=np.float64), np.asarray(y)
    if pa.shape != ya.shape:
        raise ValueError(f"score_histogram: {pa.size} scores but {ya.size} labels")
    h, a = histogram_counts(pa[ya == 0]), histogram_counts(pa[ya == 1])
    return {
        "version": HISTOGRAM_VERSION,
        "space": "calibrated P(ai)",
        "edges": list(EDGES),
        "human": [int(x) for x in h],
        "ai": [int(x) for x in a],
        "n_human": int(h.sum()),
        "n_ai": int(a.sum()),
    }


def _finite_numbers(xs: Any, low: float) -> TypeGuard[list[float]]:
    """A list of real numbers (no bool), each finite and >= ``low``."""
    return isinstance(xs, list) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= low for x in xs)


def read_histogram(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The bundle's ``score_histogram`` when present and well formed, else None (drift unavailable): edges
    finite and increasing, counts finite and non-negative with some humans. A NaN or infinite count made
    the PSI NaN and the drift report invalid JSON; a negative one gave a large PSI that alarmed for nothing."""
    h = spec.get("score_histogram")
    if not isinstance(h, dict) or h.get("version") != HISTOGRAM_VERSION:
        return None
    edges, hum, ai = h.get("edges"), h.get("human"), h.get("ai")
    if not (_finite_numbers(edges, -math.inf) and _finite_numbers(hum, 0) and _finite_numbers(ai, 0)):
        return None
    if len(edges) < 2 or len(hum) != len(edges) - 1 or len(ai) != len(edges) - 1 or sum(hum) <= 0:
        return None
    if any(b <= a for a, b in itertools.pairwise(edges)):
        return None
    return h


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population stability index sum((a - e) * ln(a / e)) of two histograms on the same bins (counts or
    shares; each is normalised, empty bins get a share of 1e-4). 0 means the same distribution; by the
    usual reading < 0.1 is stable, 0.1-0.25 a moderate shift, > 0.25 a large one. NaN when one is empty;
    ValueError for a NaN, infinite or negative count (it would give NaN or a large shift that is not one)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape:
        raise ValueError(f"psi: histograms of {e.size} and {a.size} bins")
    for which, h in (("expected", e), ("actual", a)):
        if not np.isfinite(h).all() or (h < 0).any():
            raise ValueError(f"psi: the {which} histogram holds a NaN, infinite or negative count")
    if e.sum() <= 0 or a.sum() <= 0:
        return float("nan")
    e = np.maximum(e / e.sum(), _EPS)
    a = np.maximum(a / a.sum(), _EPS)
    return float(np.sum((a - e) * np.log(a / e)))
