"""The heads, weights and feature transforms that ``generalization_combos``' pre-registered rounds try (rounds 4-11),
each fitted on a split's training part only (``generalization_splits.fit_and_score`` passes them through)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generalization_pair as gp
from generalization_tokens import base7


def rank4(ranks: np.ndarray, a: np.ndarray) -> list[float]:
    """Mean log-rank, mean -log p over mean log-rank (DetectLLM's LRR), and the shares of tokens ranked
    first and in the top 10, from ``gemma_rank``'s column and the same LM's (lp, H, Var) rows."""
    lr = ranks[:, 0].astype(float)
    return [lr.mean(), -a[:, 0].astype(float).mean() / max(lr.mean(), 1e-6), float((lr < 0.5).mean()),
            float((lr <= np.log(10) + 1e-6).mean())]


def balanced_domain_label(rows: list[dict[str, Any]]) -> np.ndarray:
    """Round 5 (a): weights giving every (domain, label) cell of ``rows`` the same total weight."""
    cells = [(r["domain"], r["label"]) for r in rows]
    count = Counter(cells)
    return np.asarray([1.0 / count[c] for c in cells])


def balanced_domain_generator(rows: list[dict[str, Any]]) -> np.ndarray:
    """Round 5 (b): each domain's humans, and each domain's machine texts, have the same total weight; a
    domain's machine weight is shared equally by its generators."""
    humans = Counter(r["domain"] for r in rows if r["label"] == 0)
    machines = Counter((r["domain"], r["generator"]) for r in rows if r["label"] == 1)
    gens = Counter(d for d, _ in machines)
    return np.asarray([1.0 / humans[r["domain"]] if r["label"] == 0
                       else 1.0 / (gens[r["domain"]] * machines[(r["domain"], r["generator"])]) for r in rows])


def _hidden_basis(x: np.ndarray, rows: list[dict[str, Any]], min_humans: int = 20) -> np.ndarray:
    """Orthonormal (D, k) basis of the span of the per-domain means of the humans' rows of ``x`` about their
    overall mean (domains with at least ``min_humans`` humans; k <= domains - 1)."""
    hum = np.asarray([r["label"] == 0 for r in rows])
    dom = np.asarray([r["domain"] for r in rows])
    doms = [d for d in sorted(set(dom[hum])) if (hum & (dom == d)).sum() >= min_humans]
    mu = x[hum].mean(0)
    diffs = np.stack([x[hum & (dom == d)].mean(0) - mu for d in doms], 1)
    u, sv, _ = np.linalg.svd(diffs, full_matrices=False)
    return u[:, sv > 1e-8 * max(sv.max(), 1e-12)]


def probe_prep(first: int, drop_domains: bool, n_pcs: int = 0) -> gp.Prep:
    """Round 7's transforms of columns ``first:`` (the hidden states), fitted on the training part: the
    domain-mean directions projected out, then (``n_pcs`` > 0) z-scored and reduced to principal components."""

    def fit(x_tr: np.ndarray, rows_tr: list[dict[str, Any]]) -> Any:
        h_tr = x_tr[:, first:]
        q = _hidden_basis(h_tr, rows_tr) if drop_domains else np.zeros((h_tr.shape[1], 0))

        def strip(h: np.ndarray) -> np.ndarray:
            return h - (h @ q) @ q.T

        if n_pcs:
            hs = strip(h_tr)
            mean, std = hs.mean(0), hs.std(0) + 1e-6
            _, _, vt = np.linalg.svd((hs - mean) / std, full_matrices=False)
            comps = vt[:n_pcs].T
        return lambda x: np.hstack([x[:, :first], ((strip(x[:, first:]) - mean) / std) @ comps if n_pcs
                                    else strip(x[:, first:])])

    return fit



def agreement_head(first: int, l2_stats: float = 1.0) -> gp.Head:
    """Round 9's agreement: the linear head on columns ``:first`` (penalty ``l2_stats``) and the linear head on
    every column (the candidate's ``l2``), both fitted; a text's score is the smaller of the two log-odds."""

    def head(x: np.ndarray, y: np.ndarray, l2: float, w: np.ndarray | None, domains: Any = None) -> Any:
        a, b = gp.linear_head(x[:, :first], y, l2_stats, w), gp.linear_head(x, y, l2, w)
        return lambda z: np.minimum(a(z[:, :first]), b(z))

    return head


ROUND10_L2 = (10.0, 100.0, 1000.0)


def lodo_l2_head(worst: bool = False, grid: tuple[float, ...] = ROUND10_L2) -> gp.Head:
    """Round 10: the linear head with its ``l2`` chosen by leave-one-domain-out within the rows it is fitted on
    (``training.lmhead.choose_l2``, as ``model.l2_grid`` does in training: the mean, or with ``worst`` the lowest,
    of the held-out domains' AUROCs; ties to the larger ``l2``); the candidate's own ``l2`` when fewer than two
    domains hold both labels on both sides (min_per_label=1: round 10 held out any such domain). Unweighted
    texts only (round 10's candidates weigh none)."""
    from training.lmhead import choose_l2, fit_logistic

    def head(x: np.ndarray, y: np.ndarray, l2: float, w: np.ndarray | None, domains: Any = None) -> Any:
        if w is not None:
            raise ValueError("lodo_l2_head: weighted texts are not supported (round 10 weighs none)")
        dom = [str(d) for d in domains] if domains is not None else [""] * len(y)
        lam, _ = choose_l2(fit_logistic, x, y, dom, grid, l2, worst, min_per_label=1)
        return gp.linear_head(x, y, lam, None)

    return head


def base7_per_token(a: np.ndarray) -> list[float]:
    """Round 12: the seven statistics with the Fast-DetectGPT sum (the fourth) divided by the square root of the
    tokens it sums over. The sum grows as sqrt(tokens), so a head fitted on ~150-token texts reads a 40-token
    text's sum as about half its per-token evidence; the per-token form is the same quantity without the length."""
    out = base7(a)
    out[3] = out[3] / np.sqrt(max(len(a), 1))
    return out


CROP_TOKENS = (16, 64)


def crop_fraction(group: str, n_tokens: int, lo_hi: tuple[int, int] = CROP_TOKENS) -> float:
    """Round 12 (b): the share of a text's (first LM's) scored tokens its training crop keeps: a length drawn
    uniformly from ``lo_hi`` tokens, seeded by the text's group (the same crop in every split), capped at
    the whole text."""
    rng = np.random.default_rng(int(group, 16) % (2**32))
    k = int(rng.integers(lo_hi[0], lo_hi[1] + 1))
    return min(1.0, k / max(n_tokens, 1))


def crop_augmented_head(width: int, inner: gp.Head | None = None) -> gp.Head:
    """Round 12 (b): columns ``:width`` are a text's features and ``width:2*width`` the same features of its
    crop (``crop_fraction``); the head (``inner``, default the linear one) is fitted on both copies of every
    training text, the crop carrying the text's label and domain, and scores the whole texts' columns only.
    Features that cannot be cropped (pooled hidden states) carry the whole text's values in the crop's copy."""

    def head(x: np.ndarray, y: np.ndarray, l2: float, w: np.ndarray | None, domains: Any = None) -> Any:
        xx = np.vstack([x[:, :width], x[:, width:2 * width]])
        ww = None if w is None else np.concatenate([w, w])
        dd = None if domains is None else np.concatenate([np.asarray(domains), np.asarray(domains)])
        scorer = (inner or gp.linear_head)(xx, np.concatenate([y, y]), l2, ww, domains=dd)
        return lambda z: scorer(z[:, :width])

    return head
