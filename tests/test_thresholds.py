"""Thresholds at target FPRs: the conformal rule, the Clopper-Pearson bound, refusals, groups.

Property tests (hypothesis, derandomized) check on generated scores that the achieved FPR on the
calibration set never exceeds the target, and that the 95% bound covers the true FPR of a large
fresh sample at least 95% of the time.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigc._thresholds import (
    ThresholdError,
    betainc,
    choose_group_thresholds,
    choose_thresholds,
    choose_worst_group_thresholds,
    clopper_pearson_upper,
    humans_needed,
    threshold_name,
)

PROPS = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def test_clopper_pearson_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for k, n in [(0, 10), (0, 300), (1, 100), (3, 300), (8, 800), (50, 1000), (400, 20000), (99, 100), (5, 5)]:
        ref = 1.0 if k == n else float(stats.beta.ppf(0.95, k + 1, n - k))
        assert clopper_pearson_upper(k, n) == pytest.approx(ref, rel=1e-7, abs=1e-12), (k, n)
    for a, b, x in [(0.5, 0.5, 0.3), (3, 7, 0.2), (200, 5000, 0.04), (1, 1, 0.7)]:
        assert betainc(a, b, x) == pytest.approx(float(stats.beta.cdf(x, a, b)), rel=1e-9)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson_upper(5, 3)


def test_names_and_needed() -> None:
    assert threshold_name(0.01) == "fpr@1%" and threshold_name(0.05) == "fpr@5%"
    assert threshold_name(0.001) == "fpr@0.1%"
    assert humans_needed(0.001) == 999 and humans_needed(0.01) == 99 and humans_needed(0.05) == 19


def _data(n_h: int, n_a: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = np.r_[rng.beta(2, 5, n_h), rng.beta(5, 2, n_a)]
    y = np.r_[np.zeros(n_h), np.ones(n_a)].astype(int)
    return p, y


def test_thresholds_record_what_docs_promise() -> None:
    p, y = _data(800, 900)
    ts = choose_thresholds(p, y)
    assert list(ts) == ["fpr@1%", "fpr@5%", "balanced"]
    t1 = ts["fpr@1%"]
    assert set(t1) >= {"value", "target_fpr", "n_human", "n_ai", "achieved_fpr", "fpr_upper_95", "tpr", "bound"}
    assert t1["n_human"] == 800 and t1["n_ai"] == 900 and t1["target_fpr"] == 0.01
    # conformal rule: floor(0.01 * 801) - 1 = 7 humans at or above the threshold
    assert t1["achieved_fpr"] == 7 / 800
    assert t1["fpr_upper_95"] == pytest.approx(clopper_pearson_upper(7, 800), abs=1e-6)
    assert ts["fpr@5%"]["value"] < t1["value"] and ts["fpr@5%"]["tpr"] >= t1["tpr"]
    assert ts["balanced"]["target_fpr"] is None
    json.dumps(ts)


def test_unsupported_target_refused_with_number_needed() -> None:
    p, y = _data(300, 300)
    with pytest.raises(ThresholdError, match=r"target FPR 0.001 \(fpr@0.1%\) needs at least 999 human .* found 300"):
        choose_thresholds(p, y, targets=(0.001,))
    with pytest.raises(ThresholdError, match="needs at least 500"):
        choose_thresholds(p, y, targets=(0.05,), min_human=500)
    ts = choose_thresholds(p, y, targets=(0.01,))  # 99 needed, 300 there
    assert ts["fpr@1%"]["n_human"] == 300


def test_group_thresholds() -> None:
    p1, y1 = _data(400, 400, seed=1)
    p2, y2 = _data(60, 60, seed=2)
    p2 = np.clip(p2 + 0.2, 0, 1)  # a domain whose humans score higher
    p, y = np.r_[p1, p2, [0.5]], np.r_[y1, y2, [0]]
    groups = ["news"] * 800 + ["code"] * 120 + [None]
    gt = choose_group_thresholds(p, y, groups, "domain")
    assert gt["column"] == "domain" and set(gt["groups"]) == {"news", "code"}
    assert set(gt["groups"]["news"]) == {"fpr@1%", "fpr@5%", "balanced"}
    # 60 humans support 5% (19 needed) but not 1% (99 needed): left out, and said why
    assert set(gt["groups"]["code"]) == {"fpr@5%", "balanced"}
    assert "needs at least 99" in gt["skipped"]["code"][0]
    assert gt["groups"]["code"]["fpr@5%"]["value"] > gt["groups"]["news"]["fpr@5%"]["value"]


def test_small_groups_get_a_threshold_above_their_humans_never_below_the_global_one() -> None:
    """With ``floors`` (export passes the global thresholds), a group of 20+ humans too few for 1% gets fpr@1%
    above all of them, and never below the global value; fewer than 20 humans: the global threshold applies."""
    p_en, y_en = _data(400, 400, seed=1)
    rng = np.random.default_rng(3)
    zh = rng.uniform(0.5, 0.9, 30)  # a language's humans, scored high: no machine text of it in calibration
    ar = rng.uniform(0.0, 0.1, 30)  # another's, scored low
    ur = rng.uniform(0.8, 0.95, 10)  # too few humans for any rule
    p = np.r_[p_en, zh, ar, ur]
    y = np.r_[y_en, np.zeros(70, int)]
    groups = [None] * 800 + ["zh"] * 30 + ["ar"] * 30 + ["ur"] * 10
    floors = {"fpr@1%": 0.7, "fpr@5%": 0.6}
    gt = choose_group_thresholds(p, y, groups, "language", floors=floors)
    assert set(gt["groups"]) == {"zh", "ar"} and "fewer than 50" in gt["skipped"]["ur"][0]
    zh_t, ar_t = gt["groups"]["zh"], gt["groups"]["ar"]
    assert set(zh_t) == {"fpr@1%", "fpr@5%"}  # no balanced without machine texts and 50 items
    assert any("balanced" in w for w in gt["skipped"]["zh"])
    assert zh_t["fpr@1%"]["value"] > zh.max() and zh_t["fpr@1%"]["achieved_fpr"] == 0.0
    assert zh_t["fpr@1%"]["rule"] == "above all 30 humans (fewer than 99)"
    # 30 humans support 5% (19 needed) but the group has fewer than 50 items: its conformal threshold, floored
    assert zh_t["fpr@5%"]["rule"].startswith("conformal on 30 humans (30 items, fewer than 50)")
    assert zh_t["fpr@5%"]["value"] >= floors["fpr@5%"] and zh_t["fpr@5%"]["achieved_fpr"] <= 0.05
    for name in ("fpr@1%", "fpr@5%"):  # a group scored below the global threshold keeps it
        assert ar_t[name]["value"] == floors[name] and ar_t[name]["rule"].startswith("the global threshold (")
        assert ar_t[name]["achieved_fpr"] == 0.0
    # without floors nothing changes: groups under 50 items get none
    assert choose_group_thresholds(p, y, groups, "language")["groups"] == {}


def test_worst_group_thresholds_hold_the_target_on_every_group() -> None:
    p1, y1 = _data(1500, 1500, seed=3)
    p2, y2 = _data(120, 120, seed=4)
    p2 = 0.25 + 0.74 * p2  # one source whose humans score higher
    p3, y3 = _data(40, 40, seed=5)
    p3 = 0.45 + 0.54 * p3  # a small source, higher still: fewer humans than 1% needs
    p4, y4 = _data(5, 5, seed=6)
    p = np.r_[p1, p2, p3, p4, 0.99]
    y = np.r_[y1, y2, y3, y4, 0]
    groups = ["news"] * 3000 + ["essays"] * 240 + ["forum"] * 80 + ["tiny"] * 10 + [None]
    pooled = choose_thresholds(p, y)
    worst = choose_worst_group_thresholds(p, y, groups, "domain")
    assert list(worst) == list(pooled) and worst["balanced"] == pooled["balanced"]
    g = np.asarray(groups, dtype=object)

    def fpr(t: float, name: str) -> float:
        h = p[(g == name) & (y == 0)]
        return float(np.mean(h >= t))

    # the pooled 1% threshold lets through far more than 1% of the shifted sources' humans
    assert fpr(pooled["fpr@1%"]["value"], "essays") > 0.02 and fpr(pooled["fpr@1%"]["value"], "forum") >= 0.05
    for name in ("fpr@1%", "fpr@5%"):
        t = worst[name]
        target = t["target_fpr"]
        assert t["value"] >= pooled[name]["value"] and t["rule"] == "conformal, worst group of domain"
        assert t["achieved_fpr"] <= target
        for grp in ("news", "essays"):  # enough humans: each group's own conformal rule holds
            assert t["groups"][grp]["achieved_fpr"] <= target
            assert t["groups"][grp]["achieved_fpr"] == pytest.approx(fpr(t["value"], grp))
        assert t["skipped_groups"] == {"tiny": "5 humans, fewer than 20"}
        json.dumps(t)
    # 40 humans support 5% but not 1%: at 1% the threshold clears every one of them, and says so
    assert worst["fpr@5%"]["groups"]["forum"]["rule"] == "conformal"
    assert worst["fpr@1%"]["groups"]["forum"]["achieved_fpr"] == 0.0
    assert worst["fpr@1%"]["groups"]["forum"]["rule"] == "above all 40 humans (fewer than 99)"
    assert worst["fpr@1%"]["value"] > p[(g == "forum") & (y == 0)].max()


def test_worst_group_refuses_without_a_usable_group() -> None:
    p, y = _data(300, 300)
    with pytest.raises(ThresholdError, match=r"by 'domain': no group has 20 human"):
        choose_worst_group_thresholds(p, y, ["a"] * 10 + [None] * 590, "domain")
    with pytest.raises(ThresholdError, match="3 group values for 600"):
        choose_worst_group_thresholds(p, y, ["a"] * 3, "domain")


@PROPS
@given(
    n_h=st.integers(1, 400),
    n_a=st.integers(0, 50),
    target=st.sampled_from([0.001, 0.01, 0.02, 0.05, 0.1, 0.25]),
    ties=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_achieved_fpr_never_exceeds_target(n_h: int, n_a: int, target: float, ties: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.r_[rng.random(n_h), rng.random(n_a)]
    if ties:
        p = np.round(p, 1)  # heavy ties
    y = np.r_[np.zeros(n_h), np.ones(n_a)].astype(int)
    if n_h < humans_needed(target):
        with pytest.raises(ThresholdError, match=f"needs at least {humans_needed(target)}"):
            choose_thresholds(p, y, targets=(target,), balanced=False)
        return
    k_max = math.floor(target * (n_h + 1) + 1e-9) - 1
    if np.sort(p[y == 0])[n_h - k_max - 1] >= 1.0:  # humans at P = 1 cannot be excluded: refused
        with pytest.raises(ThresholdError, match="P\\(ai\\) = 1.0"):
            choose_thresholds(p, y, targets=(target,), balanced=False)
        return
    t = choose_thresholds(p, y, targets=(target,), balanced=False)[threshold_name(target)]
    fp = int((p[y == 0] >= t["value"]).sum())
    assert fp / n_h == t["achieved_fpr"] <= target
    assert 0.0 <= t["value"] <= 1.0
    assert t["fpr_upper_95"] >= t["achieved_fpr"]


@settings(max_examples=8, deadline=None, derandomize=True)
@given(
    n_h=st.integers(100, 1500),
    target=st.sampled_from([0.01, 0.05, 0.1]),
    shape=st.floats(0.5, 4.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_bound_covers_true_fpr(n_h: int, target: float, shape: float, seed: int) -> None:
    """Over 300 calibration sets, the bound covers the FPR on 200,000 fresh humans >= 95% of the time."""
    if n_h < humans_needed(target):
        return
    rng = np.random.default_rng(seed)
    fresh = np.sort(rng.beta(shape, 2.0, 200_000))
    reps, covered, mean_fpr = 300, 0, 0.0
    for _ in range(reps):
        h = rng.beta(shape, 2.0, n_h)
        a = rng.beta(2.0, shape, 50)
        p, y = np.r_[h, a], np.r_[np.zeros(n_h), np.ones(50)].astype(int)
        t = choose_thresholds(p, y, targets=(target,), balanced=False)[threshold_name(target)]
        true_fpr = 1.0 - np.searchsorted(fresh, t["value"], side="left") / fresh.size
        covered += true_fpr <= t["fpr_upper_95"]
        mean_fpr += true_fpr / reps
    # 95% nominal; 300 repetitions give a Monte Carlo s.e. of 1.3 points: allow 3 s.e.
    assert covered / reps >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / reps), covered / reps
    # the conformal rule keeps the expected FPR at or below the target (same Monte Carlo slack)
    assert mean_fpr <= target + 3 * math.sqrt(target / n_h / reps) + 2 / fresh.size


def test_group_detection_marks_groups_their_machine_items_do_not_separate() -> None:
    from aigc._thresholds import WEAK_GROUP_AUROC, group_detection, weak_groups_warning

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(30), np.ones(30), np.zeros(30), np.ones(30), np.zeros(30), np.ones(9)].astype(np.int64)
    p = np.r_[rng.uniform(0, 0.5, 30), rng.uniform(0.5, 1, 30), rng.uniform(0, 1, 60), rng.uniform(0, 1, 39)]
    g = np.asarray(["a"] * 60 + ["b"] * 60 + ["c"] * 39 , dtype=object)
    det = group_detection(p, y, g)
    assert set(det) == {"a", "b"}  # c: 9 machine items, fewer than 10
    assert det["a"] == {"n_human": 30, "n_ai": 30, "auroc": 1.0, "weak": False}
    assert det["b"]["weak"] == (det["b"]["auroc"] < WEAK_GROUP_AUROC) and 0.3 < det["b"]["auroc"] < 0.7
    said = weak_groups_warning({"column": "language", "detection": det})
    assert said is not None and "b (AUROC" in said and "a (AUROC" not in said and "by language" in said
    assert weak_groups_warning({"column": "language", "detection": {"a": det["a"]}}) is None
    assert weak_groups_warning({"column": "language", "groups": {}}) is None
