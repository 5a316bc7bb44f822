"""Thresholds on calibrated P(ai) that hold a stated false-positive rate (numpy only).

The rule for a target FPR ``alpha`` with ``n`` human calibration items (the finite-sample conformal
rule): at most ``k = floor(alpha * (n + 1)) - 1`` humans may lie at or above the threshold, and the
threshold sits in the gap just above the highest human it lets through, halfway to the next score.
Then the achieved FPR on the calibration set is ``k / n <= alpha`` and, for exchangeable items, the
expected FPR on fresh humans is at most ``(k + 1) / (n + 1) <= alpha``. The target needs
``k >= 0``, i.e. ``n >= 1 / alpha - 1`` humans (0.1% needs 999); fewer is refused with that number.

Each threshold also carries ``fpr_upper_95``: the one-sided 95% Clopper-Pearson upper bound on the
true FPR given ``k`` of ``n`` humans above it. The bound is valid for a threshold chosen on the same
data: the true FPR of the gap threshold is Beta(k + 1, n - k) distributed, whose 95th percentile is
exactly the Clopper-Pearson bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "ThresholdError",
    "choose_group_thresholds",
    "choose_thresholds",
    "choose_worst_group_thresholds",
    "clopper_pearson_upper",
    "close_threshold_name",
    "group_detection",
    "group_threshold",
    "humans_needed",
    "resolve_threshold",
    "restate_threshold",
    "threshold_name",
    "weak_group_notes",
    "weak_groups",
    "weak_groups_warning",
    "worst_group_humans",
]

# The worst-group rule's floor: a group with fewer human calibration items adds no threshold of its own.
MIN_GROUP_HUMANS = 20


class ThresholdError(ValueError):
    """A threshold cannot be chosen as asked (too few humans for the target, one class missing)."""


# -- the regularized incomplete beta function and the Clopper-Pearson bound ---------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def clopper_pearson_upper(k: int, n: int, alpha: float = 0.05) -> float:
    """One-sided (1 - alpha) Clopper-Pearson upper bound on a rate with ``k`` events in ``n`` trials.

    The p with P(Binomial(n, p) <= k) = alpha, i.e. the (1 - alpha) quantile of Beta(k + 1, n - k),
    found by bisection on I_p(k + 1, n - k). ``k == n`` gives 1.0; ``n == 0`` gives 1.0.
    """
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"clopper_pearson_upper: need 0 <= k <= n, found k={k}, n={n}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"clopper_pearson_upper: alpha must be in (0, 1), found {alpha}")
    if n == 0 or k == n:
        return 1.0
    if k == 0:  # closed form: 1 - alpha^(1/n)
        return float(-math.expm1(math.log(alpha) / n))
    a, b = float(k + 1), float(n - k)
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if betainc(a, b, mid) < 1.0 - alpha:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return float(hi)


# -- choosing thresholds ---------------------------------------------------------------------------------


def threshold_name(target: float) -> str:
    """``0.01 -> 'fpr@1%'``, ``0.005 -> 'fpr@0.5%'``."""
    pct = target * 100.0
    return f"fpr@{pct:.10g}%"


def humans_needed(target: float) -> int:
    """The fewest human calibration items that support a target FPR by the conformal rule (1/target - 1)."""
    return max(1, math.ceil(1.0 / target - 1.0 - 1e-9))


def _check(p: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if p.shape != y.shape:
        raise ThresholdError(f"thresholds: {p.size} probabilities but {y.size} labels")
    if not np.isfinite(p).all():
        raise ThresholdError("thresholds: probabilities contain NaN (drop failed items first)")
    if not np.isin(y, (0, 1)).all():
        raise ThresholdError("thresholds: labels must be 0 (human) or 1 (ai)")
    return p, y.astype(np.int64)


def _gap_above(v: float, values: np.ndarray) -> float:
    """A threshold strictly above ``v``: halfway to the next larger value in ``values`` (or to 1)."""
    above = values[values > v]
    nxt = float(above.min()) if above.size else 1.0
    t = 0.5 * (v + nxt)
    return t if t > v else float(nxt)


def _record(t: float, p: np.ndarray, y: np.ndarray, target: float | None, rule: str) -> dict[str, Any]:
    h, a = p[y == 0], p[y == 1]
    k = int((h >= t).sum())
    n = int(h.size)
    return {
        "value": float(t),
        "target_fpr": target,
        "n_human": n,
        "n_ai": int(a.size),
        "achieved_fpr": k / n if n else None,
        "fpr_upper_95": round(clopper_pearson_upper(k, n), 6) if n else None,
        "tpr": float((a >= t).mean()) if a.size else None,
        "bound": "clopper-pearson",
        "rule": rule,
    }


def _fpr_threshold(p: np.ndarray, y: np.ndarray, target: float, min_human: int | None) -> dict[str, Any]:
    h = np.sort(p[y == 0])
    n = int(h.size)
    need = max(humans_needed(target), min_human or 0)
    if n < need:
        raise ThresholdError(
            f"target FPR {target:g} ({threshold_name(target)}) needs at least {need} human calibration items, "
            f"found {n}; add human items or choose a larger target"
        )
    k = math.floor(target * (n + 1) + 1e-9) - 1  # humans allowed at or above the threshold
    k = max(0, min(k, n))
    # the highest human that must fall below the threshold is h[n - k - 1]; humans tied with it fall below too
    v = float(h[n - k - 1])
    if v >= 1.0:
        raise ThresholdError(
            f"target FPR {target:g}: {n - int(np.searchsorted(h, 1.0))} human items have P(ai) = 1.0 and no "
            "threshold in [0, 1] excludes them; the calibration saturates (check the calibration data and method)"
        )
    t = _gap_above(v, p)
    return _record(t, p, y, target, "conformal")


def _balanced_threshold(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The threshold maximising (TPR + TNR) / 2 over the gaps between distinct scores."""
    h, a = p[y == 0], p[y == 1]
    if not h.size or not a.size:
        raise ThresholdError(f"balanced threshold needs both classes: found {h.size} human and {a.size} ai items")
    vals = np.unique(p)
    cands = np.r_[vals[0], 0.5 * (vals[:-1] + vals[1:]), _gap_above(float(vals[-1]), vals)]
    hs, as_ = np.sort(h), np.sort(a)
    fpr = 1.0 - np.searchsorted(hs, cands, side="left") / h.size
    tpr = 1.0 - np.searchsorted(as_, cands, side="left") / a.size
    j = tpr - fpr
    best = int(np.flatnonzero(j == j.max())[0])
    return _record(float(cands[best]), p, y, None, "max (tpr + tnr) / 2")


def choose_thresholds(
    p: np.ndarray,
    labels: np.ndarray,
    targets: Sequence[float] = (0.01, 0.05),
    min_human: int | None = None,
    balanced: bool = True,
) -> dict[str, dict[str, Any]]:
    """Named thresholds on calibrated P(ai): ``fpr@X%`` per target, and ``balanced``.

    ``p``: calibrated P(ai) of the calibration items (n,), finite; ``labels``: 0 human / 1 ai.
    Each Threshold object (docs/bundle.md) records the human/AI counts used, the achieved FPR,
    the Clopper-Pearson 95% upper bound on the true FPR and the TPR. A target that the humans cannot
    support (fewer than ``1/target - 1``, or than ``min_human``) raises :class:`ThresholdError` with
    the number needed.
    """
    p, y = _check(p, labels)
    out: dict[str, dict[str, Any]] = {}
    for tgt in targets:
        if not 0.0 < float(tgt) < 1.0:
            raise ThresholdError(f"target FPR must be in (0, 1), found {tgt}")
        out[threshold_name(float(tgt))] = _fpr_threshold(p, y, float(tgt), min_human)
    if balanced:
        out["balanced"] = _balanced_threshold(p, y)
    return out


def choose_group_thresholds(
    p: np.ndarray,
    labels: np.ndarray,
    groups: Sequence[Any],
    column: str,
    targets: Sequence[float] = (0.01, 0.05),
    min_human: int | None = None,
    min_items: int = 50,
    floors: Mapping[str, float] | None = None,
    min_group_humans: int = MIN_GROUP_HUMANS,
) -> dict[str, Any]:
    """Per-group thresholds: the bundle's ``group_thresholds`` object ``{column, groups, skipped[, detection]}``
    (``detection``: :func:`group_detection`, for groups holding both labels).

    Each group (items whose ``groups`` value is not None) gets the thresholds its own items support:
    a target its humans cannot support is left out, and so is ``balanced`` without both classes;
    ``skipped`` says, per group, what was left out and why. Groups under ``min_items`` items get none
    (the runtime then uses the global thresholds).

    ``floors`` (threshold name -> the global threshold's value) adds the small-group rule that
    ``--worst-group`` uses: a group with at least ``min_group_humans`` humans but fewer than a target needs
    (99 for 1%), or under ``min_items`` items, gets that ``fpr@X`` just above all its humans and never below
    the global one, so that it flags no more of the group than the global threshold would. A language
    whose 50 human texts score above the English ones is the case (BENCHMARKS.md, session 23): the global
    1% threshold flagged 44% of glimpse's Chinese humans once newer generators were in training.
    """
    p, y = _check(p, labels)
    if len(groups) != p.size:
        raise ThresholdError(f"group thresholds: {len(groups)} group values for {p.size} items")
    g = np.asarray([None if v is None else str(v) for v in groups], dtype=object)
    out: dict[str, Any] = {"column": column, "groups": {}, "skipped": {}}
    for name in sorted({v for v in g if v is not None}):
        m = g == name
        n_h = int((y[m] == 0).sum())
        small_rule = floors is not None and n_h >= min_group_humans
        if m.sum() < min_items and not small_rule:
            out["skipped"][name] = [f"{int(m.sum())} items, fewer than {min_items}: the global thresholds apply"]
            continue
        ts, why = _one_group_thresholds(p, y, m, targets, min_human, min_items, floors if small_rule else None)
        if ts:
            out["groups"][name] = ts
        if why:
            out["skipped"][name] = why
    detection = group_detection(p, y, g)
    if detection:
        out["detection"] = detection
    return out


# A group whose machine items rank this poorly against its humans is one its thresholds cannot serve: they hold its
# humans' FPR but catch little (glimpse's Russian ChatGPT answers, AUROC 0.66: BENCHMARKS.md, session 25).
WEAK_GROUP_AUROC = 0.75
MIN_DETECTION_ITEMS = 10  # of each label, for a group's AUROC to be recorded


def group_detection(p: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per group with at least ``MIN_DETECTION_ITEMS`` items of each label: ``{n_human, n_ai, auroc, weak}``,
    ``weak`` when its AUROC is under ``WEAK_GROUP_AUROC``. ``groups``: one value or None per item."""
    from .metrics import auroc

    out: dict[str, dict[str, Any]] = {}
    for name in sorted({v for v in groups if v is not None}):
        m = groups == name
        n_h, n_a = int((y[m] == 0).sum()), int((y[m] == 1).sum())
        if min(n_h, n_a) >= MIN_DETECTION_ITEMS:
            a = round(auroc(y[m], p[m]), 6)
            out[str(name)] = {"n_human": n_h, "n_ai": n_a, "auroc": a, "weak": a < WEAK_GROUP_AUROC}
    return out


def weak_groups(gt: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The ``detection`` records of ``gt`` (a ``group_thresholds`` object, or None) marked ``weak``, by group."""
    return {g: d for g, d in ((gt or {}).get("detection") or {}).items() if isinstance(d, dict) and d.get("weak")}


def weak_group_notes(spec: Mapping[str, Any]) -> dict[str, str]:
    """For each group a served bundle (``spec``, one variant's record) marks ``weak`` in its group thresholds'
    ``detection``: the warning an item scored with that group carries (its label says little there)."""
    gt = spec.get("group_thresholds") or {}
    return {g: f"{gt.get('column')}={g}: this detector hardly tells machine from human items of this group (AUROC "
               f"{d.get('auroc', float('nan')):.2f} on its calibration items); its label says little here"
            for g, d in weak_groups(gt).items()}


def weak_groups_warning(gt: Mapping[str, Any]) -> str | None:
    """What to tell the user about the groups of ``gt`` (a ``group_thresholds`` object) whose ``detection`` is weak,
    or None when there is none."""
    weak = weak_groups(gt)
    if not weak:
        return None
    said = ", ".join(f"{g} (AUROC {d['auroc']:.2f} on {d['n_human']} human and {d['n_ai']} ai items)"
                     for g, d in weak.items())
    return (f"by {gt.get('column')}, the detector hardly tells machine items from human ones in {said}: its thresholds "
            f"hold those humans' FPR but catch little; consider not serving them (AUROC under {WEAK_GROUP_AUROC})")


def fpr_floors(thresholds: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """The ``fpr@X`` values of a bundle's global ``thresholds``: :func:`choose_group_thresholds`'s ``floors``."""
    return {k: float(v["value"]) for k, v in thresholds.items() if k.startswith("fpr@")}


def _one_group_thresholds(p: np.ndarray, y: np.ndarray, m: np.ndarray, targets: Sequence[float],
                          min_human: int | None, min_items: int, floors: Mapping[str, float] | None
                          ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """One group's thresholds (``m``: its items) and what was left out; ``floors``: the small-group rule's
    global values (None: only what the group's items support)."""
    pg, yg = p[m], y[m]
    ts: dict[str, dict[str, Any]] = {}
    why: list[str] = []
    enough = pg.size >= min_items
    for tgt in targets:
        name = threshold_name(float(tgt))
        n_h, need = int((yg == 0).sum()), max(humans_needed(float(tgt)), min_human or 0)
        if enough and n_h >= need:
            ts[name] = _fpr_threshold(pg, yg, float(tgt), min_human)
            continue
        if floors is None or name not in floors:
            why.append(f"target FPR {float(tgt):g} ({name}) needs at least {need} human calibration items"
                       + (f", found {n_h}" if enough else f" and {min_items} items, found {n_h} and {pg.size}")
                       + "; the global threshold applies")
            continue
        own, how = group_threshold(p, y, m, float(tgt), min_human)  # the worst-group rule's own threshold
        if how == "conformal":  # humans enough, items not
            how = f"conformal on {n_h} humans ({pg.size} items, fewer than {min_items})"
        floor = float(floors[name])
        ts[name] = {**_record(max(own, floor), pg, yg, float(tgt),
                              how if own >= floor else f"the global threshold ({how}: lower)"), "small_group": True}
    if enough:
        try:
            ts["balanced"] = _balanced_threshold(pg, yg)
        except ThresholdError as e:
            why.append(str(e))
    else:
        why.append(f"balanced: {pg.size} items, fewer than {min_items}; the global threshold applies")
    return ts, why


def choose_worst_group_thresholds(
    p: np.ndarray,
    labels: np.ndarray,
    groups: Sequence[Any],
    column: str,
    targets: Sequence[float] = (0.01, 0.05),
    min_human: int | None = None,
    min_group_humans: int = MIN_GROUP_HUMANS,
    balanced: bool = True,
) -> dict[str, dict[str, Any]]:
    """Named thresholds like :func:`choose_thresholds`, but each ``fpr@X%`` holds X for every group's humans.

    A pooled 1% threshold can flag far more than 1% of one source's humans when the sources differ (on
    ../shared/data, up to 7.5% of a held-out domain; BENCHMARKS.md), so for each target this takes the
    highest of the pooled threshold and each group's own conformal threshold. A group with fewer humans
    than the target needs (``1/X - 1``) but at least ``min_group_humans`` contributes a threshold just
    above its highest human (its expected FPR is then at most ``1/(n+1)``, more than X: said in
    ``groups``); groups under ``min_group_humans`` humans, and items whose group is None, count only in
    the pooled threshold and are listed in ``skipped_groups``. Each ``fpr@X%`` record adds ``groups``
    ``{group: {n_human, achieved_fpr, fpr_upper_95, rule}}`` at the chosen value and ``skipped_groups``;
    its ``rule`` names the column. ``balanced`` is the pooled one. Raises :class:`ThresholdError` when
    the pooled humans cannot support a target, or when no group has ``min_group_humans`` humans.
    """
    p, y = _check(p, labels)
    if len(groups) != p.size:
        raise ThresholdError(f"worst-group thresholds: {len(groups)} group values for {p.size} items")
    out = choose_thresholds(p, y, targets, min_human, balanced)
    g = np.asarray([None if v is None else str(v) for v in groups], dtype=object)
    n_h = worst_group_humans(y, groups, column, min_group_humans)
    names = list(n_h)  # sorted group values
    used = [name for name in names if n_h[name] >= min_group_humans]
    for tgt in targets:
        name = threshold_name(float(tgt))
        value = out[name]["value"]
        rules: dict[str, str] = {}
        for grp in used:
            v, rules[grp] = group_threshold(p, y, g == grp, float(tgt), min_human)
            value = max(value, v)
        rec = _record(value, p, y, float(tgt), f"conformal, worst group of {column}")
        rec["groups"] = {}
        for grp in used:
            r = _record(value, p[g == grp], y[g == grp], float(tgt), rules[grp])
            rec["groups"][grp] = {k: r[k] for k in ("n_human", "achieved_fpr", "fpr_upper_95", "tpr", "rule")}
        rec["skipped_groups"] = {grp: f"{n_h[grp]} humans, fewer than {min_group_humans}"
                                 for grp in names if grp not in used}
        out[name] = rec
    return out


def group_threshold(p: np.ndarray, y: np.ndarray, in_group: np.ndarray, target: float,
                    min_human: int | None = None) -> tuple[float, str]:
    """One group's own threshold for ``target`` and its rule, as :func:`choose_worst_group_thresholds` takes it:
    the group's conformal threshold when its humans support the target (and ``min_human``), else a threshold
    just above its highest human (a gap among all of ``p``). ``in_group``: boolean mask of the group's items,
    which must hold a human."""
    n_h = int((in_group & (y == 0)).sum())
    if n_h >= max(humans_needed(target), min_human or 0):
        return float(_fpr_threshold(p[in_group], y[in_group], target, None)["value"]), "conformal"
    return _gap_above(float(p[in_group & (y == 0)].max()), p), f"above all {n_h} humans (fewer than {humans_needed(target)})"


def restate_threshold(rec: dict[str, Any], value: float, p: np.ndarray, labels: np.ndarray,
                      groups: Sequence[Any] | None, rule: str) -> dict[str, Any]:
    """A copy of the threshold record ``rec`` (chosen on ``p``, ``labels``) moved to ``value``: its counts, achieved
    FPR, bound and TPR recomputed there, and so are those of each group in ``rec["groups"]`` (``groups``: each
    item's group value; their own rules kept); ``rule`` replaces its rule. Every other key is kept."""
    p, y = _check(p, labels)
    out = {**rec, **_record(float(value), p, y, rec.get("target_fpr"), rule)}
    if rec.get("groups"):
        if groups is None or len(groups) != p.size:
            raise ThresholdError("restate_threshold: the record has groups; pass one group value per item")
        g = np.asarray([None if v is None else str(v) for v in groups], dtype=object)
        out["groups"] = {}
        for grp, old in rec["groups"].items():
            r = _record(float(value), p[g == grp], y[g == grp], rec.get("target_fpr"), old["rule"])
            out["groups"][grp] = {k: r[k] for k in old if k in r}
    return out


def worst_group_humans(labels: np.ndarray, groups: Sequence[Any], column: str,
                       min_group_humans: int = MIN_GROUP_HUMANS) -> dict[str, int]:
    """Human items (label 0) per group value (None: no group); raises :class:`ThresholdError` naming every
    group's count when no group reaches ``min_group_humans``, the worst-group rule's refusal. The labels
    alone decide it, so an export asks before it scores anything."""
    y = np.asarray(labels)
    g = np.asarray([None if v is None else str(v) for v in groups], dtype=object)
    n_h = {name: int(((g == name) & (y == 0)).sum()) for name in sorted({v for v in g if v is not None})}
    if not any(n >= min_group_humans for n in n_h.values()):
        raise ThresholdError(
            f"worst-group thresholds by {column!r}: no group has {min_group_humans} human calibration items "
            f"(found {n_h or 'no group values'}); add human items per group or drop the worst-group rule"
        )
    return n_h


def close_threshold_name(name: str, names: list[str]) -> str | None:
    """A did-you-mean for a threshold name that never changes its numbers (``fpr@5`` -> ``fpr@5%``,
    ``balance`` -> ``balanced``; ``fpr@0.1%`` gets no suggestion in a bundle that has only ``fpr@1%``)."""
    import difflib
    import re

    def numbers(s: str) -> list[str]:
        return re.findall(r"\d+(?:\.\d+)?", s)

    same = [n for n in names if numbers(n) == numbers(name)]
    close = difflib.get_close_matches(name.strip().lower(), same, n=1, cutoff=0.6)
    return close[0] if close else None


def resolve_threshold(spec: dict[str, Any], threshold: str | float, group: str | None = None) -> tuple[str, float]:
    """A threshold name of ``spec`` (``fpr@1%``, ``balanced``, ...) or a probability -> (name, value).

    ``spec`` is a bundle.json as served (one variant's record, :func:`aigc._bundle.spec_for_variant`). A
    number, or a string that reads as one, must lie in [0, 1] (ValueError); an unknown name raises KeyError
    with a did-you-mean. With ``group`` and group thresholds in ``spec``, the group's own threshold of that
    name wins."""
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        try:
            threshold = float(threshold)
        except (TypeError, ValueError):
            pass
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
        v = float(threshold)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"threshold: found {v}, expected a probability in [0, 1] or a name")
        return f"p>={v:g}", v
    name = str(threshold)
    gt = spec.get("group_thresholds")
    if group is not None and gt and name in gt["groups"].get(str(group), {}):
        return f"{name}[{gt['column']}={group}]", float(gt["groups"][str(group)][name]["value"])
    ts = spec["thresholds"]
    if name not in ts:
        close = close_threshold_name(name, list(ts))
        hint = f"; did you mean {close!r}?" if close else ";"
        raise KeyError(f"threshold {name!r} is not in this bundle (it has {sorted(ts)}){hint} Or pass a probability.")
    return name, float(ts[name]["value"])
