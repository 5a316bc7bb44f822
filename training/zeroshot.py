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

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .causal_lm import (  # the LM plumbing lives there; re-exported here for callers of training.zeroshot
    TokenizerMismatchError,
    _offline,
    check_same_tokenizer,
    load_causal_lm,
    resolve_lm_path,
    score_texts,
    text_spec_for,
)

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
