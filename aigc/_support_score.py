"""The combined out-of-support score and its conformal threshold (numpy only; support v1).

Each feature of an item gets a robust z:

- numbers (text: tokens, characters, characters per token; image: width, height, JPEG quality):
  ``|f(x) - median| / scale`` with ``f`` the log for counts and sizes, and ``scale`` the larger of
  1.4826 x MAD, IQR / 1.349 and a floor (a feature that barely varies in calibration would otherwise
  flag any change, however small);
- categories (text script, image format): the normal quantile ``z = Phi^-1(1 - share / 2)`` of the
  category's share among the calibration items (English at 97% gives 0.04, a 0.5% script 2.8).

A category never seen among the calibration items flags the item on its own (version 2). Version 1 gave it
the z of half an item's share (3.48 for 1,000 items) under the same threshold as the numbers; but lengths
have heavy tails, and on the shared English texts the conformal threshold came out at 10.4, so a Cyrillic or
Han text scored with an English bundle was never flagged for its script. An unseen category's z is now
infinite: the threshold is still the conformal quantile of the held-back items' scores (an item of a
category the fitting half never saw counts among the items above it), so the stated rate covers both rules.

The item's score is the largest z over the features it has. The calibration items are split in two
by a seeded permutation: the medians, scales and shares are fitted on one half, and the threshold is
the conformal quantile of the other half's scores, so for exchangeable items the rate at which fresh
calibration-like items exceed it is at most ``floor(rate (m + 1)) / (m + 1) <= rate`` (m: items of the
second half). With fewer than ``1 / rate - 1`` such items the threshold is their largest score and
the stated bound is ``1 / (m + 1)``, recorded as ``expected_rate_at_most``.
"""

from __future__ import annotations

import math
from collections import Counter
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = ["DEFAULT_FALSE_ALARM", "OUTLIER_VERSION", "VERSIONS", "describe", "fit_outlier", "outlier_reasons",
           "outlier_score"]

OUTLIER_VERSION = 2
VERSIONS = (1, 2)  # read: 1 (an unseen category scores ``unseen_z``), 2 (an unseen category is flagged)
DEFAULT_FALSE_ALARM = 0.01

# name -> (transform, unit shown in reasons, scale floor in transformed units)
_NUMERIC: dict[str, dict[str, tuple[str, str, float]]] = {
    "text": {"n_tokens": ("log", "tokens", 0.05), "n_chars": ("log", "characters", 0.05),
             "chars_per_token": ("log", "characters per token", 0.02)},
    "image": {"width": ("log", "px wide", 0.05), "height": ("log", "px high", 0.05),
              "jpeg_quality": ("linear", "JPEG quality", 2.0)},
}  # fmt: skip
_CATEGORY = {"text": ("script", "script"), "image": ("format", "format")}
_EXTRA = {"text": ("lexicon",), "image": ()}  # further categories, stored in ``categories`` (aigc._lexicon)
_ND = NormalDist()


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _features(meta: dict[str, Any], modality: str) -> tuple[dict[str, float], str | None]:
    """The numeric features of one item (missing ones left out) and its category (None when unknown)."""
    vals: dict[str, float] = {}
    for name in _NUMERIC[modality]:
        if name == "chars_per_token":
            t, c = _num(meta.get("n_tokens")), _num(meta.get("n_chars"))
            v = c / t if t and c is not None else None
        elif name == "jpeg_quality" and meta.get("format") != "JPEG":
            v = None
        else:
            v = _num(meta.get(name))
        if v is not None:
            vals[name] = v
    key = _CATEGORY[modality][0]
    cat = meta.get(key)
    if modality == "image":
        cat = cat or "unknown"
    return vals, (str(cat) if cat else None)


def _t(x: float, kind: str) -> float:
    return math.log(max(x, 1e-9)) if kind == "log" else x


def _z_cat(share: float) -> float:
    return float(_ND.inv_cdf(1.0 - min(max(share, 1e-12), 1.0) / 2.0)) if share < 1.0 else 0.0


def _zs(meta: dict[str, Any], model: dict[str, Any]) -> dict[str, float]:
    """The robust z of each feature the item has."""
    modality = model["modality"]
    vals, cat = _features(meta, modality)
    out: dict[str, float] = {}
    for name, v in vals.items():
        p = model["numeric"].get(name)
        if p:
            out[name] = abs(_t(v, p["transform"]) - p["center"]) / p["scale"]
    unseen_flags = model.get("version", OUTLIER_VERSION) >= 2
    c = model.get("category")
    if c and cat is not None:
        out[c["field"]] = _z_of(c, cat, unseen_flags)
    for c in model.get("categories") or []:  # version 2: the lexicon (aigc._lexicon)
        value = _extra_value(meta, c["field"])
        if value is not None:
            out[c["field"]] = _z_of(c, value, unseen_flags)
    return out


def _extra_value(meta: dict[str, Any], field: str) -> str | None:
    """An extra category's value: the lexicon within the text's script (``latin:uncommon``), so that Russian
    calibration texts (``cyrillic:uncommon``) do not make Indonesian ones look seen."""
    v = meta.get(field)
    if not isinstance(v, str):
        return None
    return f"{meta.get('script') or 'none'}:{v}" if field == "lexicon" else v


def _category_models(model: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's categories: ``category`` (script / format) first, then ``categories`` (the lexicon)."""
    return [c for c in [model.get("category"), *(model.get("categories") or [])] if c]


def _z_of(c: dict[str, Any], value: str, unseen_flags: bool) -> float:
    """A category's z: the normal quantile of its share; one never seen: infinite (version 2) or ``unseen_z``."""
    share = c["shares"].get(value)
    if share is not None:
        return _z_cat(float(share))
    return math.inf if unseen_flags else float(c["unseen_z"])


MIN_SEEN = 3  # fitting items a category needs to count as seen (version 2)


def _category_model(field: str, values: list[str]) -> dict[str, Any]:
    """Shares of the categories that at least ``MIN_SEEN`` fitting items had; rarer ones are left out, so an
    item of one counts as never seen (one or two calibration texts do not make thresholds cover a script)."""
    cnt, n = Counter(values), len(values)
    return {"field": field, "shares": {k: round(v / n, 6) for k, v in cnt.most_common() if v >= MIN_SEEN},
            "min_seen": MIN_SEEN, "unseen_z": round(_z_cat(0.5 / n), 6)}


def outlier_score(meta: dict[str, Any], model: dict[str, Any]) -> float:
    """The combined score of one item: the largest robust z over its features (0 when it has none; infinite
    for a category the calibration items never had, from version 2)."""
    return max(_zs(meta, model).values(), default=0.0)


def _fit_model(metas: list[dict[str, Any]], modality: str) -> dict[str, Any]:
    feats = [_features(m, modality) for m in metas]
    numeric: dict[str, Any] = {}
    for name, (kind, _, floor) in _NUMERIC[modality].items():
        x = np.array([_t(f[name], kind) for f, _ in feats if name in f], dtype=np.float64)
        if x.size < 2:
            continue
        med = float(np.median(x))
        mad = 1.4826 * float(np.median(np.abs(x - med)))
        q1, q3 = np.percentile(x, [25, 75])
        scale = max(mad, float(q3 - q1) / 1.349, floor)
        numeric[name] = {"transform": kind, "center": round(med, 6), "scale": round(scale, 6), "n": int(x.size)}
    field, _ = _CATEGORY[modality]
    cats = [c for _, c in feats if c is not None]
    model: dict[str, Any] = {"modality": modality, "numeric": numeric}
    if cats:
        model["category"] = _category_model(field, cats)
    extra = []
    for name in _EXTRA[modality]:
        values = [v for m in metas if (v := _extra_value(m, name)) is not None]
        if values:
            extra.append(_category_model(name, values))
    if extra:
        model["categories"] = extra
    return model


def fit_outlier(metas: list[dict[str, Any]], modality: str, rate: float = DEFAULT_FALSE_ALARM, seed: int = 0) -> dict[str, Any]:
    """The ``outlier`` object of the support: the score's parameters and its conformal threshold at ``rate``."""
    if not 0.0 < rate < 0.5:
        raise ValueError(f"support: false-alarm rate must be in (0, 0.5), found {rate}")
    if modality not in _NUMERIC:
        raise ValueError(f"support: modality {modality!r}, expected 'text' or 'image'")
    metas = [m for m in metas if m]
    if len(metas) < 4:
        raise ValueError(f"support: {len(metas)} usable calibration items, the outlier score needs at least 4")
    perm = np.random.default_rng(seed).permutation(len(metas))
    half = (len(metas) + 1) // 2
    model = {"version": OUTLIER_VERSION, **_fit_model([metas[i] for i in perm[:half]], modality)}
    scores = np.sort([outlier_score(metas[i], model) for i in perm[half:]])
    m = int(scores.size)
    finite = scores[np.isfinite(scores)]  # the others: a category the fitting half never saw (flagged anyway)
    k = math.floor(rate * (m + 1) + 1e-9) - 1  # calibration items allowed above the threshold
    k_num = k - (m - finite.size)  # of which the numbers may flag
    if k_num >= 0 and finite.size:
        thr, bound, rule = float(finite[finite.size - k_num - 1]), (k + 1) / (m + 1), "conformal"
    else:  # the unseen categories alone use up the rate (or nothing is finite): flag above every finite score
        thr = float(finite[-1]) if finite.size else 0.0
        bound, rule = (m - finite.size + 1) / (m + 1), ("largest score" if k < 0 else "largest finite score")
    stored = round(thr, 6) + 1e-6  # strictly above the quantile item, whatever the rounding
    return {
        **model,
        "score": "max over features of robust z (numbers: |log x - median| / robust sd; categories: normal quantile of "
                 "the share; a category never seen: flagged)",
        "target_rate": rate,
        "threshold": stored,
        "rule": rule,
        "n_fit": half,
        "n_calibration": m,
        "achieved_rate": float((scores > stored).mean()),
        "expected_rate_at_most": round(bound, 6),
    }


def _shown(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def outlier_reasons(meta: dict[str, Any], o: dict[str, Any]) -> list[str]:
    """One reason per feature whose robust z exceeds the threshold; empty when the item is in support."""
    zs = _zs(meta, o)
    thr = float(o["threshold"])
    if max(zs.values(), default=0.0) <= thr:
        return []
    modality = o["modality"]
    vals, cat = _features(meta, modality)
    cut = f"robust z {{z:.1f}} > {thr:.2f}, the {o['target_rate']:.0%} false-alarm cutoff"
    noun = "texts" if modality == "text" else "images"
    out: list[str] = []
    for name, z in sorted(zs.items(), key=lambda kv: -kv[1]):
        if z <= thr:
            continue
        c = next((k for k in _category_models(o) if k["field"] == name), None)
        if c:
            cat = _extra_value(meta, name) if name in _EXTRA[modality] else _features(meta, modality)[1]
            share = c["shares"].get(cat)
            if name == "lexicon" and str(cat).endswith(":uncommon"):
                share_txt = (f"{100 * float(meta['common_word_share']):.0f}% of its words"
                             if _num(meta.get("common_word_share")) is not None else "few of its words")
                out.append(f"words: {share_txt} are among the calibration texts' most common words (another "
                           f"language than theirs?); {'too few' if math.isinf(z) else 'almost no'} calibration texts "
                           f"in {str(cat).split(':')[0]} script were like that")
                continue
            if math.isinf(z):
                out.append(f"{name} {cat}: never seen among the {noun} the thresholds were calibrated on "
                           f"({', '.join(f'{k} {100 * float(v):.3g}%' for k, v in list(c['shares'].items())[:3])})")
                continue
            seen = "never seen" if share is None else f"{100 * float(share):.2g}%"
            out.append(f"{name} {cat}: {seen} among calibration {noun} ({cut.format(z=z)})")
            continue
        p = o["numeric"][name]
        med = math.exp(p["center"]) if p["transform"] == "log" else p["center"]
        unit = _NUMERIC[modality][name][1]
        side = "above" if _t(vals[name], p["transform"]) > p["center"] else "below"
        out.append(f"{_shown(vals[name])} {unit}, far {side} the calibration {noun}' median {_shown(med)} ({cut.format(z=z)})")
    return out


def describe(o: dict[str, Any]) -> str:
    """What the flag means, for ``aigc info``."""
    cats = [c["field"] for c in _category_models(o)]
    feats = [*o["numeric"], *cats]
    if o["rule"] == "conformal":
        rate = (f"flags about {o['target_rate']:.0%} of calibration-like items (at most "
                f"{100 * o['expected_rate_at_most']:.2f}% expected; conformal rule on {o['n_calibration']} held-back "
                f"calibration items, fitted on {o['n_fit']})")
    elif o["rule"] == "largest finite score":
        rate = (f"flags at most {100 * o['expected_rate_at_most']:.2f}% of calibration-like items, not the "
                f"{o['target_rate']:.0%} asked: of the {o['n_calibration']} calibration items held back for the threshold, "
                "enough had a category the fitting half never saw (flagged on their own) to use up the rate, so the "
                "numbers' threshold is above every other held-back item's score")
    else:
        need = math.ceil(1 / float(o["target_rate"]) - 1 - 1e-9)
        rate = (f"flags at most {100 * o['expected_rate_at_most']:.2f}% of calibration-like items, not the "
                f"{o['target_rate']:.0%} asked: {o['n_calibration']} calibration items were held back for the "
                f"threshold, fewer than the {need} the target needs, so it is the largest of their scores")
    unseen = (f"; a {' or '.join(cats)} never seen in calibration is flagged on its own"
              if cats and o.get("version", 1) >= 2 else "")
    return (f"out_of_support: {rate}; combined score = largest robust z over {', '.join(feats)} > "
            f"{o['threshold']:.3g}{unseen}")
