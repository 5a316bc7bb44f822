"""zeroshot:features: seven token statistics under a causal LM and a closed-form logistic head.

The statistics are checked against a float64 numpy computation on the same logits (with padding on
either side), the head against its optimality condition, and the model through aigc train -> aigc
export -> aigc.load on a tiny random Llama."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from test_zeroshot import make_lm, make_tokenizer, save_lm  # noqa: E402

from training.lmfeatures import FEATURE_NAMES, LikelihoodFeatures, fit_logistic, token_statistics  # noqa: E402

pytestmark = pytest.mark.train


def _np_stats(logits: np.ndarray, ids: np.ndarray, mask: np.ndarray, skip: int = 0) -> np.ndarray:
    out = []
    for r in range(len(ids)):
        x = logits[r].astype(np.float64)
        lps = x - x.max(-1, keepdims=True)
        lps = lps - np.log(np.exp(lps).sum(-1, keepdims=True))
        real = [t for t in range(len(ids[r])) if mask[r, t]]
        k = min(skip, len(real) // 2)  # burn-in: the row's first k real tokens are context only
        pos = [t for t in range(1, len(ids[r])) if mask[r, t] and mask[r, t - 1] and real.index(t) >= k]
        lp = np.array([lps[t - 1, ids[r, t]] for t in pos])
        p = np.exp(lps[[t - 1 for t in pos]])
        ent = -(p * lps[[t - 1 for t in pos]]).sum(-1)
        var = (p * lps[[t - 1 for t in pos]] ** 2).sum(-1) - ent**2
        gap = lp + ent
        out.append([lp.mean(), lp.std(), ent.mean(), gap.sum() / np.sqrt(var.sum()), lp.mean() / ent.mean(),
                    gap.mean(), gap.std()])
    return np.asarray(out)


def test_token_statistics_match_numpy_with_padding_on_either_side() -> None:
    rng = np.random.default_rng(0)
    n, t, v = 4, 12, 30
    logits = rng.normal(0, 3, (n, t, v)).astype(np.float32)
    ids = rng.integers(0, v, (n, t))
    mask = np.ones((n, t), dtype=np.int64)
    mask[1, 9:] = 0  # right padding
    mask[2, :4] = 0  # left padding
    got = token_statistics(torch.from_numpy(logits), torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    assert got.shape == (n, len(FEATURE_NAMES))
    np.testing.assert_allclose(got, _np_stats(logits, ids, mask), rtol=2e-4, atol=2e-4)
    # what a pad token holds does not matter
    ids2 = ids.copy()
    ids2[1, 9:] = 0
    got2 = token_statistics(torch.from_numpy(logits), torch.from_numpy(ids2), torch.from_numpy(mask)).numpy()
    np.testing.assert_allclose(got2[1], got[1], rtol=1e-6, atol=1e-6)


def test_burn_in_skips_the_first_tokens_of_each_row_and_keeps_half_of_a_short_row() -> None:
    rng = np.random.default_rng(3)
    n, t, v = 4, 14, 30
    logits = rng.normal(0, 3, (n, t, v)).astype(np.float32)
    ids = rng.integers(0, v, (n, t))
    mask = np.ones((n, t), dtype=np.int64)
    mask[1, 10:] = 0  # right padding: 10 tokens
    mask[2, :5] = 0  # left padding: 9 tokens
    mask[3, 6:] = 0  # 6 tokens: the burn-in shrinks to 3
    args = (torch.from_numpy(logits), torch.from_numpy(ids), torch.from_numpy(mask))
    got = token_statistics(*args, skip_tokens=4).numpy()
    np.testing.assert_allclose(got, _np_stats(logits, ids, mask, skip=4), rtol=2e-4, atol=2e-4)
    assert not np.allclose(got, token_statistics(*args).numpy())
    # a left-padded row scores the same tokens as the same row without its padding
    trimmed = token_statistics(torch.from_numpy(logits[2:3, 5:]), torch.from_numpy(ids[2:3, 5:]),
                               torch.ones((1, t - 5), dtype=torch.long), skip_tokens=4).numpy()
    np.testing.assert_allclose(got[2], trimmed[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="skip_tokens"):
        LikelihoodFeatures(make_lm(40, 0), skip_tokens=-1)


def test_fit_logistic_meets_its_optimality_condition_and_refuses_bad_input() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -2.0]
    y = (x[:, 0] + 0.1 * x[:, 1] + rng.normal(0, 1, 400) > 0.5).astype(int)
    mean, std, w, b = fit_logistic(x, y, l2=1.0)
    z = (x - mean) / std
    p = 1 / (1 + np.exp(-(z @ w + b)))
    np.testing.assert_allclose(z.T @ (p - y) + 1.0 * w, 0, atol=1e-6)  # gradient of the penalised loss
    assert abs(np.sum(p - y)) < 1e-6  # the unpenalised bias
    assert w[0] > 0 and w[1] > 0
    with pytest.raises(ValueError, match="both 0 and 1"):
        fit_logistic(x, np.zeros(400))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_logistic(bad, y)


def test_weighted_fit_logistic_equals_duplicated_rows_and_meets_its_weighted_optimality_condition() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 2)) * [1.0, 3.0]
    y = (x[:, 0] - 0.2 * x[:, 1] + rng.normal(0, 1, 300) > 0).astype(int)
    reps = rng.integers(1, 4, size=300)
    dup = fit_logistic(np.repeat(x, reps, axis=0), np.repeat(y, reps), l2=1e-8)
    wtd = fit_logistic(x, y, l2=1e-8, sample_weight=reps.astype(float))
    for a, b in zip(dup, wtd, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    mean, std, w, b = fit_logistic(x, y, l2=2.0, sample_weight=reps * 10.0)  # the scale of the weights is free
    sw = reps * (len(reps) / reps.sum())
    z = (x - mean) / std
    p = 1 / (1 + np.exp(-(z @ w + b)))
    np.testing.assert_allclose(z.T @ (sw * (p - y)) + 2.0 * w, 0, atol=1e-6)
    np.testing.assert_allclose(mean, (sw[:, None] * x).sum(0) / sw.sum(), rtol=1e-12)
    with pytest.raises(ValueError, match="sample_weight"):
        fit_logistic(x, y, sample_weight=-np.ones(300))
    with pytest.raises(ValueError, match="sample_weight"):
        fit_logistic(x, y, sample_weight=np.ones(7))


def test_unfitted_head_is_fast_detectgpt_and_fitted_head_is_linear_in_the_features() -> None:
    from training.zeroshot import FastDetectGPT

    lm = make_lm(40, 0)
    model = LikelihoodFeatures(lm).eval()
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 0
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 40, (3, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[2, 7:] = 0
    with torch.no_grad():
        np.testing.assert_allclose(model(ids, mask).numpy(), FastDetectGPT(lm)(ids, mask).numpy(), rtol=1e-5, atol=1e-5)
        f = model.features(ids, mask).numpy().astype(np.float64)
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, len(FEATURE_NAMES)))
    labels = (feats[:, 0] > 0).astype(int)
    info = model.fit_head(feats, labels)
    assert info["n"] == 50 and set(info["weights"]) == set(FEATURE_NAMES) and int(model.fitted) == 1
    mean, std, w, b = fit_logistic(feats, labels)
    with torch.no_grad():
        np.testing.assert_allclose(model(ids, mask).numpy(), ((f - mean) / std) @ w + b, rtol=1e-4, atol=1e-4)
    # the head travels in the state dict (buffers), so a saved run reloads fitted
    fresh = LikelihoodFeatures(lm)
    fresh.load_state_dict(model.state_dict())
    assert int(fresh.fitted) == 1 and torch.equal(fresh.head_weight, model.head_weight)


def test_registered_and_shipped_configs_load() -> None:
    from training.config import load_config
    from training.registry import list_models

    assert "zeroshot:features" in list_models("text")
    repo = Path(__file__).resolve().parents[1]
    for name in ("text_lmfeatures_smollm2_shared.yaml", "text_lmfeatures_smollm2.yaml"):
        assert load_config(repo / "configs" / name).model.name == "zeroshot:features"


@pytest.mark.slow
def test_train_fits_the_head_then_export_and_runtime_agree(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("export.cli")
    from test_zeroshot_pipeline import train_features_run

    from aigc._detector import load
    from aigc.cli import main as aigc_main
    from training.run import load_run
    from training.zeroshot import score_texts

    tok, data, run = train_features_run(tmp_path, {"skip_tokens": 3}, "lmfeat-test", 60)
    bundle = tmp_path / "bundle"
    info = json.loads((run / "run.json").read_text())
    assert info["output_kind"] == "score" and info["trainable_parameters"] == 0
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    fitted = [m for m in lines if m["kind"] == "fit_head"]
    assert fitted and fitted[0]["n"] >= 50
    dev = [m for m in lines if m["kind"] == "dev"]
    assert dev and dev[0]["auroc"] > 0.8
    lr = load_run(run)
    assert int(lr.model.fitted) == 1

    assert aigc_main(["export", str(run), "--out", str(bundle), "--targets", "0.2"]) == 0
    det = load(bundle, providers="cpu")
    texts = [r["text"] for r in map(json.loads, data.read_text().splitlines()[:10])]
    raw, errors = det.raw_scores(texts)
    assert errors == [None] * len(texts)
    np.testing.assert_allclose(raw, score_texts(lr.model, tok, texts, det.text_spec), rtol=1e-4, atol=1e-4)
    # the burn-in travelled from the config into the rebuilt model and the ONNX graph
    assert lr.model.skip_tokens == 3
    lr.model.skip_tokens = 0
    assert not np.allclose(raw, score_texts(lr.model, tok, texts, det.text_spec), rtol=1e-3, atol=1e-3)


def test_pair_statistics_match_numpy_with_padding() -> None:
    from training.lmfeatures import pair_statistics

    g = torch.Generator().manual_seed(1)
    lo, lq = torch.randn(3, 7, 11, generator=g) * 3, torch.randn(3, 7, 11, generator=g) * 3
    ids = torch.randint(0, 11, (3, 7), generator=g)
    mask = torch.tensor([[1] * 7, [0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]])
    got = pair_statistics(lo, lq, ids, mask).numpy()
    a, b = _log_softmax_np(lo.numpy()), _log_softmax_np(lq.numpy())
    for r in range(3):
        pos = [t for t in range(1, 7) if mask[r, t] and mask[r, t - 1]]
        logppl = -np.mean([b[r, t - 1, ids[r, t]] for t in pos])
        xppl = np.mean([-(np.exp(a[r, t - 1]) * b[r, t - 1]).sum() for t in pos])
        np.testing.assert_allclose(got[r], [logppl, xppl], rtol=1e-5, atol=1e-5)
    # the observer's own tokens do not enter the performer's perplexity
    assert not np.allclose(got[:, 0], pair_statistics(lo, lo, ids, mask).numpy()[:, 0])


def _log_softmax_np(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def test_performer_adds_the_two_binoculars_terms_and_refuses_another_tokenizer() -> None:
    from training.lmfeatures import PAIR_FEATURE_NAMES

    tok = make_tokenizer()
    model = LikelihoodFeatures(make_lm(len(tok), 0), performer=make_lm(len(tok), 1))
    assert model.feature_names == FEATURE_NAMES + PAIR_FEATURE_NAMES
    enc = tok(["the cat sat on the mat", "a dog"], return_tensors="pt", padding=True)
    f = model.features(enc["input_ids"], enc["attention_mask"])
    assert f.shape == (2, len(FEATURE_NAMES) + 2) and torch.isfinite(f).all()
    x = np.random.default_rng(0).normal(size=(40, 9))
    info = model.fit_head(x, (x[:, 8] > 0).astype(int))
    assert set(info["weights"]) == set(model.feature_names) and info["weights"]["cross_ppl"] > 0


@pytest.mark.slow
def test_train_and_export_with_a_performer_agree_with_the_runtime(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("export.cli")
    from test_zeroshot_pipeline import _data, zs_config

    from aigc._detector import load
    from aigc.cli import main as aigc_main
    from training.run import load_run
    from training.zeroshot import score_texts

    tok = make_tokenizer()
    obs, perf = save_lm(make_lm(len(tok), 0), tok, tmp_path / "o"), save_lm(make_lm(len(tok), 1), tok, tmp_path / "p")
    data = _data(tmp_path, make_lm(len(tok), 0), tok, 40)
    cfg_path = zs_config(tmp_path, data, {"name": "zeroshot:features", "backbone": str(obs), "reference_model": str(perf)},
                         "lmfeat-pair-test", dev=0.3, max_windows=2)
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    assert aigc_main(["train", str(cfg_path), "--out", str(run)]) == 0
    fitted = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"fit_head"' in x]
    assert fitted and "w_cross_ppl" in fitted[0] and "w_logppl_perf" in fitted[0]
    lr = load_run(run)
    assert lr.model.performer is not None and len(lr.model.head_weight) == 9
    assert aigc_main(["export", str(run), "--out", str(bundle), "--targets", "0.2"]) == 0
    det = load(bundle, providers="cpu")
    texts = [r["text"] for r in map(json.loads, data.read_text().splitlines()[:8])]
    raw, errors = det.raw_scores(texts)
    assert errors == [None] * len(texts)
    np.testing.assert_allclose(raw, score_texts(lr.model, tok, texts, det.text_spec), rtol=1e-4, atol=1e-4)
