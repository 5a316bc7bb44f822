"""Intervals: the stratified bootstrap (weight matrices, replicates, percentile and basic intervals) and
intervals of a proportion (Wilson; exact Clopper-Pearson through the incomplete beta of ``aigc._thresholds``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .._thresholds import betainc


def bootstrap_weights(
    y: np.ndarray, n_boot: int = 1000, seed: int = 0, stratified: bool = True, max_cells: int = 4_000_000,
    groups: np.ndarray | Sequence[Any] | None = None,
) -> Iterator[np.ndarray]:
    """Yield resampling counts in chunks of shape (b, n), n_boot rows in all, deterministic in ``seed``.

    ``stratified``: humans and AI items are resampled separately, so each replicate keeps the class
    sizes of the data (no replicate lacks a class). Chunks hold at most ``max_cells`` numbers.

    ``groups`` (one label per item): resample whole groups instead of items (the cluster bootstrap), each
    item weighted by how often its group was drawn. Items that are not independent need it, and resampling
    them one by one misstates the spread either way: near-copies of one text look like new evidence (too
    narrow), and a machine text and the human text it continues, whose scores move together with their
    shared topic and opening, are compared as if unrelated (too wide for a paired design). Groups are stratified by class when every group holds
    one class; a group that holds both (a pair) makes the class sizes vary between replicates.
    """
    y = np.asarray(y).astype(np.int64).ravel()
    n = y.size
    if n == 0:
        raise ValueError("bootstrap of an empty set")
    unit_of, n_units, unit_class = _resampling_units(y, groups)
    if stratified and unit_class is not None:
        strata = [np.flatnonzero(unit_class == c) for c in (0, 1)]
    else:
        strata = [np.arange(n_units)]
    strata = [s for s in strata if s.size]
    chunk = max(1, min(n_boot, max_cells // n))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        W = np.zeros((b, n))
        for r in range(b):
            # one generator per replicate: replicate r is the same whatever the chunking or n_boot
            rng = np.random.default_rng([seed, done + r])
            drawn = np.zeros(n_units)
            for idx in strata:
                drawn += np.bincount(idx[rng.integers(0, idx.size, size=idx.size)], minlength=n_units)
            W[r] = drawn[unit_of]
        done += b
        yield W


def _resampling_units(y: np.ndarray, groups: np.ndarray | Sequence[Any] | None
                      ) -> tuple[np.ndarray, int, np.ndarray | None]:
    """(the unit of each item, the number of units, each unit's class or None when a unit holds both):
    one item per unit without ``groups``, else one group per unit (numbered in first-seen order)."""
    if groups is None:
        return np.arange(y.size), y.size, y
    g = list(groups)
    if len(g) != y.size:
        raise ValueError(f"bootstrap: {len(g)} group labels for {y.size} items")
    number: dict[Any, int] = {}
    unit_of = np.asarray([number.setdefault(key, len(number)) for key in g], dtype=np.int64)
    n_units = len(number)
    lo = np.full(n_units, 2)
    hi = np.full(n_units, -1)
    np.minimum.at(lo, unit_of, y)
    np.maximum.at(hi, unit_of, y)
    return unit_of, n_units, (lo if (lo == hi).all() else None)


def bootstrap(
    y: np.ndarray,
    stat: Callable[[np.ndarray], Any],
    n_boot: int = 1000,
    seed: int = 0,
    stratified: bool = True,
    groups: np.ndarray | Sequence[Any] | None = None,
) -> Any:
    """Replicates of ``stat(W)`` over ``n_boot`` resamples (``W``: (b, n) counts from :func:`bootstrap_weights`).

    ``stat`` returns a (b,) array, a tuple of them, or a dict of them; the result has the same shape
    with (n_boot,) arrays. Calling it with the same ``y`` and seed gives the same resamples, which is
    what a paired comparison of two detectors needs (compute both inside one ``stat``). ``groups``: resample
    whole groups (see :func:`bootstrap_weights`).
    """
    if n_boot < 1:
        raise ValueError(f"bootstrap: n_boot is {n_boot}, expected at least 1")
    parts: list[Any] = [stat(W) for W in bootstrap_weights(y, n_boot, seed, stratified, groups=groups)]
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
