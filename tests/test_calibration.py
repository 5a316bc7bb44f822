"""Calibration fits (numpy only): temperature, Platt, isotonic; refusals; the bundle object layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aigc._bundle import validate_spec
from aigc._calibration import (
    CalibrationError,
    apply_calibration,
    default_method,
    fit_calibration,
    pool_adjacent_violators,
    sigmoid,
)


def _overconfident(n: int = 4000, scale: float = 3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from sigmoid(z); the model reports scale * z (overconfident by ``scale``)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)
    y = (rng.random(n) < sigmoid(z)).astype(int)
    return scale * z, y


def test_temperature_recovers_the_scale() -> None:
    s, y = _overconfident()
    cal = fit_calibration(s, y, "temperature")
    assert cal["method"] == "temperature" and cal["n"] == 4000
    assert cal["params"]["temperature"] == pytest.approx(3.0, rel=0.08)
    assert cal["after"]["nll"] < cal["before"]["nll"] and cal["after"]["ece"] < cal["before"]["ece"]
    assert cal["after"]["ece"] < 0.03
    # the object is what bundle.json takes, JSON and all
    json.dumps(cal)
    # the minimum is a stationary point of the NLL in 1/T
    beta = 1.0 / cal["params"]["temperature"]
    assert abs(np.mean((sigmoid(beta * s) - y) * s)) < 1e-6


def test_platt_centres_a_shifted_score() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 2.0, 3000)
    y = (rng.random(3000) < sigmoid(z)).astype(int)
    s = 0.5 * z + 7.0  # a statistic with an offset: temperature cannot centre it
    cal = fit_calibration(s, y, "platt")
    assert cal["params"]["a"] == pytest.approx(2.0, rel=0.12)
    assert cal["params"]["b"] == pytest.approx(-14.0, rel=0.12)
    t = fit_calibration(s, y, "temperature")
    assert cal["after"]["nll"] < t["after"]["nll"] - 0.05
    assert default_method("score")[0] == "platt" and "cannot centre" in str(default_method("score")[1])
    assert default_method("logits") == ("temperature", None)


def test_platt_and_temperature_stay_finite_on_separable_data() -> None:
    s = np.r_[np.linspace(-5, -1, 50), np.linspace(1, 5, 50)]
    y = np.r_[np.zeros(50), np.ones(50)].astype(int)
    for m in ("temperature", "platt"):
        cal = fit_calibration(s, y, m)
        assert all(np.isfinite(v) for v in cal["params"].values())


def test_isotonic_monotone_and_refused_when_small() -> None:
    s, y = _overconfident(n=2000, seed=2)
    cal = fit_calibration(s, y, "isotonic")
    x, yy = np.asarray(cal["params"]["x"]), np.asarray(cal["params"]["y"])
    assert np.all(np.diff(x) >= 0) and np.all(np.diff(yy) >= 0) and yy.min() >= 0 and yy.max() <= 1
    assert len(x) < 2000  # constant blocks are compressed to their end points
    assert cal["after"]["brier"] <= cal["before"]["brier"]
    with pytest.raises(CalibrationError, match="at least 1000 items, found 500"):
        fit_calibration(s[:500], y[:500], "isotonic")
    assert fit_calibration(s[:500], y[:500], "isotonic", force=True)["method"] == "isotonic"


def test_pav_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        v = rng.random(12)
        w = rng.integers(1, 4, 12).astype(float)
        fit = pool_adjacent_violators(v, w)
        assert np.all(np.diff(fit) >= -1e-12)
        # weighted mean is preserved, and it fits no worse than any sorted projection we can guess
        assert np.sum(w * fit) == pytest.approx(np.sum(w * v))
        assert np.sum(w * (fit - v) ** 2) <= np.sum(w * (np.sort(v) - v) ** 2) + 1e-12
        assert np.sum(w * (fit - v) ** 2) <= np.sum(w * (np.average(v, weights=w) - v) ** 2) + 1e-12


def test_pav_agrees_with_sklearn() -> None:
    iso = pytest.importorskip("sklearn.isotonic")
    s, y = _overconfident(n=1500, seed=4)
    cal = fit_calibration(s, y, "isotonic")
    ref = iso.IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(s, y)
    grid = np.linspace(s.min(), s.max(), 500)
    np.testing.assert_allclose(apply_calibration(grid, cal), ref.predict(grid), atol=1e-9)


def test_calibration_objects_pass_the_bundle_validator() -> None:
    from _bundles import base_spec

    s, y = _overconfident(n=1200)
    for m in ("temperature", "platt", "isotonic", "none"):
        spec = base_spec("image")
        spec["calibration"] = fit_calibration(s, y, m)
        spec["files"] = {"model.onnx": "0" * 64}
        validate_spec(json.loads(json.dumps(spec)))


def test_refusals() -> None:
    with pytest.raises(CalibrationError, match="both classes"):
        fit_calibration(np.ones(10), np.zeros(10))
    with pytest.raises(CalibrationError, match="NaN"):
        fit_calibration(np.array([0.0, np.nan]), np.array([0, 1]))
    with pytest.raises(CalibrationError, match="expected temperature"):
        fit_calibration(np.array([0.0, 1.0]), np.array([0, 1]), "beta")
