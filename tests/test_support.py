"""Support of the calibration data: in-support items pass, shifted items are flagged with a reason."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aigc._support import check_support, compute_support


def _text_metas(n: int = 500, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    toks = rng.integers(80, 400, n)
    return [{"n_tokens": int(t), "n_chars": int(t * rng.uniform(4.0, 5.0)), "script": "latin"} for t in toks]


def _image_metas(n: int = 400, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w, h = int(rng.integers(256, 1024)), int(rng.integers(256, 1024))
        if i % 3:
            out.append({"width": w, "height": h, "format": "JPEG", "jpeg_quality": int(rng.integers(70, 96))})
        else:
            out.append({"width": w, "height": h, "format": "PNG", "jpeg_quality": None})
    return out


def test_text_support_in_and_out() -> None:
    """The per-field rule of bundles made before the combined score (no ``outlier``: older bundles)."""
    sup = compute_support(_text_metas(), "text", false_alarm=None)
    json.dumps(sup)  # JSON-serialisable as stored in bundle.json
    s = sup["text"]
    assert s["n"] == 500 and s["scripts"] == {"latin": 1.0}
    assert 80 <= s["n_tokens"]["p01"] < s["n_tokens"]["p99"] <= 400
    # in support: typical items of the calibration distribution
    for m in _text_metas(50, seed=1)[5:45]:
        if s["n_tokens"]["p01"] <= m["n_tokens"] <= s["n_tokens"]["p99"]:
            assert check_support(m, sup) == [] or all("characters" in r for r in check_support(m, sup))
    assert check_support({"n_tokens": 200, "n_chars": 900, "script": "latin"}, sup) == []
    # shifted: too short, other script, odd characters per token (homoglyph-like)
    r = check_support({"n_tokens": 12, "n_chars": 55, "script": "latin"}, sup)
    assert any("12 tokens" in x and "1st..99th percentile" in x for x in r), r
    r = check_support({"n_tokens": 200, "n_chars": 900, "script": "cyrillic"}, sup)
    assert r and "cyrillic" in r[0] and "latin 100%" in r[0]
    r = check_support({"n_tokens": 200, "n_chars": 200, "script": "latin"}, sup)
    assert any("characters per token" in x for x in r), r
    # the inner object is accepted as well; empty meta (failed item) is never flagged
    assert check_support({"n_tokens": 12, "n_chars": 55, "script": "latin"}, sup["text"])
    assert check_support({}, sup) == []


def test_image_support_in_and_out() -> None:
    sup = compute_support(_image_metas(), "image", false_alarm=None)
    json.dumps(sup)
    s = sup["image"]
    assert set(s["formats"]) == {"JPEG", "PNG"} and "jpeg_quality" in s
    assert check_support({"width": 600, "height": 500, "format": "JPEG", "jpeg_quality": 85}, sup) == []
    assert check_support({"width": 600, "height": 500, "format": "PNG", "jpeg_quality": None}, sup) == []
    r = check_support({"width": 64, "height": 64, "format": "PNG", "jpeg_quality": None}, sup)
    assert len(r) == 2 and "width 64 px" in r[0] and "height 64 px" in r[1]
    r = check_support({"width": 600, "height": 500, "format": "WEBP", "jpeg_quality": None}, sup)
    assert r == [f"image format is WEBP; calibration images were {', '.join(f'{k} {v:.0%}' for k, v in s['formats'].items())}"]
    r = check_support({"width": 600, "height": 500, "format": "JPEG", "jpeg_quality": 30}, sup)
    assert r and "JPEG quality 30" in r[0]


def test_support_refuses_unusable_input() -> None:
    with pytest.raises(ValueError, match="n_tokens"):
        compute_support([{}, {"width": 3}], "text")
    with pytest.raises(ValueError, match="modality"):
        compute_support(_text_metas(5), "audio")
