"""A zero-shot scorer end to end: tiny random Llama -> ONNX bundle (Platt calibration, thresholds) ->
``aigc.load`` -> the runtime's raw scores equal the torch statistic on the same texts and windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

from test_zeroshot import WORDS, make_lm, make_tokenizer  # noqa: E402

from training import zeroshot as zs  # noqa: E402

pytestmark = [pytest.mark.train, pytest.mark.slow]


def _texts(lm: Any, tok: Any, n: int) -> tuple[list[str], list[int]]:
    """n/2 'machine' texts the LM wrote greedily from random two-word prompts, n/2 random word strings."""
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for _ in range(n // 2):
        prompt = " ".join(rng.choice(WORDS, 2))
        ids = tok(prompt, return_tensors="pt")
        with torch.no_grad():
            out = lm.generate(**ids, max_new_tokens=int(rng.integers(8, 30)), do_sample=True, top_k=5,
                              pad_token_id=tok.pad_token_id)
        texts.append(tok.decode(out[0], skip_special_tokens=True))
        labels.append(1)
        texts.append(" ".join(rng.choice(WORDS, int(rng.integers(6, 40)))))
        labels.append(0)
    return texts, labels


@pytest.mark.parametrize("statistic", ["fast-detectgpt", "binoculars"])
def test_bundle_scores_equal_torch(tmp_path: Path, statistic: str) -> None:
    import aigc
    from aigc._detector import load
    from export.zeroshot import build_zeroshot_bundle

    tok = make_tokenizer()
    lm, ref = make_lm(len(tok), 0), make_lm(len(tok), 1)
    torch.manual_seed(0)
    model = zs.FastDetectGPT(lm) if statistic == "fast-detectgpt" else zs.Binoculars(lm, ref)
    spec = zs.text_spec_for(tok, max_length=16, stride=8)
    texts, labels = _texts(lm, tok, 40)
    out = build_zeroshot_bundle(model, tok, spec, tmp_path / "bundle", texts, labels, targets=(0.2,))

    det = load(out, providers="cpu", max_tokens=64, batch_size=4)
    assert det.spec["model"]["output_kind"] == "score"
    assert det.spec["calibration"]["method"] == "platt"
    assert {"fpr@20%", "balanced"} <= set(det.spec["thresholds"])
    probe = [*texts[:6], "cat", "the cat sat on the mat " * 5]
    raw, errors = det.raw_scores(probe)
    want = zs.score_texts(model, tok, probe, spec, max_tokens=64, max_batch=4)
    assert errors[:6] == [None] * 6
    np.testing.assert_allclose(raw[:6], want[:6], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(raw[-1], want[-1], rtol=1e-4, atol=1e-4)  # several windows, mean-pooled
    # a one-token text has no scored position (the tokenizer adds a BOS here, so it does have one)
    assert np.isfinite(raw[-2]) == np.isfinite(want[-2])
    p = det.predict_proba(probe[:6])
    assert p.shape == (6, 2) and np.all((p >= 0) & (p <= 1))
    # the calibrated probability rises with the statistic (Platt with a > 0: larger = more AI-like)
    assert det.spec["calibration"]["params"]["a"] > 0
    assert hasattr(aigc, "load")
