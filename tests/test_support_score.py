"""The combined out-of-support score: on fresh items from the calibration distribution it fires at the
stated rate (binomial tolerance), clear outliers are flagged with reasons naming the feature, and a
bundle made before it keeps the old per-field rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aigc._support import check_support, compute_support, describe_support


def _texts(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    toks = np.maximum(5, rng.lognormal(np.log(300), 0.6, n)).astype(int)
    cpt = rng.normal(4.6, 0.3, n)
    scripts = rng.choice(["latin", "cyrillic", "han"], size=n, p=[0.96, 0.03, 0.01])
    return [{"n_tokens": int(t), "n_chars": int(t * c), "script": str(s)} for t, c, s in zip(toks, cpt, scripts, strict=True)]


def _images(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        side = float(rng.lognormal(np.log(700), 0.35))
        w, h = int(side * rng.uniform(0.75, 1.33)), int(side)
        if rng.random() < 0.7:
            out.append({"width": w, "height": h, "format": "JPEG", "jpeg_quality": int(np.clip(rng.normal(85, 6), 30, 100))})
        else:
            out.append({"width": w, "height": h, "format": "PNG", "jpeg_quality": None})
    return out


def _rate(metas: list[dict], sup: dict) -> float:
    return float(np.mean([bool(check_support(m, sup)) for m in metas]))


@pytest.mark.parametrize(("modality", "make"), [("text", _texts), ("image", _images)])
@pytest.mark.parametrize("target", [0.01, 0.05])
def test_false_alarm_rate_on_fresh_calibration_like_items(modality: str, make, target: float) -> None:
    sup = compute_support(make(6000, 0), modality, false_alarm=target)
    json.dumps(sup)
    o = sup[modality]["outlier"]
    assert o["version"] == 2 and o["target_rate"] == target and o["n_calibration"] == 3000
    assert o["rule"] == "conformal" and o["expected_rate_at_most"] <= target
    fresh = make(20000, 1)
    rate = _rate(fresh, sup)
    # the threshold is a quantile of 3000 held-back items (sd of its coverage sqrt(t/3000)) and the
    # fresh rate is binomial over 20000: 4 sd of both together
    tol = 4 * np.sqrt(target * (1 - target) * (1 / 3000 + 1 / 20000))
    assert abs(rate - target) < tol, (rate, target, tol)


def test_old_rule_flagged_far_more_than_stated() -> None:
    """The p01/p99 rule of older bundles: each ranged field flags ~2% by construction."""
    old = compute_support(_texts(6000, 0), "text", false_alarm=None)
    assert "outlier" not in old["text"]
    assert _rate(_texts(20000, 1), old) > 0.03  # 4% here (tokens and characters are correlated)


def test_outliers_flagged_with_reasons_naming_the_feature() -> None:
    sup = compute_support(_texts(4000, 0), "text")
    r = check_support({"n_tokens": 4, "n_chars": 18, "script": "latin"}, sup)
    assert any("4 tokens, far below" in x for x in r) and all("1% false-alarm cutoff" in x for x in r)
    r = check_support({"n_tokens": 300, "n_chars": 300, "script": "latin"}, sup)
    assert r and any("characters per token" in x for x in r)
    r = check_support({"n_tokens": 300, "n_chars": 1400, "script": "arabic"}, sup)
    assert r == [r[0]] and "script arabic: never seen" in r[0]
    assert check_support({"n_tokens": 300, "n_chars": 1400, "script": "latin"}, sup) == []
    img = compute_support(_images(4000, 0), "image")
    r = check_support({"width": 48, "height": 40, "format": "JPEG", "jpeg_quality": 85}, img)
    assert any("px wide" in x for x in r) and any("px high" in x for x in r)
    r = check_support({"width": 700, "height": 700, "format": "JPEG", "jpeg_quality": 15}, img)
    assert r and "JPEG quality" in r[0]
    assert check_support({"width": 700, "height": 700, "format": "PNG", "jpeg_quality": None}, img) == []
    assert check_support({}, img) == []


def test_unseen_category_flagged_whatever_the_numbers_threshold() -> None:
    """Version 1 gave a script never seen in calibration the z of half an item's share (3.5 here) under the
    numbers' threshold; with heavy-tailed lengths that threshold is far higher (10.4 on the shared English
    texts), so a Cyrillic text under an English bundle was never flagged for its script. Version 2 flags it."""
    rng = np.random.default_rng(0)
    toks = np.maximum(3, rng.lognormal(np.log(150), 0.15, 4000) * rng.choice([1, 1, 1, 8, 0.1], 4000)).astype(int)
    metas = [{"n_tokens": int(t), "n_chars": int(4.6 * t), "script": "latin"} for t in toks]
    sup = compute_support(metas, "text")
    o = sup["text"]["outlier"]
    assert o["version"] == 2 and o["threshold"] > o["category"]["unseen_z"] + 1  # the numbers' tail sets it
    cyr = {"n_tokens": 150, "n_chars": 690, "script": "cyrillic"}
    r = check_support(cyr, sup)
    assert len(r) == 1 and "script cyrillic: never seen among the texts the thresholds were calibrated on" in r[0]
    assert "latin 100%" in r[0]
    assert check_support({**cyr, "script": "latin"}, sup) == []
    v1 = {"text": {**sup["text"], "outlier": {**o, "version": 1}}}  # a bundle made before: its own rule, read as then
    assert check_support(cyr, v1) == []
    assert "never seen in calibration is flagged on its own" in describe_support(sup)
    assert "flagged on its own" not in describe_support(v1)


def test_unseen_categories_of_the_held_back_half_count_in_the_rate() -> None:
    """Held-back items whose category the fitting half never saw are flagged by the category rule; the numbers'
    threshold leaves room for them so that the stated rate covers both."""
    metas = _texts(2000, 3)
    for i in range(1, 2000, 100):  # 20 items of scripts that appear once each: most land in one half only
        metas[i] = {**metas[i], "script": f"rare{i}"}
    o = compute_support(metas, "text", false_alarm=0.05)["text"]["outlier"]
    perm = np.random.default_rng(0).permutation(len(metas))  # fit_outlier's split (seed 0)
    fit_scripts = {metas[i]["script"] for i in perm[:1000]}
    unseen = sum(metas[i]["script"] not in fit_scripts for i in perm[1000:])
    assert 5 <= unseen <= 15 and o["n_calibration"] == 1000
    k = round(o["achieved_rate"] * 1000)  # held-back items above the threshold, the unseen among them
    assert unseen <= k <= 50 and o["expected_rate_at_most"] <= 0.05 and o["rule"] == "conformal"
    sup = {"text": {"outlier": o}}
    assert k - unseen == sum(bool(check_support(metas[i], sup)) for i in perm[1000:]
                             if metas[i]["script"] in fit_scripts)
    # at 1% of 1000 (10 allowed above) the 5-15 unseen leave little or nothing to the numbers
    o1 = compute_support(metas, "text", false_alarm=0.01)["text"]["outlier"]
    if unseen >= 10:
        assert o1["rule"] == "largest finite score" and o1["expected_rate_at_most"] == pytest.approx((unseen + 1) / 1001, abs=1e-6)
        d = describe_support({"text": {"outlier": o1}})
        assert "enough had a category the fitting half never saw" in d and "fewer than the" not in d
    else:
        assert o1["rule"] == "conformal"


def test_describe_says_rate_and_old_rule() -> None:
    sup = compute_support(_texts(400, 0), "text")
    d = describe_support(sup)
    assert "about 1% of calibration-like items" in d and "n_tokens" in d and "script" in d
    assert "older rule" in describe_support(compute_support(_texts(400, 0), "text", false_alarm=None))
    small = compute_support([{**m, "script": "latin"} for m in _texts(60, 0)], "text")["text"]["outlier"]  # 30 held back
    assert small["rule"] == "largest score" and small["expected_rate_at_most"] == pytest.approx(1 / 31, abs=1e-6)
    d_small = describe_support({"text": {"outlier": small}})
    assert "flags at most 3.23% of calibration-like items, not the 1% asked: 30" in d_small and "about 1%" not in d_small


def test_info_card_states_the_rate(tiny_text_bundle) -> None:
    from aigc._bundle import open_bundle
    from aigc.cli._info import render_card

    spec = dict(open_bundle(tiny_text_bundle).spec)
    spec["support"] = compute_support(_texts(400, 0), "text")
    card = render_card(spec)
    assert "out_of_support: flags about 1% of calibration-like items" in card and "robust z" in card
    spec["support"] = compute_support(_texts(400, 0), "text", false_alarm=None)
    assert "older rule" in render_card(spec)
