"""Robustness: the same items scored clean and under each perturbation, per bundle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import metrics as M
from ..perturb import image_applies, list_perturbations, perturb_image, perturb_texts
from .data import EvalData, stratified_sample
from .scores import _val
from .scoring import EvalOptions, ScoredBundle, _bar, _failures, _score

__all__ = ["robustness_entry"]


def robustness_entry(
    y: np.ndarray,
    p_clean: np.ndarray,
    p_pert: np.ndarray,
    thresholds: Mapping[str, float | np.ndarray],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    min_n: int = 30,
    clusters: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """AUROC of the perturbed scores (bootstrap interval), its change from clean on the same items (paired
    interval), and TPR / FPR at each named threshold (Clopper-Pearson). Items that failed either way are
    left out (``n_failed``). ``clusters`` (one label per item): the bootstrap resamples whole clusters."""
    y = np.asarray(y, dtype=np.int64)
    ok = np.isfinite(p_clean) & np.isfinite(p_pert)
    y, pc, pp = y[ok], np.asarray(p_clean)[ok], np.asarray(p_pert)[ok]
    cl = None if clusters is None else [c for c, k in zip(clusters, ok, strict=True) if k]
    thr = {k: (v[ok] if isinstance(v, np.ndarray) else v) for k, v in thresholds.items()}
    out: dict[str, Any] = {"n": int(y.size), "n_failed": int((~ok).sum())}
    if not ((y == 0).any() and (y == 1).any()):
        out.update({"auroc": {"value": None, "ci": None}, "delta_auroc": {"value": None, "ci": None}, "thresholds": {}})
        return out

    def stat(W: np.ndarray) -> dict[str, np.ndarray]:
        a = M.w_auroc(y, pp, W)
        return {"auroc": a, "delta": a - M.w_auroc(y, pc, W)}

    reps = M.bootstrap(y, stat, n_boot=n_boot, seed=seed, groups=cl) if n_boot > 0 else None
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
    cl = None if opts.bootstrap_cluster is None else [data.fields[opts.bootstrap_cluster][i] for i in pool]
    tokenizer = getattr(scored[0].detector, "tokenizer", None)
    out: dict[str, Any] = {"enabled": True, "n_items": int(pool.size), "perturbations": {}, "bundles": [s.name for s in scored]}
    out["clean"] = []
    for k, sb in enumerate(scored):
        thr = {n: (t[pool] if isinstance(t, np.ndarray) else t) for n, t in sb.thresholds.items()}
        e = robustness_entry(y, sb.p[pool], sb.p[pool], thr, opts.n_boot, opts.seed + k, opts.level, opts.min_slice, cl)
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
            e = robustness_entry(y, sb.p[pool], probs[name][k], thr, opts.n_boot, opts.seed + k, opts.level, opts.min_slice,
                                 cl)
            e["bundle"] = sb.name
            e["failures"] = _failures(ids, errs[name][k])
            per_bundle.append(e)
        out["perturbations"][name] = {"description": desc[name], "n_changed": changed[name], "results": per_bundle}
    return out
