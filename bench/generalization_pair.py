"""Larger offline LMs for text detection: Binoculars with the Qwen2.5-Coder 0.5B/1.5B pair, likelihood
features on Qwen 0.5B / gemma-3-270m / the pair, against the SmolLM2-135M features baseline (CPU).

Every text of ``textsets.all_rows`` (fastdetectgpt sample, glimpse's newer generators and languages,
evobench; every shared opening cut from both texts of a pair) is read once by each LM, first
``--max-length`` tokens, and per-token arrays are cached in chunks (``--cache-dir``), so the run can stop and
resume, and feature sets cost no LM time afterwards:

- ``smollm2`` / ``gemma`` / ``q05``: (lp, H, Var log p) per scored token under that LM alone;
- ``pair``: one pass of both Qwen models over the same token ids, 10 columns: (lp, H, Var) under the
  observer o (0.5B) and the performer p (1.5B); X_op = -sum_v p_o(v) log p_p(v) (Binoculars'
  cross-perplexity term), E_o[(log p_p)^2]; X_po, E_p[(log p_o)^2] (the other direction).

Then, per feature set, the shipped closed-form head (``training.lmfeatures.fit_logistic``) is fitted on each
training part and scored on the held-out one (zero-shot scores are one-feature fits: the same ranking):

- ``lodo-<domain>`` and ``long`` on the fastdetectgpt sample, as ``generalization_lmfeatures``;
- ``glimpse-new``: fit on all of the fastdetectgpt sample, test on glimpse's newer generators beside the
  sample's held-out humans (cross-fitted), and the FPR on glimpse's six languages' human texts;
- ``evo-cross``: fit on fastdetectgpt + glimpse English, test on evobench, per family and domain;
- ``evo-lofo-<family>``: leave one family out within evobench (two folds over human texts, pooled), fitting
  on the older sets plus evobench's other families.

Each cell: held-out AUROC, held-out human FPR and TPR at the worst-domain 1% threshold of the training part
(cross-fitted). Usage (the LM pass is hours on 2 cores; chunks resume)::

    .venv/bin/python bench/generalization_pair.py --models smollm2,pair --max-length 128 --cache-dir C
    .venv/bin/python bench/generalization_pair.py --tables-only --cache-dir C --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import textsets  # noqa: E402
from generalization_lmfeatures import _folds, crossfit, fit_logreg, lm_batches, predict  # noqa: E402
from generalization_text import DOMAINS, worst_group_threshold  # noqa: E402
from generalization_tokens import base7  # noqa: E402  (the seven statistics, one formula for both benches)

LMS = {"smollm2": "smollm2", "q05": "qwen2.5-coder-0.5b", "q15": "qwen2.5-coder-1.5b", "gemma": "gemma3-270m",
       "gemma_rank": "gemma3-270m", "gemma_hidden": "gemma3-270m"}
WIDTH = {"smollm2": 3, "q05": 3, "q15": 3, "gemma": 3, "pair": 10, "gemma_rank": 1, "gemma_hidden": 640}
POOLED = {"gemma_hidden"}  # passes that keep one (layers, width) array per text, not one row per token
CHUNK = 24  # texts per cached LM pass
COLUMNS = [*(f"lodo-{d}" for d in DOMAINS), "long", "glimpse-new", "evo-cross",
           *(f"evo-lofo-{f}" for f in textsets.FAMILIES)]  # the table's held-out splits


# ------------------------------------------------------------------------------------------- LM passes
def _one_lm_terms(lm: Any, ids: Any, mask: Any) -> Any:
    import torch

    from training.lmfeatures import token_terms

    with torch.inference_mode():
        lp, ent, var = token_terms(lm(input_ids=ids, attention_mask=mask).logits, ids)
    return torch.stack([lp, ent, var], -1)


def _rank_terms(lm: Any, ids: Any, mask: Any) -> Any:
    """(N, T-1, 1): log of each observed token's rank under the LM (1 = its most likely token), the
    statistic of GLTR and of DetectLLM's log-rank ratio; ``gemma_rank`` in the cache (gemma's lp, H, Var
    are ``gemma``'s)."""
    import torch

    with torch.inference_mode():
        logits = lm(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        seen = logits.gather(-1, ids[:, 1:, None])
        rank = (logits > seen).sum(-1) + 1
    return torch.log(rank.float())[..., None]


def _hidden_terms(lm: Any, ids: Any, mask: Any) -> Any:
    """(N, 2, D): each text's hidden states averaged over its tokens after the first (gemma's <bos>, whose
    state is an outlier), at the middle layer (row 0) and after the last layer's norm (row 1)."""
    import torch

    from training.hidden_probe import hidden_index, hidden_pool  # the detector's own pooling and layer

    with torch.inference_mode():
        hs = lm(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        return torch.stack([hidden_pool(hs[hidden_index(lm, 0)], mask), hidden_pool(hs[-1], mask)], 1)


def _pair_terms(obs: Any, perf: Any, ids: Any, mask: Any) -> Any:
    """(N, T-1, 10): (lp, H, Var) under o and p, X_op, E_o[(log p_p)^2], X_po, E_p[(log p_o)^2]."""
    import torch

    with torch.inference_mode():
        lo = torch.log_softmax(obs(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
        lq = torch.log_softmax(perf(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
        tgt = ids[:, 1:, None]
        cols = []
        for la in (lo, lq):
            pa = la.exp()
            ent = -(pa * la).sum(-1)
            cols += [la.gather(-1, tgt)[..., 0], ent, (pa * la * la).sum(-1) - ent * ent]
            del pa
        po, pq = lo.exp(), lq.exp()
        x_op, e2_op = -(po * lq).sum(-1), (po * lq * lq).sum(-1)
        x_po, e2_po = -(pq * lo).sum(-1), (pq * lo * lo).sum(-1)
    return torch.stack([*cols, x_op, e2_op, x_po, e2_po], -1)


def _load(name: str) -> tuple[Any, Any]:
    from training.weights import gguf_lm_path, smollm2_path
    from training.zeroshot import load_causal_lm

    path = smollm2_path() if name == "smollm2" else gguf_lm_path(LMS[name])
    return load_causal_lm(str(path), dtype="float32", device="cpu")


def _chunk_file(cache_dir: Path, model: str, max_length: int, part: list[str]) -> Path:
    key = hashlib.sha1("\x00".join([model, str(max_length), *part]).encode()).hexdigest()[:20]
    return cache_dir / f"{model}-{key}.npz"


def _read_chunk(model: str, part: list[str], max_length: int, batch: int, lms: dict[str, Any]) -> dict[str, Any]:
    if model not in lms:
        lms[model] = (_load("q05"), _load("q15")) if model == "pair" else (_load(model),)
    m = lms[model]
    res: list[np.ndarray] = [np.zeros((0, WIDTH[model]), np.float32)] * len(part)
    tc, tokens = time.perf_counter(), 0
    for idx, enc, ids, mask in lm_batches(m[0][1], part, max_length, batch, f"{model}"):
        t = (_pair_terms(m[0][0], m[1][0], ids, mask) if model == "pair" else
             _rank_terms(m[0][0], ids, mask) if model == "gemma_rank" else
             _hidden_terms(m[0][0], ids, mask) if model in POOLED else _one_lm_terms(m[0][0], ids, mask))
        for j, i in enumerate(idx):
            res[i] = (t[j].numpy().astype(np.float16) if model in POOLED  # float16: 2 x 640 a text, committed
                      else t[j, : len(enc[j]) - 1].numpy().astype(np.float32))
            tokens += len(enc[j])
    return {"flat": np.concatenate(res), "offsets": np.cumsum([0] + [len(a) for a in res]),
            "seconds": time.perf_counter() - tc, "texts": len(part), "tokens": tokens}


def arrays(models: list[str], texts: list[str], max_length: int, batch: int, cache_dir: Path, chunk: int = CHUNK,
           budget_s: float = float("inf")) -> dict[str, list[np.ndarray | None]]:
    """Per model and text a (T-1, WIDTH[model]) float32 array. Texts are read in chunks of ``chunk`` (in the
    order given), every model on a chunk before the next chunk, each chunk cached as one ``.npz`` per model
    under ``cache_dir``; chunks not started within ``budget_s`` seconds stay None (all models alike)."""
    import torch

    out: dict[str, list[np.ndarray | None]] = {m: [None] * len(texts) for m in models}
    lms: dict[str, Any] = {}
    t0 = time.perf_counter()
    for c0 in range(0, len(texts), chunk):
        part = texts[c0: c0 + chunk]
        files = {m: _chunk_file(cache_dir, m, max_length, part) for m in models}
        if not all(f.is_file() for f in files.values()):
            if time.perf_counter() - t0 > budget_s:
                continue
            torch.manual_seed(0)
            for m, f in files.items():
                if not f.is_file():
                    z = _read_chunk(m, part, max_length, batch, lms)
                    np.savez_compressed(f.with_suffix(".tmp.npz"), **z)
                    os.replace(f.with_suffix(".tmp.npz"), f)
            print(f"chunk {c0 // chunk + 1} of {-(-len(texts) // chunk)} done at {time.perf_counter() - t0:.0f} s",
                  flush=True)
        for m, f in files.items():
            z = np.load(f)
            for i in range(len(part)):
                out[m][c0 + i] = z["flat"][z["offsets"][i]: z["offsets"][i + 1]]
    return out


def sample_rows(fdg: tuple[int, int], glimpse: tuple[int, int], evobench: tuple[int, int], seed: int = 0
                ) -> list[dict[str, Any]]:
    """The sample's rows in the seeded order the LM passes read them (any prefix of chunks is stratified)."""
    rows = textsets.all_rows(fdg, glimpse, evobench, seed=seed)
    return [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]


def texts_read(rows: list[dict[str, Any]], arrs: dict[str, list[np.ndarray | None]]
               ) -> tuple[list[dict[str, Any]], dict[str, list[np.ndarray]]]:
    """The rows every LM has read (at least two tokens) and their arrays, in the same order."""
    keep = [i for i in range(len(rows)) if all(a[i] is not None and len(a[i]) >= 2 for a in arrs.values())]  # type: ignore[arg-type]
    return [rows[i] for i in keep], {m: [a[i] for i in keep] for m, a in arrs.items()}  # type: ignore[misc]


def lm_cost(models: list[str], cache_dir: Path) -> dict[str, dict[str, float]]:
    """Texts/s and tokens/s of each model's pass, from the cached chunks' timings."""
    out = {}
    for m in models:
        zs = [np.load(f) for f in sorted(cache_dir.glob(f"{m}-*.npz")) if ".tmp" not in f.name]
        sec = sum(float(z["seconds"]) for z in zs)
        if sec > 0:
            out[m] = {"texts_per_s": sum(int(z["texts"]) for z in zs) / sec,
                      "tokens_per_s": sum(int(z["tokens"]) for z in zs) / sec, "seconds": sec}
    return out


# -------------------------------------------------------------------------------------------- features
def pair_terms(a: np.ndarray) -> dict[str, float]:
    """Zero-shot pair statistics (larger = more machine-like) from the 10 ``pair`` columns."""
    a = a.astype(float)
    lp_o, lp_p, x_op, e2_op, x_po, e2_po = a[:, 0], a[:, 3], a[:, 6], a[:, 7], a[:, 8], a[:, 9]
    var_op, var_po = np.maximum(e2_op - x_op ** 2, 0), np.maximum(e2_po - x_po ** 2, 0)
    return {
        "binoculars": lp_o.mean() / x_op.mean(),  # log-PPL_o / X-PPL_op, negated (this repo's default)
        "binoculars_perf": lp_p.mean() / x_op.mean(),  # the reference code's performer numerator
        "logppl_perf": -lp_p.mean(), "xppl": x_op.mean(),
        "fdg_o_samples_p_scores": (lp_p + x_op).sum() / np.sqrt(max(var_op.sum(), 1e-12)),
        "fdg_p_samples_o_scores": (lp_o + x_po).sum() / np.sqrt(max(var_po.sum(), 1e-12)),
    }


def feature_sets(arrs: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Feature set name -> (n, F) matrix over the texts every needed LM has read."""
    sets: dict[str, np.ndarray] = {}
    for m, label in (("smollm2", "smollm2 features (baseline)"), ("gemma", "gemma-270m features"),
                     ("q05", "qwen-0.5b features")):
        if m in arrs:
            sets[label] = np.asarray([base7(a) for a in arrs[m]])
    if "pair" in arrs:
        p = arrs["pair"]
        terms = [pair_terms(a) for a in p]
        sets["qwen-0.5b features"] = np.asarray([base7(a[:, 0:3]) for a in p])
        sets["qwen-1.5b features"] = np.asarray([base7(a[:, 3:6]) for a in p])
        for k in ("binoculars", "binoculars_perf", "fdg_o_samples_p_scores", "fdg_p_samples_o_scores"):
            sets[f"zero-shot {k}"] = np.asarray([[t[k]] for t in terms])
        sets["0.5b features + pair terms"] = np.asarray(
            [[*base7(a[:, 0:3]), t["logppl_perf"], t["xppl"]] for a, t in zip(p, terms, strict=True)])
        sets["both features + pair terms"] = np.asarray(
            [base7(a[:, 0:3]) + base7(a[:, 3:6]) + [t["logppl_perf"], t["xppl"], t["binoculars"],
                                                    t["fdg_o_samples_p_scores"]] for a, t in zip(p, terms, strict=True)])
        if "gemma" in arrs:  # a base model beside the instruct 1.5B: strong on the old domains and the new ones?
            sets["gemma + qwen-1.5b features"] = np.hstack([sets["gemma-270m features"], sets["qwen-1.5b features"]])
    return sets


# ---------------------------------------------------------------------------------------------- splits
def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    from aigc.metrics import auroc

    return auroc(y, s) if len(set(y.tolist())) == 2 else float("nan")


Weigh = Callable[[list[dict[str, Any]]], np.ndarray]
Prep = Callable[[np.ndarray, list[dict[str, Any]]], Callable[[np.ndarray], np.ndarray]]


Head = Callable[[np.ndarray, np.ndarray, float, "np.ndarray | None"], Callable[[np.ndarray], np.ndarray]]


def linear_head(x: np.ndarray, y: np.ndarray, l2: float, w: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
    """The shipped closed-form head fitted on ``x``; returns the scorer (log-odds)."""
    model = fit_logreg(x, y, l2, w)
    return lambda z: predict(model, z)


def _domain_heldout_scores(rows_tr: list[dict[str, Any]], x_tr: np.ndarray, y_tr: np.ndarray, l2: float,
                           w: np.ndarray | None, prep: Prep | None, head: Head) -> np.ndarray:
    """Each training text scored by a head (and ``prep``) fitted without its domain: how the detector scores
    humans of a domain it never saw (round 9's threshold)."""
    dom = np.asarray([r["domain"] for r in rows_tr])
    s = np.zeros(len(y_tr))
    for d in sorted(set(dom.tolist())):
        out = dom == d
        xd = x_tr if prep is None else prep(x_tr[~out], [r for r, o in zip(rows_tr, out, strict=True) if not o])(x_tr)
        s[out] = head(xd[~out], y_tr[~out], l2, None if w is None else w[~out])(xd[out])
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
    scorer = (head or linear_head)(x[tr], y[tr], l2, w)
    groups = [r["group"] for r in rows_tr]
    if calib == "domains":
        s_tr = _domain_heldout_scores(rows_tr, x_raw[tr], y[tr], l2, w, prep, head or linear_head)
    elif head is None:
        s_tr = crossfit(x[tr], y[tr], groups, l2=l2, sample_weight=w)
    else:
        f = _folds(groups, 5, 0)
        s_tr = np.zeros(int(tr.sum()))
        for i in range(5):
            s_tr[f == i] = head(x[tr][f != i], y[tr][f != i], l2, None if w is None else w[f != i])(x[tr][f == i])
    hum = y[tr] == 0
    doms = [r["domain"] for r in rows_tr]
    thr = worst_group_threshold(s_tr[hum], [d for d, h in zip(doms, hum, strict=True) if h])
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
            gen_te, yt = np.asarray([r["generator"] for r, m in zip(rows, te, strict=True) if m]), y[te]
            res[name]["by_generator"] = {g: sub((yt == 0) | (gen_te == g)) for g in sorted(set(gen_te[yt == 1]))}
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


def _fmt(c: dict[str, Any]) -> str:
    lo, hi = c["auroc_ci"]
    return (f"{c['auroc']:.3f} [{lo:.2f}, {hi:.2f}] / {100 * c['fpr']:.1f}% (<={100 * c['fpr_upper95']:.1f}%) / "
            f"{100 * c['tpr']:.0f}%")


def print_table(table: dict[str, dict[str, Any]]) -> None:
    cols = COLUMNS
    print("cells: held-out AUROC [95% group-bootstrap interval] / human FPR (exact 95% upper bound) / TPR at the "
          "training part's worst-domain 1% threshold")
    for name, res in table.items():
        print(f"\n{name}  (n={res['n']}; six languages' humans flagged: "
              f"{100 * res['languages (humans)']['fpr']:.1f}% of {res['languages (humans)']['humans']})")
        print("  " + "  ".join(f"{c}={_fmt(res[c])}" for c in cols))
        ec = res["evo-cross"]
        print("  evo-cross by family: " + "  ".join(f"{k}={_fmt(v)}" for k, v in ec["by_family"].items()))
        print("  evo-cross by domain: " + "  ".join(f"{k}={_fmt(v)}" for k, v in ec["by_domain"].items()))
        print("  evo-cross by length: " + "  ".join(f"{k}={_fmt(v)}" for k, v in ec["by_length"].items()))
        for split in ("long", "glimpse-new"):
            print(f"  {split} by generator: " + "  ".join(f"{k}={_fmt(v)}" for k, v in res[split]["by_generator"].items()))


def markdown_table(table: dict[str, dict[str, Any]]) -> str:
    """The BENCHMARKS.md table: one row per feature set, cells AUROC [interval] / human FPR / TPR."""
    cols = COLUMNS
    lines = ["| detector | " + " | ".join(cols) + " | 6-language humans flagged |",
             "|---|" + "---|" * (len(cols) + 1)]
    for name, res in table.items():
        cells = []
        for c in cols:
            lo, hi = res[c]["auroc_ci"]
            cells.append(f"{res[c]['auroc']:.3f} [{lo:.2f}, {hi:.2f}] / {100 * res[c]['fpr']:.1f}% / "
                         f"{100 * res[c]['tpr']:.0f}%")
        lang = res["languages (humans)"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {100 * lang['fpr']:.1f}% of {lang['humans']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="smollm2,pair", help="LM passes to run (smollm2, q05, gemma, gemma_rank, gemma_hidden, pair)")
    ap.add_argument("--fdg", default="60,8", help="fastdetectgpt: humans per domain, machine texts per cell")
    ap.add_argument("--glimpse", default="8,10", help="glimpse: per (domain, newer generator), humans per language")
    ap.add_argument("--evobench", default="10,120", help="evobench: per generator, humans")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", required=True)
    ap.add_argument("--budget-min", type=float, default=float("inf"), help="stop starting LM chunks after this")
    ap.add_argument("--tables-only", action="store_true", help="no LM pass: tables from the cached chunks")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    if not textsets.exists():
        print("the shared data folder beside the repository is missing (../shared/data/text)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    sizes = [tuple(int(v) for v in a.split(",")) for a in (args.fdg, args.glimpse, args.evobench)]
    rows = sample_rows(*sizes, seed=args.seed)  # type: ignore[arg-type]
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    models = [m for m in args.models.split(",") if m]
    budget = 0.0 if args.tables_only else args.budget_min * 60
    arrs = arrays(models, [r["text"] for r in rows], args.max_length, args.batch, cache, budget_s=budget)
    print(f"{sum(a is not None for a in arrs[models[0]])} of {len(rows)} texts read; LM cost on this machine: "
          f"{json.dumps(lm_cost(models, cache))}", flush=True)
    rows, read = texts_read(rows, arrs)
    table: dict[str, dict[str, Any]] = {}
    for name, x in feature_sets(read).items():
        table[name] = {"n": len(rows), **evaluate_set(rows, x)}
    print_table(table)
    print("\n" + markdown_table(table))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "lm_cost": lm_cost(models, cache),
                                               "results": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
