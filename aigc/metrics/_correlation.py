"""Pearson correlation of two detectors' P(ai) on the same items, undefined (None) where it means nothing."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MIN_SPREAD", "score_correlation"]

# Standard deviation of P(ai) under which one side's scores count as having no spread. The same item scored
# again (a health probe, a retried request) gives P(ai) equal to within float32 rounding (about 1e-7), and
# a mean of equal floats is not always exactly that float: with an exact ``std == 0`` test, 200 copies of
# one pair of scores gave a "correlation" of +1.0 or -1.0 about 40% of the time, one constant side ~1e-16.
MIN_SPREAD = 1e-6


def score_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation of the paired scores ``a`` and ``b`` in [-1, 1], or None where it is undefined:
    fewer than 3 finite pairs, or either side with a standard deviation under :data:`MIN_SPREAD`. Pairs
    with a non-finite score are left out. Never NaN, and never a numpy RuntimeWarning."""
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"score_correlation: {x.size} and {y.size} scores")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or x.std() < MIN_SPREAD or y.std() < MIN_SPREAD:
        return None
    with np.errstate(all="ignore"):
        r = float(np.corrcoef(x, y)[0, 1])
    return min(1.0, max(-1.0, r)) if math.isfinite(r) else None
