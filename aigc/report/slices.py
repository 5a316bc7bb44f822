"""Slices: metrics per generator, domain, source, length or resolution bucket, format; and the fairness
slice, the false-positive rate of every group of human items.

A slice whose figure rests on too few items is kept and marked ``small`` (the report shows it greyed with
its count), never dropped: a reader must see that a group was there and could not be judged.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import metrics as M

__all__ = [
    "LENGTH_BUCKETS",
    "RESOLUTION_BUCKETS",
    "fairness_table",
    "length_bucket",
    "resolution_bucket",
    "slice_table",
]

# (lower bound inclusive, label); text lengths in tokens of the first bundle's tokenizer
LENGTH_BUCKETS: tuple[tuple[int, str], ...] = (
    (0, "<64 tok"),
    (64, "64-127 tok"),
    (128, "128-255 tok"),
    (256, "256-511 tok"),
    (512, "512+ tok"),
)
# shorter image side in pixels
RESOLUTION_BUCKETS: tuple[tuple[int, str], ...] = (
    (0, "<256 px"),
    (256, "256-511 px"),
    (512, "512-1023 px"),
    (1024, "1024+ px"),
)


def _bucket(v: float | None, buckets: Sequence[tuple[int, str]]) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    label = buckets[0][1]
    for lo, name in buckets:
        if v >= lo:
            label = name
    return label


def length_bucket(n_tokens: int | None) -> str | None:
    """Length bucket of a text by its token count (None when unknown)."""
    return _bucket(n_tokens, LENGTH_BUCKETS)


def resolution_bucket(width: int | None, height: int | None) -> str | None:
    """Resolution bucket of an image by its shorter side (None when unknown)."""
    if width is None or height is None:
        return None
    return _bucket(min(width, height), RESOLUTION_BUCKETS)


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _prop(k: int, n: int, min_n: int, level: float) -> dict[str, Any]:
    """A proportion k/n with its Clopper-Pearson interval, marked small below ``min_n``."""
    if n == 0:
        return {"value": None, "ci": None, "k": 0, "n": 0, "small": True}
    lo, hi = M.clopper_pearson(k, n, level)
    return {"value": k / n, "ci": [lo, hi], "k": int(k), "n": int(n), "small": n < min_n}


def _w_auroc_of(y: np.ndarray, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    return M.w_auroc(y, p, W)


def _order(groups: Sequence[str | None]) -> list[str]:
    counts: dict[str, int] = {}
    for g in groups:
        if g is not None:
            counts[g] = counts.get(g, 0) + 1
    return sorted(counts, key=lambda g: (-counts[g], g))


def slice_table(
    y: np.ndarray,
    p: np.ndarray,
    groups: Sequence[str | None],
    thresholds: Mapping[str, float | np.ndarray],
    min_n: int = 30,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Per group: counts, AUROC with a bootstrap interval, and TPR / FPR at each named threshold with
    Clopper-Pearson intervals. Items whose group is None are in no group.

    AUROC needs both classes: a group of AI items only (a generator) is ranked against all human items,
    a group of human items only against all AI items (``auroc.reference`` says which). A figure resting
    on fewer than ``min_n`` items of a class it needs is marked ``small``. ``clusters`` (one label per item):
    the AUROC bootstrap resamples whole clusters.
    """
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    g_arr = np.array([g if g is not None else "\0none" for g in groups], dtype=object)
    rows = []
    for g in _order(groups):
        m = g_arr == g
        n_h = int(((y == 0) & m).sum())
        n_a = int(((y == 1) & m).sum())
        if n_h and n_a:
            use, ref = m, "within"
        elif n_a:
            use, ref = m | (y == 0), "vs all human items"
        else:
            use, ref = m | (y == 1), "vs all AI items"
        yu, pu = y[use], p[use]
        u_h, u_a = int((yu == 0).sum()), int((yu == 1).sum())
        auroc: dict[str, Any] = {"value": None, "ci": None, "reference": ref, "small": True}
        if u_h and u_a:
            auroc["value"] = M.auroc(yu, pu)
            if n_boot > 0:
                cu = None if clusters is None else [c for c, u in zip(clusters, use, strict=True) if u]
                reps = M.bootstrap(yu, functools.partial(_w_auroc_of, yu, pu), n_boot=n_boot, seed=seed, groups=cu)
                lo, hi = M.percentile_ci(reps, level)
                auroc["ci"] = [_num(lo), _num(hi)]
            auroc["small"] = min(u_h, u_a) < min_n
        thr_rows: dict[str, Any] = {}
        for name, thr in thresholds.items():
            flag = p >= np.broadcast_to(np.asarray(thr, dtype=np.float64), p.shape)
            tp = int((flag & m & (y == 1)).sum())
            fp = int((flag & m & (y == 0)).sum())
            thr_rows[name] = {"tpr": _prop(tp, n_a, min_n, level), "fpr": _prop(fp, n_h, min_n, level)}
        rows.append({"group": g, "n": int(m.sum()), "n_human": n_h, "n_ai": n_a, "auroc": auroc, "thresholds": thr_rows})
    return rows


def fairness_table(
    y: np.ndarray,
    p: np.ndarray,
    groups: Sequence[str | None],
    thresholds: Mapping[str, float | np.ndarray],
    min_n: int = 30,
    level: float = 0.95,
) -> dict[str, Any]:
    """False-positive rate of every group of human items at each named threshold (Clopper-Pearson interval),
    beside the rate over all human items; ``max_ratio`` is the largest group rate over the overall rate
    among groups that are not small (None when it cannot be said)."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    human = y == 0
    g_arr = np.array([g if g is not None else "\0none" for g in groups], dtype=object)
    flags = {name: p >= np.broadcast_to(np.asarray(thr, dtype=np.float64), p.shape) for name, thr in thresholds.items()}
    overall = {name: _prop(int((f & human).sum()), int(human.sum()), min_n, level) for name, f in flags.items()}
    rows: list[dict[str, Any]] = []
    for g in _order([g if (g is not None and h) else None for g, h in zip(groups, human, strict=True)]):
        m = human & (g_arr == g)
        n = int(m.sum())
        rows.append({"group": g, "n_human": n, "fpr": {name: _prop(int((f & m).sum()), n, min_n, level) for name, f in flags.items()}})
    ratio: dict[str, float | None] = {}
    for name in flags:
        base = overall[name]["value"]
        vals = [r["fpr"][name]["value"] for r in rows if not r["fpr"][name]["small"] and r["fpr"][name]["value"] is not None]
        ratio[name] = (max(vals) / base) if vals and base else None
    return {"overall": overall, "groups": rows, "max_ratio": ratio}
