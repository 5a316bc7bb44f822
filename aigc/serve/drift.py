"""Live drift per bundle: a rolling window of calibrated scores, read against the bundle's calibration.

Reported at ``GET /v1/bundles/{name}/drift`` and as metrics: the population stability index (PSI) of the
window's scores against the calibration humans (``score_histogram`` of bundle.json, see
:mod:`aigc._drift`), the share of the window flagged at each named threshold beside the false- and
true-positive rates measured at export, and the share out of the calibration support.

How to read it: the calibrated FPR is what the threshold promises on traffic like the calibration humans.
A flag rate far above it *together with* a high PSI says that the traffic is not like that data and the
threshold cannot be trusted on it; a high flag rate with a low PSI is more likely a real rise of AI items.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._detector import Result
from .._drift import histogram_counts, psi, read_histogram
from .metrics import Metrics

__all__ = ["MIN_ITEMS", "DriftMonitor", "psi_reading"]

MIN_ITEMS = 200  # below this many scores in the window, the PSI is marked noisy


def psi_reading(value: float | None, n: int) -> str:
    """The usual reading of a PSI value (< 0.1 stable, < 0.25 moderate shift, else large shift)."""
    if value is None or not np.isfinite(value):
        return "unavailable"
    word = "stable" if value < 0.1 else "moderate shift" if value < 0.25 else "large shift"
    return word + (f" (only {n} items in the window: noisy)" if n < MIN_ITEMS else "")


class DriftMonitor:
    """The rolling window of one bundle. :meth:`add` is called from the scoring thread; thread-safe."""

    def __init__(self, bundle: str, spec: dict[str, Any], window: int, metrics: Metrics | None = None) -> None:
        self.bundle = bundle
        self.hist = read_histogram(spec)
        self.thresholds = {n: t for n, t in spec["thresholds"].items()}
        self.window = window
        self.metrics = metrics
        self._p: deque[float] = deque(maxlen=window)
        self._oos: deque[bool] = deque(maxlen=window)
        self._lock = threading.Lock()
        if metrics is not None:
            metrics.set_calibrated(bundle, spec)

    def add(self, results: Sequence[Result]) -> None:
        """Add the scored items of ``results`` (failed ones are skipped) and refresh the gauges."""
        ok = [r for r in results if r.error is None]
        if not ok:
            return
        p = np.array([r.probability for r in ok])
        with self._lock:
            self._p.extend(p.tolist())
            self._oos.extend(bool(r.out_of_support) for r in ok)
        if self.metrics is not None:
            m = self.metrics
            for name, t in self.thresholds.items():
                m.flagged.labels(bundle=self.bundle, threshold=name).inc(int((p >= float(t["value"])).sum()))
            m.out_of_support.labels(bundle=self.bundle).inc(sum(r.out_of_support for r in ok))
            self._gauges()

    def _snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            return np.array(self._p, dtype=np.float64), np.array(self._oos, dtype=bool)

    def _gauges(self) -> None:
        rep = self.report()
        m = self.metrics
        assert m is not None
        for name, t in rep["thresholds"].items():
            m.set_finite(m.flag_rate, t["flag_rate"], self.bundle, name)
        m.set_finite(m.oos_rate, rep["out_of_support_rate"], self.bundle)
        m.window.labels(bundle=self.bundle).set(rep["window"]["n"])
        m.set_finite(m.psi, rep["psi"], self.bundle)  # None (unavailable): no series, not NaN nor the last value

    def report(self) -> dict[str, Any]:
        """The drift report (the body of ``GET /v1/bundles/{name}/drift``)."""
        p, oos = self._snapshot()
        n = int(p.size)
        out: dict[str, Any] = {"bundle": self.bundle, "window": {"size": self.window, "n": n}}
        if self.hist is None:
            out.update(available=False, psi=None, psi_reading="unavailable",
                       reason="this bundle has no usable score_histogram (exported before drift monitoring, or malformed); "
                              "flag and out-of-support rates are still reported")  # fmt: skip
        else:
            live = histogram_counts(p, self.hist["edges"])
            value = psi(self.hist["human"], live) if n else float("nan")
            out.update(available=n > 0, psi=round(value, 6) if np.isfinite(value) else None, psi_reading=psi_reading(value, n),
                       reason=None if n else "no item scored yet",
                       histogram={"edges": self.hist["edges"], "live": live.tolist(),
                                  "calibration_human": self.hist["human"], "calibration_ai": self.hist["ai"]})  # fmt: skip
        out["thresholds"] = {
            name: {
                "value": float(t["value"]),
                "flag_rate": float((p >= float(t["value"])).mean()) if n else 0.0,
                "calibrated_fpr": t.get("achieved_fpr"),
                "calibrated_fpr_upper_95": t.get("fpr_upper_95"),
                "calibrated_tpr": t.get("tpr"),
            }
            for name, t in self.thresholds.items()
        }
        out["out_of_support_rate"] = float(oos.mean()) if n else 0.0
        return out
