"""Evaluation reports: ``aigc eval BUNDLE [BUNDLE ...] DATA --report DIR``.

Scores labelled data with one or more bundles and writes ``report.html`` (self-contained), ``metrics.json``
(versioned by ``schema_version``) and ``summary.md``. The array-level pieces work without a bundle:

>>> from aigc.report import evaluate_scores
>>> evaluate_scores(y, p, {"fpr@1%": 0.9}, n_boot=200)["auroc"]   # doctest: +SKIP
{'value': 0.97, 'ci': [0.96, 0.98]}

matplotlib is imported only when a report is drawn, so ``import aigc`` stays light.
"""

from __future__ import annotations

from .data import EvalData, load_data, stratified_sample
from .evaluate import (
    SCHEMA_VERSION,
    EvalOptions,
    compare_scores,
    evaluate_scores,
    robustness_entry,
    run_evaluation,
)
from .render import REPORT_FILES, chart_ids, write_report
from .slices import fairness_table, length_bucket, resolution_bucket, slice_table

__all__ = [
    "REPORT_FILES",
    "SCHEMA_VERSION",
    "EvalData",
    "EvalOptions",
    "chart_ids",
    "compare_scores",
    "evaluate_scores",
    "fairness_table",
    "length_bucket",
    "load_data",
    "resolution_bucket",
    "robustness_entry",
    "run_evaluation",
    "slice_table",
    "stratified_sample",
    "write_report",
]
