"""evobench's human texts partly come from the same sources as the older sets (the same XSum articles, writing
prompts and PubMed questions), so a head fitted on the older sets may have read, as a human text, a passage that
evobench later tests it on. This module finds those evobench pairs and scores the evobench splits without them.

A pair (``group``) is *shared* when its human text has at least ``SHARE`` of its word 8-grams in some older-set
text of the sample (fastdetectgpt or glimpse, any label; the shared opening is already cut from every text).
``unshared_cells`` refits each evobench split (``evo-cross`` and leave-one-family-out) exactly as
``generalization_pair.evaluate_set`` does and scores only the test rows of unshared pairs.
"""

from __future__ import annotations

from typing import Any

import generalization_pair as gp
import numpy as np

N_GRAM = 8
SHARE = 0.3


def _grams(text: str) -> set[str]:
    w = text.lower().split()
    return {" ".join(w[i: i + N_GRAM]) for i in range(max(0, len(w) - N_GRAM + 1))}


def shared_groups(rows: list[dict[str, Any]]) -> set[str]:
    """evobench groups whose human text shares at least ``SHARE`` of its 8-grams with an older-set text."""
    older: set[str] = set()
    for r in rows:
        if r["set"] != "evobench":
            older |= _grams(r["text"])
    out = set()
    for r in rows:
        if r["set"] == "evobench" and r["label"] == 0:
            g = _grams(r["text"])
            if g and len(g & older) / len(g) >= SHARE:
                out.add(r["group"])
    return out


def unshared_cells(rows: list[dict[str, Any]], x: np.ndarray, l2: float = 1.0, weigh: Any = None, prep: Any = None,
                   head: Any = None) -> dict[str, dict[str, float]]:
    """Held-out AUROC of ``evo-cross`` and each ``evo-lofo-*`` split on the evobench pairs that share no
    source text with the older sets (fits and thresholds as in the main table), with the counts."""
    y = np.asarray([r["label"] for r in rows])
    shared = shared_groups(rows)
    keep = np.asarray([r["group"] not in shared for r in rows])
    tr, te = gp.split_masks(rows)["evo-cross"]
    s, _ = gp.fit_and_score(rows, x, tr, te, l2, weigh, prep, head)
    k = keep[te]
    out = {"evo-cross": {"auroc": gp._auroc(y[te][k], s[k]), "humans": int((y[te][k] == 0).sum()),
                         "machine": int((y[te][k] == 1).sum())}}
    for f, folds in gp.lofo_folds(rows).items():
        aucs, n_h, n_m = [], 0, 0
        for tr, te in folds:
            s, _ = gp.fit_and_score(rows, x, tr, te, l2, weigh, prep, head)
            k = keep[te]
            aucs.append(gp._auroc(y[te][k], s[k]))
            n_h, n_m = n_h + int((y[te][k] == 0).sum()), n_m + int((y[te][k] == 1).sum())
        out[f"evo-lofo-{f}"] = {"auroc": float(np.nanmean(aucs)), "humans": n_h, "machine": n_m}
    return out
