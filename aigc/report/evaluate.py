"""Evaluation: metrics with bootstrap intervals on (labels, probabilities), the paired comparison of two
detectors on the same items, robustness under perturbations, and the run that scores data with bundles.

The array functions (:func:`evaluate_scores`, :func:`compare_scores`, :func:`robustness_entry`) need no
bundle; :func:`run_evaluation` scores with :class:`aigc.Detector` and assembles the ``metrics.json`` dict.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .. import metrics as M
from ..perturb import image_applies, list_perturbations, perturb_image, perturb_texts
from .data import EvalData, stratified_sample
from .slices import fairness_table, length_bucket, resolution_bucket, slice_table

__all__ = [
    "SCHEMA_VERSION",
    "EvalOptions",
    "ScoredBundle",
    "compare_scores",
    "evaluate_scores",
    "fpr_label",
    "robustness_entry",
    "run_evaluation",
]

SCHEMA_VERSION = 1
log = logging.getLogger("aigc.report")

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


def _check_arrays(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.int64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels have {y.size} items but probabilities have {p.size}")
    if np.isnan(p).any():
        raise ValueError("probabilities contain NaN: drop failed items before evaluating")
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
) -> dict[str, Any]:
    """All headline metrics of one detector with bootstrap intervals (stratified percentile bootstrap).

    ``thresholds`` maps a name to a probability or to one probability per item (per-group thresholds).
    ``n_boot=0`` gives point values with no intervals.
    """
    y, p = _check_arrays(y, p)
    stat = _stat_fn(y, p, thresholds, targets)
    point = {k: float(v[0]) for k, v in stat(np.ones((1, y.size))).items()}
    reps = M.bootstrap(y, stat, n_boot=n_boot, seed=seed) if n_boot > 0 else None

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
    reps = M.bootstrap(y, both, n_boot=n_boot, seed=seed) if n_boot > 0 else None
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


def robustness_entry(
    y: np.ndarray,
    p_clean: np.ndarray,
    p_pert: np.ndarray,
    thresholds: Mapping[str, float | np.ndarray],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    min_n: int = 30,
) -> dict[str, Any]:
    """AUROC of the perturbed scores (bootstrap interval), its change from clean on the same items (paired
    interval), and TPR / FPR at each named threshold (Clopper-Pearson). Items that failed either way are
    left out (``n_failed``)."""
    y = np.asarray(y, dtype=np.int64)
    ok = np.isfinite(p_clean) & np.isfinite(p_pert)
    y, pc, pp = y[ok], np.asarray(p_clean)[ok], np.asarray(p_pert)[ok]
    thr = {k: (v[ok] if isinstance(v, np.ndarray) else v) for k, v in thresholds.items()}
    out: dict[str, Any] = {"n": int(y.size), "n_failed": int((~ok).sum())}
    if not ((y == 0).any() and (y == 1).any()):
        out.update({"auroc": {"value": None, "ci": None}, "delta_auroc": {"value": None, "ci": None}, "thresholds": {}})
        return out

    def stat(W: np.ndarray) -> dict[str, np.ndarray]:
        a = M.w_auroc(y, pp, W)
        return {"auroc": a, "delta": a - M.w_auroc(y, pc, W)}

    reps = M.bootstrap(y, stat, n_boot=n_boot, seed=seed) if n_boot > 0 else None
    a, c = M.auroc(y, pp), M.auroc(y, pc)
    out["auroc"] = _val(a, None if reps is None else reps["auroc"], level)
    out["delta_auroc"] = _val(a - c, None if reps is None else reps["delta"], level)
    tr: dict[str, Any] = {}
    for name, t in thr.items():
        m = M.threshold_metrics(y, pp, t)
        mc = M.threshold_metrics(y, pc, t)
        n_a, n_h = int((y == 1).sum()), int((y == 0).sum())
        tp, fp = round(m["tp"]), round(m["fp"])
        tr[name] = {
            "tpr": {"value": m["recall"], "ci": list(M.clopper_pearson(tp, n_a, level)), "clean": mc["recall"], "small": n_a < min_n},
            "fpr": {"value": m["fpr"], "ci": list(M.clopper_pearson(fp, n_h, level)), "clean": mc["fpr"], "small": n_h < min_n},
        }
    out["thresholds"] = tr
    return out


# -- the run with bundles ---------------------------------------------------------------------------
@dataclass
class EvalOptions:
    """What ``aigc eval`` was asked for (see ``aigc eval --help``)."""

    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95
    limit: int | None = None
    min_slice: int = 30
    robustness: bool = True
    perturbations: list[str] | None = None  # None: all for the modality
    robustness_limit: int | None = 1000
    slice_by: list[str] | None = None  # None: every field with 1..50 distinct values
    fairness_by: list[str] | None = None  # None: the slice fields except generator
    progress: bool = True
    chunk: int = 1024


@dataclass
class ScoredBundle:
    """One bundle's clean scores on the data: probabilities (NaN where failed), errors, out-of-support flags."""

    name: str
    path: str
    detector: Any
    p: np.ndarray
    errors: list[str | None]
    out_of_support: np.ndarray
    thresholds: dict[str, float | np.ndarray] = field(default_factory=dict)


def _bar(total: int, desc: str, on: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="item", disable=not on, file=sys.stderr, leave=False, dynamic_ncols=True)


def _score(det: Any, items: Sequence[Any], bar: Any, chunk: int = 1024) -> tuple[np.ndarray, list[str | None], np.ndarray]:
    """Calibrated P(ai) per item (NaN where it failed), the errors, and the out-of-support flags."""
    thr_name: str | float = next(iter(det.spec.get("thresholds") or {}), 0.5)
    p = np.full(len(items), np.nan)
    errors: list[str | None] = [None] * len(items)
    oos = np.zeros(len(items), dtype=bool)
    for s in range(0, len(items), chunk):
        part = list(items[s : s + chunk])
        try:
            res: list[Any] = det.score(part, threshold=thr_name, progress=bar.update)
        except Exception as e:  # the runtime isolates bad items; this is the last guard
            log.warning("scoring a chunk failed (%s); scoring its items one by one", e)
            res = []
            for k, it in enumerate(part):
                try:
                    res.extend(det.score([it], threshold=thr_name))
                except Exception as e1:
                    res.append(None)
                    errors[s + k] = f"{type(e1).__name__}: {e1}"
                bar.update(1)
        for k, r in enumerate(res):
            if r is None:
                continue
            if r.error is None and math.isfinite(r.probability):
                p[s + k] = r.probability
                oos[s + k] = bool(r.out_of_support)
            else:
                errors[s + k] = r.error or "no probability"
    return p, errors, oos


def _thresholds(det: Any, data: EvalData) -> dict[str, float | np.ndarray]:
    """Each named threshold of the bundle; per item where the bundle has group thresholds for a field the data has."""
    gt = det.spec.get("group_thresholds") or {}
    col = gt.get("column")
    out: dict[str, float | np.ndarray] = {}
    for name, t in det.spec["thresholds"].items():
        if col and col in data.fields:
            out[name] = np.array([det.resolve_threshold(name, g)[1] for g in data.fields[col]], dtype=np.float64)
        else:
            out[name] = float(t["value"])
    return out


def _item_meta(data: EvalData, det: Any) -> dict[str, list[str | None]]:
    """Derived slice fields: text length bucket (tokens of ``det``'s tokenizer); image resolution bucket and format."""
    if data.modality == "text":
        from .._text import normalize_text

        tok = getattr(det, "tokenizer", None)
        spec = getattr(det, "text_spec", None)
        if tok is None or spec is None:
            return {}
        texts = [normalize_text(t, spec.normalize) for t in data.items]
        lens = [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)]
        return {"length": [length_bucket(n) for n in lens]}
    from PIL import Image

    res: list[str | None] = []
    fmt: list[str | None] = []
    for path in data.items:
        try:
            with Image.open(path) as im:
                res.append(resolution_bucket(im.width, im.height))
                fmt.append(im.format)
        except Exception:
            res.append(None)
            fmt.append(None)
    return {"resolution": res, "format": fmt}


def _failures(ids: Sequence[str], errors: Sequence[str | None]) -> dict[str, Any]:
    bad = [(i, e) for i, e in zip(ids, errors, strict=True) if e is not None]
    kinds: dict[str, int] = {}
    for _, e in bad:
        k = e.split(" (")[0][:80]
        kinds[k] = kinds.get(k, 0) + 1
    return {"count": len(bad), "by_error": kinds, "examples": [{"id": i, "error": e} for i, e in bad[:_MAX_EXAMPLES]]}


def _roc_points(y: np.ndarray, p: np.ndarray, max_points: int = 300) -> dict[str, list[float]]:
    fpr, tpr, _ = M.roc_curve(y, p)
    if fpr.size > max_points:
        keep = np.unique(np.r_[0, np.linspace(0, fpr.size - 1, max_points).astype(int), fpr.size - 1])
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": [round(float(x), 6) for x in fpr], "tpr": [round(float(x), 6) for x in tpr]}


def _perturbed_items(data: EvalData, idx: np.ndarray, decoded: list[Any] | None, name: str, seed: int, tokenizer: Any) -> tuple[list[Any], int]:
    """Perturbed copies of the items at ``idx`` and how many the perturbation changed. Images come decoded
    (``decoded``: a LoadedImage or None per item); one that failed to decode stays a path and fails again in scoring."""
    if data.modality == "text":
        texts = [data.items[i] for i in idx]
        out_t = perturb_texts(texts, name, seed=seed, tokenizer=tokenizer, indices=[int(i) for i in idx])
        return list(out_t), sum(a != b for a, b in zip(texts, out_t, strict=True))
    assert decoded is not None
    out: list[Any] = []
    changed = 0
    for i, li in zip(idx, decoded, strict=True):
        if li is None or not image_applies(name, li.format):
            out.append(data.items[i])  # untouched: scored from the file as it is
            continue
        changed += 1
        out.append(perturb_image(li.image, name, seed=seed, index=int(i), source_format=li.format))
    return out, changed


def run_evaluation(detectors: Sequence[tuple[str, str, Any]], data: EvalData, opts: EvalOptions) -> tuple[dict[str, Any], list[ScoredBundle], EvalData]:
    """Score ``data`` with each ``(name, path, Detector)`` and build the ``metrics.json`` dict.

    Returns (metrics, scored bundles, the evaluated data after ``--limit``). Failed items are reported per
    bundle and excluded from that bundle's metrics; the comparison uses the items every bundle scored.
    """
    if not detectors:
        raise ValueError("no bundle to evaluate")
    n_read = len(data)
    if opts.limit is not None and opts.limit < len(data):
        data = data.subset(stratified_sample(data.y, opts.limit, opts.seed))
    y = data.y
    if not ((y == 0).any() and (y == 1).any()):
        raise ValueError(f"{data.source}: evaluation needs both classes; found {int((y == 0).sum())} human and {int((y == 1).sum())} AI items")
    first_det = detectors[0][2]
    for fname, values in _item_meta(data, first_det).items():
        data.fields[fname if fname not in data.fields else f"meta_{fname}"] = values  # the data's own field wins
    slice_fields = opts.slice_by if opts.slice_by is not None else data.slice_fields()
    slice_fields = [f for f in slice_fields if f in data.fields]
    fair_fields = opts.fairness_by if opts.fairness_by is not None else [f for f in slice_fields if f != "generator"]
    fair_fields = [f for f in fair_fields if f in data.fields]

    scored: list[ScoredBundle] = []
    bundles_out: list[dict[str, Any]] = []
    for k, (name, path, det) in enumerate(detectors):
        with _bar(len(data), f"scoring {name}", opts.progress) as bar:
            p, errors, oos = _score(det, data.items, bar, opts.chunk)
        sb = ScoredBundle(name, path, det, p, errors, oos, _thresholds(det, data))
        scored.append(sb)
        ok = np.isfinite(p)
        entry: dict[str, Any] = {
            "name": name,
            "path": path,
            "bundle_name": det.spec.get("name"),
            "modality": det.modality,
            "variant": getattr(det, "variant", None),
            "thresholds": {n: {"value": _num(t["value"]), "target_fpr": t.get("target_fpr"), "calibration_n_human": t.get("n_human")}
                           for n, t in det.spec["thresholds"].items()},
            "group_thresholds": (det.spec.get("group_thresholds") or {}).get("column"),
            "provenance": {pk: pv for pk, pv in (det.spec.get("provenance") or {}).items()
                           if pk in ("created", "source_revision", "data_fingerprint", "exporter") and isinstance(pv, (str, int, float))},
            "calibration_method": det.spec.get("calibration", {}).get("method"),
            "n_scored": int(ok.sum()),
            "failures": _failures(data.ids, errors),
            "out_of_support": int(oos.sum()),
        }
        yk, pk = y[ok], p[ok]
        thr_ok = {n: (t[ok] if isinstance(t, np.ndarray) else t) for n, t in sb.thresholds.items()}
        seed_k = opts.seed + 1000 * k
        if (yk == 0).any() and (yk == 1).any():
            entry["overall"] = evaluate_scores(yk, pk, thr_ok, opts.n_boot, opts.seed, opts.level)
            entry["roc"] = _roc_points(yk, pk)
            entry["slices"] = {
                f: slice_table(yk, pk, [data.fields[f][i] for i in np.flatnonzero(ok)], thr_ok, opts.min_slice, opts.n_boot, seed_k, opts.level)
                for f in slice_fields
            }
            entry["fairness"] = {
                f: fairness_table(yk, pk, [data.fields[f][i] for i in np.flatnonzero(ok)], thr_ok, opts.min_slice, opts.level)
                for f in fair_fields
            }
        else:
            entry["overall"] = None
            entry["error"] = f"scored items lack a class ({int((yk == 0).sum())} human, {int((yk == 1).sum())} AI): no metrics"
        bundles_out.append(entry)

    comparisons = []
    all_ok = np.logical_and.reduce([np.isfinite(s.p) for s in scored])
    if len(scored) > 1:
        yc = y[all_ok]
        base = scored[0]
        for cand in scored[1:]:
            if not ((yc == 0).any() and (yc == 1).any()):
                comparisons.append({"baseline": base.name, "candidate": cand.name, "n": int(yc.size), "deltas": {},
                                    "error": "the items every bundle scored lack a class"})
                continue
            c = compare_scores(
                yc, base.p[all_ok], cand.p[all_ok],
                {n: (t[all_ok] if isinstance(t, np.ndarray) else t) for n, t in base.thresholds.items()},
                {n: (t[all_ok] if isinstance(t, np.ndarray) else t) for n, t in cand.thresholds.items()},
                opts.n_boot, opts.seed, opts.level,
            )  # fmt: skip
            comparisons.append({"baseline": base.name, "candidate": cand.name, **c})

    robustness: dict[str, Any] = {"enabled": False}
    if opts.robustness:
        robustness = _run_robustness(data, scored, all_ok, opts)

    metrics = {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aigc_version": _version(),
        "data": {
            "source": data.source,
            "modality": data.modality,
            "n_read": n_read,
            "n_items": len(data),
            "n_human": int((y == 0).sum()),
            "n_ai": int((y == 1).sum()),
            "limit": opts.limit,
            "problems": {"count": len(data.problems), "examples": [{"id": i, "error": e} for i, e in data.problems[:_MAX_EXAMPLES]]},
            "fields": sorted(data.fields),
            "derived_fields": _derived_notes(data, detectors[0][0]),
            "slice_fields": slice_fields,
            "fairness_fields": fair_fields,
        },
        "settings": {
            "bootstrap": opts.n_boot,
            "bootstrap_method": "percentile (basic for ECE, adaptive ECE and MCE), resampling humans and AI items separately",
            "proportion_interval": "clopper-pearson",
            "level": opts.level,
            "seed": opts.seed,
            "min_slice": opts.min_slice,
            "target_fprs": list(M.TARGET_FPRS),
            "ece_bins": 15,
        },
        "bundles": bundles_out,
        "comparisons": comparisons,
        "robustness": robustness,
    }
    return metrics, scored, data


def _run_robustness(data: EvalData, scored: list[ScoredBundle], all_ok: np.ndarray, opts: EvalOptions) -> dict[str, Any]:
    names = opts.perturbations if opts.perturbations is not None else list_perturbations(data.modality)
    known = list_perturbations(data.modality)
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"unknown {data.modality} perturbation(s) {bad}; known: {', '.join(known)}")
    pool = np.flatnonzero(all_ok)
    if opts.robustness_limit is not None and pool.size > opts.robustness_limit:
        pool = pool[stratified_sample(data.y[pool], opts.robustness_limit, opts.seed + 7)]
    y = data.y[pool]
    tokenizer = getattr(scored[0].detector, "tokenizer", None)
    out: dict[str, Any] = {"enabled": True, "n_items": int(pool.size), "perturbations": {}, "bundles": [s.name for s in scored]}
    out["clean"] = []
    for k, sb in enumerate(scored):
        thr = {n: (t[pool] if isinstance(t, np.ndarray) else t) for n, t in sb.thresholds.items()}
        e = robustness_entry(y, sb.p[pool], sb.p[pool], thr, opts.n_boot, opts.seed + k, opts.level, opts.min_slice)
        e["bundle"] = sb.name
        out["clean"].append(e)
    from .._image import decode_image
    from ..perturb import IMAGE_PERTURBATIONS, TEXT_PERTURBATIONS

    desc = IMAGE_PERTURBATIONS if data.modality == "image" else TEXT_PERTURBATIONS
    probs = {n: [np.full(pool.size, np.nan) for _ in scored] for n in names}
    errs: dict[str, list[list[str | None]]] = {n: [[None] * pool.size for _ in scored] for n in names}
    changed = dict.fromkeys(names, 0)
    # images: decode each item once for all perturbations, a few at a time (full-size photos are large)
    step = opts.chunk if data.modality == "text" else 16
    with _bar(pool.size * len(names) * len(scored), "robustness", opts.progress) as bar:
        for s in range(0, pool.size, step):
            idx = pool[s : s + step]
            decoded: list[Any] | None = None
            if data.modality == "image":
                decoded = []
                for i in idx:
                    try:
                        decoded.append(decode_image(data.items[i]))
                    except Exception:
                        decoded.append(None)
            for name in names:
                items, ch = _perturbed_items(data, idx, decoded, name, opts.seed, tokenizer)
                changed[name] += ch
                for k, sb in enumerate(scored):
                    pp, ee, _ = _score(sb.detector, items, bar, opts.chunk)
                    probs[name][k][s : s + idx.size] = pp
                    errs[name][k][s : s + idx.size] = ee
    ids = [data.ids[i] for i in pool]
    for name in names:
        per_bundle = []
        for k, sb in enumerate(scored):
            thr = {n: (t[pool] if isinstance(t, np.ndarray) else t) for n, t in sb.thresholds.items()}
            e = robustness_entry(y, sb.p[pool], probs[name][k], thr, opts.n_boot, opts.seed + k, opts.level, opts.min_slice)
            e["bundle"] = sb.name
            e["failures"] = _failures(ids, errs[name][k])
            per_bundle.append(e)
        out["perturbations"][name] = {"description": desc[name], "n_changed": changed[name], "results": per_bundle}
    return out


def _derived_notes(data: EvalData, first: str) -> dict[str, str]:
    if data.modality == "text":
        return {"length": f"text length in tokens of the tokenizer of {first} (content tokens, after its normalisation)"}
    return {"resolution": "shorter image side in pixels, from the file header", "format": "file format from the file header"}


def _version() -> str:
    try:
        import aigc

        return str(aigc.__version__)
    except Exception:  # pragma: no cover
        return "unknown"
