"""Text: windows, pooling, token-budget batching, golden probabilities, and bad texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _bundles import VOCAB, make_tokenizer, text_raw_score_window

import aigc
from aigc._calibration import sigmoid
from aigc._text import TextSpec, batches_by_token_budget, dominant_script, encode_windows, normalize_text

SPEC = TextSpec(max_length=8, stride=4, prefix_ids=(2,), suffix_ids=(3,), pad_id=0)


def _ids(words: str) -> list[int]:
    return [VOCAB.index(w) for w in words.lower().split()]


def test_windows_stride_and_special_tokens() -> None:
    tok = make_tokenizer()
    text = " ".join(["the", "cat", "sat", "on", "the", "mat", "a", "dog", "ran", "in", "the", "park"])  # 12 tokens
    (w,) = encode_windows(tok, [text], SPEC)
    assert not isinstance(w, str)
    assert w.n_tokens == 12
    ids = _ids(text)
    # content length 6, stride 4: starts 0, 4, 8 (the last covers the tail)
    assert w.windows == [[2, *ids[0:6], 3], [2, *ids[4:10], 3], [2, *ids[8:12], 3]]


def test_short_text_single_window_and_max_windows() -> None:
    tok = make_tokenizer()
    (w,) = encode_windows(tok, ["the cat"], SPEC)
    assert not isinstance(w, str) and w.windows == [[2, *_ids("the cat"), 3]]
    spec = TextSpec(max_length=8, stride=4, prefix_ids=(2,), suffix_ids=(3,), max_windows=2)
    (w2,) = encode_windows(tok, ["the cat sat on " * 10], spec)
    assert not isinstance(w2, str) and len(w2.windows) == 2
    assert "scored the first 2 windows" in w2.warnings[0]
    assert w2.warnings[0].endswith("its first 10 tokens (max_windows)")  # windows at 0 and 4, 6 content tokens each
    (w1,) = encode_windows(tok, ["the cat sat on " * 10], TextSpec(max_length=8, stride=4, prefix_ids=(2,),
                                                                    suffix_ids=(3,), max_windows=1))
    assert not isinstance(w1, str) and "scored the first 1 window of" in w1.warnings[0]
    assert w1.warnings[0].endswith("its first 6 tokens (max_windows)")


def test_token_budget_batches_cover_everything_once() -> None:
    lengths = [5, 100, 3, 50, 50, 7, 1, 99]
    batches = list(batches_by_token_budget(lengths, max_tokens=110, max_batch=3))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 110


def test_normalisation_strips_zero_width_and_nul() -> None:
    assert normalize_text("de\u200blve\x00 in\ufeff") == "delve in"
    assert normalize_text("e\u0301") == "\u00e9"  # NFC


def test_golden_probabilities_with_pooling(tiny_text_bundle: Path) -> None:
    det = aigc.load(tiny_text_bundle)
    texts = ["the cat sat", "moreover we delve into the tapestry furthermore a dog ran in the park"]
    p = det.predict_proba(texts)[:, 1]
    tok = make_tokenizer()
    expect = []
    for t in texts:
        (w,) = encode_windows(tok, [t], SPEC)
        assert not isinstance(w, str)
        expect.append(np.mean([text_raw_score_window(win) for win in w.windows]))
    np.testing.assert_allclose(p, sigmoid(np.array(expect) / 2.0), atol=1e-6)
    assert p[0] == pytest.approx(0.4011585, abs=1e-6)  # golden, fixed by the seeded table


def test_order_restored_after_length_sorting(tiny_text_bundle: Path) -> None:
    texts = [("the cat " * (k % 7 + 1)) + ("delve " * (k % 3)) for k in range(40)]
    a = aigc.load(tiny_text_bundle, batch_size=1).predict_proba(texts)
    b = aigc.load(tiny_text_bundle, batch_size=64, max_tokens=40).predict_proba(texts)
    c = np.vstack([aigc.load(tiny_text_bundle).predict_proba([t]) for t in texts])
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a, c, atol=1e-6)


def test_bad_texts_never_fail_the_batch(tiny_text_bundle: Path) -> None:
    det = aigc.load(tiny_text_bundle)
    big = "the cat sat on the mat " * 45_000  # ~1 MB
    assert len(big) >= 1_000_000
    items = ["", "   \n\t ", big, "the\x00 cat", "de\u200blve", "\u200b\u200c", "delve", None]
    res = det.score(items)  # type: ignore[arg-type]
    assert res[0].error == "empty text"
    assert "no visible characters" in (res[1].error or "")
    assert res[2].error is None and any("max_windows" in w for w in res[2].warnings)
    assert res[3].error is None
    assert res[4].error is None and res[4].probability == pytest.approx(res[6].probability)  # zero-width ignored
    assert "no visible characters" in (res[5].error or "")
    assert "expected a str, got NoneType" in (res[7].error or "")
    assert res[3].probability == pytest.approx(det.predict_proba(["the cat"])[0, 1])


def test_scripts() -> None:
    assert dominant_script("Hello world") == "latin"
    assert dominant_script("Привет мир") == "cyrillic"
    assert dominant_script("مرحبا بالعالم") == "arabic"
    assert dominant_script("你好世界") == "han"
    assert dominant_script("123 !!") == "none"


def test_group_thresholds(tiny_text_bundle: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from aigc._bundle import write_bundle

    b = tmp_path / "g"
    shutil.copytree(tiny_text_bundle, b)
    spec = json.loads((b / "bundle.json").read_text())
    spec["group_thresholds"] = {"column": "domain", "groups": {"essays": {"fpr@1%": {
        "value": 0.99, "n_human": 400, "achieved_fpr": 0.0075}}}}
    write_bundle(b, spec, overwrite=True)
    det = aigc.load(b)
    r = det.score(["delve", "delve", "delve"], threshold="fpr@1%", groups=["essays", "news", None])
    assert (r[0].threshold_name, r[0].threshold) == ("fpr@1%[domain=essays]", 0.99)
    assert (r[1].threshold_name, r[1].threshold) == ("fpr@1%", 0.8)
    assert r[2].threshold == 0.8
