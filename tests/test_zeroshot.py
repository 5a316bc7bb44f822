"""Zero-shot text statistics (training/zeroshot.py) on tiny random Llama models built from configs.

Each statistic is checked against a direct numpy computation on the same logits (float64, a loop
over each row's scored positions), padding is checked not to move a score, the tokenizer-mismatch
refusal is checked, and the ONNX graph of each scorer is checked against torch to 1e-4.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from training import zeroshot as zs  # noqa: E402

pytestmark = pytest.mark.train

# --------------------------------------------------------------------------------------------------
# tiny LMs and a tokenizer (also imported by test_zeroshot_bundle.py)
# --------------------------------------------------------------------------------------------------
WORDS = (
    "the a an of to in on at for with from by as is was are were be been it this that these those "
    "cat dog bird fish horse cow sheep mouse lion tiger sat ran flew swam ate slept jumped walked saw "
    "mat park river tree house field road city sky sea moreover furthermore delve tapestry notably "
    "overall however therefore thus hence indeed quick slow red green blue big small old new good bad "
    "day night time year man woman child people world life hand part place case week company system "
    "study result data model method paper cell patient risk effect group level rate test answer question "
    "story king queen dragon ship war peace game team player match goal season market price bank money "
    "water fire earth wind stone gold silver light dark cold warm early late first last next other same"
).split()
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
V = len(SPECIALS) + len(WORDS)


def make_tokenizer(extra: list[str] | None = None) -> Any:
    """A word-level fast tokenizer that adds a BOS (<s>) like Llama's; pad <pad> = 0."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS + list(extra or []))}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def make_lm(vocab_size: int, seed: int) -> Any:
    """A random 2-layer Llama (hidden 32) in eval mode, eager attention (exports to ONNX)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=2, eos_token_id=3, pad_token_id=0, tie_word_embeddings=False)
    cfg._attn_implementation = "eager"
    lm = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # sharper next-token distributions than the default init, so statistics differ
        lm.lm_head.weight.mul_(20.0)
    return lm


def save_lm(lm: Any, tok: Any, folder: Path) -> Path:
    lm.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------------------------------
# numpy oracle
# --------------------------------------------------------------------------------------------------
def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _positions(mask: np.ndarray) -> list[int]:
    """Scored positions t (predicting token t from position t-1) of one row."""
    return [t for t in range(1, len(mask)) if mask[t] and mask[t - 1]]


def np_loglik(logits: np.ndarray, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = []
    for r in range(len(ids)):
        lp = _log_softmax(logits[r].astype(np.float64))
        out.append(np.mean([lp[t - 1, ids[r, t]] for t in _positions(mask[r])]))
    return np.array(out)


def np_logrank(logits: np.ndarray, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = []
    for r in range(len(ids)):
        ranks = []
        for t in _positions(mask[r]):
            order = np.argsort(-logits[r, t - 1].astype(np.float64), kind="stable")
            ranks.append(int(np.where(order == ids[r, t])[0][0]) + 1)
        out.append(-np.mean(np.log(ranks)))
    return np.array(out)


def np_fast_detectgpt(score: np.ndarray, sample: np.ndarray, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = []
    for r in range(len(ids)):
        lp = _log_softmax(score[r].astype(np.float64))
        q = np.exp(_log_softmax(sample[r].astype(np.float64)))
        pos = _positions(mask[r])
        ll = sum(lp[t - 1, ids[r, t]] for t in pos)
        mu = sum(float(q[t - 1] @ lp[t - 1]) for t in pos)
        var = sum(float(q[t - 1] @ lp[t - 1] ** 2) - float(q[t - 1] @ lp[t - 1]) ** 2 for t in pos)
        out.append((ll - mu) / math.sqrt(var))
    return np.array(out)


def np_binoculars(obs: np.ndarray, perf: np.ndarray, ids: np.ndarray, mask: np.ndarray, ppl_from: str) -> np.ndarray:
    out = []
    for r in range(len(ids)):
        lo = _log_softmax(obs[r].astype(np.float64))
        lpf = _log_softmax(perf[r].astype(np.float64))
        lppl = lo if ppl_from == "observer" else lpf
        pos = _positions(mask[r])
        log_ppl = -np.mean([lppl[t - 1, ids[r, t]] for t in pos])
        x_ppl = -np.mean([float(np.exp(lo[t - 1]) @ lpf[t - 1]) for t in pos])
        out.append(-(log_ppl / x_ppl))
    return np.array(out)


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lms() -> tuple[Any, Any]:
    tok = make_tokenizer()
    return make_lm(len(tok), seed=0), make_lm(len(tok), seed=1)


@pytest.fixture(scope="module")
def batch() -> tuple[Any, Any]:
    """Three rows of different lengths, right-padded, one of them with a gap-free full row."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, V, (3, 14), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = 0
    return ids, mask


def _lg(lm: Any, ids: Any, mask: Any) -> np.ndarray:
    with torch.no_grad():
        return lm(input_ids=ids, attention_mask=mask).logits.numpy()


# --------------------------------------------------------------------------------------------------
# statistics against numpy
# --------------------------------------------------------------------------------------------------
def test_loglik_and_logrank_match_numpy(lms: tuple[Any, Any], batch: tuple[Any, Any]) -> None:
    ids, mask = batch
    lg = _lg(lms[0], ids, mask)
    with torch.no_grad():
        ll = zs.LogLikelihood(lms[0])(ids, mask).numpy()
        lr = zs.LogRank(lms[0])(ids, mask).numpy()
    np.testing.assert_allclose(ll, np_loglik(lg, ids.numpy(), mask.numpy()), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lr, np_logrank(lg, ids.numpy(), mask.numpy()), rtol=1e-5, atol=1e-5)


def test_fast_detectgpt_matches_numpy(lms: tuple[Any, Any], batch: tuple[Any, Any]) -> None:
    ids, mask = batch
    a, b = _lg(lms[0], ids, mask), _lg(lms[1], ids, mask)
    with torch.no_grad():
        one = zs.FastDetectGPT(lms[0])(ids, mask).numpy()
        two = zs.FastDetectGPT(lms[0], lms[1])(ids, mask).numpy()
    np.testing.assert_allclose(one, np_fast_detectgpt(a, a, ids.numpy(), mask.numpy()), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(two, np_fast_detectgpt(a, b, ids.numpy(), mask.numpy()), rtol=1e-4, atol=1e-5)
    assert not np.allclose(one, two)


@pytest.mark.parametrize("ppl_from", ["observer", "performer"])
def test_binoculars_matches_numpy(lms: tuple[Any, Any], batch: tuple[Any, Any], ppl_from: str) -> None:
    ids, mask = batch
    a, b = _lg(lms[0], ids, mask), _lg(lms[1], ids, mask)
    with torch.no_grad():
        got = zs.Binoculars(lms[0], lms[1], perplexity_from=ppl_from)(ids, mask).numpy()
    np.testing.assert_allclose(got, np_binoculars(a, b, ids.numpy(), mask.numpy(), ppl_from), rtol=1e-5, atol=1e-6)


def _modules(lms: tuple[Any, Any]) -> dict[str, Any]:
    return {
        "loglik": zs.LogLikelihood(lms[0]),
        "logrank": zs.LogRank(lms[0]),
        "fast-detectgpt": zs.FastDetectGPT(lms[0]),
        "fast-detectgpt-2lm": zs.FastDetectGPT(lms[0], lms[1]),
        "binoculars": zs.Binoculars(lms[0], lms[1]),
    }


def test_padding_does_not_move_scores(lms: tuple[Any, Any], batch: tuple[Any, Any]) -> None:
    """Each row scored alone (no padding) equals the row scored in the padded batch, whatever the pad id."""
    ids, mask = batch
    for name, m in _modules(lms).items():
        assert m.output_kind == "score"
        with torch.no_grad():
            full = m(ids, mask).numpy()
            other_pad = ids.clone()
            other_pad[mask == 0] = 7
            full2 = m(other_pad, mask).numpy()
            alone = [m(ids[r : r + 1, : int(mask[r].sum())], mask[r : r + 1, : int(mask[r].sum())]).item() for r in range(3)]
        assert full.shape == (3,), name
        np.testing.assert_allclose(full, alone, rtol=1e-5, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(full, full2, rtol=1e-6, atol=1e-6, err_msg=name)


def test_single_token_window_is_nan(lms: tuple[Any, Any]) -> None:
    ids = torch.tensor([[5, 6, 7], [5, 0, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    with torch.no_grad():
        s = zs.LogLikelihood(lms[0])(ids, mask).numpy()
    assert np.isfinite(s[0]) and np.isnan(s[1])


def test_sign_larger_is_more_ai_like(lms: tuple[Any, Any]) -> None:
    """Text the LM generated greedily scores higher than random tokens, for every statistic."""
    lm = lms[0]
    g = torch.Generator().manual_seed(1)
    start = torch.randint(4, V, (4, 2), generator=g)
    with torch.no_grad():
        greedy = lm.generate(start, attention_mask=torch.ones_like(start), max_new_tokens=14, do_sample=False,
                             pad_token_id=0)
    rand = torch.randint(4, V, greedy.shape, generator=g)
    mask = torch.ones_like(greedy)
    for name, m in _modules(lms).items():
        if name == "binoculars":
            continue  # the ratio's sign is about a model pair, not one model's greedy text
        with torch.no_grad():
            assert m(greedy, mask).mean() > m(rand, mask).mean(), name


# --------------------------------------------------------------------------------------------------
# tokenizers and factories
# --------------------------------------------------------------------------------------------------
def test_tokenizer_mismatch_is_refused(tmp_path: Path) -> None:
    a = make_tokenizer()
    b = make_tokenizer(extra=["zebra", "quantum"])
    with pytest.raises(zs.TokenizerMismatchError, match="do not share a tokenizer"):
        zs.check_same_tokenizer(a, b, "obs", "perf", "zeroshot:binoculars")
    zs.check_same_tokenizer(a, make_tokenizer(), "obs", "perf", "zeroshot:binoculars")  # same: accepted
    # through the factory, before the second model's weights are loaded
    save_lm(make_lm(len(a), 0), a, tmp_path / "obs")
    save_lm(make_lm(len(b), 1), b, tmp_path / "perf")
    with pytest.raises(zs.TokenizerMismatchError, match="'.*obs' and '.*perf' do not share a tokenizer"):
        zs.create_zeroshot("binoculars", str(tmp_path / "obs"), str(tmp_path / "perf"), device="cpu")
    with pytest.raises(zs.TokenizerMismatchError):
        zs.create_zeroshot("fast-detectgpt", str(tmp_path / "obs"), str(tmp_path / "perf"), device="cpu")


def test_factory_from_local_paths(tmp_path: Path) -> None:
    tok = make_tokenizer()
    save_lm(make_lm(len(tok), 0), tok, tmp_path / "obs")
    save_lm(make_lm(len(tok), 1), tok, tmp_path / "perf")
    m, t = zs.create_zeroshot("binoculars", str(tmp_path / "obs"), str(tmp_path / "perf"), device="cpu")
    assert isinstance(m, zs.Binoculars) and len(t) == len(tok)
    m, _ = zs.create_zeroshot("fast-detectgpt", str(tmp_path / "obs"), device="cpu")
    assert isinstance(m, zs.FastDetectGPT) and m.sampling_lm is None
    with pytest.raises(ValueError, match="needs two LMs"):
        zs.create_zeroshot("binoculars", str(tmp_path / "obs"), device="cpu")
    with pytest.raises(ValueError, match="expected one of"):
        zs.create_zeroshot("detectgpt", str(tmp_path / "obs"), device="cpu")


@pytest.mark.parametrize("name", ["zeroshot:loglik", "zeroshot:logrank", "zeroshot:fast-detectgpt",
                                  "zeroshot:binoculars"])
def test_registered_names_build_from_model_config(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    registry = pytest.importorskip("training.registry")
    from training.config import ModelConfig

    if name not in registry.list_models("text"):
        pytest.fail(f"{name} is not registered (training.registry imports training.zeroshot)")
    tok = make_tokenizer()
    root = tmp_path_factory.mktemp("lms")
    obs, perf = save_lm(make_lm(len(tok), 0), tok, root / "obs"), save_lm(make_lm(len(tok), 1), tok, root / "perf")
    two = name in ("zeroshot:fast-detectgpt", "zeroshot:binoculars")
    m = registry.create_model(ModelConfig(name=name, backbone=str(obs), reference_model=str(perf) if two else ""))
    assert m.output_kind == "score" and m.modality == "text" and len(m.tokenizer) == len(tok)
    assert not any(p.requires_grad for p in m.parameters())  # nothing to train
    assert m.text_spec.prefix_ids == (2,) and m.text_spec.pad_id == 0
    ids = torch.tensor([[2, 5, 6, 7, 8]])
    with torch.no_grad():
        assert m(ids, torch.ones_like(ids)).shape == (1,)


def test_same_lm_twice_is_shared(tmp_path: Path) -> None:
    tok = make_tokenizer()
    save_lm(make_lm(len(tok), 0), tok, tmp_path / "lm")
    m, _ = zs.create_zeroshot("binoculars", str(tmp_path / "lm"), str(tmp_path / "lm"), device="cpu")
    assert m.observer is m.performer
    m, _ = zs.create_zeroshot("fast-detectgpt", str(tmp_path / "lm"), str(tmp_path / "lm"), device="cpu")
    assert m.sampling_lm is None


def test_text_spec_and_score_texts_match_direct_windows(lms: tuple[Any, Any]) -> None:
    from aigc._text import encode_windows, pad_windows

    tok = make_tokenizer()
    spec = zs.text_spec_for(tok, max_length=12, stride=6)
    assert spec.prefix_ids == (tok.bos_token_id,) and spec.suffix_ids == () and spec.pad_id == tok.pad_token_id
    texts = [" ".join(WORDS[i % len(WORDS)] for i in range(k, k + n)) for k, n in ((0, 5), (3, 30), (7, 11))]
    m = zs.FastDetectGPT(lms[0])
    got = zs.score_texts(m, tok, texts, spec, max_tokens=40, max_batch=2)
    enc = encode_windows(tok.backend_tokenizer, texts, spec)
    want = []
    for e in enc:
        ids, mask = pad_windows(e.windows, spec.pad_id)
        with torch.no_grad():
            want.append(float(m(torch.from_numpy(ids), torch.from_numpy(mask)).mean()))
    assert len(enc[1].windows) > 1
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["loglik", "logrank", "fast-detectgpt-2lm", "binoculars"])
def test_onnx_parity(lms: tuple[Any, Any], name: str, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from export.zeroshot import export_zeroshot_onnx

    m = _modules(lms)[name].eval()
    path, exporter = export_zeroshot_onnx(m, tmp_path / "model.onnx")
    assert exporter == "dynamo"  # the TorchScript fallback is for older torch
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input_ids", "attention_mask"]
    assert len(sess.get_outputs()[0].shape) == 1
    g = torch.Generator().manual_seed(3)
    for n, t in ((1, 5), (2, 9), (5, 23)):
        ids = torch.randint(4, V, (n, t), generator=g)
        mask = torch.ones_like(ids)
        if n > 1:
            mask[1, t // 2 :] = 0
        with torch.no_grad():
            want = m(ids, mask).numpy()
        got = sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        assert got.shape == (n,)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"{name} {n}x{t}")
