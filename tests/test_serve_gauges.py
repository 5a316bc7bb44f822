"""The rolling gauges of ``aigc serve`` (drift: flag rate, out-of-support rate, PSI; shadow: agreement, score
correlation) on /metrics: a value that is undefined is withdrawn, never NaN, never a float-rounding artefact,
never the last value of a window that is gone, and computing it raises no numpy RuntimeWarning."""

from __future__ import annotations

import logging
import math
import warnings
from types import SimpleNamespace as NS
from typing import Any

import numpy as np
import pytest

from aigc._drift import read_histogram, score_histogram
from aigc.metrics import MIN_SPREAD, score_correlation

pytest.importorskip("prometheus_client")

from aigc.serve.drift import DriftMonitor
from aigc.serve.metrics import Metrics
from aigc.serve.shadow import ShadowRunner

SPEC = {"thresholds": {"fpr@5%": {"value": 0.5, "achieved_fpr": 0.05, "tpr": 0.8, "n_human": 100}}}


def _series(m: Metrics, name: str) -> list[str]:
    return [line for line in m.render()[0].decode().splitlines() if line.startswith(name + "{")]


def _runner() -> tuple[ShadowRunner, Metrics]:
    m = Metrics()
    det = NS(modality="text", spec=SPEC)
    return ShadowRunner("b", det, "p", det, "c", m, capacity=100, score_log=None, log_content=False), m  # type: ignore[arg-type]


def _feed(r: ShadowRunner, pairs: list[tuple[float, float]]) -> None:
    r._account([NS(result=NS(probability=a)) for a, _ in pairs], [NS(probability=b, error=None) for _, b in pairs])


def test_score_correlation_is_none_without_spread_not_a_rounding_artefact() -> None:
    rng = np.random.default_rng(0)
    spurious = 0
    for a, b in rng.uniform(0, 1, (300, 2)):
        x, y = np.full(200, a), np.full(200, b)
        if x.std() > 0 and y.std() > 0:  # the mean of 200 equal floats is not that float
            spurious += abs(float(np.corrcoef(x, y)[0, 1])) > 0.99  # what the exact std == 0 test let through
        assert score_correlation(x, y) is None
    assert spurious > 50  # the defect is common, not a corner case
    varying = rng.uniform(0, 1, 50)
    assert score_correlation(np.full(50, 0.1), varying) is None  # one constant side: ~1e-16 before
    assert score_correlation(0.3 + rng.normal(0, MIN_SPREAD / 10, 50), varying) is None  # float32-noise spread
    assert score_correlation(varying[:2], varying[:2]) is None
    assert score_correlation(varying, 0.5 * varying + 0.1) == pytest.approx(1.0)
    expected = float(np.corrcoef([0.1, 0.2, 0.4], [0.2, 0.3, 0.6])[0, 1])
    assert score_correlation([0.1, 0.2, math.nan, 0.4], [0.2, 0.3, 0.4, 0.6]) == pytest.approx(expected)  # pair left out


def test_shadow_correlation_is_withdrawn_when_undefined_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    r, m = _runner()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning fails the test
        _feed(r, [(0.1, 0.7)] * 50)  # one item again and again (a health probe): gave -0.9999999999999998
    assert r.correlation() is None and _series(m, "aigc_shadow_score_correlation") == []
    assert _series(m, "aigc_shadow_agreement") == ['aigc_shadow_agreement{bundle="b",threshold="fpr@5%"} 0.0']  # 0.1 vs 0.7 at 0.5
    xs = np.random.default_rng(1).uniform(0, 1, 100)
    _feed(r, [(float(x), float(x) * 0.9) for x in xs])
    (line,) = _series(m, "aigc_shadow_score_correlation")  # defined again once the window has spread
    assert float(line.split()[-1]) == pytest.approx(r.correlation()) and 0 < r.correlation() <= 1  # type: ignore[operator]
    r._pairs.clear()
    with caplog.at_level(logging.INFO, logger="aigc.serve"):
        _feed(r, [(0.5, 0.5)] * 10)
        _feed(r, [(0.5, 0.5)] * 10)
    assert _series(m, "aigc_shadow_score_correlation") == []  # not the last value of a window that is gone
    assert caplog.text.count("score correlation is undefined") == 1
    assert r.report()["score_correlation"] is None


def _results(p: Any) -> list[NS]:
    return [NS(probability=float(x), error=None, out_of_support=False) for x in p]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -400, True, "7"])
def test_a_malformed_histogram_makes_drift_unavailable_not_nan(bad: Any) -> None:
    rng = np.random.default_rng(2)
    h = score_histogram(rng.uniform(0, 1, 500), np.zeros(500, int))
    spec = dict(SPEC, score_histogram=dict(h, human=[bad, *h["human"][1:]]))
    assert read_histogram(spec) is None
    m = Metrics()
    d = DriftMonitor("b", spec, 100, m)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d.add(_results(rng.uniform(0, 1, 20)))
    rep = d.report()
    assert rep["psi"] is None and rep["psi_reading"] == "unavailable" and "histogram" not in rep
    assert "no usable score_histogram" in rep["reason"]
    assert _series(m, "aigc_drift_psi") == []  # NaN gave no series either; -400 gave a PSI of 8.65 ("large shift")
    assert _series(m, "aigc_flag_rate") and _series(m, "aigc_out_of_support_rate")
    assert read_histogram(dict(SPEC, score_histogram=dict(h, edges=[h["edges"][1], *h["edges"][1:]]))) is None


def test_drift_gauges_are_finite_rates() -> None:
    rng = np.random.default_rng(3)
    h = score_histogram(rng.uniform(0, 1, 500), np.zeros(500, int))
    m = Metrics()
    d = DriftMonitor("b", dict(SPEC, score_histogram=h), 100, m)
    d.add(_results(rng.uniform(0, 1, 40)))
    body = m.render()[0].decode()
    for name in ("aigc_drift_psi", "aigc_flag_rate", "aigc_out_of_support_rate"):
        (line,) = _series(m, name)
        assert math.isfinite(float(line.split()[-1])), line
    assert "NaN" not in body and "Inf" not in body


def test_set_finite_withdraws_a_series() -> None:
    m = Metrics()
    assert m.set_finite(m.psi, 0.2, "b") and _series(m, "aigc_drift_psi") == ['aigc_drift_psi{bundle="b"} 0.2']
    for v in (math.nan, math.inf, None, True):
        assert not m.set_finite(m.psi, v, "b")
        assert _series(m, "aigc_drift_psi") == []
