"""Scoring memory of LM bundles: the runtime sizes a text batch by tokens x logits per token
(``model.logits_per_token``), so one batch's logits stay within ``LOGITS_BUDGET_BYTES``, with the same
scores as unbounded batching; ``preprocessing.max_tokens`` caps the tokens scored per text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _bundles import build_bundle, text_raw_score_window

from aigc._text import (
    LOGITS_BUDGET_BYTES,
    TextSpec,
    TextWindows,
    encode_windows,
    lm_token_budget,
)

WORDS = "the a of and moreover delve crucial tapestry notably it was".split()


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, int(rng.integers(1, 60)))) for _ in range(n)]


def test_token_budget_from_logits_per_token() -> None:
    assert lm_token_budget(16384, None) == 16384  # not an LM graph: the token budget as given
    assert lm_token_budget(16384, 49152) == LOGITS_BUDGET_BYTES // (4 * 49152) == 682  # SmolLM2
    assert lm_token_budget(16384, 2 * 151936) == 110  # a Qwen pair
    assert lm_token_budget(100, 49152) == 100  # never above the caller's budget
    assert lm_token_budget(16384, 10**12) == 1


def _recording(det: Any) -> list[tuple[int, int]]:
    shapes: list[tuple[int, int]] = []
    real = det.session.run

    def run(names: Any, feeds: dict[str, np.ndarray]) -> Any:
        shapes.append(feeds["input_ids"].shape)
        return real(names, feeds)

    det.session.run = run
    return shapes


def test_lm_batches_respect_the_logits_budget_and_score_the_same(tmp_path: Path) -> None:
    from aigc import load

    lpt = 2_000_000  # pretend logits per token: 8 MB a token, so the 128 MiB budget is 16 tokens
    spec_model = {"variants": {"fp32": "model.onnx"}, "output_kind": "logits", "logits_per_token": lpt,
                  "inputs": [{"name": "input_ids", "rank": 2, "dtype": "int64"},
                             {"name": "attention_mask", "rank": 2, "dtype": "int64"}],
                  "outputs": [{"name": "logits", "rank": 2}]}
    lm = build_bundle(tmp_path / "lm", "text", {"model": spec_model})
    plain = build_bundle(tmp_path / "plain", "text")
    texts = _texts(80)
    budget = LOGITS_BUDGET_BYTES // (4 * lpt)
    assert budget == 16

    det = load(lm, providers="cpu")
    shapes = _recording(det)
    got, errors = det.raw_scores(texts)
    assert errors == [None] * len(texts)
    assert shapes and all(n * t <= budget or n == 1 for n, t in shapes)
    assert max(n for n, _ in shapes) > 1  # batches, not one window at a time

    ref = load(plain, providers="cpu")
    ref_shapes = _recording(ref)
    want, _ = ref.raw_scores(texts)
    assert max(n * t for n, t in ref_shapes) > budget  # unbounded batching made larger batches
    # the same scores up to float32 rounding (a window's sum runs over its batch's padded length)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    spec = TextSpec.from_dict(json.loads((plain / "bundle.json").read_text())["preprocessing"])
    first = encode_windows(det.tokenizer, texts[:1], spec)[0]
    assert isinstance(first, TextWindows)
    assert got[0] == pytest.approx(np.mean([text_raw_score_window(w) for w in first.windows]), abs=1e-6)


def test_max_tokens_caps_the_tokens_scored_per_text(tmp_path: Path) -> None:
    from aigc import load
    from aigc._bundle import BundleError

    pre = {"type": "text", "tokenizer": "tokenizer.json", "max_length": 8, "stride": 4, "pooling": "mean",
           "max_windows": 64, "normalize": "nfc_strip_zw", "prefix_ids": [2], "suffix_ids": [3], "pad_id": 0}
    spec = TextSpec.from_dict({**pre, "max_tokens": 10})
    assert spec.to_dict()["max_tokens"] == 10 and "max_tokens" not in TextSpec.from_dict(pre).to_dict()
    b = build_bundle(tmp_path / "b", "text", {"preprocessing": {**pre, "max_tokens": 10}})
    det = load(b, providers="cpu")
    long_text = " ".join(["moreover"] * 30 + ["the"] * 30)  # 60 tokens; the first 10 are all 'moreover'
    res = det.score([long_text])[0]
    assert any("scored the first 10 (max_tokens)" in w for w in res.warnings)
    assert res.meta["n_tokens"] == 60  # the support still sees the whole text
    m = det.tokenizer.token_to_id("moreover")
    enc = encode_windows(det.tokenizer, [long_text], spec)[0]
    assert isinstance(enc, TextWindows) and enc.windows == [[2] + [m] * 6 + [3]] * 2  # tokens 0-5 and 4-9
    raw, _ = det.raw_scores([long_text])
    assert raw[0] == pytest.approx(text_raw_score_window([2] + [m] * 6 + [3]), abs=1e-6)
    with pytest.raises(BundleError, match="max_tokens: found 0"):
        load(build_bundle(tmp_path / "bad", "text", {"preprocessing": {**pre, "max_tokens": 0}}), providers="cpu")
