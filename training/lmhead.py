"""Fitting the head of ``zeroshot:features`` (:mod:`training.lmfeatures`) in closed form, not by an optimiser.

:func:`fit_logistic` is the L2-penalised logistic regression (Newton's method on standardised features, numpy
only) that :meth:`LikelihoodFeatures.head_arrays` fits and that ``training/hidden_probe.py``, the held-out
thresholds and the benches reuse. :func:`window_features` computes each training text's features (its
windows' features averaged), and :func:`fit_head_on_split` is what ``training.fit`` runs instead of a training
loop: features of the training split gathered across ranks, the head fitted, its weights logged, and the
domain-held-out scores written. :mod:`training.lmfeatures` re-exports all three.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from .lmfeatures import LikelihoodFeatures

__all__ = ["choose_l2", "fit_head_on_split", "fit_logistic", "window_features"]

log = logging.getLogger("training.lmfeatures")  # the logger these lines had before they moved here


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 100,
                 sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """L2-penalised logistic regression by Newton's method on standardised features.

    ``x`` (n, F) finite, ``y`` (n,) in {0, 1} with both classes. Returns ``(mean, std, weight, bias)`` so
    that the score is ``((x - mean) / std) @ weight + bias`` (a log-odds). ``l2`` penalises the weights
    of the standardised features, not the bias. ``sample_weight`` (n,) >= 0, default all ones, weights
    each text's loss and the standardisation; it is rescaled to sum to n so that ``l2`` means the same.
    With more features than texts and ``l2`` > 0 the steps are solved in the texts' span (same iterates, an
    (n + 1)-square system a step instead of (F + 1)).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"fit_logistic: x {x.shape} and y {y.shape} do not match")
    if not np.isfinite(x).all():
        raise ValueError("fit_logistic: features hold NaN or inf (drop the texts that have no scored token)")
    if set(np.unique(y).tolist()) != {0.0, 1.0}:
        raise ValueError(f"fit_logistic: labels must hold both 0 and 1 (found {sorted(set(y.tolist()))})")
    if sample_weight is None:
        sw = np.ones(len(y))
    else:
        sw = np.asarray(sample_weight, dtype=np.float64)
        if sw.shape != y.shape or not np.isfinite(sw).all() or (sw < 0).any() or sw.sum() <= 0:
            raise ValueError(f"fit_logistic: sample_weight must be {y.shape} finite, >= 0 and not all zero")
        sw = sw * (len(sw) / sw.sum())
    mean = (sw[:, None] * x).sum(0) / sw.sum()
    std = np.sqrt((sw[:, None] * (x - mean) ** 2).sum(0) / sw.sum())
    std = np.where(std > 1e-12, std, 1.0)
    zs = (x - mean) / std
    if l2 > 0 and zs.shape[1] > len(y):
        w, b = _newton_in_row_space(zs, y, sw, float(l2), iters)
        return mean, std, w, b
    z = np.c_[zs, np.ones(len(x))]
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], float(l2))
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50, 50)))
        g = z.T @ (sw * (p - y)) + reg * w
        h = (z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(reg + 1e-9)
        step = np.linalg.solve(h, g)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return mean, std, w[:-1], float(w[-1])


def _newton_in_row_space(zs: np.ndarray, y: np.ndarray, sw: np.ndarray, l2: float, iters: int
                         ) -> tuple[np.ndarray, float]:
    """:func:`fit_logistic`'s Newton iterations for more features than texts (a hidden-state probe on a
    bench's split): the weights stay ``zs.T @ alpha`` (Newton's steps from zero never leave the rows' span
    when the penalty is positive), so each step solves an (n + 1)-square system instead of an (F + 1)-square
    one. Same iterates and stopping rule as the direct form, up to rounding (tests/test_l2_selection.py)."""
    n = len(y)
    k = zs @ zs.T
    alpha, b = np.zeros(n), 0.0
    a = np.empty((n + 1, n + 1))
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(k @ alpha + b, -50, 50)))
        r, wd = sw * (p - y), sw * p * (1 - p)
        a[:n, :n] = wd[:, None] * k
        a[:n, :n][np.diag_indices(n)] += l2 + 1e-9
        a[:n, n], a[n, :n], a[n, n] = wd, wd @ k, wd.sum() + 1e-9
        step = np.linalg.solve(a, np.r_[r + (l2 + 1e-9) * alpha, r.sum()])
        alpha -= step[:n]
        b -= float(step[n])
        if max(np.max(np.abs(zs.T @ step[:n])), abs(float(step[n]))) < 1e-10:
            break
    return zs.T @ alpha, b


def choose_l2(fit_at: Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray, np.ndarray, float]],
              x: np.ndarray, y: np.ndarray, domains: Sequence[str], grid: Sequence[float], fallback: float,
              worst: bool = False, min_per_label: int = 10) -> tuple[float, dict[str, Any]]:
    """The head's L2 penalty chosen by leave-one-domain-out on the texts it will be fitted on (``model.l2_grid``).

    For each ``l2`` in ``grid``, ``fit_at(x, y, l2) -> (mean, std, weight, bias)`` is fitted without each domain
    and scored on it; the ``l2`` with the highest mean of those held-out AUROCs (with ``worst``, the highest
    lowest; training uses the mean) wins (ties go to the larger, the safer penalty). A domain is held out only
    when it has ``min_per_label`` texts of each label (a domain of one human and one machine text gives an
    AUROC of 0 or 1, and the mean weighs every domain alike) and the rest keep both labels; with fewer than two
    such domains there is nothing to compare and ``fallback`` (``model.l2``) is returned. The small domains stay
    in every fit. A penalty chosen this way is chosen for domains the head has not seen, not for the training
    domains (bench/generalization_combos.py, round 10). Returns the ``l2`` and what was measured (for the log).
    """
    from aigc.metrics import auroc

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    dom = np.asarray([str(d) for d in domains], dtype=object)
    if len(dom) != len(y) or len(x) != len(y):
        raise ValueError(f"choose_l2: {len(x)} rows, {len(y)} labels, {len(dom)} domains")
    if not grid:
        raise ValueError("choose_l2: the grid of penalties is empty")
    usable = [d for d in sorted(set(dom.tolist()))
              if min((y[dom == d] == 0).sum(), (y[dom == d] == 1).sum()) >= min_per_label
              and len(set(y[dom != d].tolist())) == 2]
    if len(usable) < 2:
        why = (f"{len(usable)} domain(s) hold {min_per_label} or more texts of each label with both labels left "
               "without them; need 2")
        return float(fallback), {"l2": float(fallback), "chosen_by": "model.l2", "why": why}
    by_l2: dict[str, dict[str, float]] = {}
    best: tuple[float, float] | None = None
    for lam in sorted(float(v) for v in grid):
        aucs = {}
        for d in usable:
            mean, std, w, b = fit_at(x[dom != d], y[dom != d], lam)
            aucs[d] = float(auroc(y[dom == d], ((x[dom == d] - mean) / std) @ w + b))
        by_l2[f"{lam:g}"] = {k: round(v, 4) for k, v in aucs.items()}
        val = float(np.min(list(aucs.values())) if worst else np.mean(list(aucs.values())))
        if best is None or val >= best[0]:
            best = (val, lam)
    assert best is not None
    how = "lowest" if worst else "mean"
    return best[1], {"l2": best[1], "chosen_by": f"leave-one-domain-out {how} AUROC", "auroc": by_l2}


@torch.no_grad()
def window_features(model: LikelihoodFeatures, rows: list[dict[str, Any]], ctx: Any) -> np.ndarray:
    """Per-text features (n, F): each text's windows by the run's text spec, features averaged over its
    windows; NaN rows for texts that cannot be scored."""
    from training.evaluate import progress_label
    from training.loop import window_outputs

    model.eval()
    dev = next(model.lm.parameters()).device

    def run(*arrays: np.ndarray) -> np.ndarray:
        return model.features(*(torch.from_numpy(a).to(dev) for a in arrays)).float().cpu().numpy()

    progress = progress_label(ctx, "LM features of the training split")
    win, per = window_outputs(ctx.tokenizer, [r["item"] for r in rows], ctx.text_spec, run, ctx.cfg.eval.max_tokens,
                              ctx.cfg.eval.batch_size, width=len(model.feature_names), progress=progress,
                              companion_tokenizer=getattr(ctx, "companion_tokenizer", None))
    out = np.full((len(rows), len(model.feature_names)), np.nan)
    for i, js in per.items():
        out[i] = win[js].mean(axis=0)
    return out


def fit_head_on_split(model: LikelihoodFeatures, rows: list[dict[str, Any]], ctx: Any,
                      log_line: Callable[[dict[str, Any]], None], run: Path | None = None) -> None:
    """What ``training.fit`` does instead of an optimiser: features of the training split (each rank its
    shard, gathered), then the closed-form head; the fitted weights go to the run's metrics log. With ``run``
    and training texts of 2 or more domains, the main rank also writes ``run/heldout_scores.json``: each text
    scored by a head of the same kind fitted without its domain (``training/heldout_scores.py``)."""
    from training.loop import _gather

    d = ctx.dist
    mine = list(range(d.rank, len(rows), d.world))
    f_mine = window_features(model, [rows[i] for i in mine], ctx)
    feats = np.full((len(rows), f_mine.shape[1]), np.nan)
    for idx, f in _gather(d, (mine, f_mine.tolist())):
        feats[idx] = np.asarray(f, dtype=np.float64).reshape(len(idx), -1)
    y = np.asarray([r["label"] for r in rows])
    ok = np.isfinite(feats).all(axis=1)
    if not ok.all():
        log.warning("%d of %d training texts have no scored token; the head is fitted without them",
                    int((~ok).sum()), len(rows))
    domains = [str(r.get("domain")) for r, o in zip(rows, ok, strict=True) if o]
    info = model.fit_head(feats[ok], y[ok], domains)
    log.info("fitted the head on %d texts (l2 %g): %s", info["n"], info["l2"], info["weights"])
    if "l2_selection" in info:
        log.info("l2 chosen: %s", info["l2_selection"])
    log_line({"kind": "fit_head", "step": 0, "epoch": 0, "n": info["n"], "bias": info["bias"], "l2": info["l2"],
              **({"l2_selection": info["l2_selection"]} if "l2_selection" in info else {}),
              **{f"w_{k}": v for k, v in info["weights"].items()}})
    if run is not None and d.main:
        from .heldout_scores import heldout_scores_for_run

        heldout_scores_for_run(run, model.head_arrays, feats[ok], y[ok], domains, str(next(model.lm.parameters()).dtype))
