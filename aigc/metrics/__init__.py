"""Detection and calibration metrics (numpy only). Shared by export's calibration and by reports.

Conventions: ``y`` holds 0 (human) / 1 (AI); ``p`` holds P(ai) in [0, 1]; ``s`` any score where larger
means more AI-like; an item is flagged as AI when its score is ``>=`` the threshold. Functions that
need both classes raise ValueError naming what is missing.

Every metric is computed by one weighted implementation: the public functions pass unit weights and the
bootstrap (:func:`bootstrap`) passes a ``(B, n)`` matrix of resampling counts, so that B replicates are
computed at once with no Python loop, and the point estimate and its interval cannot disagree on what
the metric is.
"""

from __future__ import annotations

from ._calibration import (
    adaptive_ece,
    brier,
    ece,
    mce,
    nll,
    reliability_bins,
    w_adaptive_ece,
    w_brier,
    w_ece,
    w_mce,
    w_nll,
)
from ._common import TARGET_FPRS
from ._correlation import MIN_SPREAD, score_correlation
from ._intervals import (
    basic_ci,
    bootstrap,
    bootstrap_weights,
    clopper_pearson,
    percentile_ci,
    wilson_interval,
)
from ._ranking import (
    auroc,
    average_precision,
    confusion,
    precision_recall_curve,
    roc_curve,
    threshold_metrics,
    tpr_at_fpr,
    w_auroc,
    w_average_precision,
    w_ranking_metrics,
    w_threshold_metrics,
    w_tpr_at_fpr,
)

__all__ = [
    "MIN_SPREAD",
    "TARGET_FPRS",
    "adaptive_ece",
    "auroc",
    "average_precision",
    "basic_ci",
    "bootstrap",
    "bootstrap_weights",
    "brier",
    "clopper_pearson",
    "confusion",
    "ece",
    "mce",
    "nll",
    "percentile_ci",
    "precision_recall_curve",
    "reliability_bins",
    "roc_curve",
    "score_correlation",
    "threshold_metrics",
    "tpr_at_fpr",
    "w_adaptive_ece",
    "w_auroc",
    "w_average_precision",
    "w_brier",
    "w_ece",
    "w_mce",
    "w_nll",
    "w_ranking_metrics",
    "w_threshold_metrics",
    "w_tpr_at_fpr",
    "wilson_interval",
]
