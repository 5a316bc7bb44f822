"""The support of a bundle's calibration data, and the check that flags items outside it (numpy only).

Thresholds are chosen on one calibration set; they promise nothing for items unlike it (a 12-token
tweet scored with thresholds fitted on 500-token essays, a Cyrillic text on English ones, a 64x64 PNG
on 1024-pixel JPEGs). Export records what the calibration items looked like
(:func:`compute_support`, the bundle's ``support`` object); the runtime checks each item's meta
against it (:func:`check_support`) and marks the item ``out_of_support`` with the reasons.

Per-item meta (what ``Detector`` collects while scoring):

- text: ``{"n_tokens": int, "n_chars": int, "script": str}``
- image: ``{"width": int, "height": int, "format": str | None, "jpeg_quality": int | None}``

Since support v1 (the ``outlier`` object inside ``support.text`` / ``support.image``), one combined
score decides, with a stated false-alarm rate: each feature of an item gets a robust z (numbers: the
distance from the calibration median in robust standard deviations, on a log scale for counts and
sizes; categories: the normal quantile of how rare the category was), the item's score is the largest,
and it is flagged when that exceeds a threshold set by the conformal rule on calibration items
(:mod:`aigc._support_score`). On fresh items like the calibration data the flag then fires at most at
the target rate (default 1%); the reasons name each feature over the threshold. From version 2 a category
(script, format) that no calibration item had flags the item on its own, within the same stated rate.

Older bundles (no ``outlier``) keep the old rule: a range is the 1st..99th percentile of the
calibration items (``p01``..``p99``), so about 2% of calibration-like items are flagged by each ranged
field by construction (11% of calibration-like texts over three fields); a category (script, format)
is in support when at least ``MIN_SHARE`` of the calibration items had it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _lexicon, _support_score

__all__ = ["DEFAULT_FALSE_ALARM", "MIN_SHARE", "check_support", "compute_support", "describe_support", "lexicon_meta"]

DEFAULT_FALSE_ALARM = _support_score.DEFAULT_FALSE_ALARM

MIN_SHARE = 0.01  # a script / format seen in fewer calibration items than this is out of support
_LO, _HI = 1.0, 99.0


_num = _support_score._num  # one reading of a meta value as a finite number, or None


def _range(values: Sequence[float], integer: bool) -> dict[str, float] | None:
    """p01/p99 (and min/max) of ``values``; integers widen to floor/ceil so that bounds stay inclusive."""
    if not values:
        return None
    a = np.asarray(values, dtype=np.float64)
    lo, hi = float(np.percentile(a, _LO)), float(np.percentile(a, _HI))
    if integer:
        return {"p01": math.floor(lo), "p99": math.ceil(hi), "min": int(a.min()), "max": int(a.max())}
    return {"p01": round(lo, 4), "p99": round(hi, 4), "min": round(float(a.min()), 4), "max": round(float(a.max()), 4)}


def _shares(values: Sequence[str]) -> dict[str, float]:
    c = Counter(values)
    n = sum(c.values())
    return {k: round(v / n, 4) for k, v in c.most_common()} if n else {}


def compute_support(
    metas: Sequence[dict[str, Any]], modality: str, false_alarm: float | None = DEFAULT_FALSE_ALARM,
    texts: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """The bundle's ``support`` object from the per-item meta of the calibration items.

    Returns ``{modality: {...}}`` (docs/bundle.md): for text ``n_tokens``, ``n_chars`` and
    ``chars_per_token`` ranges and ``scripts`` shares; for images ``width``/``height`` ranges,
    ``formats`` shares and the ``jpeg_quality`` range of the JPEG items; and ``outlier``, the combined
    score with its conformal threshold at ``false_alarm`` (None: leave it out, the old per-field rule).
    Items with an empty meta (failed items) are skipped; ``n`` counts the items used. Raises
    ValueError when none is usable. ``texts`` (text, one per meta, with the combined score): the
    calibration texts, from which ``lexicon`` is fitted (:mod:`aigc._lexicon`); each meta then gets its
    ``lexicon`` category and ``common_word_share``, and the combined score reads the category.
    """
    lexicon = None
    # a runtime's metas carry the lexicon of the bundle that scored them: never the one fitted here
    metas = [{k: v for k, v in m.items() if k not in _LEXICON_KEYS} if m else m for m in metas]
    if modality == "text" and texts is not None and false_alarm is not None:
        if len(texts) != len(metas):
            raise ValueError(f"support: {len(texts)} texts for {len(metas)} metas")
        lexicon = _lexicon.fit_lexicon([t for t, m in zip(texts, metas, strict=True) if m])
        metas = [{**m, **lexicon_meta(t, lexicon)} if m else m for t, m in zip(texts, metas, strict=True)]
    metas = [m for m in metas if m]
    out = _ranges(metas, modality)
    if false_alarm is not None:
        out[modality]["outlier"] = _support_score.fit_outlier(metas, modality, false_alarm)
    if lexicon is not None:
        out[modality]["lexicon"] = lexicon
    return out


_LEXICON_KEYS = ("lexicon", "common_word_share")


def lexicon_meta(text: Any, lexicon: dict[str, Any] | None) -> dict[str, Any]:
    """``{"lexicon": "common" | "uncommon", "common_word_share": float}`` of one text under the support's
    ``lexicon`` (the runtime adds them to a text's meta); ``{}`` without a lexicon or with too few words."""
    j = _lexicon.judge(text, lexicon)
    return {} if j is None else {"lexicon": j[0], "common_word_share": round(j[1], 4)}


def _ranges(metas: list[dict[str, Any]], modality: str) -> dict[str, Any]:
    if modality == "text":
        n_tok = [v for m in metas if (v := _num(m.get("n_tokens"))) is not None]
        n_chr = [v for m in metas if (v := _num(m.get("n_chars"))) is not None]
        cpt = [
            c / t
            for m in metas
            if (t := _num(m.get("n_tokens"))) and (c := _num(m.get("n_chars"))) is not None
        ]
        scripts = [str(m["script"]) for m in metas if m.get("script")]
        if not n_tok:
            raise ValueError("support: no calibration item has n_tokens (expected text meta dicts)")
        out: dict[str, Any] = {"n": len(metas), "n_tokens": _range(n_tok, True)}
        if n_chr:
            out["n_chars"] = _range(n_chr, True)
        if cpt:
            out["chars_per_token"] = _range(cpt, False)
        if scripts:
            out["scripts"] = _shares(scripts)
        return {"text": out}
    if modality == "image":
        w = [v for m in metas if (v := _num(m.get("width"))) is not None]
        h = [v for m in metas if (v := _num(m.get("height"))) is not None]
        if not w or not h:
            raise ValueError("support: no calibration item has width/height (expected image meta dicts)")
        formats = [str(m.get("format") or "unknown") for m in metas]
        q = [v for m in metas if m.get("format") == "JPEG" and (v := _num(m.get("jpeg_quality"))) is not None]
        out = {"n": len(metas), "width": _range(w, True), "height": _range(h, True), "formats": _shares(formats)}
        if q:
            out["jpeg_quality"] = _range(q, True)
        return {"image": out}
    raise ValueError(f"support: modality {modality!r}, expected 'text' or 'image'")


def _check_range(value: Any, rng: dict[str, Any] | None, what: str, unit: str, plural: str) -> str | None:
    v = _num(value)
    if v is None or not rng:
        return None
    lo, hi = _num(rng.get("p01")), _num(rng.get("p99"))
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        shown = f"{v:g}" if unit else f"{v:.3g}"
        return f"{what} {shown}{unit}; calibration {plural} had {lo:g}..{hi:g} (1st..99th percentile)"
    return None


def _check_share(value: str, shares: dict[str, Any] | None, what: str, plural: str) -> str | None:
    if not shares:
        return None
    if float(shares.get(value, 0.0)) >= MIN_SHARE:
        return None
    seen = ", ".join(f"{k} {float(s):.0%}" for k, s in list(shares.items())[:4])
    return f"{what} is {value}; calibration {plural} were {seen}"


def check_support(meta: dict[str, Any], support: dict[str, Any]) -> list[str]:
    """Reasons why one item lies outside the calibration support; an empty list when it lies inside.

    ``support`` is the bundle's ``support`` object (``{"text": {...}}`` or ``{"image": {...}}``; the
    inner object alone is accepted too). Fields missing from either side are not checked, so an item
    whose meta could not be computed is never flagged here (its error says why).
    """
    if not meta or not support:
        return []
    inner = support.get("text") or support.get("image") or support
    outlier = inner.get("outlier") if isinstance(inner, dict) else None
    if isinstance(outlier, dict) and outlier.get("version") in _support_score.VERSIONS:
        return _support_score.outlier_reasons(meta, outlier)
    reasons: list[str | None] = []
    if "text" in support or "n_tokens" in support:
        s = support.get("text", support)
        if "n_tokens" in meta:
            reasons.append(_check_range(meta.get("n_tokens"), s.get("n_tokens"), "text has", " tokens", "texts"))
            reasons.append(_check_range(meta.get("n_chars"), s.get("n_chars"), "text has", " characters", "texts"))
            t, c = _num(meta.get("n_tokens")), _num(meta.get("n_chars"))
            if t and c is not None:
                reasons.append(
                    _check_range(c / t, s.get("chars_per_token"), "text has characters per token", "", "texts")
                )
            if meta.get("script"):
                reasons.append(_check_share(str(meta["script"]), s.get("scripts"), "text script", "texts"))
    if "image" in support or "width" in support:
        s = support.get("image", support)
        if "width" in meta or "height" in meta:
            reasons.append(_check_range(meta.get("width"), s.get("width"), "image width", " px", "images"))
            reasons.append(_check_range(meta.get("height"), s.get("height"), "image height", " px", "images"))
            fmt = str(meta.get("format") or "unknown")
            reasons.append(_check_share(fmt, s.get("formats"), "image format", "images"))
            if fmt == "JPEG":
                reasons.append(
                    _check_range(meta.get("jpeg_quality"), s.get("jpeg_quality"), "JPEG quality", "", "JPEG images")
                )
    return [r for r in reasons if r]


def describe_support(support: dict[str, Any] | None) -> str:
    """One or two lines for ``aigc info``: what ``out_of_support`` means for this bundle and how often it fires."""
    if not support:
        return "out_of_support: never set (the bundle records no calibration support)"
    inner = support.get("text") or support.get("image") or {}
    o = inner.get("outlier")
    if isinstance(o, dict) and o.get("version") in _support_score.VERSIONS:
        return _support_score.describe(o)
    fields = [k for k in ("n_tokens", "n_chars", "chars_per_token", "width", "height", "jpeg_quality") if k in inner]
    return (f"out_of_support (older rule): any of {', '.join(fields)} outside its calibration 1st..99th percentile "
            f"(each flags about 2% of calibration-like items), or a rare script/format; no stated false-alarm rate")
