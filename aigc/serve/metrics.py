"""The service's Prometheus metrics, on a registry of its own (several apps may live in one process).

A gauge whose value is undefined (a correlation of scores without spread, a PSI without a usable histogram,
a rate that is not a finite number) is withdrawn, not set to NaN and not left at its last value
(:meth:`Metrics.set_finite`): the series is absent from /metrics until it has a value again. Alerting
rules compare NaN as if it were measured, and a stale value would show a state that is gone; an absent
series is what ``absent()`` and a dashboard's "no data" are for.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """Counters, histograms and gauges of ``aigc serve``; :meth:`render` gives the exposition text."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = self.registry = CollectorRegistry()
        self.requests = Counter("aigc_requests", "HTTP requests by route, bundle and status", ["route", "bundle", "status"], registry=r)
        self.items = Counter("aigc_items", "items scored by bundle and status (ok or error)", ["bundle", "status"], registry=r)
        self.errors = Counter("aigc_errors", "request and item errors by kind", ["kind"], registry=r)
        self.latency = Histogram("aigc_request_latency_seconds", "request latency by route", ["route"],
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("aigc_queue_depth", "items waiting for the model, by bundle", ["bundle"], registry=r)
        self.batch_size = Histogram("aigc_batch_size", "items per model batch, by bundle", ["bundle"],
                                    buckets=_BATCH_BUCKETS, registry=r)
        self.flagged = Counter("aigc_items_flagged", "items whose calibrated P(ai) reached the threshold, by bundle and threshold",
                               ["bundle", "threshold"], registry=r)
        self.out_of_support = Counter("aigc_items_out_of_support", "items outside the calibration support, by bundle",
                                      ["bundle"], registry=r)
        # rolling window (drift)
        self.flag_rate = Gauge("aigc_flag_rate", "share of the rolling window flagged at each named threshold",
                               ["bundle", "threshold"], registry=r)
        self.calibrated_fpr = Gauge("aigc_calibrated_fpr", "false-positive rate measured at export for the threshold",
                                    ["bundle", "threshold"], registry=r)
        self.calibrated_tpr = Gauge("aigc_calibrated_tpr", "true-positive rate measured at export for the threshold",
                                    ["bundle", "threshold"], registry=r)
        self.oos_rate = Gauge("aigc_out_of_support_rate", "share of the rolling window out of the calibration support",
                              ["bundle"], registry=r)
        self.psi = Gauge("aigc_drift_psi", "population stability index of the window's scores against the calibration "
                         "humans; absent while unavailable (no usable score_histogram in the bundle)", ["bundle"], registry=r)
        self.window = Gauge("aigc_drift_window_items", "scored items in the rolling window", ["bundle"], registry=r)
        # shadow
        self.shadow_scored = Counter("aigc_shadow_items", "items scored by the shadow candidate", ["bundle"], registry=r)
        self.shadow_dropped = Counter("aigc_shadow_dropped", "items the shadow queue dropped under load", ["bundle"], registry=r)
        self.shadow_agreement = Gauge("aigc_shadow_agreement", "share of the shadow window where both labels agree",
                                      ["bundle", "threshold"], registry=r)
        self.shadow_corr = Gauge("aigc_shadow_score_correlation", "Pearson correlation of primary and candidate P(ai) "
                                 "over the shadow window; absent while undefined (fewer than 3 pairs, or one side's "
                                 "scores without spread, e.g. one item scored again and again)", ["bundle"], registry=r)

    def render(self) -> tuple[bytes, str]:
        """(body, content type) of the exposition format."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def error(self, kind: str, n: int = 1) -> None:
        self.errors.labels(kind=kind).inc(n)

    @staticmethod
    def set_finite(gauge: Any, value: Any, *labels: str) -> bool:
        """Set the series of ``gauge`` with the label values ``labels`` (in the gauge's label order) to
        ``value`` when it is a finite number (not a bool); else withdraw that series, so that /metrics shows
        no NaN, no +Inf and no stale value. Returns whether it was set."""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            gauge.labels(*labels).set(float(value))
            return True
        with contextlib.suppress(KeyError):  # older prometheus-client raises it for a series never set
            gauge.remove(*labels)
        return False

    def set_calibrated(self, bundle: str, spec: dict[str, Any]) -> None:
        """The export-time FPR and TPR of each named threshold, beside which the live flag rate is read. A rate
        that is not a finite number (validation refuses those; this is defence in depth) is not exported:
        no gauge rather than NaN or +Inf, which alerting rules would compare as if measured."""
        for name, t in spec.get("thresholds", {}).items():
            for gauge, key in ((self.calibrated_fpr, "achieved_fpr"), (self.calibrated_tpr, "tpr")):
                self.set_finite(gauge, t.get(key) if isinstance(t, dict) else None, bundle, name)
