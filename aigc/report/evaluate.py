"""Evaluation: the run that scores data with bundles and assembles the ``metrics.json`` dict.

The pieces live beside it, each along one idea: :mod:`.scores` (metrics of labelled arrays with bootstrap
intervals, the paired comparison; no bundle needed), :mod:`.scoring` (scoring with one bundle),
:mod:`.robustness` (perturbation passes). Their public names are re-exported here.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .. import metrics as M
from .._bundle import forced_note
from .data import EvalData, stratified_sample
from .robustness import _run_robustness, robustness_entry
from .scores import _num, compare_scores, evaluate_scores, fpr_label
from .scoring import _MAX_EXAMPLES, EvalOptions, ScoredBundle, _bar, _failures, _score, _thresholds
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


def _roc_points(y: np.ndarray, p: np.ndarray, max_points: int = 300) -> dict[str, list[float]]:
    fpr, tpr, _ = M.roc_curve(y, p)
    if fpr.size > max_points:
        keep = np.unique(np.r_[0, np.linspace(0, fpr.size - 1, max_points).astype(int), fpr.size - 1])
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": [round(float(x), 6) for x in fpr], "tpr": [round(float(x), 6) for x in tpr]}


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
    asked_fields = (("slice_by", opts.slice_by), ("fairness_by", opts.fairness_by),
                    ("bootstrap_cluster", [opts.bootstrap_cluster] if opts.bootstrap_cluster else None))
    for what, asked in asked_fields:
        for f in asked or []:
            if f not in data.fields:
                close = difflib.get_close_matches(f, sorted(data.fields), n=1, cutoff=0.5)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{what}: the data has no field {f!r}{hint} (it has {', '.join(sorted(data.fields))})")
    slice_fields = opts.slice_by if opts.slice_by is not None else data.slice_fields()
    slice_fields = [f for f in slice_fields if f in data.fields]
    fair_fields = opts.fairness_by if opts.fairness_by is not None else [f for f in slice_fields if f != "generator"]
    fair_fields = [f for f in fair_fields if f in data.fields]

    clusters = _clusters(data, opts.bootstrap_cluster)
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
            "variant_warning": forced_note(det.spec, getattr(det, "variant", "fp32")),
            "thresholds": {n: {"value": _num(t["value"]), "target_fpr": t.get("target_fpr"), "calibration_n_human": t.get("n_human")}
                           for n, t in det.spec["thresholds"].items()},
            "group_thresholds": (det.spec.get("group_thresholds") or {}).get("column"),
            "provenance": {pk: pv for pk, pv in (det.spec.get("provenance") or {}).items()
                           if pk in ("created", "source_revision", "data_fingerprint", "exporter") and isinstance(pv, (str, int, float))},
            "calibration_method": det.spec.get("calibration", {}).get("method"),
            "n_scored": int(ok.sum()),
            "failures": _failures(data.ids, errors),
            "out_of_support": int(oos.sum()),
            "overlap": _overlap_of(det, data),
        }
        yk, pk = y[ok], p[ok]
        thr_ok = {n: (t[ok] if isinstance(t, np.ndarray) else t) for n, t in sb.thresholds.items()}
        seed_k = opts.seed + 1000 * k
        ck = None if clusters is None else [clusters[i] for i in np.flatnonzero(ok)]
        if (yk == 0).any() and (yk == 1).any():
            entry["overall"] = evaluate_scores(yk, pk, thr_ok, opts.n_boot, opts.seed, opts.level, min_n=opts.min_slice,
                                               clusters=ck)
            entry["roc"] = _roc_points(yk, pk)
            entry["slices"] = {
                f: slice_table(yk, pk, [data.fields[f][i] for i in np.flatnonzero(ok)], thr_ok, opts.min_slice, opts.n_boot, seed_k,
                               opts.level, clusters=ck)
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
                clusters=None if clusters is None else [clusters[i] for i in np.flatnonzero(all_ok)],
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
            "bootstrap_method": _bootstrap_method(opts.bootstrap_cluster),
            "bootstrap_cluster": opts.bootstrap_cluster,
            "proportion_interval": "clopper-pearson (FPR, TPR and precision at a threshold; rates of groups)",
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


def _clusters(data: EvalData, field: str | None) -> list[Any] | None:
    """Each item's resampling cluster: its value of ``field`` (an item without one is a cluster of its own), or
    None when the bootstrap resamples items."""
    if not field:
        return None
    return [v if v is not None else ("\0item", i) for i, v in enumerate(data.fields[field])]


def _bootstrap_method(field: str | None) -> str:
    if not field:
        return "percentile (basic for ECE, adaptive ECE and MCE), resampling humans and AI items separately"
    return (f"percentile (basic for ECE, adaptive ECE and MCE), resampling whole clusters of items that share "
            f"'{field}' (by class where every cluster holds one class)")


def _overlap_of(det: Any, data: EvalData) -> dict[str, Any]:
    """The evaluated items shared with the bundle's training and calibration data (see ``aigc._overlap``);
    ``aigc eval`` prints the warning (``summary.overlap_lines``)."""
    from .._overlap import check_overlap

    bundle = getattr(det, "bundle", None)
    if bundle is None:
        return {"status": "unknown", "reason": "no bundle files to compare with", "n_items": len(data)}
    return check_overlap(bundle.root, det.spec, data.items, data.modality)


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
