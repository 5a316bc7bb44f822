"""The hidden-state probe of ``zeroshot:features`` (``model.hidden_probe``, training/hidden_probe.py): pooled states
of one LM beside the statistics, a low-rank head folded back into one weight per state, and train -> export ->
runtime agreeing on tiny random LMs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.train


def _model(**kw: Any) -> Any:
    from test_zeroshot import make_lm, make_tokenizer

    from training.lmfeatures import LikelihoodFeatures

    tok = make_tokenizer()
    return LikelihoodFeatures(make_lm(len(tok), 0), **kw)


def test_the_probe_adds_the_pooled_states_of_the_middle_block_after_the_first_token() -> None:
    from training.lmfeatures import FEATURE_NAMES

    plain, probe = _model(), _model(hidden_probe="backbone")
    assert probe.feature_names[:7] == FEATURE_NAMES and len(probe.feature_names) == 7 + 32
    assert probe.feature_names[7] == "h1_0" and probe.hidden_at == 1  # 2 blocks: the middle is block 1
    ids = torch.tensor([[2, 5, 6, 7, 8], [2, 9, 10, 0, 0]])
    mask = (ids > 0).long()
    with torch.no_grad():
        f, g = probe.features(ids, mask), plain.features(ids, mask)
        states = probe.lm(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[1]
    assert torch.allclose(f[:, :7], g)  # the statistics are untouched
    assert torch.allclose(f[0, 7:], states[0, 1:].mean(0), atol=1e-5)
    assert torch.allclose(f[1, 7:], states[1, 1:3].mean(0), atol=1e-5)  # padding and the first token left out


def test_probe_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="hidden_probe"):
        _model(hidden_probe="encoder")
    with pytest.raises(ValueError, match="companion_model"):
        _model(hidden_probe="companion")
    with pytest.raises(ValueError, match="head_components"):
        _model(head_components=4)
    with pytest.raises(ValueError, match="hidden_layer"):
        _model(hidden_probe="backbone", hidden_layer=3)
    assert _model(hidden_probe="backbone", hidden_layer=2).feature_names[7] == "h2_0"


def test_the_low_rank_head_is_the_head_on_the_components() -> None:
    """The weights folded back over the states give the same scores as the head on the statistics and the first
    k principal components of the z-scored states, and a head of rank k lies in their span."""
    from training.hidden_probe import fit_low_rank_head
    from training.lmfeatures import fit_logistic

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 60)
    stats = rng.normal(size=(120, 3)) + y[:, None] * 0.5
    states = rng.normal(size=(120, 20)) * rng.uniform(0.1, 50, 20) + y[:, None] * rng.normal(size=20)
    x = np.hstack([stats, states])
    mean, std, w, b = fit_low_rank_head(x, y, 3, 4, 1.0)
    score = ((x - mean) / std) @ w + b
    z = (states - states.mean(0)) / states.std(0)
    comps = np.linalg.svd(z, full_matrices=False)[2][:4].T
    m2, s2, w2, b2 = fit_logistic(np.hstack([stats, z @ comps]), y, 1.0)
    np.testing.assert_allclose(score, ((np.hstack([stats, z @ comps]) - m2) / s2) @ w2 + b2, atol=1e-8)
    resid = w[3:] - comps @ (comps.T @ w[3:])
    assert np.abs(resid).max() < 1e-10 and np.abs(w[3:]).max() > 1e-3
    with pytest.raises(ValueError, match="head_components"):
        fit_low_rank_head(x, y, 3, 21, 1.0)


@pytest.mark.slow
def test_train_export_and_runtime_agree_with_a_probe(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("export.cli")
    from test_zeroshot_pipeline import train_features_run

    from aigc._detector import load
    from aigc.cli import main as aigc_main
    from training.run import load_run
    from training.zeroshot import score_texts

    tok, data, run = train_features_run(tmp_path, {"hidden_probe": "backbone", "head_components": 4},
                                        "lmfeat-probe-test", 40, max_windows=2)
    bundle = tmp_path / "bundle"
    fitted = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"fit_head"' in x]
    assert fitted and "w_hidden_norm" in fitted[0] and "w_h1_0" not in fitted[0] and fitted[0]["w_hidden_norm"] > 0
    lr = load_run(run)
    assert len(lr.model.head_weight) == 7 + 32 and lr.model.head_components == 4
    assert aigc_main(["export", str(run), "--out", str(bundle), "--targets", "0.2", "--force"]) == 0
    det = load(bundle, providers="cpu")
    texts = [r["text"] for r in map(json.loads, data.read_text().splitlines()[:8])]
    raw, errors = det.raw_scores(texts)
    assert errors == [None] * 8
    np.testing.assert_allclose(raw, score_texts(lr.model, tok, texts, det.text_spec), rtol=1e-4, atol=1e-4)
    # the probe's states move the score: the same run without them scores otherwise
    plain = torch.tensor(score_texts(lr.model, tok, texts, det.text_spec))
    with torch.no_grad():
        lr.model.head_weight[7:] = 0
    assert not torch.allclose(plain, torch.tensor(score_texts(lr.model, tok, texts, det.text_spec)))
