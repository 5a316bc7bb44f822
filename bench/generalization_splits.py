"""The held-out splits of ``generalization_pair`` and how a feature set is scored on them: the shipped
closed-form head fitted on each training part (or another head, ``head``), the worst-domain 1% threshold of the
training part's humans (cross-fitted by groups, or by domains: ``calib``), and each split's cell (held-out AUROC
with its group-bootstrap interval, FPR of the held-out humans and TPR at that threshold). See
``generalization_pair``'s docstring for the splits; ``generalization_combos`` and ``evo_overlap`` use them too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import textsets
from generalization_lmfeatures import _folds, crossfit, fit_logreg, predict
from generalization_text import DOMAINS, worst_group_threshold


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    from aigc.metrics import auroc

    return auroc(y, s) if len(set(y.tolist())) == 2 else float("nan")


Weigh = Callable[[list[dict[str, Any]]], np.ndarray]
Prep = Callable[[np.ndarray, list[dict[str, Any]]], Callable[[np.ndarray], np.ndarray]]


Head = Callable[..., Callable[[np.ndarray], np.ndarray]]  # (x, y, l2, w, domains=...) -> scorer


def linear_head(x: np.ndarray, y: np.ndarray, l2: float, w: np.ndarray | None, domains: Any = None
                ) -> Callable[[np.ndarray], np.ndarray]:
    """The shipped closed-form head fitted on ``x``; returns the scorer (log-odds). Every head is also given the
    rows' ``domains`` (round 10's selects its penalty with them; this one ignores them)."""
    model = fit_logreg(x, y, l2, w)
    return lambda z: predict(model, z)


def _domain_heldout_scores(rows_tr: list[dict[str, Any]], x_tr: np.ndarray, y_tr: np.ndarray, l2: float,
                           w: np.ndarray | None, prep: Prep | None, head: Head) -> np.ndarray:
    """Each training text scored by a head (and ``prep``) fitted without its domain: how the detector scores
    humans of a domain it never saw (round 9's threshold; the loop is training's ``each_domain_left_out``). A
    domain left unscored is an error here: every split of the fixed sample has both labels in each complement."""
    from training.heldout_scores import each_domain_left_out

    dom = np.asarray([r["domain"] for r in rows_tr])

    def score_out(out: np.ndarray) -> np.ndarray:
        xd = x_tr if prep is None else prep(x_tr[~out], [r for r, o in zip(rows_tr, out, strict=True) if not o])(x_tr)
        return head(xd[~out], y_tr[~out], l2, None if w is None else w[~out], domains=dom[~out])(xd[out])

    s, skipped = each_domain_left_out(score_out, y_tr, dom.tolist())
    if skipped:
        raise ValueError(f"domain-held-out threshold: domains left unscored: {skipped}")
    return s


def fit_and_score(rows: list[dict[str, Any]], x: np.ndarray, tr: np.ndarray, te: np.ndarray, l2: float = 1.0,
                  weigh: Weigh | None = None, prep: Prep | None = None, head: Head | None = None,
                  calib: str = "groups") -> tuple[np.ndarray, float]:
    """Fit the head on ``tr``, score ``te``; the worst-domain 1% threshold of the training part's humans,
    cross-fitted (``calib`` "groups": each training human scored by a head fitted without its fold;
    "domains": by a head fitted without its domain). ``weigh`` maps the training part's rows to each text's
    weight in the head's loss (None: all alike). ``prep`` fits a feature transform on the training part's
    features and rows (never its labels), applied to every row before the head. ``head`` fits a scorer
    (None: the shipped closed-form linear head)."""
    y = np.asarray([r["label"] for r in rows])
    rows_tr = [r for r, m in zip(rows, tr, strict=True) if m]
    x_raw = x
    if prep is not None:
        x = prep(x[tr], rows_tr)(x)
    w = None if weigh is None else weigh(rows_tr)
    dom_tr = np.asarray([r["domain"] for r in rows_tr])
    scorer = (head or linear_head)(x[tr], y[tr], l2, w, domains=dom_tr)
    groups = [r["group"] for r in rows_tr]
    if calib == "domains":
        s_tr = _domain_heldout_scores(rows_tr, x_raw[tr], y[tr], l2, w, prep, head or linear_head)
    elif head is None:
        s_tr = crossfit(x[tr], y[tr], groups, l2=l2, sample_weight=w)
    else:
        f = _folds(groups, 5, 0)
        s_tr = np.zeros(int(tr.sum()))
        for i in range(5):
            s_tr[f == i] = head(x[tr][f != i], y[tr][f != i], l2, None if w is None else w[f != i],
                                domains=dom_tr[f != i])(x[tr][f == i])
    hum = y[tr] == 0
    thr = worst_group_threshold(s_tr[hum], dom_tr[hum].tolist())
    return scorer(x[te]), thr


N_BOOT = 300


def _auroc_replicates(y: np.ndarray, s: np.ndarray, groups: list[str]) -> np.ndarray:
    """AUROC over resamples of whole groups (a machine text and the human text it continues are one group),
    the same resamples for every detector on the same rows (paired)."""
    from aigc.metrics import bootstrap, w_auroc

    if len(set(y.tolist())) < 2:
        return np.full(N_BOOT, np.nan)
    return bootstrap(y, lambda W: w_auroc(y, s, W), n_boot=N_BOOT, seed=0, groups=groups)


def _cell(y: np.ndarray, s: np.ndarray, thr: float, groups: list[str]) -> dict[str, Any]:
    """Held-out AUROC with its 95% interval (group bootstrap), FPR of the humans at ``thr`` with its exact
    95% upper bound, TPR at ``thr``, and the counts."""
    from aigc.metrics import clopper_pearson, percentile_ci

    hum = y == 0
    k = int((s[hum] > thr).sum())
    return {"auroc": _auroc(y, s), "auroc_ci": list(percentile_ci(_auroc_replicates(y, s, groups))),
            "fpr": k / hum.sum() if hum.any() else float("nan"),
            "fpr_upper95": clopper_pearson(k, int(hum.sum()))[1] if hum.any() else float("nan"),
            "tpr": float(np.mean(s[y == 1] > thr)) if (y == 1).any() else float("nan"),
            "humans": int(hum.sum()), "machine": int((y == 1).sum())}


def by_generator_cells(y: np.ndarray, generators: np.ndarray, s: np.ndarray, thr: float, groups: list[str]
                       ) -> dict[str, dict[str, Any]]:
    """generator -> the cell of the held-out humans and that generator's machine texts (``_cell`` at ``thr``)."""
    out = {}
    for g in sorted(set(generators[y == 1])):
        b = (y == 0) | (generators == g)
        out[g] = _cell(y[b], s[b], thr, [k for k, m in zip(groups, b, strict=True) if m])
    return out


def _half(group: str) -> int:
    return int(group, 16) % 2


def lofo_folds(rows: list[dict[str, Any]]) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Leave one evobench family out: family -> its two (train, test) masks, one per half of the pairs. Test:
    that half's evobench humans and the family's machine texts; training: the older sets' English texts and
    the other half's evobench texts of the other families."""
    y = np.asarray([r["label"] for r in rows])
    evo = np.asarray([r["set"] == "evobench" for r in rows])
    fam = np.asarray([r["family"] for r in rows])
    older = np.asarray([r["set"] != "evobench" and not r["domain"].startswith("m4-") for r in rows])
    half = np.asarray([_half(r["group"]) for r in rows])
    return {f: [(older | (evo & (half != k) & (fam != f)), evo & (half == k) & ((y == 0) | (fam == f)))
                for k in (0, 1)] for f in textsets.FAMILIES}


def split_masks(rows: list[dict[str, Any]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (train, test) masks; see the module docstring."""
    from generalization_lmfeatures import newest_generators_split

    st = np.asarray([r["set"] for r in rows])
    fdg, glim, evo = st == "fdg", st == "glimpse", st == "evobench"
    dom = np.asarray([r["domain"] for r in rows])
    lab = np.asarray([r["label"] for r in rows])
    grp = [r["group"] for r in rows]
    lang = np.asarray([d.startswith("m4-") for d in dom])
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for d in DOMAINS:
        out[f"lodo-{d}"] = (fdg & (dom != d), fdg & (dom == d))
    idx = np.flatnonzero(fdg)
    te, tr = newest_generators_split([rows[i] for i in idx])
    out["long"] = (np.isin(np.arange(len(rows)), idx[tr]), np.isin(np.arange(len(rows)), idx[te]))
    gnew = glim & ~lang
    gg = {g for g, m in zip(grp, gnew, strict=True) if m}
    test_h = fdg & (lab == 0) & np.asarray([g in gg or _half(g) == 1 for g in grp])
    test_groups = {g for g, m in zip(grp, test_h, strict=True) if m} | gg
    out["glimpse-new"] = (fdg & np.asarray([g not in test_groups for g in grp]), gnew | test_h)
    out["languages (humans)"] = (out["glimpse-new"][0], glim & lang)
    out["evo-cross"] = (fdg | gnew, evo)
    return out


def evaluate_set(rows: list[dict[str, Any]], x: np.ndarray, l2: float = 1.0, weigh: Weigh | None = None,
                 prep: Prep | None = None, head: Head | None = None, calib: str = "groups") -> dict[str, Any]:
    """Every split's cell, evobench's per-family / per-domain cells, and leave-one-family-out; every head is
    the shipped closed-form one with penalty ``l2`` (``model.l2``) and the texts weighed by ``weigh`` unless
    ``head`` fits another; ``calib`` says how the threshold's training scores are cross-fitted
    (``fit_and_score``)."""
    from aigc.metrics import clopper_pearson, percentile_ci

    y = np.asarray([r["label"] for r in rows])
    fam = np.asarray([r["family"] for r in rows])
    dom = np.asarray([r["domain"] for r in rows])
    grp = np.asarray([r["group"] for r in rows])
    res: dict[str, Any] = {}
    for name, (tr, te) in split_masks(rows).items():
        s, thr = fit_and_score(rows, x, tr, te, l2, weigh, prep, head, calib)
        gt = grp[te]
        res[name] = _cell(y[te], s, thr, list(gt))

        def sub(b: np.ndarray, yt: np.ndarray = y[te], s: np.ndarray = s, gt: np.ndarray = gt, thr: float = thr
                ) -> dict[str, Any]:
            return _cell(yt[b], s[b], thr, list(gt[b]))

        if name == "evo-cross":
            fam_te, dom_te, yt = fam[te], dom[te], y[te]
            res[name]["by_family"] = {f: sub((yt == 0) | (fam_te == f)) for f in textsets.FAMILIES}
            res[name]["by_domain"] = {d: sub(dom_te == d) for d in sorted(set(dom_te))}
            words = np.asarray([len(r["text"].split()) for r, m in zip(rows, te, strict=True) if m])
            bins = {"<60 words": words < 60, "60-119 words": (words >= 60) & (words < 120), ">=120 words": words >= 120}
            res[name]["by_length"] = {k: sub(b) for k, b in bins.items() if b.any()}
        if name in ("long", "glimpse-new"):
            gen_te = np.asarray([r["generator"] for r, m in zip(rows, te, strict=True) if m])
            res[name]["by_generator"] = by_generator_cells(y[te], gen_te, s, thr, list(gt))
    for f, folds in lofo_folds(rows).items():
        ys, flags, reps, aucs = [], [], [], []
        for tr, te in folds:
            s, thr = fit_and_score(rows, x, tr, te, l2, weigh, prep, head, calib)
            ys.append(y[te])
            flags.append(s > thr)
            aucs.append(_auroc(y[te], s))
            reps.append(_auroc_replicates(y[te], s, list(grp[te])))
        yy, fl = np.concatenate(ys), np.concatenate(flags)
        k_h, n_h = int(fl[yy == 0].sum()), int((yy == 0).sum())
        res[f"evo-lofo-{f}"] = {"auroc": float(np.nanmean(aucs)),  # the two folds' mean, as their replicates
                                "auroc_ci": list(percentile_ci(np.nanmean(np.vstack(reps), axis=0))),
                                "fpr": k_h / n_h, "fpr_upper95": clopper_pearson(k_h, n_h)[1],
                                "tpr": float(fl[yy == 1].mean()), "humans": n_h, "machine": int((yy == 1).sum())}
    return res
