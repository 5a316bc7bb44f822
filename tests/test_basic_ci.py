"""Binned calibration errors get the basic bootstrap interval, which does not sit above the estimate."""

from __future__ import annotations

import numpy as np

from aigc import metrics as M
from aigc.report.evaluate import evaluate_scores


def test_basic_ci_reflects_the_percentile_interval() -> None:
    reps = np.array([0.10, 0.12, 0.14, 0.16, 0.18, 0.20, 0.22])
    plo, phi = M.percentile_ci(reps, 0.9)
    lo, hi = M.basic_ci(0.08, reps, 0.9)
    assert (lo, hi) == (max(0.0, 2 * 0.08 - phi), 2 * 0.08 - plo)
    assert plo > 0.08  # the percentile interval lies wholly above the estimate here...
    assert lo <= 0.08  # ...the basic one is shifted back down by the bias
    assert M.basic_ci(0.01, reps)[0] == 0.0  # floored at zero


def test_report_ece_interval_contains_the_estimate() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 40)
    p = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, 40), 0, 1)  # well calibrated-ish, few items
    out = evaluate_scores(y, p, {"balanced": 0.5}, n_boot=300, seed=0)
    for k in ("ece", "ece_adaptive", "mce"):
        e = out["calibration"][k]
        assert e["ci"][0] <= e["value"] <= e["ci"][1], (k, e)
