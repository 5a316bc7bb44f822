"""Domain-held-out scores of the training texts: each text scored by a head fitted without its domain.

A worst-domain 1% threshold set on the humans of the training domains flagged 4-16% of the humans of a domain
the detector never saw (bench/generalization_combos.py, round 9): the head has learnt those domains, and scores
their humans lower than a new domain's. Scoring each training text by a head fitted on the *other* domains
shows how the detector scores humans of a domain it has not seen; a threshold that also holds the target on
those scores (``aigc export --worst-group domain --heldout-thresholds``) brought the unseen domain's human FPR
down to 0.8-1.6%. The heads are refitted on the features the training split already has (no LM pass), so the
extra fits cost milliseconds; the head that ships is fitted on every domain, as before.

``<run>/heldout_scores.json`` (written by ``zeroshot:features`` runs)::

    {"by": "domain", "method": "each training text scored by a head fitted without its domain",
     "lm_dtype": "torch.float32", "skipped": {domain: why},
     "rows": [{"domain": str, "label": 0 | 1, "score": float}, ...]}

``score`` is the model's raw score (``((x - mean) / std) @ w + b``, before calibration); texts without one
(no scored token, or a domain whose complement lacks a class) are left out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["HELDOUT_FILE", "HELDOUT_METHOD", "domain_heldout_scores", "each_domain_left_out",
           "heldout_scores_for_run", "write_heldout_scores"]

log = logging.getLogger(__name__)

HELDOUT_FILE = "heldout_scores.json"
HELDOUT_METHOD = "each training text scored by a head fitted without its domain"

Fit = Callable[[np.ndarray, np.ndarray, Sequence[str]], tuple[np.ndarray, np.ndarray, np.ndarray, float]]


def each_domain_left_out(score_out: Callable[[np.ndarray], np.ndarray], y: np.ndarray, domains: Sequence[str]
                         ) -> tuple[np.ndarray, dict[str, str]]:
    """Scores (n,) of every row by a model fitted without its domain: ``score_out(out)`` gets the boolean mask of
    one domain's rows, fits on the others and returns the scores of the masked rows. NaN for a domain whose
    complement lacks a class, or whose fit raised ValueError or LinAlgError. Returns the scores and
    ``{domain: why}`` for each domain left unscored. ``bench/generalization_splits.py`` sets round 9's threshold
    with it too (its fits also refit a feature transform)."""
    y = np.asarray(y)
    dom = np.asarray([str(d) for d in domains], dtype=object)
    if len(dom) != len(y):
        raise ValueError(f"each_domain_left_out: {len(y)} labels, {len(dom)} domains")
    s = np.full(len(y), np.nan)
    skipped: dict[str, str] = {}
    for d in sorted(set(dom.tolist())):
        out = dom == d
        rest = y[~out]
        if not ((rest == 0).any() and (rest == 1).any()):
            skipped[d] = (f"the other domains hold {int((rest == 0).sum())} human and {int((rest == 1).sum())} ai "
                          "texts: no head can be fitted without it")
            continue
        try:
            scores = score_out(out)
        except (ValueError, np.linalg.LinAlgError) as e:  # e.g. fewer texts than the low-rank head's components
            skipped[d] = f"no head could be fitted without it ({e})"
            continue
        s[out] = scores  # outside the try: a wrong-sized result is a bug to raise, not a domain to skip
    return s, skipped


def domain_heldout_scores(fit: Fit, x: np.ndarray, y: np.ndarray, domains: Sequence[str]
                          ) -> tuple[np.ndarray, dict[str, str]]:
    """Raw scores (n,) of ``x`` (n, F) finite, each row scored by ``fit`` (features, labels, domains) -> ``(mean,
    std, weight, bias)`` applied to the rows of the other domains (and their domains, so that a head that chooses
    its penalty by leave-one-domain-out chooses it among those); NaN for a domain whose complement lacks a class.
    Returns the scores and ``{domain: why}`` for each domain left unscored."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    dom = np.asarray([str(d) for d in domains], dtype=object)
    if len(dom) != len(y) or len(x) != len(y):
        raise ValueError(f"domain_heldout_scores: {len(x)} rows, {len(y)} labels, {len(dom)} domains")

    def score_out(out: np.ndarray) -> np.ndarray:
        mean, std, w, b = fit(x[~out], y[~out], dom[~out].tolist())
        return ((x[out] - mean) / std) @ w + b

    return each_domain_left_out(score_out, y, dom.tolist())


def write_heldout_scores(path: Path, scores: np.ndarray, labels: np.ndarray, domains: Sequence[str],
                         skipped: dict[str, str], lm_dtype: str | None = None) -> int:
    """Write ``heldout_scores.json`` (the rows with a finite score) atomically; returns the number of rows."""
    from training.loop import atomic_write_text

    rows = [{"domain": str(d), "label": int(lab), "score": float(s)}
            for s, lab, d in zip(scores, labels, domains, strict=True) if np.isfinite(s)]
    doc: dict[str, Any] = {"by": "domain", "method": HELDOUT_METHOD}
    if lm_dtype:
        doc["lm_dtype"] = lm_dtype
    if skipped:
        doc["skipped"] = skipped
    doc["rows"] = rows
    atomic_write_text(path, json.dumps(doc, indent=None) + "\n")
    return len(rows)


def heldout_scores_for_run(run: Path, fit: Fit, x: np.ndarray, y: np.ndarray, domains: Sequence[str],
                           lm_dtype: str | None = None) -> int:
    """``run/heldout_scores.json`` of the texts a head was fitted on (``x``, ``y``, their ``domains``; ``fit`` the
    same kind of head) when they span 2 or more domains; with one, none (an earlier file is removed). Returns
    the number of rows written."""
    path = run / HELDOUT_FILE
    if len(set(domains)) < 2:
        path.unlink(missing_ok=True)
        log.info("the training texts hold one domain: no domain-held-out scores (%s)", HELDOUT_FILE)
        return 0
    s, skipped = domain_heldout_scores(fit, x, y, domains)
    for d, why in skipped.items():
        log.warning("domain-held-out scores: domain %r left unscored: %s", d, why)
    n = write_heldout_scores(path, s, y, domains, skipped, lm_dtype)
    log.info("domain-held-out scores of %d training texts (%d domains) -> %s", n, len(set(domains)), path)
    return n
